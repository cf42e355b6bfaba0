"""The stores' card payments, settled by the card acquirer, reconciled in Odoo.

The POS connector records each card tender as a POS payment whose
transaction id is the terminal's reference; closing the store's day books
the day's card payments as one combined payment. The acquirer settles the
same references in a batch, fees withheld; the finance connector matches
each row to its POS payment by that reference and reconciles the payout's
bank line with the day's card payment, the fees on the fee account. Both
simulators speak over HTTP; neither connector knows the other.
"""

from decimal import Decimal

from odoo.tests import tagged

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs
from odoo.addons.connector_finance.tests.common import (
    bank_line,
    connect_finance,
    set_up_settlements,
)
from odoo.addons.connector_pos.tests.common import STORE, PosCase


@tagged("post_install", "-at_install")
class TestPosCardPaymentsSettled(PosCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.currency_id = cls.env.ref("base.EUR")
        connect_finance(cls)
        set_up_settlements(cls)

    def setUp(self):
        super().setUp()
        self.finance.reset()

    def settle(self):
        """The acquirer closes its batch, the payout lands on the bank, the
        finance connector reads the batch: ``(batch, bank line, settlement)``."""
        batch = self.finance.acquirer.close_batch()
        st_line = bank_line(
            self.env, self.payout_journal, float(batch["payout"]), "ADYEN PAYOUT batch 1"
        )
        with trap_jobs() as trap:
            self.backend.action_finance_read_settlements()
            run_trapped_jobs(self.env, trap)
        settlement = self.env["finance.settlement"].search([("backend_id", "=", self.backend.id)])
        return batch, st_line, settlement

    def test_day_of_card_payments_settled_and_reconciled(self):
        sales = [
            self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)], tenders=["card"]),
            self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 2)], tenders=["card"]),
            self.pos.sale(STORE, "R2", [("SOC-006-36-40", 2)], tenders=["card"]),
        ]
        self.push()
        self.pos.close(STORE)
        self.push()
        session = self.order(sales[0]).session_id
        self.assertEqual(session.state, "closed")
        day_payment = session.bank_payment_ids.filtered(
            lambda p: p.pos_payment_method_id.name == "POS card"
        )
        self.assertEqual(len(day_payment), 1)

        references = []
        for sale in sales:
            tender = sale["tenders"][0]
            references.append(tender["reference"])
            self.finance.acquirer.capture(tender["reference"], tender["amount"])
        batch, st_line, settlement = self.settle()
        self.assertEqual(settlement.state, "reconciled", settlement.state_message)
        self.assertEqual(sorted(settlement.line_ids.mapped("reference")), sorted(references))
        self.assertEqual(set(settlement.line_ids.mapped("matched_model")), {"pos.payment"})
        pos_payments = self.env["pos.payment"].browse(settlement.line_ids.mapped("matched_res_id"))
        self.assertEqual(sorted(pos_payments.mapped("transaction_id")), sorted(references))
        self.assertTrue(st_line.is_reconciled)
        # Every card payment of the day settled: the day's card payment is
        # reconciled in full, the fees booked apart.
        outstanding = day_payment._seek_for_lines()[0]
        self.assertTrue(outstanding.full_reconcile_id, "the day's card payment is left partial")
        self.assertTrue(day_payment.is_matched)
        fees = st_line.move_id.line_ids.filtered(lambda ln: ln.account_id == self.fee_account)
        commission = sum(Decimal(r["Commission (NC)"] or 0) for r in batch["rows"])
        self.assertAlmostEqual(fees.balance, float(commission), places=2)

    def test_card_payment_refunded_in_two_returns(self):
        """One card payment, two returns to the card the next day: the
        acquirer settles two refunds under the payment's reference, each
        matched to the POS payment of its own return."""
        sale = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 4)], tenders=["card"])
        line = sale["lines"][0]["line_uuid"]
        self.push()
        self.pos.close(STORE)
        self.push()
        self.pos.next_day()
        returns = [
            self.pos.return_of(STORE, "R1", sale, [(line, 1)]),
            self.pos.return_of(STORE, "R1", sale, [(line, 2)]),
        ]
        self.push()
        self.pos.close(STORE)
        self.push()
        sessions = self.order(sale).session_id | self.order(returns[0]).session_id
        self.assertEqual(sessions.mapped("state"), ["closed", "closed"])
        reference = sale["tenders"][0]["reference"]
        self.assertEqual({r["tenders"][0]["reference"] for r in returns}, {reference})
        self.finance.acquirer.capture(reference, sale["tenders"][0]["amount"])
        for back in returns:
            self.finance.acquirer.refund(reference, back["tenders"][0]["amount"].lstrip("-"))
        _batch, st_line, settlement = self.settle()
        self.assertEqual(settlement.state, "reconciled", settlement.state_message)
        refunds = settlement.line_ids.filtered(lambda ln: ln.kind == "refund")
        self.assertEqual(len(refunds), 2)
        matched = self.env["pos.payment"].browse(refunds.mapped("matched_res_id"))
        self.assertEqual(len(matched), 2, "each refund has a POS payment of its own")
        self.assertEqual(
            sorted(matched.mapped("amount")),
            sorted(float(r["tenders"][0]["amount"]) for r in returns),
        )
        self.assertTrue(st_line.is_reconciled)

    def test_card_sale_voided_the_same_day(self):
        """A card sale voided at the till: the terminal refunds the whole
        payment under its reference, and the void's refund in Odoo carries
        that reference, so the acquirer's refund row matches it."""
        kept = self.pos.sale(STORE, "R1", [("SOC-006-36-40", 2)], tenders=["card"])
        voided = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)], tenders=["card"])
        void = self.pos.void(STORE, "R1", voided)
        self.push()
        self.pos.close(STORE)
        self.push()
        self.assertEqual(self.order(void).session_id.state, "closed")
        reference = voided["tenders"][0]["reference"]
        self.assertEqual(self.order(void).payment_ids.transaction_id, reference)
        for sale in (kept, voided):
            tender = sale["tenders"][0]
            self.finance.acquirer.capture(tender["reference"], tender["amount"])
        self.finance.acquirer.refund(reference)
        _batch, st_line, settlement = self.settle()
        self.assertEqual(settlement.state, "reconciled", settlement.state_message)
        refund = settlement.line_ids.filtered(lambda ln: ln.kind == "refund")
        self.assertEqual(refund.reference, reference)
        self.assertEqual(
            self.env["pos.payment"].browse(refund.matched_res_id).pos_order_id,
            self.order(void),
        )
        self.assertTrue(st_line.is_reconciled)
