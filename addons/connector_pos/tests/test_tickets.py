from decimal import Decimal

from odoo.tests import tagged

from .common import PosCase, batch, return_of, sale, void_of


@tagged("post_install", "-at_install")
class TestPosTickets(PosCase):
    """Tickets become Point of Sale orders in the store's day, Odoo's way."""

    def assertTotalsEqual(self, order, ticket):
        self.assertEqual(Decimal(str(order.amount_total)).quantize(Decimal("0.01")), Decimal(ticket["total"]))
        if ticket.get("total_tax"):
            self.assertEqual(
                Decimal(str(order.amount_tax)).quantize(Decimal("0.01")), Decimal(ticket["total_tax"])
            )

    def test_sale_becomes_a_paid_order_in_the_store_day(self):
        ticket = sale(
            4051,
            [("TSH-BLK-M", 2, "19.90", "2.00", "VAT20"), ("MUG-WHT", 3, "8.35", "0", "VAT55")],
            tenders=[{"type": "card", "amount": "20.00", "reference": "AUTH 204417"}],
        )
        ticket["tenders"].append(
            {"type": "cash", "amount": str(Decimal(ticket["total"]) - Decimal("20.00"))}
        )
        self.apply(batch([ticket]))
        order = self.order(ticket)
        self.assertEqual(order.state, "paid")
        self.assertTotalsEqual(order, ticket)
        self.assertEqual(order.config_id, self.store.config_id)
        self.assertEqual(order.session_id.connector_pos_business_day.isoformat(), "2026-11-30")
        self.assertEqual(order.session_id.connector_pos_store_id, self.store)
        self.assertEqual(
            (order.connector_pos_register, order.connector_pos_sequence), ("R1", 4051)
        )
        shirt = order.lines.filtered(lambda line: line.product_id.default_code == "TSH-BLK-M")
        self.assertEqual(shirt.qty, 2)
        self.assertAlmostEqual(shirt.price_subtotal_incl, 37.80)
        self.assertEqual(shirt.tax_ids.name, "POS VAT20")
        self.assertEqual(
            sorted(order.payment_ids.mapped(lambda p: (p.payment_method_id.name, p.amount))),
            [("POS card", 20.0), ("POS cash", float(Decimal(ticket["total"]) - 20))],
        )
        self.assertEqual(order.picking_ids.state, "done", "stock leaves the store per ticket")

    def test_one_session_per_business_day(self):
        first = sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20")])
        second = sale(2, [("CAP-RED", 1, "12.00", "0", "VAT20")])
        self.apply(batch([first]))
        self.apply(batch([second], register="R2"))
        self.assertEqual(self.order(first).session_id, self.order(second).session_id)

    def test_next_day_waits_for_the_close_of_the_open_day(self):
        today = sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20")])
        tomorrow = sale(2, [("MUG-WHT", 1, "8.50", "0", "VAT20")], day="2026-12-01")
        self.apply(batch([today, tomorrow]))
        event = self.events().filtered(lambda e: e.idempotency_key == tomorrow["uuid"])
        self.assertEqual(event.state, "waiting")
        self.assertIn("Waiting for the close of", event.error_message)
        session = self.order(today).session_id
        session.action_pos_session_closing_control()
        self.assertEqual(session.state, "closed")
        self.run_jobs()
        self.assertEqual(event.state, "done")
        self.assertEqual(
            self.order(tomorrow).session_id.connector_pos_business_day.isoformat(), "2026-12-01"
        )

    def test_malformed_ticket_fails_alone_with_its_reason(self):
        good = sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20")])
        bad = sale(2, [("MUG-WHT", 1, "8.50", "0", "VAT20")])
        bad["lines"][0].pop("sku")
        bad["lines"][0].pop("quantity")
        later = sale(3, [("CAP-RED", 1, "12.00", "0", "VAT20")])
        self.apply(batch([good, bad, later]))
        event = self.events().filtered(lambda e: e.idempotency_key == bad["uuid"])
        self.assertEqual((event.state, event.error_kind), ("failed", "validation"))
        self.assertIn("lines.0.quantity: required field", event.error_message)
        self.assertTrue(self.order(good))
        self.assertTrue(self.order(later), "the register's next ticket is not held back")

    def test_unknown_sku_fails_naming_it_then_applies_after_requeue(self):
        ticket = sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20"), ("NEW-SKU-1", 1, "5.00", "0", "VAT20")])
        ticket["lines"][1]["barcode"] = "999000111"
        self.apply(batch([ticket]))
        event = self.events()
        self.assertEqual((event.state, event.error_kind), ("failed", "business"))
        self.assertIn("SKU 'NEW-SKU-1' / barcode '999000111'", event.error_message)
        self.assertFalse(self.order(ticket))
        self.env["product.product"].create({"name": "New", "default_code": "NEW-SKU-1"})
        event.action_requeue()
        self.run_jobs()
        self.assertEqual(event.state, "done")
        self.assertTotalsEqual(self.order(ticket), ticket)

    def test_return_before_its_sale_waits_then_applies(self):
        original = sale(1, [("TSH-BLK-M", 2, "19.90", "2.00", "VAT20"), ("MUG-WHT", 1, "8.50", "0", "VAT55")])
        returned = return_of(original, 1, {original["lines"][0]["line_uuid"]: "1"})
        self.apply(batch([returned], register="R2"))
        event = self.events()
        self.assertEqual(event.state, "waiting")
        self.assertIn(original["uuid"], event.error_message)
        self.apply(batch([original]))
        self.assertEqual(event.state, "done")
        refund = self.order(returned)
        self.assertTrue(refund.is_refund)
        self.assertTotalsEqual(refund, returned)
        sold = self.order(original).lines.filtered(lambda l: l.product_id.default_code == "TSH-BLK-M")
        self.assertEqual(refund.lines.refunded_orderline_id, sold)
        self.assertEqual(sold.refunded_qty, 1)

    def test_void_reverses_the_ticket(self):
        original = sale(1, [("TSH-BLK-M", 1, "19.90", "0", "VAT20"), ("CAP-RED", 2, "12.00", "1.00", "VAT20")])
        self.apply(batch([original, void_of(original, 2)]))
        order = self.order(original)
        refunds = order.lines.refund_orderline_ids.order_id
        self.assertEqual(len(refunds), 1)
        self.assertEqual(refunds.amount_total, -order.amount_total)
        self.assertEqual(order.lines.mapped("refunded_qty"), order.lines.mapped("qty"))
        self.assertEqual(refunds.payment_ids.amount, -order.amount_total)

    def test_no_sale_is_kept_and_applied_as_nothing(self):
        ticket = {
            **sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20")]),
            "type": "no_sale",
            "lines": [],
            "tenders": [],
            "total": None,
            "total_tax": None,
        }
        self.apply(batch([ticket]))
        self.assertEqual(self.events().state, "done")
        self.assertFalse(self.order(ticket))

    def test_totals_equal_the_pos_to_the_cent(self):
        tickets = [
            sale(n, [("TSH-BLK-M", 3, "0.99", "0.01", "VAT20"), ("MUG-WHT", 7, "1.07", "0.13", "VAT55"), ("CAP-RED", 1, "0.05", "0", "VAT20")])
            for n in range(1, 6)
        ]
        self.apply(batch(tickets))
        for ticket in tickets:
            self.assertTotalsEqual(self.order(ticket), ticket)
