"""A month of the shop's and the stores' activity, exported to the book of
record and settled, with what an accountant checks at month end.

Thirty days are played one by one on the test's clock (the only thing made
up): each day a few Shopify orders paid online arrive by webhook, some are
refunded a few days later; a store rings up its tickets (cash and card,
now and then a return) and closes its day with the Z report; the card
acquirer settles the card tenders in a batch a day and its payout lands on
the bank the next morning, as Shopify's payout of the day before does. The
finance connector's settlements read and journal export run as their crons
would, the export every other day. Every system is its simulator, spoken to
over HTTP; every job runs.

At the end, what the accountant checks: every entry posted in the exported
journals went out once, each batch is one journal in the remote's ledger,
the remote's balance of each account is Odoo's (a trial balance compare),
and every payout is matched and reconciled with its bank line. The counts
are logged; what differs, if anything, is named.
"""

import logging
import random
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

from freezegun import freeze_time

from odoo import Command
from odoo.tests import tagged

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs
from odoo.addons.connector_finance.tests.common import (
    bank_line,
    connect_finance,
    set_up_settlements,
)
from odoo.addons.connector_pos.tests.common import STORE, PosCase
from odoo.addons.connector_shopify.tests.common import make_backend, start_shop

_logger = logging.getLogger(__name__)

FIRST_DAY = date(2026, 10, 1)
DAYS = 30
# The demo's mapping of the generic chart to the book of record's accounts.
ACCOUNTS = {
    "101401": "090",
    "101402": "090",
    "101403": "092",
    "101404": "092",
    "121000": "092",
    "101300": "091",
    "400000": "200",
    "251000": "820",
    "620000": "405",
    "442000": "260",
    "642000": "404",
    # What the card acquirer is owed between a batch without payout and the next.
    "407": "091",
}
CENT = Decimal("0.01")
# The store day whose only card movement is a return: its acquirer batch pays
# nothing and carries its balance to the next one.
NEGATIVE_DAY = 5


def at(day, hour):
    """``day`` at ``hour`` o'clock (UTC)."""
    return datetime.combine(day, datetime.min.time()) + timedelta(hours=hour)


def monotonic_now():
    """The monotonic clock as read at each call: the test's while it is set."""
    return time.monotonic()


@tagged("post_install", "-at_install")
class TestFinanceMonth(PosCase):
    """One month of orders, refunds, store days and payouts, exported and settled."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        env.company.currency_id = env.ref("base.EUR")
        # The online store sells the stores' catalogue: its variants bound to
        # the same products by SKU.
        cls.shop = start_shop(
            cls,
            seed=44,
            products=8,
            webhook_topics=["orders/create", "orders/updated", "refunds/create"],
        )
        cls.shopify = make_backend(env, base_url=cls.shop.url)
        for flow in ("stock_out", "fulfillment_out"):
            cls.shopify._policy(flow).enabled = False
        Product = env["product.product"]
        stock = env.ref("stock.warehouse0").lot_stock_id
        skus = sorted({row["sku"] for row in cls.shop.inventory()})
        cls.skus = [sku for sku in skus if Product.search([("default_code", "=", sku)])][:6]
        for sku in cls.skus:
            product = Product.search([("default_code", "=", sku)])
            env["stock.quant"]._update_available_quantity(product, stock, 500)
        cls.shopify.action_shopify_import_locations()
        cls.shopify.action_shopify_bind_products()
        Journal = env["account.journal"]
        cls.shopify_journal = Journal.create(
            {"name": "Shopify Payments", "type": "bank", "code": "SHPAY"}
        )
        cls.shopify.shopify_payment_method_ids = [
            Command.create({"gateway": "shopify_payments", "journal_id": cls.shopify_journal.id})
        ]
        # The book of record connected on the morning the month starts.
        with freeze_time(at(FIRST_DAY, 5), tick=True):
            connect_finance(cls)
            set_up_settlements(cls)
            cls.map_books()

    @classmethod
    def map_books(cls):
        """The book of record wired as the demo wires it: its chart read, the
        accounts mapped (the demo's table, the journals' own accounts, the
        fee accounts by code), each sale tax to a remote tax type of its rate,
        the sales, bank and cash journals and the stores' journal exported,
        summarised per day."""
        env = cls.env
        backend = cls.backend
        # Ten calls a second, as the connector's export tests take: a month is
        # played in minutes here; the remote's own minute window runs on the
        # test's clock.
        backend.rate_limit = 10
        backend.action_finance_read_chart()
        remote = {a.code: a for a in backend.finance_remote_account_ids}
        Account = env["account.account"]
        mapping = {}
        for code, remote_code in ACCOUNTS.items():
            account = Account.search(
                [("company_ids", "in", env.company.ids), ("code", "=", code)], limit=1
            )
            if account:
                mapping[account] = remote[remote_code]
        journals = env["account.journal"].search(
            [("company_id", "=", env.company.id), ("type", "in", ("sale", "bank", "cash"))]
        )
        journals |= env["pos.config"].search([("company_id", "=", env.company.id)]).journal_id
        for journal in journals.filtered(lambda j: j.type in ("bank", "cash")):
            mapping.setdefault(
                journal.default_account_id, remote["093" if journal.type == "cash" else "090"]
            )
        env["finance.account.map"].create(
            [
                {"backend_id": backend.id, "account_id": a.id, "remote_account_id": r.id}
                for a, r in mapping.items()
            ]
        )
        env["finance.account.map"]._map_by_code(backend)
        remote_taxes = backend.finance_remote_tax_ids.filtered(
            lambda t: t.status == "active"
        ).sorted("tax_type")
        for tax in env["account.tax"].search(
            [("company_id", "=", env.company.id), ("type_tax_use", "=", "sale")]
        ):
            found = remote_taxes.filtered(lambda t, tax=tax: abs(t.rate - tax.amount) < 0.001)
            if found:
                env["finance.tax.map"].create(
                    {"backend_id": backend.id, "tax_id": tax.id, "remote_tax_id": found[0].id}
                )
        backend.write(
            {
                "finance_export_mode": "summary",
                "finance_export_from": FIRST_DAY,
                "finance_journal_ids": [Command.set(journals.ids)],
            }
        )
        # The export every other morning, the settlements every morning: the
        # intervals an hour short of two days and of one, as a morning's run
        # starts a little earlier or later than the last.
        backend._policy("journals_out").interval_minutes = 2 * 24 * 60 - 60
        backend._policy("settlements_in").interval_minutes = 24 * 60 - 60
        cls.exported_journals = journals

    def setUp(self):
        super().setUp()
        self.finance.reset()
        self.shop.webhook_url = f"{self.base_url()}/connector/shopify/webhook"
        # The remote's rate limits count on the test's clock.
        self.finance.limits.clock = monotonic_now

    # --- the systems' days -----------------------------------------------------------

    def deliver_webhooks(self):
        """Shopify's webhooks delivered to Odoo's HTTP server, then the jobs run."""
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            self.assertTrue(self.shop.wait_webhooks(timeout=30), self.shop.webhooks.log())
        self.run_jobs()

    def run_cron(self, method, model="connector.backend"):
        """A cron's method, and the jobs it queues run as the runner would."""
        with trap_jobs() as trap:
            getattr(self.env[model], method)()
            run_trapped_jobs(self.env, trap)

    def online_orders(self, rng, day_index):
        """A few paid orders placed today; an order of a few days ago refunded
        in part now and then."""
        for _n in range(rng.randint(1, 3)):
            lines = [(sku, rng.randint(1, 2)) for sku in rng.sample(self.skus, rng.randint(1, 2))]
            order = self.shop.create_order(lines, currency="EUR")
            self.orders.append((day_index, order))
        self.deliver_webhooks()
        earlier = [o for d, o in self.orders if d <= day_index - 2 and o["id"] not in self.refunded]
        if day_index % 3 == 2 and earlier:
            order = rng.choice(earlier)
            sku = order["line_items"][0]["sku"]
            self.shop.refund_order(order["id"], {sku: 1})
            self.refunded.add(order["id"])
            self.deliver_webhooks()

    def store_day(self, rng, day_index):
        """A store's tickets, cash and card, a return now and then, the card
        payments and refunds booked at the acquirer.

        Every fourth day an article bought by card on an earlier day comes
        back, refunded to the card, among the day's card sales: the day's
        card takings are kept well above its card refunds, but on
        ``NEGATIVE_DAY``, when the store sells for cash only: that day's card
        refund alone makes a negative acquirer batch, which pays nothing and
        carries its balance to the next batch (balance transfer rows), both
        settled. Two days later a cash sale is returned the same day, in
        cash."""
        acquirer = self.finance.acquirer
        sales = []

        def sell(tender):
            sale = self.pos.sale(STORE, rng.choice(["R1", "R2"]), tenders=[tender], customer=False)
            sales.append(sale)
            if tender == "card":
                acquirer.capture(sale["tenders"][0]["reference"], sale["tenders"][0]["amount"])

        def card_sales():
            return [s for s in sales if s["tenders"][0]["type"] == "card"]

        negative = day_index == NEGATIVE_DAY
        for n in range(rng.randint(3, 4)):
            sell("card" if (n + day_index) % 2 == 0 and not negative else "cash")
        returns = []
        earlier = [s for _d, s in self.card_sales if s["uuid"] not in self.returned]
        if day_index % 4 == 1 and earlier:
            original = rng.choice(earlier)
            back = self.pos.return_of(STORE, "R1", original)
            returns.append(back)
            self.returned.add(original["uuid"])
            refunded = Decimal(back["tenders"][0]["amount"]).copy_abs()
            acquirer.refund(back["tenders"][0]["reference"], str(refunded))
            # Twice the refund, the acquirer's fees well covered.
            while not negative and 2 * refunded > sum(
                Decimal(s["tenders"][0]["amount"]) for s in card_sales()
            ):
                sell("card")
        elif day_index % 4 == 3:
            cash_sales = [s for s in sales if s["tenders"][0]["type"] == "cash"]
            if cash_sales:
                returns.append(self.pos.return_of(STORE, "R2", cash_sales[0]))
        self.card_sales += [(day_index, s) for s in card_sales()]
        self.tickets += len(sales) + len(returns)
        self.returns += len(returns)
        self.push()
        return sales

    def close_store(self):
        self.pos.close(STORE)
        self.push()

    def payouts_land(self, day):
        """The morning's payouts on the bank: the acquirer's batch of
        yesterday, and Shopify's payout of yesterday's transactions (read by
        the Shopify connector's cron first)."""
        for batch in self.batches_to_bank:
            bank_line(
                self.env,
                self.payout_journal,
                float(batch["payout"]),
                f"ADYEN PAYOUT batch {batch['number']}",
                date=day,
            )
            self.bank_lines += 1
        self.batches_to_bank = []
        if self.shop.create_payout(status="PAID"):
            self.run_cron("_cron_shopify_import_payouts")
        payouts = self.env["shopify.payout"].search(
            [("backend_id", "=", self.shopify.id), ("id", "not in", self.banked.ids)]
        )
        for payout in payouts:
            bank_line(
                self.env,
                self.payout_journal,
                payout.net_amount,
                f"SHOPIFY PAYMENTS PAYOUT {payout.shopify_payout_id}",
                date=day,
            )
            self.bank_lines += 1
        self.banked |= payouts

    def morning(self, day):
        """The payouts land, then the finance crons run: the settlements read
        every day, the journals exported every other day (their policies)."""
        self.payouts_land(day)
        self.run_cron("_cron_finance_settlements")
        self.run_cron("_cron_finance_export")

    def evening(self):
        """The store closes its day (the Z report), then the acquirer its batch."""
        self.close_store()
        batch = self.finance.acquirer.close_batch()
        if batch["payout"]:
            self.batches_to_bank.append(batch)

    # --- the month ---------------------------------------------------------------------

    def test_month_exported_and_settled(self):
        rng = random.Random(14)
        self.orders, self.refunded = [], set()
        self.card_sales, self.returned = [], set()
        self.batches_to_bank, self.banked = [], self.env["shopify.payout"]
        self.tickets = self.returns = self.bank_lines = 0
        started = time.monotonic()
        last = FIRST_DAY + timedelta(days=DAYS - 1)
        with freeze_time(at(FIRST_DAY, 5), tick=True):
            # The stores' registers start the month's first day.
            self.pos.reset(7)
            self.pos.push_url = self.base_url()
            for code, key in self.keys.items():
                self.pos.set_key(code, key)
        for index in range(DAYS):
            day = FIRST_DAY + timedelta(days=index)
            if index:
                self.pos.next_day()
            for hour, step in (
                (6, lambda day=day: self.morning(day)),
                (9, lambda index=index: self.store_day(rng, index)),
                (12, lambda index=index: self.online_orders(rng, index)),
                (19, self.evening),
            ):
                with freeze_time(at(day, hour), tick=True):
                    step()
        # The month after: the last payouts land and are settled, then the
        # last days go out.
        for extra in (1, 2, 3):
            day = last + timedelta(days=extra)
            with freeze_time(at(day, 6), tick=True):
                self.morning(day)
        self.month_end(last + timedelta(days=1), time.monotonic() - started)

    # --- what the accountant checks -----------------------------------------------------

    def month_end(self, until, elapsed):
        """Log the month's counts and what differs; fail naming each difference."""
        env = self.env
        differences = []
        exports = self.check_exports(until, differences)
        trial = self.check_trial_balance(exports["exported"], differences)
        settled = self.check_settlements(differences)
        orders = env["shopify.order.binding"].search([("backend_id", "=", self.shopify.id)])
        refunds = env["shopify.refund.binding"].search([("backend_id", "=", self.shopify.id)])
        sessions = env["pos.session"].search([("config_id", "=", self.store.config_id.id)])
        _logger.info(
            "Finance month %s to %s played in %.0f s: %d Shopify orders (%d placed), %d refunds; "
            "%d POS days closed of %d, %d tickets in Odoo (%d rung up, %d returns); %d entries "
            "posted in the exported journals, %d exported once (%d links) in %d batches, "
            "%d journals in the book of record; trial balance per remote account %s; "
            "settlements: %d acquirer batches and %d Shopify payouts, %d reconciled; %d bank "
            "lines, %d unreconciled; unmatched lines %d, mismatches %d, held batches %d; "
            "%d unexplained differences",
            FIRST_DAY,
            until,
            elapsed,
            len(orders),
            len(self.orders),
            len(refunds),
            len(sessions.filtered(lambda s: s.state == "closed")),
            len(sessions),
            env["pos.order"].search_count([("session_id", "in", sessions.ids)]),
            self.tickets,
            self.returns,
            exports["posted"],
            len(exports["exported"]),
            exports["links"],
            exports["batches"],
            exports["remote"],
            trial,
            settled["acquirer"],
            settled["shopify"],
            settled["reconciled"],
            settled["bank"],
            settled["open_bank"],
            settled["unmatched"],
            settled["mismatches"],
            exports["held"],
            len(differences),
        )
        self.assertEqual(len(orders), len(self.orders))
        self.assertEqual(len(refunds), len(self.refunded))
        self.assertEqual(len(sessions), DAYS)
        self.assertFalse(differences, "\n".join(differences))

    def check_exports(self, until, differences):
        """Every entry posted in an exported journal went out, in one batch
        only; each batch exported is one posted journal of the remote."""
        env = self.env
        backend = self.backend
        moves = env["account.move"].search(
            [
                ("company_id", "=", env.company.id),
                ("journal_id", "in", self.exported_journals.ids),
                ("state", "=", "posted"),
                ("date", ">=", FIRST_DAY),
                ("date", "<=", until),
            ]
        )
        links = env["finance.export.move"].search([("backend_id", "=", backend.id)])
        exported = links.filtered(lambda ln: ln.export_id.state == "exported").move_id
        batches = env["finance.export"].search([("backend_id", "=", backend.id)])
        held = batches.filtered(lambda b: b.state in ("held", "waiting", "ready"))
        differences += [f"batch {b.name} {b.state}: {b.reason}" for b in held]
        differences += [f"entry {m.name} of {m.date} not exported" for m in moves - exported]
        if len(links.move_id) != len(links):
            differences.append("an entry is in two batches")
        posted = {j["ManualJournalID"] for j in self.finance.journals(status="POSTED")}
        sent = batches.filtered(lambda b: b.state == "exported")
        if set(sent.mapped("remote_id")) != posted or len(sent) != len(posted):
            differences.append(
                f"{len(posted)} journals in the book of record, {len(sent)} batches exported"
            )
        return {
            "posted": len(moves),
            "exported": exported,
            "links": len(links),
            "batches": len(sent),
            "remote": len(posted),
            "held": len(held),
        }

    def check_trial_balance(self, moves, differences):
        """The balance of each remote account of the mapped accounts: Odoo's
        exported entries against the remote's posted journals. Returns the
        remote's balances ``{code: amount}``."""
        codes = self.env["finance.account.map"]._codes(self.backend)
        ours = defaultdict(Decimal)
        for account, balance in self.env["account.move.line"]._read_group(
            [("move_id", "in", moves.ids)], ["account_id"], ["balance:sum"]
        ):
            if account.id not in codes:
                differences.append(f"account {account.code} {account.name} is not mapped")
                continue
            ours[codes[account.id]] += Decimal(str(balance)).quantize(CENT)
        theirs = defaultdict(Decimal)
        for journal in self.finance.journals(status="POSTED"):
            for line in journal["JournalLines"]:
                theirs[line["AccountCode"]] += Decimal(str(line["LineAmount"]))
        trial = {}
        for code in sorted(set(ours) | set(theirs)):
            trial[code] = str(theirs[code].quantize(CENT))
            if ours[code].quantize(CENT) != theirs[code].quantize(CENT):
                differences.append(
                    f"account {code}: Odoo {ours[code]}, book of record {trial[code]}"
                )
        return trial

    def check_settlements(self, differences):
        """Every payout, the acquirer's and Shopify's, matched line by line
        and reconciled with its bank line; no mismatch open."""
        env = self.env
        settlements = env["finance.settlement"].search([("backend_id", "=", self.backend.id)])
        differences += [
            f"settlement {s.name} {s.state}: {s.state_message}"
            for s in settlements.filtered(lambda s: s.state != "reconciled")
        ]
        unmatched = settlements.line_ids.filtered(lambda ln: ln.state != "matched")
        differences += [
            f"{ln.settlement_id.name}: {ln.kind} {ln.reference} {ln.reason}" for ln in unmatched
        ]
        bank = env["account.bank.statement.line"].search(
            [("journal_id", "=", self.payout_journal.id)]
        )
        open_bank = bank.filtered(lambda ln: not ln.is_reconciled)
        differences += [
            f"bank line {ln.payment_ref} {ln.amount} not reconciled" for ln in open_bank
        ]
        if len(bank) != self.bank_lines:
            differences.append(f"{len(bank)} bank lines, {self.bank_lines} payouts landed")
        mismatches = env["connector.reconciliation.mismatch"].search(
            [("backend_id", "=", self.backend.id), ("state", "=", "open")]
        )
        differences += [f"mismatch {m.business_key}: {m.remote_value}" for m in mismatches]
        without_payout = settlements.filtered("balance_move_id")
        if not without_payout:
            differences.append(f"no acquirer batch without payout (day {NEGATIVE_DAY})")
        return {
            "acquirer": len(settlements.filtered(lambda s: s.source == "acquirer")),
            "shopify": len(settlements.filtered(lambda s: s.source == "shopify")),
            "reconciled": len(settlements.filtered(lambda s: s.state == "reconciled")),
            "bank": len(bank),
            "open_bank": len(open_bank),
            "unmatched": len(unmatched),
            "mismatches": len(mismatches),
        }
