import logging
import time
from decimal import Decimal

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import STORE, PosCase

_logger = logging.getLogger(__name__)


def cents(value):
    return Decimal(str(value)).quantize(Decimal("0.01"))


@tagged("post_install", "-at_install")
class TestPosTickets(PosCase):
    """The simulated store's tickets become Point of Sale orders in its day, Odoo's way."""

    def assertTotalsEqual(self, order, ticket):
        """Odoo's totals are the POS's, to the cent."""
        self.assertEqual(cents(order.amount_total), Decimal(ticket["total"]), ticket["uuid"])
        self.assertEqual(cents(order.amount_tax), Decimal(ticket["total_tax"]), ticket["uuid"])

    def test_sale_becomes_a_paid_order_in_the_store_day(self):
        ticket = self.pos.sale(
            STORE,
            "R1",
            [("TSH-001-S-BLK", 2, "2.00"), ("SOC-006-36-40", 3)],
            tenders=["card", "cash"],
        )
        self.push()
        order = self.order(ticket)
        self.assertEqual(order.state, "paid")
        self.assertTotalsEqual(order, ticket)
        self.assertEqual(order.config_id, self.store.config_id)
        self.assertEqual(
            order.session_id.connector_pos_business_day.isoformat(), ticket["business_day"]
        )
        self.assertEqual(
            (order.connector_pos_register, order.connector_pos_sequence),
            ("R1", ticket["sequence"]),
        )
        tee = order.lines.filtered(lambda line: line.product_id.default_code == "TSH-001-S-BLK")
        self.assertEqual((tee.qty, tee.uuid), (2, ticket["lines"][0]["line_uuid"]))
        self.assertEqual(tee.tax_ids.name, "POS VAT20")
        self.assertEqual(
            sorted(order.payment_ids.mapped(lambda p: (p.payment_method_id.name, cents(p.amount)))),
            sorted(
                (
                    {"card": "POS card", "cash": "POS cash"}[tender["type"]],
                    Decimal(tender["amount"]),
                )
                for tender in ticket["tenders"]
            ),
        )
        self.assertEqual(order.picking_ids.state, "done", "stock leaves the store per ticket")
        self.assertEqual(self.backend.pos_order_count, 1)
        action = self.backend.action_pos_view_orders()
        self.assertEqual(self.env["pos.order"].search(action["domain"]), order)

    def test_registers_share_the_store_day(self):
        first = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)])
        second = self.pos.sale(STORE, "R2", [("SOC-006-36-40", 1)])
        self.push()
        self.assertEqual(self.order(first).session_id, self.order(second).session_id)
        self.assertEqual(self.order(first).session_id.state, "opened")

    def test_customers_are_one_partner_per_person_across_connectors(self):
        # Known already: a customer of the web shop, made by another connector.
        ada = self.env["res.partner"].create({"name": "Ada Lovelace", "email": "ada@example.com"})
        walk_in = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)], customer=False)
        by_email = self.pos.sale(
            STORE, "R1", [("TSH-001-S-BLK", 1)], customer={"email": " ADA@example.com"}
        )
        card = {"loyalty_id": "L-00912", "phone": "+33 6 12 34 56 78"}
        first = self.pos.sale(STORE, "R2", [("SOC-006-36-40", 1)], customer=card)
        again = self.pos.sale(
            STORE, "R2", [("SOC-006-36-40", 1)], customer={"loyalty_id": "L-00912"}
        )
        self.push()
        self.assertFalse(self.order(walk_in).partner_id, "a walk-in customer is no one")
        self.assertEqual(self.order(by_email).partner_id, ada)
        member = self.order(first).partner_id
        self.assertTrue(member)
        self.assertNotEqual(member, ada)
        self.assertEqual(self.order(again).partner_id, member, "one loyalty card, one partner")

    def test_next_day_waits_for_the_close_of_the_open_day(self):
        today = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)])
        self.pos.next_day()
        tomorrow = self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)])
        self.push()
        event = self.event(tomorrow)
        self.assertEqual(event.state, "waiting")
        self.assertIn("Waiting for the close of", event.error_message)
        session = self.order(today).session_id
        session.action_pos_session_closing_control()
        self.assertEqual(session.state, "closed")
        self.run_jobs()
        self.assertEqual(event.state, "done")
        self.assertEqual(
            self.order(tomorrow).session_id.connector_pos_business_day.isoformat(),
            tomorrow["business_day"],
        )

    def test_malformed_ticket_fails_alone_with_its_reason(self):
        good = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)])
        bad = self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)])
        later = self.pos.sale(STORE, "R1", [("CAP-004-OLV", 1)])
        broken = {**bad, "lines": [{**bad["lines"][0], "quantity": "abc"}]}
        self.post_batch("R1", [good, broken, later])
        event = self.event(bad)
        self.assertEqual((event.state, event.error_kind), ("failed", "validation"))
        self.assertIn("lines.0.quantity: value does not match regex", event.error_message)
        self.assertTrue(self.order(good))
        self.assertTrue(self.order(later), "the register's next ticket is not held back")

    def test_ticket_without_a_tax_total_gets_odoos_tax(self):
        printed = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 2), ("SOC-006-36-40", 1)])
        # The same sale again, as a POS that prints no tax total sends it.
        unprinted = {
            **printed,
            "uuid": f"{printed['uuid']}-2",
            "sequence": printed["sequence"] + 1,
            "lines": [{**line, "line_uuid": f"{line['line_uuid']}-2"} for line in printed["lines"]],
        }
        del unprinted["total_tax"]
        self.post_batch("R1", [printed, unprinted])
        self.assertTotalsEqual(self.order(printed), printed)
        order = self.order(unprinted)
        self.assertEqual(order.state, "paid")
        self.assertEqual(cents(order.amount_total), Decimal(printed["total"]))
        self.assertEqual(cents(order.amount_tax), Decimal(printed["total_tax"]))

    def test_ticket_number_beyond_what_odoo_keeps_fails_alone_with_its_reason(self):
        good = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)])
        huge = {**self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)]), "sequence": 2**31}
        self.post_batch("R1", [good, huge])
        event = self.event(huge)
        self.assertEqual((event.state, event.error_kind), ("failed", "validation"))
        self.assertIn("sequence: max value is 2147483647", event.error_message)
        self.assertTrue(self.order(good))

    def test_unknown_sku_fails_naming_it_then_applies_after_requeue(self):
        product = self.products.filtered(lambda p: p.default_code == "CAP-004-OLV")
        product.write({"default_code": "CAP-004-OLV-OLD", "barcode": False})
        ticket = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1), ("CAP-004-OLV", 1)])
        self.push()
        event = self.event(ticket)
        self.assertEqual((event.state, event.error_kind), ("failed", "business"))
        self.assertIn("no product has SKU 'CAP-004-OLV'", event.error_message)
        self.assertFalse(self.order(ticket))
        product.default_code = "CAP-004-OLV"
        event.action_requeue()
        self.run_jobs()
        self.assertEqual(event.state, "done")
        self.assertTotalsEqual(self.order(ticket), ticket)

    def test_return_before_its_sale_waits_then_applies(self):
        original = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 2, "3.00"), ("SOC-006-36-40", 1)])
        returned = self.pos.return_of(
            STORE, "R2", original, [(original["lines"][0]["line_uuid"], 1)]
        )
        self.push(store=STORE, register="R2")
        event = self.event(returned)
        self.assertEqual(event.state, "waiting")
        self.assertIn(original["uuid"], event.error_message)
        self.push(store=STORE, register="R1")
        self.assertEqual(event.state, "done")
        refund = self.order(returned)
        self.assertTrue(refund.is_refund)
        self.assertTotalsEqual(refund, returned)
        sold = self.order(original).lines.filtered(
            lambda line: line.product_id.default_code == "TSH-001-S-BLK"
        )
        self.assertEqual(refund.lines.refunded_orderline_id, sold)
        self.assertEqual(sold.refunded_qty, 1)

    def test_void_reverses_the_ticket(self):
        original = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1), ("CAP-004-OLV", 2, "1.00")])
        void = self.pos.void(STORE, "R1", original)
        self.push()
        order = self.order(original)
        refund = self.order(void)
        self.assertEqual(self.event(void).state, "done")
        self.assertTrue(refund.is_refund)
        self.assertEqual(refund, order.lines.refund_orderline_ids.order_id)
        self.assertEqual(refund.amount_total, -order.amount_total)
        self.assertEqual(order.lines.mapped("refunded_qty"), order.lines.mapped("qty"))
        self.assertEqual(
            sorted(refund.payment_ids.mapped("amount")),
            sorted(-amount for amount in order.payment_ids.mapped("amount")),
        )
        # Paid back under the payments' references: a card's at the acquirer.
        self.assertEqual(
            {(p.payment_method_id, -p.amount, p.transaction_id) for p in refund.payment_ids},
            {(p.payment_method_id, p.amount, p.transaction_id) for p in order.payment_ids},
        )

    def test_no_sale_is_kept_and_applied_as_nothing(self):
        ticket = self.pos.no_sale(STORE, "R1")
        self.push()
        self.assertEqual(self.event(ticket).state, "done")
        self.assertFalse(self.order(ticket))

    def test_a_trading_day_is_applied_to_the_cent(self):
        """The realistic mix: sales with several tenders and discounts,
        returns, voids, no-sales, across both registers."""
        tickets = self.pos.ring(STORE, count=40)
        self.push()
        self.assertEqual(set(self.events().mapped("state")), {"done"})
        for ticket in tickets:
            if ticket["type"] in ("sale", "return"):
                self.assertTotalsEqual(self.order(ticket), ticket)


@tagged("post_install", "-at_install")
class TestPosTicketsRoundedPerTicket(PosCase):
    """A fleet whose POS rounds tax once per ticket and tax code."""

    rounding = "round_globally"

    def test_a_trading_day_is_applied_to_the_cent(self):
        tickets = self.pos.ring(STORE, count=40)
        self.push()
        self.assertEqual(set(self.events().mapped("state")), {"done"})
        for ticket in tickets:
            if ticket["type"] in ("sale", "return"):
                order = self.order(ticket)
                self.assertEqual(cents(order.amount_total), Decimal(ticket["total"]))
                self.assertEqual(cents(order.amount_tax), Decimal(ticket["total_tax"]))


@tagged("post_install", "-at_install")
class TestPosStoreDays(PosCase):
    """Store days as Point of Sale sessions: stock policy and late tickets."""

    def test_stock_leaves_at_closing_when_the_fleet_says_so(self):
        self.backend.pos_stock_policy = "closing"
        ticket = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)])
        self.push()
        order = self.order(ticket)
        self.assertTrue(order.session_id.update_stock_at_closing)
        self.assertFalse(order.picking_ids, "no delivery per ticket")

    def test_registers_are_applied_side_by_side_unless_stock_leaves_per_ticket(self):
        """A register's tickets take no lock another register's wait for: the
        store's Point of Sale numbers orders from PostgreSQL sequences, and
        each register has jobs of its own, except when each ticket moves the
        store's stock (real time), where a store's registers take turns."""
        config = self.store.config_id
        numbering = config.order_seq_id | config.order_backend_seq_id | config.order_line_seq_id
        self.assertEqual(set(numbering.mapped("implementation")), {"standard"})

        def key_spaces(policy):
            self.backend.pos_stock_policy = policy
            tickets = [self.pos.sale(STORE, register) for register in ("R1", "R2")]
            self.push()
            self.assertEqual({self.order(ticket).state for ticket in tickets}, {"paid"})
            return {self.event(ticket).batch_key for ticket in tickets}

        self.assertEqual(key_spaces("closing"), {f"{STORE}/R1", f"{STORE}/R2"})
        self.assertEqual(key_spaces("real_time"), {STORE})

    def test_late_ticket_of_a_closed_day_goes_to_a_recovery_session_of_its_day(self):
        early = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)])
        late = self.pos.sale(STORE, "R2", [("SOC-006-36-40", 1)])
        self.push(store=STORE, register="R1")
        day = self.order(early).session_id
        day.action_pos_session_closing_control()
        self.push(store=STORE, register="R2")
        recovery = self.order(late).session_id
        self.assertNotEqual(recovery, day)
        self.assertTrue(recovery.rescue)
        self.assertEqual(recovery.connector_pos_business_day, day.connector_pos_business_day)


@tagged("post_install", "-at_install")
class TestPosCatchUp(PosCase):
    """A store offline for hours uploads what it kept in bulk batches."""

    def test_offline_store_catches_up_in_order_per_register(self):
        self.pos.set_offline(STORE)
        tickets = self.pos.ring(STORE, count=30)
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            uploads = self.pos.set_online(STORE)
        self.assertEqual({upload["status"] for upload in uploads}, {200})
        started = time.perf_counter()
        self.run_jobs()
        elapsed = time.perf_counter() - started
        _logger.info(
            "POS catch-up: %s tickets in %s uploads applied in %.1f s (%.0f tickets/s)",
            len(tickets),
            len(uploads),
            elapsed,
            len(tickets) / elapsed,
        )
        self.assertEqual(set(self.events().mapped("state")), {"done"})
        for register in ("R1", "R2"):
            sales = self.env["pos.order"].search(
                [("connector_pos_register", "=", register), ("is_refund", "=", False)],
                order="id",
            )
            self.assertEqual(
                sales.mapped("connector_pos_sequence"),
                sorted(sales.mapped("connector_pos_sequence")),
                f"{register}'s sales are applied in the register's order",
            )


@tagged("post_install", "-at_install")
class TestPosStoresCash(PosCase):
    """Each store counts its drawer in its own Point of Sale's cash method."""

    stores = (STORE, "S02")

    def cash_payments(self, ticket):
        return self.order(ticket).payment_ids.filtered("payment_method_id.is_cash_count")

    def test_each_store_takes_cash_in_its_own_cash_method(self):
        first = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)], tenders=["cash"])
        second = self.pos.sale("S02", "R1", [("TSH-001-S-BLK", 1)], tenders=["cash"])
        self.push()
        for ticket, code in ((first, STORE), (second, "S02")):
            store = self.store.filtered(lambda s, code=code: s.code == code)
            payment = self.cash_payments(ticket)
            self.assertIn(payment.payment_method_id, store.config_id.payment_method_ids)
            self.assertEqual(cents(payment.amount), Decimal(ticket["total"]))
        self.assertNotEqual(
            self.cash_payments(first).payment_method_id,
            self.cash_payments(second).payment_method_id,
        )

    def test_cash_of_another_store_fails_naming_the_row_to_add(self):
        second = self.store.filtered(lambda s: s.code == "S02")
        own = self.env["connector.pos.tender"].search(
            [("store_id", "=", second.id), ("tender_type", "=", "cash")]
        )
        own_method = own.payment_method_id
        # The administrator mapped cash once for the fleet, with the first store's method.
        first_cash = self.env["connector.pos.tender"].search(
            [("store_id", "!=", second.id), ("tender_type", "=", "cash")]
        )
        first_cash.store_id = False
        own.unlink()
        ticket = self.pos.sale("S02", "R1", [("TSH-001-S-BLK", 1)], tenders=["cash"])
        self.push()
        event = self.event(ticket)
        self.assertEqual(event.state, "failed")
        self.assertIn("give store S02", event.error_message)
        self.assertIn("a Cash row of its own", event.error_message)
        self.assertFalse(self.order(ticket))
        # Mapped for the store, requeued: applied, nothing lost.
        self.env["connector.pos.tender"].create(
            {
                "backend_id": self.backend.id,
                "store_id": second.id,
                "tender_type": "cash",
                "payment_method_id": own_method.id,
            }
        )
        event.action_requeue()
        self.run_jobs()
        self.assertEqual(event.state, "done")
        self.assertEqual(self.cash_payments(ticket).payment_method_id, own_method)

    def test_a_store_row_belongs_to_the_fleet(self):
        other = self.env["connector.backend"].create(
            {"name": "Other fleet", "backend_type": "pos", "pos_fleet_code": "other"}
        )
        with self.assertRaisesRegex(ValidationError, "is not one of fleet"):
            self.env["connector.pos.tender"].create(
                {
                    "backend_id": other.id,
                    "store_id": self.store[0].id,
                    "tender_type": "card",
                    "payment_method_id": self.backend.pos_tender_ids.filtered(
                        lambda t: t.tender_type == "card"
                    ).payment_method_id.id,
                }
            )
