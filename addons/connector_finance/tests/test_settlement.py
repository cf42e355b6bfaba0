from decimal import Decimal

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import BaseCase, tagged
from odoo.tests.common import TransactionCase, new_test_user

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs

from ..components.settlement_report import ReportError, parse_report
from .common import bank_line, connect_finance, customer_payment, set_up_settlements


def _dec(text):
    return Decimal(text) if text else Decimal("0.00")


@tagged("post_install", "-at_install")
class TestSettlement(TransactionCase):
    """Finance staff see the card acquirer's batches matched to the tills'
    payments, the fees booked and the payout reconciled with its bank line."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.currency_id = cls.env.ref("base.EUR")
        connect_finance(cls)
        cls.card_journal = cls.env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", cls.env.company.id)], limit=1
        )
        set_up_settlements(cls)
        cls.customer = cls.env["res.partner"].create({"name": "Walk-in customer"})

    def setUp(self):
        super().setUp()
        # The simulator outlives each test's rollback: its batches start afresh.
        self.finance.reset()

    # --- helpers ------------------------------------------------------------------

    def pay(self, reference, amount, outbound=False):
        return customer_payment(
            self.env, reference, amount, self.customer, outbound=outbound, journal=self.card_journal
        )

    def read_settlements(self):
        with trap_jobs() as trap:
            self.backend.action_finance_read_settlements()
            run_trapped_jobs(self.env, trap)

    def settlements(self):
        return self.env["finance.settlement"].search([("backend_id", "=", self.backend.id)])

    def open_mismatches(self):
        return self.env["connector.reconciliation.mismatch"].search(
            [
                ("backend_id", "=", self.backend.id),
                ("kind", "=", "settlements"),
                ("state", "=", "open"),
            ]
        )

    def payout_line(self, batch, label=None, difference=0):
        amount = float(Decimal(batch["payout"]) + Decimal(difference))
        label = label or f"ADYEN {batch['file'][:-4]} RetailSyncPOS batch {batch['number']}"
        return bank_line(self.env, self.payout_journal, amount, label)

    def assert_fully_reconciled(self, payment):
        liquidity = payment._seek_for_lines()[0]
        self.assertTrue(liquidity.reconciled, payment.display_name)
        self.assertTrue(liquidity.full_reconcile_id, f"{payment.display_name}: partial")
        self.assertEqual(liquidity.amount_residual, 0.0)
        self.assertTrue(payment.is_matched)

    # --- tests ----------------------------------------------------------------------

    def test_batch_read_once_matched_fees_booked_bank_line_reconciled(self):
        sale = self.pay("POS/0001", 42.00)
        big_sale = self.pay("POS/0002", 120.00)
        refund = self.pay("POS/0002", 20.00, outbound=True)
        self.finance.acquirer.capture("POS/0001", "42.00")
        self.finance.acquirer.capture("POS/0002", "120.00")
        self.finance.acquirer.refund("POS/0002", "20.00")
        batch = self.finance.acquirer.close_batch()
        st_line = self.payout_line(batch)

        self.read_settlements()

        settlement = self.settlements()
        self.assertEqual(len(settlement), 1)
        self.assertEqual(settlement.batch_number, 1)
        self.assertEqual(settlement.state, "reconciled", settlement.state_message)
        self.assertAlmostEqual(settlement.net_amount, float(batch["payout"]), places=2)
        truth = {row["Merchant Reference"] + row["Type"]: row for row in batch["rows"]}
        lines = {line.reference + line.kind: line for line in settlement.line_ids}
        self.assertEqual(set(lines), {"POS/0001charge", "POS/0002charge", "POS/0002refund"})
        for key, kind in (("POS/0001", "Settled"), ("POS/0002", "Settled")):
            row, line = truth[key + kind], lines[key + "charge"]
            self.assertAlmostEqual(line.gross, float(row["Gross Credit (GC)"]), places=2)
            self.assertAlmostEqual(line.fee, float(row["Commission (NC)"]), places=2)
            self.assertAlmostEqual(line.net, float(row["Net Credit (NC)"]), places=2)
        row, line = truth["POS/0002Refunded"], lines["POS/0002refund"]
        self.assertEqual(line.gross, -20.00)
        self.assertAlmostEqual(line.fee, float(row["Commission (NC)"]), places=2)
        self.assertAlmostEqual(line.net, -float(row["Net Debit (NC)"]), places=2)
        self.assertEqual(lines["POS/0001charge"].payment_id, sale)
        self.assertEqual(lines["POS/0002charge"].payment_id, big_sale)
        self.assertEqual(lines["POS/0002refund"].payment_id, refund)

        # The bank line is reconciled: the payments in full, the fees on the fee account.
        self.assertTrue(st_line.is_reconciled)
        self.assertEqual(settlement.bank_line_id, st_line)
        for payment in (sale, big_sale, refund):
            self.assert_fully_reconciled(payment)
        fees = st_line.move_id.line_ids.filtered(lambda ln: ln.account_id == self.fee_account)
        self.assertAlmostEqual(fees.balance, settlement.fee_total, places=2)
        self.assertAlmostEqual(
            settlement.fee_total,
            float(sum(_dec(r["Commission (NC)"]) for r in batch["rows"])),
            places=2,
        )
        self.assertFalse(self.open_mismatches())

        # Read again: nothing new, nothing changed.
        self.read_settlements()
        self.assertEqual(self.settlements(), settlement)
        self.assertEqual(len(settlement.line_ids), 3)

    def test_negative_batches_booked_without_payout_and_paid_back(self):
        """A batch that pays nothing is booked in an entry of its own, the
        balance it owes on the acquirer balance account; a batch negative
        again while carrying it has both balance transfer rows (one from the
        previous batch, one to the next) and clears the first; the next
        payout is net of the balance and clears the second. Without an
        acquirer balance account the batch is listed, not booked."""
        acquirer = self.finance.acquirer
        second, account = self.negative_batch_listed_until_account_set()
        owed_2 = second.balance_move_id.line_ids.filtered(lambda ln: ln.account_id == account)
        self.assertAlmostEqual(owed_2.balance, -80.11, places=2)
        # Batch 3: a small sale, still less than the balance carried: negative again.
        small = self.pay("POS/0302", 30.00)
        acquirer.capture("POS/0302", "30.00")
        batch_3 = acquirer.close_batch()
        self.assertIsNone(batch_3["payout"])
        self.read_settlements()
        third = self.settlements().filtered(lambda s: s.batch_number == 3)
        self.assertEqual(third.state, "reconciled", third.state_message)
        self.assertEqual(
            sorted(
                third.line_ids.filtered(lambda ln: ln.kind == "transfer").mapped("transfer_batch")
            ),
            [2, 4],
        )
        self.assertTrue(owed_2.full_reconcile_id, "batch 3 took batch 2's balance over")
        self.assert_fully_reconciled(small)
        owed_3 = third.balance_move_id.line_ids.filtered(
            lambda ln: ln.account_id == account and ln.balance < 0
        )
        carried = Decimal(
            next(
                r["Net Credit (NC)"]
                for r in batch_3["rows"]
                if r["Modification Merchant Reference"] == "Balancetransfer to batch 4"
            )
        )
        self.assertAlmostEqual(owed_3.balance, -float(carried), places=2)
        self.assertFalse(owed_3.reconciled)
        # Batch 4: a big sale pays it back; the payout is net of the balance.
        big = self.pay("POS/0303", 300.00)
        acquirer.capture("POS/0303", "300.00")
        batch_4 = acquirer.close_batch()
        st_line = self.payout_line(batch_4)
        self.read_settlements()
        fourth = self.settlements().filtered(lambda s: s.batch_number == 4)
        self.assertEqual(fourth.state, "reconciled", fourth.state_message)
        self.assertTrue(st_line.is_reconciled)
        self.assert_fully_reconciled(big)
        self.assertTrue(owed_3.full_reconcile_id)
        self.assertEqual(account.current_balance, 0.0, "nothing owed to the acquirer any more")
        self.assertEqual(set(self.settlements().mapped("state")), {"reconciled"})
        self.assertFalse(self.open_mismatches())

    def negative_batch_listed_until_account_set(self):
        """Batch 1 pays a sale, batch 2 refunds it and pays nothing: listed
        while the backend has no acquirer balance account, booked once it
        has one. ``(batch 2's settlement, the account)``."""
        acquirer = self.finance.acquirer
        self.pay("POS/0301", 80.00)
        acquirer.capture("POS/0301", "80.00")
        self.payout_line(acquirer.close_batch())
        refund = self.pay("POS/0301", 80.00, outbound=True)
        acquirer.refund("POS/0301", "80.00")
        self.assertIsNone(acquirer.close_batch()["payout"])
        account = self.backend.finance_acquirer_balance_account_id
        self.backend.finance_acquirer_balance_account_id = False
        self.read_settlements()
        first, second = self.settlements().sorted("batch_number")
        self.assertEqual(first.state, "reconciled", first.state_message)
        self.assertEqual(second.state, "mismatch")
        self.assertIn("no acquirer balance account", second.state_message)
        self.assertFalse(second.balance_move_id)
        self.assertTrue(self.open_mismatches())
        self.backend.finance_acquirer_balance_account_id = account
        with trap_jobs() as trap:
            second.action_match()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(second.state, "reconciled", second.state_message)
        self.assertEqual(second.balance_move_id.journal_id, self.payout_journal)
        self.assert_fully_reconciled(refund)
        return second, account

    def test_chargeback_and_its_fee_are_two_lines_of_one_payment(self):
        self.pay("POS/0010", 100.00)
        self.pay("POS/0011", 200.00)
        self.finance.acquirer.capture("POS/0010", "100.00")
        self.finance.acquirer.capture("POS/0011", "200.00")
        self.finance.acquirer.chargeback("POS/0010")
        batch = self.finance.acquirer.close_batch()
        st_line = self.payout_line(batch)

        self.read_settlements()

        settlement = self.settlements()
        self.assertEqual(settlement.state, "reconciled", settlement.state_message)
        ten = settlement.line_ids.filtered(lambda ln: ln.reference == "POS/0010")
        # One PSP reference, three bookings: none dropped as a duplicate.
        self.assertEqual(sorted(ten.mapped("kind")), ["charge", "chargeback", "fee"])
        self.assertEqual(len(set(ten.mapped("psp_reference"))), 1)
        self.assertEqual(ten.filtered(lambda ln: ln.kind == "fee").fee, 15.00)
        self.assertTrue(st_line.is_reconciled)
        lost = st_line.move_id.line_ids.filtered(
            lambda ln: ln.account_id == self.chargeback_account
        )
        self.assertEqual(lost.balance, 100.00)

    def test_missing_payment_listed_until_it_is_recorded(self):
        self.pay("POS/0020", 30.00)
        self.finance.acquirer.capture("POS/0020", "30.00")
        self.finance.acquirer.capture("POS/0021", "55.50")
        batch = self.finance.acquirer.close_batch()
        st_line = self.payout_line(batch)

        self.read_settlements()

        settlement = self.settlements()
        self.assertEqual(settlement.state, "mismatch")
        self.assertIn("POS/0021", settlement.state_message)
        self.assertFalse(st_line.is_reconciled)
        mismatch = self.open_mismatches()
        self.assertEqual(len(mismatch), 1)
        self.assertIn("POS/0021", mismatch.business_key)
        self.assertIn("no Odoo payment of", mismatch.what)
        self.assertIn("55.50", mismatch.remote_value)
        self.assertFalse(mismatch.odoo_value)

        # A support user reads it, and may not match it himself.
        support = new_test_user(
            self.env, login="finance_support", groups="connector_base.group_connector_user"
        )
        self.assertEqual(settlement.with_user(support).state, "mismatch")
        with self.assertRaises(AccessError):
            settlement.with_user(support).action_match()

        # The payment is recorded; the accountant matches again: reconciled,
        # and the reconciliation run it queues closes the mismatch.
        self.pay("POS/0021", 55.50)
        accountant = new_test_user(
            self.env, login="finance_accountant", groups="account.group_account_manager"
        )
        with trap_jobs() as trap:
            settlement.with_user(accountant).action_match()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(settlement.state, "reconciled", settlement.state_message)
        self.assertTrue(st_line.is_reconciled)
        self.assertEqual(mismatch.state, "resolved")

    def test_bank_amount_differing_from_payout_listed_with_both_figures(self):
        self.pay("POS/0030", 80.00)
        self.finance.acquirer.capture("POS/0030", "80.00")
        batch = self.finance.acquirer.close_batch()
        st_line = self.payout_line(batch, difference="-1.00")

        self.read_settlements()

        settlement = self.settlements()
        self.assertEqual(settlement.state, "mismatch")
        self.assertEqual(settlement.bank_line_id, st_line)
        self.assertFalse(st_line.is_reconciled)
        mismatch = self.open_mismatches()
        self.assertEqual(len(mismatch), 1)
        self.assertEqual(mismatch.business_key, f"{settlement.name}: bank")
        payout = Decimal(batch["payout"])
        self.assertIn(f"{payout - 1:.2f}", mismatch.odoo_value)
        self.assertIn(f"{payout:.2f}", mismatch.remote_value)

    def test_bank_line_found_by_amount_when_it_names_no_batch(self):
        payment = self.pay("POS/0040", 64.20)
        self.finance.acquirer.capture("POS/0040", "64.20")
        batch = self.finance.acquirer.close_batch()
        self.payout_line(batch, difference="3.00", label="Unrelated transfer")
        st_line = self.payout_line(batch, label="CARD SETTLEMENT")

        self.read_settlements()

        self.assertEqual(self.settlements().bank_line_id, st_line)
        self.assertTrue(st_line.is_reconciled)
        self.assert_fully_reconciled(payment)

    def test_bank_line_partly_reconciled_by_hand_is_left_to_finance_staff(self):
        payment = self.pay("POS/0045", 70.00)
        self.finance.acquirer.capture("POS/0045", "70.00")
        batch = self.finance.acquirer.close_batch()
        st_line = self.payout_line(batch)
        # Someone booked part of it already, by hand.
        _liquidity, suspense, _other = st_line._seek_for_lines()
        move = st_line.move_id
        move.button_draft()
        move.with_context(skip_readonly_check=True).write(
            {
                "line_ids": [
                    Command.update(suspense.id, {"balance": suspense.balance + 5.0}),
                    Command.create(
                        {"name": "Bank charges", "account_id": self.fee_account.id, "balance": -5.0}
                    ),
                ]
            }
        )
        move.action_post()

        self.read_settlements()

        settlement = self.settlements()
        self.assertEqual(settlement.state, "mismatch")
        self.assertIn("partly reconciled already", settlement.state_message)
        self.assertFalse(payment._seek_for_lines()[0].reconciled)
        mismatch = self.open_mismatches()
        self.assertEqual(mismatch.business_key, f"{settlement.name}: reconciliation")
        self.assertIn("partly reconciled already", mismatch.what)

    def test_payout_waits_for_its_bank_line(self):
        self.pay("POS/0050", 12.00)
        self.finance.acquirer.capture("POS/0050", "12.00")
        batch = self.finance.acquirer.close_batch()
        self.read_settlements()
        settlement = self.settlements()
        self.assertEqual(settlement.state, "matched")
        self.assertIn("bank line", settlement.state_message)
        st_line = self.payout_line(batch)
        self.read_settlements()
        self.assertEqual(settlement.state, "reconciled")
        self.assertTrue(st_line.is_reconciled)

    def test_batches_read_in_order_until_one_not_closed(self):
        self.finance.acquirer.capture("POS/0060", "10.00")
        self.finance.acquirer.close_batch()
        self.finance.acquirer.capture("POS/0061", "11.00")
        self.finance.acquirer.close_batch()
        self.read_settlements()
        self.assertEqual(sorted(self.settlements().mapped("batch_number")), [1, 2])
        self.finance.acquirer.capture("POS/0062", "12.00")  # batch 3 still open
        self.read_settlements()
        self.assertEqual(sorted(self.settlements().mapped("batch_number")), [1, 2])

    def test_report_key_for_managers_and_screens_for_finance_staff(self):
        support = new_test_user(
            self.env, login="finance_support_ui", groups="connector_base.group_connector_user"
        )
        with self.assertRaises(AccessError):
            self.backend.with_user(support).finance_report_api_key  # noqa: B018
        backend_views = (
            self.env["connector.backend"].with_user(support).get_views([(False, "form")])
        )
        fields = backend_views["models"]["connector.backend"]["fields"]
        self.assertIn("finance_merchant_account", fields)
        self.assertNotIn("finance_report_api_key", fields)
        accountant = new_test_user(
            self.env, login="finance_accountant_ui", groups="account.group_account_manager"
        )
        views = (
            self.env["finance.settlement"]
            .with_user(accountant)
            .get_views([(False, "list"), (False, "form"), (False, "search")])
        )
        self.assertIn("action_match", views["views"]["form"]["arch"])
        self.assertIn("line_ids", views["models"]["finance.settlement"]["fields"])
        menu = self.env.ref("connector_finance.menu_finance_settlements_accounting")
        self.assertIn(menu.id, self.env["ir.ui.menu"].with_user(accountant)._visible_menu_ids())

    def test_other_company_sees_no_settlement(self):
        self.finance.acquirer.capture("POS/0100", "10.00")
        self.finance.acquirer.close_batch()
        self.read_settlements()
        other = self.env["res.company"].create({"name": "Other retailer"})
        outsider = new_test_user(
            self.env,
            login="finance_outsider",
            groups="account.group_account_manager",
            company_id=other.id,
            company_ids=[(6, 0, other.ids)],
        )
        Settlement = self.env["finance.settlement"].with_user(outsider)
        self.assertFalse(Settlement.search([]))
        self.assertFalse(self.env["finance.settlement.line"].with_user(outsider).search([]))

    def test_health_says_when_settlements_are_not_set_up(self):
        self.backend.finance_bank_journal_id = False
        checks = dict(self.backend._connector_health_checks()[self.backend.id])
        self.assertIn(
            "has no payouts bank journal: complete its Settlements",
            checks["finance_settlement_setup"],
        )
        self.backend.finance_bank_journal_id = self.payout_journal
        checks = dict(self.backend._connector_health_checks()[self.backend.id])
        self.assertNotIn("finance_settlement_setup", checks)

    def test_wrong_report_key_says_so(self):
        self.backend.finance_report_api_key = "not-the-key"
        self.finance.acquirer.capture("POS/0070", "10.00")
        self.finance.acquirer.close_batch()
        with self.assertRaisesRegex(UserError, r"refused .* batch 1 \(HTTP 401\).*report API key"):
            self.backend._finance_read_settlements()
        self.assertFalse(self.settlements())

    def test_missing_report_settings_say_what_to_enter(self):
        self.backend.finance_merchant_account = False
        with self.assertRaisesRegex(UserError, "merchant account"):
            self.backend._finance_read_settlements()

    def test_cut_report_is_refused_with_the_row(self):
        self.finance.acquirer.capture("POS/0080", "10.00")
        self.finance.acquirer.capture("POS/0081", "11.00")
        self.finance.acquirer.close_batch()
        self.finance.faults.add("malformed", endpoint="report_download", limit=1)
        with self.assertRaisesRegex(UserError, r"batch 1 of RetailSyncPOS cannot be read: row \d"):
            self.backend._finance_read_settlements()
        self.assertFalse(self.settlements())
        # The acquirer serves it whole again: it is read.
        self.backend._finance_read_settlements()
        self.assertEqual(self.settlements().batch_number, 1)

    def test_scheduled_flow_reads_when_due(self):
        self.pay("POS/0090", 25.00)
        self.finance.acquirer.capture("POS/0090", "25.00")
        self.finance.acquirer.close_batch()
        with trap_jobs() as trap:
            self.env["connector.backend"]._cron_finance_settlements()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(self.settlements().state, "matched")
        with trap_jobs() as trap:
            self.env["connector.backend"]._cron_finance_settlements()
            self.assertFalse(trap.enqueued_jobs, "not due again within the hour")


@tagged("post_install", "-at_install")
class TestPayoutBankLineExported(TransactionCase):
    """The payouts bank journal exported to the book of record: the export
    runs its sends in transactions of their own, as the runner does."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        cls.env.company.currency_id = cls.env.ref("base.EUR")
        connect_finance(cls)
        set_up_settlements(cls)

    def setUp(self):
        super().setUp()
        self.finance.reset()

    def test_bank_line_exported_once_its_payout_reconciled_it(self):
        """The payouts bank journal exported entry by entry: a payout's bank
        line stays out of the export until its settlement reconciles it (which
        rewrites its entry), then goes once, with the payment and the fees."""
        backend = self.backend
        backend.action_finance_read_chart()
        card_journal = self.env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", self.env.company.id)], limit=1
        )
        customer = self.env["res.partner"].create({"name": "Walk-in customer"})
        sale = customer_payment(self.env, "POS/0501", 64.00, customer, journal=card_journal)
        self.finance.acquirer.capture("POS/0501", "64.00")
        batch = self.finance.acquirer.close_batch()
        st_line = bank_line(
            self.env, self.payout_journal, float(batch["payout"]), "ADYEN PAYOUT batch 1"
        )
        remote = {a.code: a for a in backend.finance_remote_account_ids}
        accounts = {
            self.payout_journal.default_account_id: "090",
            self.payout_journal.suspense_account_id: "090",
            sale._seek_for_lines()[0].account_id: "091",
            self.fee_account: "405",
        }
        mapped = self.env["finance.account.map"]._codes(backend)  # by code on reading
        self.env["finance.account.map"].create(
            [
                {"backend_id": backend.id, "account_id": a.id, "remote_account_id": remote[c].id}
                for a, c in accounts.items()
                if a.id not in mapped
            ]
        )
        backend.write(
            {
                "finance_journal_ids": [Command.set(self.payout_journal.ids)],
                "finance_export_mode": "entry",
            }
        )

        def export():
            with trap_jobs() as trap:
                backend._finance_export_run()
                run_trapped_jobs(self.env, trap)

        export()
        self.assertFalse(st_line.move_id.finance_export_id, "exported with its suspense line")
        with trap_jobs() as trap:
            backend.action_finance_read_settlements()
            run_trapped_jobs(self.env, trap)
        settlement = self.env["finance.settlement"].search([("backend_id", "=", backend.id)])
        self.assertEqual(settlement.state, "reconciled", settlement.state_message)
        export()
        batch_out = st_line.move_id.finance_export_id
        self.assertEqual(batch_out.state, "exported", batch_out.reason)
        (journal,) = self.finance.journals()
        self.assertEqual(
            {line["AccountCode"] for line in journal["JournalLines"]}, {"090", "091", "405"}
        )


class TestSettlementReport(BaseCase):
    """The report's rows, read whatever the acquirer quotes, refused by name."""

    HEADER = (
        "Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,"
        "Creation Date,TimeZone,Type,Modification Reference,Gross Currency,Gross Debit (GC),"
        "Gross Credit (GC),Exchange Rate,Net Currency,Net Debit (NC),Net Credit (NC),"
        "Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),Payment Method Variant,"
        "Modification Merchant Reference,Batch Number\n"
    )
    SETTLED = (
        'C,M,PSP1,"Till 3, ticket ""42""",visa,2026-11-30 10:00:00,CET,Settled,PSP1,EUR,,'
        "42.00,1,EUR,,41.44,0.56,0.36,0.03,0.17,visacredit,,7\n"
    )
    REFUNDED = (
        'C,M,PSP1,"Till 3, ticket ""42""",visa,2026-11-30 11:00:00,CET,Refunded,PSP2,EUR,'
        "10.00,,1,EUR,10.11,,0.11,0.11,0,0,visacredit,,7\n"
    )

    def test_quoted_reference_and_two_bookings_of_one_payment(self):
        report = parse_report(self.HEADER + self.SETTLED + self.REFUNDED, "M", 7)
        charge, refund = report["rows"]
        self.assertEqual(charge["reference"], 'Till 3, ticket "42"')
        self.assertEqual(
            (charge["gross"], charge["fee"], charge["net"]),
            (Decimal("42.00"), Decimal("0.56"), Decimal("41.44")),
        )
        self.assertEqual((refund["gross"], refund["net"]), (Decimal("-10.00"), Decimal("-10.11")))
        self.assertNotEqual(charge["key"], refund["key"])

    def test_duplicate_row_names_both_rows(self):
        with self.assertRaisesRegex(ReportError, r"row 3 repeats row 2 \(Settled of Till 3"):
            parse_report(self.HEADER + self.SETTLED + self.SETTLED, "M", 7)

    def test_bad_amount_named(self):
        bad = self.SETTLED.replace("41.44", "41,44")
        with self.assertRaisesRegex(ReportError, r"row 2 .*more fields|row 2 .*not an amount"):
            parse_report(self.HEADER + bad, "M", 7)
        bad = self.SETTLED.replace("41.44", "abc")
        with self.assertRaisesRegex(
            ReportError, r"row 2 \(Settled PSP1\): Net Credit \(NC\) 'abc'"
        ):
            parse_report(self.HEADER + bad, "M", 7)

    def test_other_file_refused(self):
        with self.assertRaisesRegex(ReportError, "columns .*Psp Reference.* are missing"):
            parse_report("Date,Amount\n2026-11-30,12.00\n", "M", 7)
        with self.assertRaisesRegex(ReportError, "merchant account 'M', not 'N'"):
            parse_report(self.HEADER + self.SETTLED, "N", 7)
        with self.assertRaisesRegex(ReportError, "is of batch '7', not 8"):
            parse_report(self.HEADER + self.SETTLED, "M", 8)
        with self.assertRaisesRegex(ReportError, "type 'Bonus'"):
            parse_report(self.HEADER + self.SETTLED.replace("Settled", "Bonus"), "M", 7)

    def test_two_balance_transfers_of_one_batch(self):
        """A batch carrying a balance in and out has two balance transfer
        rows with the same (empty) PSP and modification reference: the batch
        each names keeps them apart."""
        transfer = (
            "C,M,,,,2026-11-30 23:00:00,CET,Balancetransfer,Balancetransfer,,,,,EUR,{debit},"
            "{credit},,,,,,Balancetransfer {way} batch {other},7\n"
        )
        text = (
            self.HEADER
            + self.SETTLED
            + transfer.format(debit="60.00", credit="", way="from", other=6)
            + transfer.format(debit="", credit="18.56", way="to", other=8)
        )
        _charge, carried_in, carried_out = parse_report(text, "M", 7)["rows"]
        self.assertEqual((carried_in["kind"], carried_in["transfer_batch"]), ("transfer", 6))
        self.assertEqual(carried_in["net"], Decimal("-60.00"))
        self.assertEqual((carried_out["kind"], carried_out["transfer_batch"]), ("transfer", 8))
        self.assertEqual(carried_out["net"], Decimal("18.56"))
        self.assertNotEqual(carried_in["key"], carried_out["key"])
