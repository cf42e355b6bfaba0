"""A store's day goes to the book of record once its session is closed.

The POS connector records a store's tickets in an open POS session; the Z
report closes it, and Point of Sale then books the day: the session's entry
(sales and taxes), the day's card payment, the drawer's cash. An entry of a
day still open (a ticket invoiced at the customer's request, and its payment)
is in Odoo's books before the day is over: the finance connector keeps it
back, saying why, and sends it with the rest of the day once the session is
closed. Both simulators speak over HTTP; neither connector knows the other.
"""

from collections import defaultdict
from datetime import date
from decimal import Decimal

from freezegun import freeze_time

from odoo import Command
from odoo.tests import tagged

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs
from odoo.addons.connector_finance.tests.common import connect_finance, odoo_account
from odoo.addons.connector_pos.tests.common import STORE, PosCase

# The remote's accounts the store's accounts go to (the configuration guide:
# receivables to clearing accounts, taxes to the VAT account).
SALES, VAT, CARD_CLEARING, CASH_CLEARING = "200", "820", "091", "093"
# The tills' tax codes and the remote's tax rates they are.
REMOTE_TAXES = {"POS VAT20": "FR TVA", "POS VAT5_5": "FR TVA 5.5%"}
# The simulated fleet's stores trade in Paris time.
STORE_TZ = "Europe/Paris"


@tagged("post_install", "-at_install")
class TestPosDayExportedOnceClosed(PosCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        company = env.company
        company.currency_id = env.ref("base.EUR")
        # The back office works in the stores' time zone, as a French
        # retailer's users do: Odoo dates a ticket's invoice by the user's day.
        env.user.tz = STORE_TZ
        cls.fleet = cls.backend  # connect_finance names the accounting system cls.backend
        backend = connect_finance(cls)
        backend.rate_limit = 50.0
        backend.action_finance_read_chart()
        cls.config = cls.store.config_id
        cls.card_method = cls.fleet.pos_tender_ids.filtered(
            lambda t: t.tender_type == "card"
        ).payment_method_id
        cls.cash_method = cls.config.payment_method_ids.filtered(lambda m: m.type == "cash")
        cls.journals = (
            cls.config.journal_id
            | cls.config.invoice_journal_id
            | cls.card_method.journal_id
            | cls.cash_method.journal_id
        )
        # The store's taxes book their tax on the company's tax account, as a
        # chart's taxes do.
        tax_account = company.account_sale_tax_id.invoice_repartition_line_ids.account_id[:1]
        pos_taxes = env["account.tax"].search(
            [("company_id", "=", company.id), ("name", "in", list(REMOTE_TAXES))]
        )
        (pos_taxes.invoice_repartition_line_ids | pos_taxes.refund_repartition_line_ids).filtered(
            lambda r: r.repartition_type == "tax"
        ).account_id = tax_account
        # The card method books the day's card payments on an account of its
        # own until the acquirer pays them out (its outstanding account).
        card_outstanding = odoo_account(
            env, "101450", "Card payments to settle", account_type="asset_current"
        )
        card_outstanding.reconcile = True
        cls.card_method.outstanding_account_id = card_outstanding
        accounts = {
            cls.products[0].product_tmpl_id._get_product_accounts()["income"]: SALES,
            tax_account: VAT,
            card_outstanding: CARD_CLEARING,
            # The day's receivables clear within the day, against its payments.
            company.account_default_pos_receivable_account_id: CARD_CLEARING,
            env["res.partner"].new().property_account_receivable_id: CARD_CLEARING,
            cls.cash_method.journal_id.default_account_id: CASH_CLEARING,
        }
        remote_accounts = {a.code: a for a in backend.finance_remote_account_ids}
        mapped = set(backend.finance_account_map_ids.account_id.ids)
        for account, code in accounts.items():
            if account.id not in mapped:
                env["finance.account.map"].create(
                    {
                        "backend_id": backend.id,
                        "account_id": account.id,
                        "remote_account_id": remote_accounts[code].id,
                    }
                )
                mapped.add(account.id)
        remote_taxes = {t.name: t for t in backend.finance_remote_tax_ids}
        for tax in pos_taxes:
            env["finance.tax.map"].create(
                {
                    "backend_id": backend.id,
                    "tax_id": tax.id,
                    "remote_tax_id": remote_taxes[REMOTE_TAXES[tax.name]].id,
                }
            )
        backend.write(
            {"finance_export_mode": "entry", "finance_journal_ids": [Command.set(cls.journals.ids)]}
        )

    def setUp(self):
        super().setUp()
        self.finance.reset(seed=14)
        self.last_move = self.env["account.move"].search([], order="id desc", limit=1).id or 0

    def export(self):
        """The scheduled export run and the jobs it queues, run for real."""
        with trap_jobs() as trap:
            self.backend._finance_export_run()
            run_trapped_jobs(self.env, trap)

    def day_moves(self):
        """The posted entries of the exported journals made during the test."""
        return self.env["account.move"].search(
            [
                ("id", ">", self.last_move),
                ("journal_id", "in", self.journals.ids),
                ("state", "=", "posted"),
            ],
            order="id",
        )

    def batches(self):
        return self.env["finance.export"].search([("backend_id", "=", self.backend.id)])

    def assert_books_agree_with_the_tills(self, tickets, batches):
        """The accountant's check, in the book of record: one posted,
        balanced journal per batch (per entry), and the day's sales, tax,
        card and cash as the tills rang them up."""
        journals = {j["ManualJournalID"]: j for j in self.finance.journals()}
        self.assertEqual(len(journals), len(batches))
        self.assertEqual(set(journals), set(batches.mapped("remote_id")))
        by_account = defaultdict(Decimal)
        for batch in batches:
            journal = journals[batch.remote_id]
            self.assertEqual(journal["Status"], "POSTED")
            self.assertIn(batch.move_ids.name, journal["Narration"])
            amounts = [Decimal(str(line["LineAmount"])) for line in journal["JournalLines"]]
            self.assertEqual(sum(amounts), 0, f"{batch.name} does not balance")
            for line in journal["JournalLines"]:
                by_account[line["AccountCode"]] += Decimal(str(line["LineAmount"]))

        def paid(kind):
            return sum(
                Decimal(t["amount"])
                for ticket in tickets
                for t in ticket["tenders"]
                if t["type"] == kind
            )

        total = sum(Decimal(t["total"]) for t in tickets)
        tax = sum(Decimal(t["total_tax"]) for t in tickets)
        self.assertEqual(by_account[SALES], -(total - tax))
        self.assertEqual(by_account[VAT], -tax)
        self.assertEqual(by_account[CARD_CLEARING], paid("card"))
        self.assertEqual(by_account[CASH_CLEARING], paid("cash"))
        self.assertEqual(set(by_account), {SALES, VAT, CARD_CLEARING, CASH_CLEARING})

    def test_store_day_goes_once_its_session_is_closed(self):
        self.ring_up_close_and_export_a_day()

    def test_store_day_already_begun_in_paris_at_half_past_eleven_utc(self):
        """At 23:30 UTC the stores' day is already tomorrow's; its invoice is
        dated that day, which is the back office's today: posted, kept back
        with the open day, then sent."""
        with freeze_time("2026-12-01 23:30:00", tick=True):
            self.pos.start_day(date(2026, 12, 2))
            self.ring_up_close_and_export_a_day()

    def ring_up_close_and_export_a_day(self):
        customer = {"loyalty_id": "L-00042", "email": "ines.moreau@example.com"}
        tickets = [
            self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 2)], tenders=["card"]),
            self.pos.sale(STORE, "R2", [("SOC-006-36-40", 3)], tenders=["cash"]),
            self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)], tenders=["card"], customer=customer),
        ]
        self.push()
        session = self.order(tickets[0]).session_id
        self.assertEqual(session.state, "opened")
        # The customer asks for an invoice: the store invoices the ticket
        # from the back office while the day is open (no PDF in a test).
        invoiced = self.order(tickets[2])
        invoiced.with_context(generate_pdf=False).action_pos_order_invoice()
        open_day = self.day_moves()
        self.assertIn(invoiced.account_move, open_day)
        self.assertGreater(len(open_day), 1, "the invoice and its payment")

        self.export()
        # Nothing of the open day went: each of its entries waits, saying why.
        self.assertEqual(self.finance.journals(), [])
        for move in open_day:
            batch = move.finance_export_id
            self.assertEqual(batch.state, "waiting", move.display_name)
            self.assertIn(session.display_name, batch.reason)
            self.assertIn("closed", batch.reason)
            self.assertEqual(move.finance_export_state, "Waiting")
        waiting = self.batches()
        self.export()
        self.assertEqual(self.finance.journals(), [], "still open: still nothing sent")
        self.assertEqual(self.batches(), waiting)

        # The Z report closes the day; the next run sends all of it.
        self.pos.close(STORE)
        self.push()
        self.assertEqual(session.state, "closed")
        self.export()
        moves = self.day_moves()
        self.assertLess(open_day.ids, moves.ids)
        self.assertTrue(session.move_id & moves, "the session's entry")
        self.assertTrue(session.bank_payment_ids.move_id & moves, "the day's card payment")
        batches = self.batches()
        for move in moves:
            self.assertEqual(
                move.finance_export_id.state, "exported", move.finance_export_id.reason
            )
        self.assertEqual(batches.link_ids.move_id, moves)

        self.assert_books_agree_with_the_tills(tickets, batches)

        # Sent once: the next run finds nothing more of that day.
        self.export()
        self.assertEqual(len(self.finance.journals()), len(moves))
        self.assertEqual(self.batches(), batches)
