import time
from datetime import date

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tests.common import TransactionCase, new_test_user

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs
from odoo.addons.queue_job.exception import RetryableJobError

from ..components.client import parse_date
from ..models.finance_export import JOURNAL_TOPIC
from .common import bank_line, connect_finance

DAY1, DAY2, DAY3 = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)


class FinanceExportCase(TransactionCase):
    """The company on Odoo's generic chart, its sales journal exported to the
    accounting system, its accounts mapped as the configuration guide says:
    sales to the remote's sales account, the receivable and the tax account
    to clearing accounts (the remote takes no manual journal on its control
    accounts), the sales tax to the remote's output tax type, the online
    channel's analytic account to its tracking option."""

    finance_options = {}
    backend_rate_limit = 50.0

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        env = cls.env
        company = env.company
        company.currency_id = env.ref("base.EUR")
        if not company.chart_template:
            env["account.chart.template"].try_loading("generic_coa", company, install_demo=False)
        backend = connect_finance(cls, **cls.finance_options)
        backend.rate_limit = cls.backend_rate_limit
        cls.sales = env["account.journal"].search(
            [("company_id", "=", company.id), ("type", "=", "sale")], limit=1
        )
        cls.customer = env["res.partner"].create({"name": "Camille Martin"})
        cls.tax = company.account_sale_tax_id
        cls.income = cls.sales.default_account_id
        cls.tax_account = cls.tax.invoice_repartition_line_ids.account_id[:1]
        cls.receivable = cls.customer.property_account_receivable_id
        plan = env["account.analytic.plan"].create({"name": "Channels"})
        cls.online = env["account.analytic.account"].create({"name": "Online", "plan_id": plan.id})
        backend.action_finance_read_chart()
        backend.write({"finance_journal_ids": [Command.set(cls.sales.ids)]})
        cls.map_account(cls.income, "200")
        cls.map_account(cls.receivable, "092")
        cls.map_account(cls.tax_account, "093")
        env["finance.tax.map"].create(
            {
                "backend_id": backend.id,
                "tax_id": cls.tax.id,
                "remote_tax_id": backend.finance_remote_tax_ids.filtered(
                    lambda t: t.tax_type == "OUTPUT"
                ).id,
            }
        )
        # Read chart mapped the analytic account named as the tracking option.
        assert env["finance.tracking.map"]._options(backend)[cls.online.id] == ("Channel", "Online")

    @classmethod
    def map_account(cls, account, code):
        return cls.env["finance.account.map"].create(
            {
                "backend_id": cls.backend.id,
                "account_id": account.id,
                "remote_account_id": cls.backend.finance_remote_account_ids.filtered(
                    lambda a: a.code == code
                ).id,
            }
        )

    def setUp(self):
        super().setUp()
        self.finance.reset(seed=14)
        self.finance.requests.clear()

    # --- helpers -------------------------------------------------------------------

    def invoice(self, day, amount, *, online=False, journal=None, account=None):
        line = {"name": "Linen shirt", "price_unit": amount, "tax_ids": [Command.set(self.tax.ids)]}
        if online:
            line["analytic_distribution"] = {str(self.online.id): 100}
        if account:
            line["account_id"] = account.id
        move = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.customer.id,
                "invoice_date": day,
                "date": day,
                "journal_id": (journal or self.sales).id,
                "invoice_line_ids": [Command.create(line)],
            }
        )
        move.action_post()
        return move

    def export(self):
        """The scheduled run and the jobs it queues, run for real."""
        with trap_jobs() as trap:
            self.backend._finance_export_run()
            run_trapped_jobs(self.env, trap)

    def batch_of(self, move):
        return move.finance_export_id

    def remote_lines(self, journal):
        return sorted(
            (
                line["AccountCode"],
                line["TaxType"],
                tuple((t["Name"], t["Option"]) for t in line["Tracking"]),
                line["LineAmount"],
            )
            for line in journal["JournalLines"]
        )

    def journal_saves(self):
        return [e for e in self.finance.requests.entries() if "journal_save" in e["names"]]

    def outbound(self, batch):
        return self.env["connector.outbound"].search(
            [
                ("topic", "=", JOURNAL_TOPIC),
                ("res_model", "=", "finance.export"),
                ("res_id", "=", batch.id),
            ]
        )


@tagged("post_install", "-at_install")
class TestExport(FinanceExportCase):
    """Posted entries go to the accounting system as balanced manual journals,
    once each, per entry or summarised per day."""

    def test_entry_exported_as_its_own_journal(self):
        self.backend.finance_export_mode = "entry"
        move = self.invoice(DAY1, 100.0, online=True)
        self.export()
        batch = self.batch_of(move)
        (journal,) = self.finance.journals()
        self.assertEqual(batch.state, "exported", batch.reason)
        self.assertEqual(batch.remote_id, journal["ManualJournalID"])
        self.assertEqual(move.finance_export_state, "Exported")
        self.assertEqual(journal["Status"], "POSTED")
        self.assertIn(move.name, journal["Narration"])
        self.assertEqual(
            self.remote_lines(journal),
            [
                ("092", "NONE", (), 115.0),
                ("093", "OUTPUT", (), -15.0),
                ("200", "OUTPUT", (("Channel", "Online"),), -100.0),
            ],
        )
        self.assertEqual(set(batch.line_ids.mapped("account_code")), {"092", "093", "200"})
        # Exported once: the next run finds nothing to send.
        self.export()
        self.assertEqual(len(self.finance.journals()), 1)
        self.assertEqual(
            len(self.env["finance.export"].search([("backend_id", "=", self.backend.id)])), 1
        )

    def test_day_summarised_per_account_tax_and_tracking(self):
        self.backend.finance_export_mode = "summary"
        first = self.invoice(DAY1, 100.0, online=True)
        second = self.invoice(DAY1, 40.0, online=True)
        third = self.invoice(DAY1, 50.0)
        next_day = self.invoice(DAY2, 10.0)
        self.export()
        batch = self.batch_of(first)
        self.assertEqual(self.batch_of(second) | self.batch_of(third), batch)
        self.assertNotEqual(self.batch_of(next_day), batch)
        self.assertEqual(batch.move_count, 3)
        journals = {j["ManualJournalID"]: j for j in self.finance.journals()}
        self.assertEqual(len(journals), 2, "one journal per day and journal")
        journal = journals[batch.remote_id]
        self.assertEqual(parse_date(journal["Date"]), DAY1)
        self.assertEqual(
            self.remote_lines(journal),
            [
                ("092", "NONE", (), 218.5),
                ("093", "OUTPUT", (), -28.5),
                ("200", "OUTPUT", (), -50.0),
                ("200", "OUTPUT", (("Channel", "Online"),), -140.0),
            ],
        )
        self.assertEqual(self.batch_of(next_day).state, "exported")
        # Today is not over: its entries wait for the next run after it.
        today = self.invoice(date.today(), 10.0)
        self.export()
        self.assertFalse(self.batch_of(today))

    def test_a_send_given_up_shows_the_batch_held(self):
        self.backend.finance_export_mode = "entry"
        move = self.invoice(DAY1, 10.0)
        self.finance.faults.add("error", endpoint="journal_save", status=503)
        with trap_jobs():
            self.backend._finance_export_run()
        for _attempt in range(8):
            try:
                self.backend._flush_outbound(JOURNAL_TOPIC)
            except RetryableJobError:
                self.backend._set_circuit_closed()
        batch = self.batch_of(move)
        self.assertEqual(self.outbound(batch).state, "failed")
        self.finance.faults.clear()
        with trap_jobs():
            self.backend._finance_export_run()
        self.assertEqual((batch.state, batch.hold_kind), ("held", "refused"))
        self.assertIn("Gave up", batch.reason)
        with trap_jobs() as trap:
            batch.action_requeue()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(batch.state, "exported", batch.reason)

    def test_lost_answer_is_sent_again_without_a_second_journal(self):
        self.backend.finance_export_mode = "entry"
        move = self.invoice(DAY1, 100.0)
        self.finance.faults.add("drop", endpoint="journal_save", apply=True, limit=1)
        with trap_jobs():
            self.backend._finance_export_run()
        batch = self.batch_of(move)
        with self.assertRaises(RetryableJobError):
            self.backend._flush_outbound(JOURNAL_TOPIC)
        self.assertEqual(len(self.finance.journals()), 1, "made, its answer lost")
        self.assertEqual(batch.state, "ready")
        self.assertEqual(self.outbound(batch).state, "pending")

        self.backend._flush_outbound(JOURNAL_TOPIC)
        (journal,) = self.finance.journals()
        self.assertEqual(batch.state, "exported", batch.reason)
        self.assertEqual(batch.remote_id, journal["ManualJournalID"])
        _first, second = self.journal_saves()
        self.assertEqual(second.get("idempotent_replay"), batch.idempotency_key)

    def test_unbalanced_batch_is_held_before_any_call(self):
        self.backend.finance_export_mode = "entry"
        move = self.invoice(DAY1, 100.0)
        with trap_jobs():
            batches = self.backend._finance_make_batches()
        # A line damaged after the batch was made (the entries balance in Odoo).
        batches.line_ids.filtered(lambda line: line.amount > 0).amount = 116.0
        with trap_jobs() as trap:
            batches._release()
            self.backend._flush_pending(JOURNAL_TOPIC)
            run_trapped_jobs(self.env, trap)
        batch = self.batch_of(move)
        self.assertEqual((batch.state, batch.hold_kind), ("held", "unbalanced"))
        self.assertIn("debits 116.00, credits 115.00", batch.reason)
        self.assertFalse(self.journal_saves(), "nothing sent")
        item = self.outbound(batch)
        self.assertEqual(item.state, "failed")
        self.assertEqual(item.error_message, batch.reason)

    def test_unmapped_account_holds_the_batch_until_mapped_and_requeued(self):
        self.backend.finance_export_mode = "entry"
        other = self.env["account.account"].create(
            {"code": "400900", "name": "Gift card sales", "account_type": "income"}
        )
        move = self.invoice(DAY1, 30.0, account=other)
        self.export()
        batch = self.batch_of(move)
        self.assertEqual((batch.state, batch.hold_kind), ("held", "unmapped"))
        self.assertIn("400900 Gift card sales", batch.reason)
        self.assertFalse(self.journal_saves())
        item = self.outbound(batch)
        # In the exception queue's outgoing changes, with the reason.
        self.assertIn(item, self.env["connector.outbound"].search([("state", "=", "failed")]))
        self.assertIn("400900 Gift card sales", item.error_message)

        self.map_account(other, "260")
        with trap_jobs() as trap:
            item.action_requeue()
            self.backend._flush_pending(JOURNAL_TOPIC)
            run_trapped_jobs(self.env, trap)
        self.assertEqual(batch.state, "exported", batch.reason)
        (journal,) = self.finance.journals()
        self.assertIn(("260", "OUTPUT", (), -30.0), self.remote_lines(journal))
        self.assertEqual(item.state, "sent")

    def test_unmapped_tax_is_named_in_the_hold(self):
        self.backend.finance_export_mode = "entry"
        reduced = self.tax.copy({"name": "Reduced 5%", "amount": 5.0})
        # Its account is the standard tax's, mapped: only the tax type is missing.
        self.assertEqual(reduced.invoice_repartition_line_ids.account_id, self.tax_account)
        move = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.customer.id,
                "invoice_date": DAY1,
                "journal_id": self.sales.id,
                "invoice_line_ids": [
                    Command.create(
                        {"name": "Book", "price_unit": 20.0, "tax_ids": [Command.set(reduced.ids)]}
                    )
                ],
            }
        )
        move.action_post()
        self.export()
        batch = self.batch_of(move)
        self.assertEqual((batch.state, batch.hold_kind), ("held", "unmapped"))
        self.assertIn("taxes Reduced 5%", batch.reason)
        self.assertFalse(self.journal_saves())


@tagged("post_install", "-at_install")
class TestPeriodDiscipline(FinanceExportCase):
    """Nothing goes into a period the accounting system has locked."""

    def setUp(self):
        super().setUp()
        self.backend.finance_export_mode = "entry"
        self.finance.set_lock_dates(period="2026-11-30")

    def test_locked_period_holds_the_batch_until_it_reopens(self):
        move = self.invoice(DAY1, 100.0)
        self.export()
        batch = self.batch_of(move)
        self.assertEqual((batch.state, batch.hold_kind), ("held", "locked"))
        self.assertIn(
            "The document date cannot be before the period lock date, currently set at 30-Nov-2026",
            batch.reason,
        )
        self.assertEqual(batch.locked_until, date(2026, 11, 30))
        self.assertFalse(self.finance.journals())
        self.assertIn(batch, self.env["finance.export"].search([("state", "=", "held")]))
        self.assertEqual(self.outbound(batch).state, "failed")

        self.export()  # still locked: still held, not sent again
        self.assertEqual(batch.state, "held")
        self.assertEqual(len(self.journal_saves()), 1)

        self.finance.set_lock_dates(period="2026-10-31")
        self.export()
        (journal,) = self.finance.journals()
        self.assertEqual(batch.state, "exported", batch.reason)
        self.assertEqual(parse_date(journal["Date"]), DAY1, "at its own date")
        self.assertEqual(self.outbound(batch).state, "sent")

    def test_manager_moves_a_locked_batch_to_the_first_open_date(self):
        move = self.invoice(DAY1, 100.0)
        self.export()
        batch = self.batch_of(move)
        self.assertEqual(batch.hold_kind, "locked")
        # Odoo's sales are locked a few days longer: the first open date is Odoo's.
        self.env.company.sale_lock_date = date(2026, 12, 2)
        with trap_jobs() as trap:
            batch.action_move_to_open_date()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(batch.state, "exported", batch.reason)
        self.assertEqual(batch.date, date(2026, 12, 3))
        self.assertEqual(batch.entry_date, DAY1)
        (journal,) = self.finance.journals()
        self.assertEqual(parse_date(journal["Date"]), date(2026, 12, 3))
        self.assertEqual(batch.revision, 3, "a new key for the refused send, another for the move")
        note = batch.message_ids.filtered(lambda m: "Moved by" in (m.body or ""))
        self.assertIn(self.env.user.name, note.body)
        self.assertIn("2026-11-02", note.body)
        self.assertIn("2026-12-03", note.body)

    def test_an_accounting_manager_moves_a_batch_without_connector_rights(self):
        accountant = new_test_user(
            self.env, login="fin_accountant", groups="account.group_account_manager"
        )
        move = self.invoice(DAY1, 100.0)
        self.export()
        batch = self.batch_of(move).with_user(accountant)
        self.assertEqual(batch.backend_id.display_name, "Book of record")
        with trap_jobs() as trap:
            batch.action_move_to_open_date()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(batch.state, "exported", batch.reason)
        self.assertEqual(batch.date, date(2026, 12, 1))
        note = batch.message_ids.filtered(lambda m: "Moved by" in (m.body or ""))
        self.assertIn(accountant.name, note.body)

    def test_a_user_without_rights_cannot_move_a_batch(self):
        clerk = new_test_user(self.env, login="fin_clerk", groups="account.group_account_user")
        move = self.invoice(DAY1, 100.0)
        self.export()
        with self.assertRaisesRegex(UserError, "Only a connector manager or an accounting"):
            self.batch_of(move).with_user(clerk).action_move_to_open_date()

    def test_only_a_batch_held_by_a_lock_date_is_moved(self):
        self.finance.set_lock_dates(period=None)
        move = self.invoice(DAY1, 100.0)
        self.export()
        with self.assertRaisesRegex(UserError, "not held by a lock date"):
            self.batch_of(move).action_move_to_open_date()


@tagged("post_install", "-at_install")
class TestSequencing(FinanceExportCase):
    """Corrections as entries of their own, date order per journal, refunds
    after what they refund."""

    def setUp(self):
        super().setUp()
        self.backend.finance_export_mode = "entry"

    def test_reversal_exported_as_its_own_entry(self):
        move = self.invoice(DAY1, 100.0)
        self.export()
        (first,) = self.finance.journals()
        with self.assertRaisesRegex(UserError, "reverse it"):
            move.button_draft()
        reversal = move._reverse_moves([{"date": DAY2, "invoice_date": DAY2}], cancel=True)
        self.export()
        self.assertNotEqual(self.batch_of(reversal), self.batch_of(move))
        self.assertEqual(self.batch_of(reversal).state, "exported")
        journals = {j["ManualJournalID"]: j for j in self.finance.journals()}
        self.assertEqual(len(journals), 2)
        self.assertEqual(journals[first["ManualJournalID"]], first, "the first untouched")
        self.assertEqual(
            self.remote_lines(journals[self.batch_of(reversal).remote_id]),
            [
                ("092", "NONE", (), -115.0),
                ("093", "OUTPUT", (), 15.0),
                ("200", "OUTPUT", (), 100.0),
            ],
        )
        self.assertEqual(
            [h[0] for h in self.finance.snapshot(["history"])["history"]], ["created", "created"]
        )

    def test_bank_line_goes_once_reconciled(self):
        """A bank statement line holds the bank's suspense account until it
        is reconciled, which rewrites its entry: it goes out once reconciled,
        as reconciled."""
        bank = self.env["account.journal"].search(
            [("company_id", "=", self.env.company.id), ("type", "=", "bank")], limit=1
        )
        self.backend.finance_journal_ids = [Command.link(bank.id)]
        self.map_account(bank.default_account_id, "090")
        invoice = self.invoice(DAY1, 100.0)
        st_line = bank_line(self.env, bank, 115.0, "SEPA CAMILLE MARTIN", date=DAY2)

        self.export()
        self.assertEqual(self.batch_of(invoice).state, "exported")
        self.assertFalse(self.batch_of(st_line.move_id), "exported while in suspense")

        # Reconciled with the invoice as the bank reconciliation does it.
        move = st_line.move_id
        suspense = st_line._seek_for_lines()[1]
        move.button_draft()
        move.with_context(skip_readonly_check=True).write(
            {
                "line_ids": [
                    Command.unlink(suspense.id),
                    Command.create(
                        {
                            "name": invoice.name,
                            "account_id": self.receivable.id,
                            "partner_id": self.customer.id,
                            "balance": -115.0,
                        }
                    ),
                ]
            }
        )
        move.action_post()
        (move.line_ids | invoice.line_ids).filtered(
            lambda line: line.account_id == self.receivable
        ).reconcile()
        self.assertTrue(st_line.is_reconciled)

        self.export()
        batch = self.batch_of(move)
        self.assertEqual(batch.state, "exported", batch.reason)
        self.assertEqual(
            self.remote_lines(
                next(j for j in self.finance.journals() if j["ManualJournalID"] == batch.remote_id)
            ),
            [("090", "NONE", (), 115.0), ("092", "NONE", (), -115.0)],
        )

    def test_batches_go_in_date_order_per_journal(self):
        other = self.env["account.account"].create(
            {"code": "400901", "name": "Alterations", "account_type": "income"}
        )
        earlier = self.invoice(DAY2, 20.0, account=other)
        later = self.invoice(DAY3, 30.0)
        self.export()
        self.assertEqual(self.batch_of(earlier).hold_kind, "unmapped")
        self.assertEqual(self.batch_of(later).state, "waiting")
        self.assertIn(self.batch_of(earlier).name, self.batch_of(later).reason)
        self.assertEqual(self.batch_of(later).waiting_for_id, self.batch_of(earlier))
        self.assertFalse(self.finance.journals())

        self.map_account(other, "260")
        with trap_jobs() as trap:
            self.batch_of(earlier).action_requeue()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(
            (self.batch_of(earlier) | self.batch_of(later)).mapped("state"), ["exported"] * 2
        )
        self.assertEqual(
            [j["ManualJournalID"] for j in self.finance.journals()],
            [self.batch_of(earlier).remote_id, self.batch_of(later).remote_id],
        )

    def test_credit_note_waits_for_the_invoice_it_refunds(self):
        refunds = self.sales.copy({"name": "Customer refunds", "code": "RFND"})
        self.backend.finance_journal_ids = [Command.link(refunds.id)]
        other = self.env["account.account"].create(
            {"code": "400902", "name": "Made to measure", "account_type": "income"}
        )
        invoice = self.invoice(DAY2, 80.0, account=other)
        credit_note = invoice._reverse_moves(
            [{"date": DAY3, "invoice_date": DAY3, "journal_id": refunds.id}]
        )
        credit_note.action_post()
        self.export()
        self.assertEqual(self.batch_of(invoice).hold_kind, "unmapped")
        waiting = self.batch_of(credit_note)
        self.assertEqual(waiting.state, "waiting")
        self.assertIn(invoice.name, waiting.reason)
        self.assertIn("refunds", waiting.reason)
        self.assertFalse(self.finance.journals())

        self.map_account(other, "260")
        with trap_jobs() as trap:
            self.batch_of(invoice).action_requeue()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(waiting.state, "exported", waiting.reason)
        self.assertEqual(
            [j["ManualJournalID"] for j in self.finance.journals()],
            [self.batch_of(invoice).remote_id, waiting.remote_id],
        )

    def test_refund_paid_out_waits_for_the_payment_it_refunds(self):
        """The customer's payment is held (its account not mapped yet); the
        refund paid back to the customer, from another journal, waits for
        it, then follows."""
        company = self.env.company
        bank = self.env["account.journal"].search(
            [("company_id", "=", company.id), ("type", "=", "bank")], limit=1
        )
        refunds_paid = self.env["account.journal"].create(
            {"name": "Refunds paid", "type": "bank", "code": "RFPD"}
        )
        self.backend.finance_journal_ids = [Command.link(bank.id), Command.link(refunds_paid.id)]
        invoice = self.invoice(DAY1, 100.0)
        payment = self.pay(invoice, bank, DAY2)
        credit_note = invoice._reverse_moves([{"date": DAY3, "invoice_date": DAY3}])
        credit_note.action_post()
        refund = self.pay(credit_note, refunds_paid, DAY3)
        self.assertEqual(refund.origin_payment_id.payment_type, "outbound")
        mapped = set(self.env["finance.account.map"]._codes(self.backend))
        for account in refund.line_ids.account_id.filtered(lambda a: a.id not in mapped):
            self.map_account(account, "093")
        held_accounts = payment.line_ids.account_id.filtered(
            lambda a: a.id not in mapped and a not in refund.line_ids.account_id
        )
        self.assertTrue(held_accounts)
        self.export()
        self.assertEqual(self.batch_of(payment).hold_kind, "unmapped")
        self.assertEqual(self.batch_of(credit_note).state, "exported")
        waiting = self.batch_of(refund)
        self.assertEqual(waiting.state, "waiting")
        self.assertIn(payment.name, waiting.reason)

        for account in held_accounts:
            self.map_account(account, "090")
        with trap_jobs() as trap:
            self.batch_of(payment).action_requeue()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(waiting.state, "exported", waiting.reason)
        remote_ids = [j["ManualJournalID"] for j in self.finance.journals()]
        self.assertLess(
            remote_ids.index(self.batch_of(payment).remote_id), remote_ids.index(waiting.remote_id)
        )

    def pay(self, move, journal, day):
        """The payment of ``move`` in ``journal`` on ``day``: its journal entry."""
        wizard = (
            self.env["account.payment.register"]
            .with_context(active_model="account.move", active_ids=move.ids)
            .create({"payment_date": day, "journal_id": journal.id})
        )
        return wizard._create_payments().move_id


@tagged("post_install", "-at_install")
class TestRateLimit(FinanceExportCase):
    """The connector paces itself under the accounting system's minute
    limit: every call answered, none refused with a 429."""

    # The simulator's minute passes in 3 seconds (its clock runs 20 times
    # faster): 6 calls a "minute" are 2 a second, the backend sends 1.5.
    finance_options = {"minute_limit": 6}
    backend_rate_limit = 1.5

    def setUp(self):
        super().setUp()
        self.backend.finance_export_mode = "entry"
        self.finance.limits.clock = lambda: time.monotonic() * 20
        self.finance.limits.reset()

    def test_no_429_storm(self):
        moves = [self.invoice(DAY1, 10.0 + n) for n in range(6)]
        started = time.monotonic()
        self.export()
        elapsed = time.monotonic() - started
        self.assertEqual(
            {self.batch_of(m).state for m in moves},
            {"exported"},
            [self.batch_of(m).reason for m in moves],
        )
        entries = self.finance.requests.entries()
        self.assertEqual(len(self.journal_saves()), 6)
        self.assertFalse([e for e in entries if e["status"] == 429 or e.get("rate_limited")])
        self.assertGreater(elapsed, 3.0, "paced: 7 calls at 1.5 a second")

    def test_a_429_waits_what_the_remote_asked(self):
        move = self.invoice(DAY1, 10.0)
        self.finance.faults.add("throttle", endpoint="journal_save", retry_after=7, limit=1)
        with trap_jobs():
            self.backend._finance_export_run()
        with self.assertRaises(RetryableJobError) as caught:
            self.backend._flush_outbound(JOURNAL_TOPIC)
        self.assertEqual(caught.exception.seconds, 7)
        self.backend._flush_outbound(JOURNAL_TOPIC)
        self.assertEqual(self.batch_of(move).state, "exported")


@tagged("post_install", "-at_install")
class TestExportActions(FinanceExportCase):
    """What finance staff do with a batch, and what they are told when it
    cannot be done."""

    def setUp(self):
        super().setUp()
        self.backend.finance_export_mode = "entry"

    def test_cancelled_batch_gives_its_entries_to_the_next_run(self):
        other = self.env["account.account"].create(
            {"code": "400903", "name": "Repairs", "account_type": "income"}
        )
        move = self.invoice(DAY1, 25.0, account=other)
        self.export()
        held = self.batch_of(move)
        self.assertEqual(held.hold_kind, "unmapped")
        # The backend's health reports it.
        self.assertIn(
            "finance_held",
            [code for code, _m in self.backend._connector_health_checks()[self.backend.id]],
        )
        with self.assertRaisesRegex(UserError, "cancel that batch first"):
            move.button_draft()
        held.action_cancel()
        self.assertEqual(held.state, "cancelled")
        self.assertEqual(self.outbound(held).state, "cancelled")
        self.assertFalse(move.finance_export_id)
        move.button_draft()
        move.invoice_line_ids.account_id = self.income
        move.action_post()
        self.export()
        self.assertNotEqual(self.batch_of(move), held)
        self.assertEqual(self.batch_of(move).state, "exported", self.batch_of(move).reason)
        self.assertEqual(len(self.finance.journals()), 1)

    def test_exported_batch_cannot_be_cancelled(self):
        move = self.invoice(DAY1, 25.0)
        self.export()
        with self.assertRaisesRegex(UserError, "Only waiting or held batches can be cancelled"):
            self.batch_of(move).action_cancel()
        with self.assertRaisesRegex(UserError, "Only held or waiting batches"):
            self.batch_of(move).action_requeue()

    def test_export_now_needs_the_journals(self):
        self.backend.finance_journal_ids = False
        with self.assertRaisesRegex(UserError, "Choose the journals exported first"):
            self.backend.action_finance_export_now()

    def test_export_now_says_when_the_remote_does_not_answer(self):
        self.finance.faults.add("error", endpoint="organisation", status=503, limit=1)
        with self.assertRaisesRegex(UserError, "did not answer .*try again in a moment"):
            self.backend.action_finance_export_now()

    def test_export_now_sends_what_is_posted(self):
        move = self.invoice(DAY1, 25.0)
        with trap_jobs() as trap:
            self.backend.action_finance_export_now()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(self.batch_of(move).state, "exported")

    def test_the_scheduled_run_is_not_given_up_after_five_faults(self):
        """The run's job is retried as the framework's own jobs are, until the
        accounting system answers: queue_job's default gives a job up at its
        fifth attempt, and a clash with the journal sender spends one too."""
        move = self.invoice(DAY1, 25.0)
        self.finance.faults.add("error", endpoint="organisation", status=503, limit=6)
        with trap_jobs() as trap:
            self.env["connector.backend"]._cron_finance_export()
            [run] = trap.enqueued_jobs
            trap.enqueued_jobs.clear()
            for _attempt in range(6):
                with self.assertRaises(RetryableJobError):
                    run.perform()
                # Each fault spends an attempt: the circuit is not left open.
                self.backend._set_circuit_closed()
            run.perform()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(self.batch_of(move).state, "exported")

    def test_the_scheduled_run_follows_the_journals_flow(self):
        policy = self.backend._policy("journals_out")
        self.assertEqual((policy.mode, policy.interval_minutes), ("scheduled", 24 * 60))
        move = self.invoice(DAY1, 25.0)
        with trap_jobs() as trap:
            self.env["connector.backend"]._cron_finance_export()
            run_trapped_jobs(self.env, trap)
            self.env["connector.backend"]._cron_finance_export()
            self.assertFalse(trap.enqueued_jobs, "not due again within the day")
        self.assertEqual(self.batch_of(move).state, "exported")
