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
        finance connector reads the batch: ``(batch, bank line, settlement)``.
        A batch that pays nothing (its refunds and fees more than its
        charges) lands nothing: its bank line is None."""
        batch = self.finance.acquirer.close_batch()
        st_line = None
        if batch["payout"] is not None:
            st_line = bank_line(
                self.env,
                self.payout_journal,
                float(batch["payout"]),
                f"ADYEN PAYOUT batch {batch['number']}",
            )
        with trap_jobs() as trap:
            self.backend.action_finance_read_settlements()
            run_trapped_jobs(self.env, trap)
        settlement = self.env["finance.settlement"].search(
            [("backend_id", "=", self.backend.id), ("batch_number", "=", batch["number"])]
        )
        return batch, st_line, settlement

    def card_day(self, sale):
        """The store day of ``sale``, closed, and its one combined card payment."""
        session = self.order(sale).session_id
        self.assertEqual(session.state, "closed")
        day_payment = session.bank_payment_ids.filtered(
            lambda p: p.pos_payment_method_id.name == "POS card"
        )
        self.assertEqual(len(day_payment), 1)
        return session, day_payment

    def open_mismatches(self):
        return self.env["connector.reconciliation.mismatch"].search(
            [
                ("backend_id", "=", self.backend.id),
                ("kind", "=", "settlements"),
                ("state", "=", "open"),
            ]
        )

    def assert_settled_in_full(self, day_payment):
        """The day's card payment reconciled in full: nothing left partial."""
        outstanding = day_payment._seek_for_lines()[0]
        self.assertTrue(outstanding.full_reconcile_id, "the day's card payment is left partial")
        self.assertEqual(outstanding.amount_residual, 0.0)
        self.assertTrue(day_payment.is_matched)

    def assert_fees_booked(self, batch, st_line):
        fees = st_line.move_id.line_ids.filtered(lambda ln: ln.account_id == self.fee_account)
        commission = sum(Decimal(r["Commission (NC)"] or 0) for r in batch["rows"])
        self.assertAlmostEqual(fees.balance, float(commission), places=2)

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

    def test_same_day_return_to_card_settled_with_its_sale(self):
        """A card sale and the return of part of it to the card on the same
        store day: the day's card payment is their net, the acquirer settles
        the charge and the refund in full, each matched to its POS payment
        and reconciled together with the day's card payment."""
        sale = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 4)], tenders=["card"])
        line = sale["lines"][0]["line_uuid"]
        self.push()
        back = self.pos.return_of(STORE, "R2", sale, [(line, 1)])
        self.push()
        self.pos.close(STORE)
        self.push()
        session, day_payment = self.card_day(sale)
        self.assertEqual(self.order(back).session_id, session, "the return is of the same day")
        reference = sale["tenders"][0]["reference"]
        charged = Decimal(sale["tenders"][0]["amount"])
        refunded = -Decimal(back["tenders"][0]["amount"])
        self.assertEqual(back["tenders"][0]["reference"], reference)
        self.assertAlmostEqual(day_payment.amount, float(charged - refunded), places=2)

        self.finance.acquirer.capture(reference, charged)
        self.finance.acquirer.refund(reference, refunded)
        batch, st_line, settlement = self.settle()
        self.assertEqual(settlement.state, "reconciled", settlement.state_message)
        self.assertEqual(sorted(settlement.line_ids.mapped("kind")), ["charge", "refund"])
        self.assertEqual(set(settlement.line_ids.mapped("state")), {"matched"})
        matched = self.env["pos.payment"].browse(settlement.line_ids.mapped("matched_res_id"))
        self.assertEqual(matched, self.order(sale).payment_ids | self.order(back).payment_ids)
        self.assertTrue(st_line.is_reconciled)
        self.assert_settled_in_full(day_payment)
        self.assert_fees_booked(batch, st_line)

    def test_same_day_return_to_card_settled_in_the_next_payout(self):
        """The acquirer settles the sale in one payout and its same-day return
        to the card in the next one (after its cut-off): the first payout
        alone is more than the day's card payment, so it waits, saying so,
        and leaves nothing partial; the next payout is reconciled with it."""
        sale = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 4)], tenders=["card"])
        line = sale["lines"][0]["line_uuid"]
        self.push()
        back = self.pos.return_of(STORE, "R1", sale, [(line, 1)])
        self.push()
        self.pos.close(STORE)
        self.push()
        session, day_payment = self.card_day(sale)
        reference = sale["tenders"][0]["reference"]
        self.finance.acquirer.capture(reference, sale["tenders"][0]["amount"])
        first_batch, first_line, first = self.settle()
        self.assertEqual(first.state, "mismatch")
        self.assertIn(session.name, first.state_message)
        self.assertIn("waits for the payout", first.state_message)
        self.assertFalse(first_line.is_reconciled)
        outstanding = day_payment._seek_for_lines()[0]
        self.assertFalse(outstanding.matched_debit_ids | outstanding.matched_credit_ids)
        self.assertEqual(outstanding.amount_residual, outstanding.balance, "nothing partial")
        # Listed for finance staff meanwhile, with the reason.
        (listed,) = self.open_mismatches()
        self.assertIn(first.name, listed.business_key)
        self.assertIn("waits for the payout", listed.what)

        # The next day's card sales and, after the cut-off, the refund.
        self.pos.next_day()
        next_sale = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 3)], tenders=["card"])
        self.push()
        self.pos.close(STORE)
        self.push()
        _next_session, next_day_payment = self.card_day(next_sale)
        self.finance.acquirer.refund(reference, back["tenders"][0]["amount"].lstrip("-"))
        self.finance.acquirer.capture(
            next_sale["tenders"][0]["reference"], next_sale["tenders"][0]["amount"]
        )
        second_batch, second_line, second = self.settle()
        self.assertEqual(second.state, "reconciled", second.state_message)
        self.assertEqual(first.state, "reconciled", first.state_message)
        self.assertTrue(first_line.is_reconciled)
        self.assertTrue(second_line.is_reconciled)
        self.assert_settled_in_full(day_payment)
        self.assert_settled_in_full(next_day_payment)
        self.assertFalse(self.open_mismatches())
        self.assert_fees_booked(first_batch, first_line)
        self.assert_fees_booked(second_batch, second_line)

    def test_day_settled_over_two_payouts_left_open_in_between_and_said(self):
        """Part of a day's card payments in one payout, the rest in the next:
        the first payout is reconciled and says what of the day's card
        payment stays open; the next one reconciles it in full."""
        sales = [
            self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 2)], tenders=["card"]),
            self.pos.sale(STORE, "R2", [("SOC-006-36-40", 1)], tenders=["card"]),
        ]
        self.push()
        self.pos.close(STORE)
        self.push()
        session, day_payment = self.card_day(sales[0])
        first, second = (sale["tenders"][0] for sale in sales)
        self.finance.acquirer.capture(first["reference"], first["amount"])
        _batch, st_line, settlement = self.settle()
        self.assertEqual(settlement.state, "reconciled", settlement.state_message)
        self.assertTrue(st_line.is_reconciled)
        self.assertIn(session.name, settlement.state_message)
        self.assertIn("keeps", settlement.state_message)
        outstanding = day_payment._seek_for_lines()[0]
        self.assertFalse(outstanding.full_reconcile_id)
        self.assertAlmostEqual(outstanding.amount_residual, float(second["amount"]), places=2)

        self.finance.acquirer.capture(second["reference"], second["amount"])
        _batch, st_line, settlement = self.settle()
        self.assertEqual(settlement.state, "reconciled", settlement.state_message)
        self.assertFalse(settlement.state_message)
        self.assertTrue(st_line.is_reconciled)
        self.assert_settled_in_full(day_payment)

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

    def test_negative_batch_carried_to_the_next_payout(self):
        """A store day whose returns to cards are more than its card sales:
        the acquirer's batch is negative, pays nothing and carries its
        balance to the next batch (balance transfer rows). The batch is
        still matched row by row and booked without a bank line, the balance
        owed to the acquirer on the backend's acquirer balance account; the
        next batch's payout, net of that balance, is reconciled with its
        bank line in full, the balance cleared. Nothing partial, nothing
        booked twice."""
        # Day 0: a big card sale, settled by a first payout.
        big = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 4)], tenders=["card"])
        self.push()
        self.pos.close(STORE)
        self.push()
        _day0, day0_payment = self.card_day(big)
        self.finance.acquirer.capture(big["tenders"][0]["reference"], big["tenders"][0]["amount"])
        _batch, _first_line, first = self.settle()
        self.assertEqual(first.state, "reconciled", first.state_message)
        self.assert_settled_in_full(day0_payment)
        negative, owed, carried = self.negative_day(big)
        following = self.day_paying_back(negative, owed, carried)
        # Nothing booked twice: reading and matching again changes nothing.
        entries = self.env["account.move"].search_count([])
        with trap_jobs() as trap:
            self.backend.action_finance_read_settlements()
            run_trapped_jobs(self.env, trap)
        (negative | following).action_match()
        self.assertEqual(self.env["account.move"].search_count([]), entries)
        self.assertEqual((first | negative | following).mapped("state"), ["reconciled"] * 3)

    def negative_day(self, big):
        """Day 1: a small card sale, and ``big`` returned to the card: the
        batch pays nothing, is matched and booked without a bank line;
        ``(settlement, journal item of what it owes, the carried balance)``."""
        acquirer = self.finance.acquirer
        self.pos.next_day()
        small = self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)], tenders=["card"])
        line = big["lines"][0]["line_uuid"]
        back = self.pos.return_of(STORE, "R2", big, [(line, 4)])
        self.push()
        self.pos.close(STORE)
        self.push()
        _day1, day1_payment = self.card_day(small)
        self.assertEqual(self.order(back).session_id, self.order(small).session_id)
        acquirer.capture(small["tenders"][0]["reference"], small["tenders"][0]["amount"])
        acquirer.refund(big["tenders"][0]["reference"], back["tenders"][0]["amount"].lstrip("-"))
        batch, no_line, negative = self.settle()
        self.assertIsNone(batch["payout"], "a negative batch pays nothing")
        self.assertIsNone(no_line)
        transfer = next(r for r in batch["rows"] if r["Type"] == "Balancetransfer")
        carried = Decimal(transfer["Net Credit (NC)"])
        self.assertGreater(carried, 0)
        self.assertEqual(negative.state, "reconciled", negative.state_message)
        self.assertEqual(negative.net_amount, 0.0)
        self.assertFalse(negative.bank_line_id)
        self.assertIn("No payout", negative.state_message)
        self.assertIn(negative.balance_move_id.name, negative.state_message)
        self.assertEqual(negative.balance_move_id.state, "posted")
        self.assertEqual(negative.balance_move_id.journal_id, self.payout_journal)
        self.assertEqual(sorted(negative.line_ids.mapped("kind")), ["charge", "refund", "transfer"])
        self.assertEqual(set(negative.line_ids.mapped("state")), {"matched"})
        rows = negative.line_ids.filtered(lambda ln: ln.kind != "transfer")
        matched = self.env["pos.payment"].browse(rows.mapped("matched_res_id"))
        self.assertEqual(matched, self.order(small).payment_ids | self.order(back).payment_ids)
        self.assert_settled_in_full(day1_payment)
        self.assert_fees_booked(batch, negative.balance_move_id.line_ids)
        owed = negative.balance_move_id.line_ids.filtered(
            lambda ln: ln.account_id == self.acquirer_balance_account
        )
        self.assertAlmostEqual(owed.balance, -float(carried), places=2)
        self.assertFalse(owed.reconciled, "owed to the acquirer until the next batch")
        self.assertFalse(self.open_mismatches())
        return negative, owed, carried

    def day_paying_back(self, negative, owed, carried):
        """Day 2: card sales; the next payout is their net less the carried
        balance, reconciled with its bank line in full, the balance cleared."""
        self.pos.next_day()
        sales = [
            self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 3)], tenders=["card"]),
            self.pos.sale(STORE, "R2", [("SOC-006-36-40", 2)], tenders=["card"]),
        ]
        self.push()
        self.pos.close(STORE)
        self.push()
        _day2, day2_payment = self.card_day(sales[0])
        for sale in sales:
            tender = sale["tenders"][0]
            self.finance.acquirer.capture(tender["reference"], tender["amount"])
        batch, st_line, following = self.settle()
        bookings = sum(
            Decimal(r["Net Credit (NC)"] or 0) - Decimal(r["Net Debit (NC)"] or 0)
            for r in batch["rows"]
            if r["Type"] not in ("Balancetransfer", "MerchantPayout")
        )
        self.assertEqual(Decimal(batch["payout"]), bookings - carried)
        self.assertEqual(following.state, "reconciled", following.state_message)
        self.assertIn(negative.name, following.state_message)
        self.assertTrue(st_line.is_reconciled)
        self.assert_settled_in_full(day2_payment)
        self.assert_fees_booked(batch, st_line)
        self.assertTrue(owed.full_reconcile_id, "the carried balance is cleared")
        cleared = st_line.move_id.line_ids.filtered(
            lambda ln: ln.account_id == self.acquirer_balance_account
        )
        self.assertAlmostEqual(cleared.balance, float(carried), places=2)
        self.assertEqual(owed.full_reconcile_id, cleared.full_reconcile_id)
        self.assertFalse(self.open_mismatches())
        return following
