import copy
from unittest.mock import patch

from odoo.fields import Command
from odoo.tests import TransactionCase, tagged

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs

from .common import connect_store, ensure_chart_of_accounts


@tagged("post_install", "-at_install")
class TestRefundImport(TransactionCase):
    """A Shopify refund becomes a posted credit note, the customer payment and,
    for goods, a return or a smaller delivery: exactly once, and after its order."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        ensure_chart_of_accounts(cls.env)
        connect_store(cls, sku_count=2, on_hand=20, seed=41, products=8)
        # Stock levels are not under test here; deliveries still reach the store.
        cls.backend._policy("stock_out").enabled = False
        warehouse = cls.backend.shopify_warehouse_id
        cls.returns = cls.env["stock.location"].create(
            {
                "name": "Shopify returns",
                "usage": "internal",
                "location_id": warehouse.lot_stock_id.id,
            }
        )
        cls.backend.shopify_location_ids.location_id = cls.returns
        cls.journal = cls.env["account.journal"].create(
            {"name": "Shopify Payments", "type": "bank", "code": "SHPAY"}
        )
        cls.backend.shopify_payment_method_ids = [
            Command.create({"gateway": "shopify_payments", "journal_id": cls.journal.id})
        ]
        cls.Event = cls.env["connector.event"]
        cls.Refund = cls.env["shopify.refund.binding"]
        cls.tee, cls.cap = (
            cls.products.filtered(lambda p, sku=sku: p.default_code == sku) for sku in cls.skus
        )

    # --- helpers ------------------------------------------------------------------

    def run_jobs(self, trap):
        run_trapped_jobs(self.env, trap)

    def receive(self, topic, payload, webhook_id=None):
        return self.Event._receive(
            self.backend, topic, payload, webhook_id or f"wh-{topic}-{payload['id']}"
        )

    def import_order(self, trap, lines):
        payload = self.shop.create_order(lines)
        event = self.receive("orders/create", payload)
        self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        return payload, event._produced_record()

    def deliver(self, trap, sale):
        """Ship everything in Odoo; the fulfillment goes to the store."""
        picking = sale.picking_ids.filtered(lambda p: p.state not in ("done", "cancel"))
        for move in picking.move_ids:
            move.quantity = move.product_uom_qty
        picking.move_ids.picked = True
        picking._action_done()
        self.run_jobs(trap)

    def posted_credit_note(self, event, refund):
        """The refund's binding and credit note, once its event is done: the
        event's produced record, a posted customer credit note."""
        self.assertEqual(event.state, "done", event.error_message)
        binding = self.Refund._find(self.backend, refund["id"])
        credit_note = binding.odoo_id
        self.assertEqual(event._produced_record(), credit_note)
        self.assertEqual((credit_note.move_type, credit_note.state), ("out_refund", "posted"))
        return binding, credit_note

    def line_of(self, sale, product):
        return sale.order_line.filtered(lambda sol: sol.product_id == product)

    def refunded_money(self, refund):
        return sum(
            float(t["amount"])
            for t in refund["transactions"]
            if t["kind"] == "refund" and t["status"] == "success"
        )

    def assert_nothing_applied(self, sale):
        self.assertFalse(self.Refund.search([("sale_order_id", "=", sale.id)]))
        self.assertFalse(sale.invoice_ids)
        self.assertFalse(sale.picking_ids.filtered(lambda p: p.picking_type_code == "incoming"))
        self.assertFalse(
            self.env["account.payment"].search(
                [("partner_id", "=", sale.partner_id.id), ("payment_type", "=", "outbound")]
            ),
            "no money back (the order's own payment is the inbound one)",
        )
        self.assertFalse(any(sale.order_line.mapped("shopify_refunded_qty")))

    # --- tests ----------------------------------------------------------------------

    def test_refund_of_delivered_goods_credits_pays_and_takes_them_back(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[0], 2), (self.skus[1], 1)])
            self.deliver(trap, sale)
            self.assertEqual(self.shop.order(payload["name"])["fulfillment_status"], "fulfilled")
            stock_before = self.tee.with_context(location=self.returns.id).qty_available
            refund = self.shop.refund_order(
                payload["name"], {self.skus[0]: 1}, restock=True, shipping=True
            )
            self.assertEqual(refund["refund_line_items"][0]["restock_type"], "return")
            event = self.receive("refunds/create", refund)
            self.run_jobs(trap)
        # The credit note: posted, on the sale order, Shopify's amounts.
        binding, credit_note = self.posted_credit_note(event, refund)
        self.assertIn(credit_note, sale.invoice_ids)
        self.assertEqual(credit_note.partner_id, sale.partner_invoice_id)
        self.assertAlmostEqual(credit_note.amount_total, self.refunded_money(refund), places=2)
        goods = credit_note.invoice_line_ids.filtered(lambda aml: aml.product_id == self.tee)
        self.assertEqual(sum(goods.mapped("quantity")), 1)
        self.assertAlmostEqual(
            sum(goods.mapped("price_total")),
            float(refund["refund_line_items"][0]["subtotal"]),
            places=2,
        )
        self.assertEqual(goods.tax_ids, self.line_of(sale, self.tee).tax_ids)
        shipping = credit_note.invoice_line_ids.filtered(
            lambda aml: aml.product_id == self.backend.shopify_shipping_product_id
        )
        self.assertAlmostEqual(
            shipping.price_total, -float(refund["order_adjustments"][0]["amount"]), places=2
        )
        self.assertGreater(shipping.price_total, 0)
        # The money back: one outbound payment of the refund, in the gateway's journal.
        payment = binding.payment_ids
        self.assertEqual(len(payment), 1)
        self.assertEqual((payment.payment_type, payment.partner_type), ("outbound", "customer"))
        self.assertAlmostEqual(payment.amount, self.refunded_money(refund), places=2)
        self.assertEqual(payment.journal_id, self.journal)
        self.assertIn(credit_note.payment_state, ("paid", "in_payment"))
        # The goods: a done return into the mapped location, back in stock.
        returned = binding.picking_ids
        self.assertEqual((returned.state, returned.picking_type_code), ("done", "incoming"))
        self.assertEqual(returned.location_dest_id, self.returns)
        self.assertEqual(returned.move_ids.product_id, self.tee)
        self.assertEqual(returned.move_ids.quantity, 1)
        self.assertEqual(
            self.tee.with_context(location=self.returns.id).qty_available, stock_before + 1
        )
        # The order sells what the customer keeps.
        tee_line = self.line_of(sale, self.tee)
        self.assertEqual((tee_line.qty_delivered, tee_line.product_uom_qty), (1, 1))
        self.assertEqual(tee_line.shopify_refunded_qty, 1)
        self.assertEqual(self.line_of(sale, self.cap).product_uom_qty, 1)
        shipping_line = self.line_of(sale, self.backend.shopify_shipping_product_id)
        self.assertEqual((shipping_line.product_uom_qty, shipping_line.qty_invoiced), (0, -1))

    def test_return_another_system_receives_stays_open_until_it_does(self):
        # A remote system (another connector's) receives the goods of this
        # refund: it validates the return when it reports what came back.
        Backend = type(self.env["connector.backend"])
        receiver = self.backend  # stands for that other system's backend
        asked = []

        def receive_remotely(backends, picking, refunded_by=None):
            asked.append((picking, refunded_by))
            return receiver

        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[0], 3)])
            self.deliver(trap, sale)
            stock_before = self.tee.with_context(location=self.returns.id).qty_available
            refund = self.shop.refund_order(payload["name"], {self.skus[0]: 3}, restock=True)
            with patch.object(Backend, "_receive_return_remotely", receive_remotely):
                event = self.receive("refunds/create", refund)
                self.run_jobs(trap)
        binding, credit_note = self.posted_credit_note(event, refund)
        self.assertAlmostEqual(credit_note.amount_total, self.refunded_money(refund), places=2)
        returned = binding.picking_ids
        self.assertEqual(asked, [(returned, self.backend)])
        self.assertEqual((returned.state, returned.picking_type_code), ("assigned", "incoming"))
        self.assertIn(
            "Refunded in Shopify before the goods came back", returned.message_ids[0].body
        )
        self.assertEqual(
            self.tee.with_context(location=self.returns.id).qty_available, stock_before
        )
        # Still delivered until received: still ordered (Odoo sells no less than it delivered).
        line = self.line_of(sale, self.tee)
        self.assertEqual((line.qty_delivered, line.product_uom_qty), (3, 3))
        self.assertEqual(line.shopify_refunded_qty, 3)
        # Received in part, then the rest: the order sells what did not come back.
        returned.move_ids.quantity = 2
        returned.move_ids.picked = True
        returned._action_done()
        self.assertEqual((line.qty_delivered, line.product_uom_qty), (1, 1))
        backorder = returned.backorder_ids
        backorder.move_ids.quantity = 1
        backorder.move_ids.picked = True
        backorder._action_done()
        self.assertEqual((line.qty_delivered, line.product_uom_qty), (0, 0))

    def test_refund_delivered_twice_makes_one_credit_note(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[1], 2)])
            refund = self.shop.refund_order(payload["name"], {self.skus[1]: 1}, restock=False)
            first = self.receive("refunds/create", refund, "wh-refund-1")
            retry = self.receive("refunds/create", refund, "wh-refund-1")
            again = self.receive("refunds/create", refund, "wh-refund-2")
            self.run_jobs(trap)
        self.assertEqual([first.state, retry.state, again.state], ["done", "duplicate", "done"])
        self.assertEqual(first._produced_record(), again._produced_record())
        self.assertEqual(len(self.Refund.search([("sale_order_id", "=", sale.id)])), 1)
        credit_notes = sale.invoice_ids.filtered(lambda m: m.move_type == "out_refund")
        self.assertEqual(len(credit_notes), 1)
        money_back = self.env["account.payment"].search(
            [("partner_id", "=", sale.partner_id.id), ("payment_type", "=", "outbound")]
        )
        self.assertEqual(len(money_back), 1)
        self.assertEqual(self.line_of(sale, self.cap).shopify_refunded_qty, 1)

    def test_refund_before_its_order_waits_then_is_applied(self):
        with trap_jobs() as trap:
            payload = self.shop.create_order([(self.skus[0], 2)])
            refund = self.shop.refund_order(payload["name"], {self.skus[0]: 1}, restock=True)
            event = self.receive("refunds/create", refund)
            self.run_jobs(trap)
            self.assertEqual(event.state, "waiting")
            self.assertEqual(event.error_kind, "prerequisite")
            self.assertIn(f"Order {payload['id']} is not imported yet", event.error_message)
            self.assertFalse(self.Refund._find(self.backend, refund["id"]))
            order_event = self.receive("orders/create", payload)
            self.run_jobs(trap)
        self.assertEqual(order_event.state, "done", order_event.error_message)
        self.assertEqual(event.state, "done", event.error_message)
        sale = order_event._produced_record()
        credit_note = self.Refund._find(self.backend, refund["id"]).odoo_id
        self.assertEqual(credit_note.state, "posted")
        self.assertIn(credit_note, sale.invoice_ids)
        self.assertEqual(self.line_of(sale, self.tee).product_uom_qty, 1)

    def test_cancelled_restock_of_unshipped_goods_shrinks_the_delivery(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[0], 3)])
            refund = self.shop.refund_order(payload["name"], {self.skus[0]: 2}, restock=True)
            self.assertEqual(refund["refund_line_items"][0]["restock_type"], "cancel")
            # A refund attempt that failed at the gateway moved no money.
            refund["transactions"].append(
                dict(refund["transactions"][0], id=1, status="failure", gateway="paypal")
            )
            event = self.receive("refunds/create", refund)
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        binding = self.Refund._find(self.backend, refund["id"])
        line = self.line_of(sale, self.tee)
        self.assertEqual((line.product_uom_qty, line.qty_delivered), (1, 0))
        delivery = sale.picking_ids.filtered(lambda p: p.state not in ("done", "cancel"))
        self.assertEqual(sum(delivery.move_ids.mapped("product_uom_qty")), 1)
        self.assertFalse(binding.picking_ids, "nothing came back: nothing had left")
        goods = binding.odoo_id.invoice_line_ids.filtered(lambda aml: aml.product_id == self.tee)
        self.assertEqual(sum(goods.mapped("quantity")), 2)
        self.assertEqual(binding.payment_ids.journal_id, self.journal)
        self.assertAlmostEqual(binding.payment_ids.amount, self.refunded_money(refund), places=2)

    def test_an_order_placed_days_ago_shrinks_its_delivery_too(self):
        # Kept at Shopify's date, the order plans its moves on that date, and
        # so does the refund lowering a quantity: one move, not a return beside.
        with trap_jobs() as trap:
            payload = self.shop.create_order([(self.skus[0], 3)])
            payload["processed_at"] = payload["created_at"] = "2026-11-02T09:30:00-05:00"
            event = self.receive("orders/create", payload)
            self.run_jobs(trap)
            self.assertEqual(event.state, "done", event.error_message)
            sale = event._produced_record()
            refund = self.shop.refund_order(payload["name"], {self.skus[0]: 2}, restock=True)
            event = self.receive("refunds/create", refund)
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(str(sale.date_order), "2026-11-02 14:30:00")
        self.assertEqual(sale.picking_ids.move_ids.mapped("product_uom_qty"), [1.0])
        self.assertEqual(sale.picking_ids.picking_type_id, sale.warehouse_id.out_type_id)

    def test_unknown_line_item_fails_naming_it_and_changes_nothing(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[1], 1)])
            refund = self.shop.refund_order(payload["name"], {self.skus[1]: 1}, restock=True)
            wrong = copy.deepcopy(refund)
            wrong["refund_line_items"][0]["line_item_id"] = 999
            event = self.receive("refunds/create", wrong)
            self.run_jobs(trap)
        self.assertEqual((event.state, event.error_kind), ("failed", "business"))
        self.assertIn("not on", event.error_message)
        self.assertIn("999", event.error_message)
        self.assertIn(payload["name"], event.error_message)
        self.assert_nothing_applied(sale)
        self.assertEqual(self.line_of(sale, self.cap).product_uom_qty, 1)

    def test_refund_of_more_than_was_sold_fails_and_changes_nothing(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[1], 1)])
            refund = self.shop.refund_order(payload["name"], {self.skus[1]: 1}, restock=True)
            too_many = copy.deepcopy(refund)
            too_many["refund_line_items"][0]["quantity"] = 3
            event = self.receive("refunds/create", too_many)
            self.run_jobs(trap)
        self.assertEqual((event.state, event.error_kind), ("failed", "business"))
        self.assertIn("refunds 3 x", event.error_message)
        self.assertIn("only 1 of the 1 sold are left to refund", event.error_message)
        self.assert_nothing_applied(sale)
        self.assertEqual(self.line_of(sale, self.cap).product_uom_qty, 1)

    def test_order_cancelled_with_its_refund_is_credited_then_cancelled(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[0], 1)])
            # Shopify refunds everything, shipping included, then cancels.
            cancelled = self.shop.cancel_order(payload["name"], restock=True, refund=True)
            refund = cancelled["refunds"][0]
            refund_event = self.receive("refunds/create", refund)
            cancel_event = self.receive("orders/cancelled", cancelled)
            self.run_jobs(trap)
        self.assertEqual(refund_event.state, "done", refund_event.error_message)
        self.assertEqual(cancel_event.state, "done", cancel_event.error_message)
        self.assertEqual(sale.state, "cancel")
        credit_note = self.Refund._find(self.backend, refund["id"]).odoo_id
        self.assertEqual(credit_note.state, "posted")
        self.assertAlmostEqual(credit_note.amount_total, float(payload["total_price"]), places=2)
        self.assertFalse(sale.picking_ids.filtered(lambda p: p.state not in ("done", "cancel")))

    # --- money beyond the refunded lines ----------------------------------------------

    def goodwill(self, refund, extra, lines=True):
        """``refund`` giving back ``extra`` more money than its lines and
        shipping are worth, as Shopify sends it: a ``refund_discrepancy``
        adjustment of minus that money. ``lines=False``: money only."""
        goodwill = copy.deepcopy(refund)
        goodwill["id"] = refund["id"] + 1000
        transaction = goodwill["transactions"][0]
        if lines:
            transaction["amount"] = f"{float(transaction['amount']) + extra:.2f}"
        else:
            goodwill["refund_line_items"] = []
            goodwill["order_adjustments"] = []
            transaction["amount"] = f"{extra:.2f}"
        goodwill["order_adjustments"].append(
            {"kind": "refund_discrepancy", "amount": f"{-extra:.2f}", "tax_amount": "0.00"}
        )
        return goodwill

    def test_goodwill_refund_of_money_only_is_a_paid_credit_note(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[1], 1)])
            refund = self.shop.refund_order(payload["name"], {self.skus[1]: 1}, restock=False)
            goodwill = self.goodwill(refund, 10.0, lines=False)
            event = self.receive("refunds/create", goodwill)
            self.run_jobs(trap)
        binding, credit_note = self.posted_credit_note(event, goodwill)
        self.assertEqual(credit_note.partner_id, sale.partner_invoice_id)
        self.assertEqual(credit_note.invoice_origin, sale.name)
        self.assertAlmostEqual(credit_note.amount_total, 10.0, places=2)
        line = credit_note.invoice_line_ids
        self.assertEqual(line.product_id, self.backend.shopify_refund_product_id)
        self.assertEqual(
            line.product_id, self.env.ref("connector_shopify.product_shopify_refund_adjustment")
        )
        self.assertFalse(line.tax_ids, "an amount given back, not goods: no tax")
        self.assertIn(str(goodwill["id"]), line.name)
        payment = binding.payment_ids
        self.assertEqual(len(payment), 1)
        self.assertEqual((payment.payment_type, payment.partner_type), ("outbound", "customer"))
        self.assertAlmostEqual(payment.amount, 10.0, places=2)
        self.assertEqual(payment.journal_id, self.journal)
        self.assertIn(credit_note.payment_state, ("paid", "in_payment"))
        self.assertFalse(credit_note.amount_residual)
        # Money only: the order and its goods are left as they were.
        self.assertEqual(self.line_of(sale, self.cap).product_uom_qty, 1)
        self.assertFalse(self.line_of(sale, self.cap).shopify_refunded_qty)

    def test_refund_of_lines_and_more_money_is_one_credit_note_of_that_money(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[1], 2)])
            refund = self.shop.refund_order(payload["name"], {self.skus[1]: 1}, restock=False)
            goodwill = self.goodwill(refund, 5.0)
            event = self.receive("refunds/create", goodwill)
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        binding = self.Refund._find(self.backend, goodwill["id"])
        credit_notes = sale.invoice_ids.filtered(lambda m: m.move_type == "out_refund")
        self.assertEqual(credit_notes, binding.odoo_id)
        money = self.refunded_money(goodwill)
        self.assertAlmostEqual(money, self.refunded_money(refund) + 5.0, places=2)
        self.assertAlmostEqual(credit_notes.amount_total, money, places=2)
        goods = credit_notes.invoice_line_ids.filtered(lambda aml: aml.product_id == self.cap)
        self.assertEqual(sum(goods.mapped("quantity")), 1)
        self.assertAlmostEqual(
            sum(goods.mapped("price_total")), self.refunded_money(refund), places=2
        )
        adjustment = credit_notes.invoice_line_ids - goods
        self.assertEqual(adjustment.product_id, self.backend.shopify_refund_product_id)
        self.assertAlmostEqual(adjustment.price_total, 5.0, places=2)
        self.assertAlmostEqual(binding.payment_ids.amount, money, places=2)
        self.assertIn(credit_notes.payment_state, ("paid", "in_payment"))
        self.assertFalse(
            credit_notes.message_ids.filtered(lambda m: "this credit note is" in (m.body or "")),
            "the credit note is worth what went back: nothing to report",
        )

    def test_refund_of_lines_for_less_money_is_one_credit_note_of_that_money(self):
        with trap_jobs() as trap:
            payload, _sale = self.import_order(trap, [(self.skus[1], 1)])
            refund = self.shop.refund_order(payload["name"], {self.skus[1]: 1}, restock=False)
            # The merchant gave back 5.00 less than the line: Shopify's discrepancy says so.
            short = self.goodwill(refund, -5.0)
            event = self.receive("refunds/create", short)
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        credit_note = self.Refund._find(self.backend, short["id"]).odoo_id
        money = self.refunded_money(short)
        self.assertAlmostEqual(money, self.refunded_money(refund) - 5.0, places=2)
        self.assertAlmostEqual(credit_note.amount_total, money, places=2)
        adjustment = credit_note.invoice_line_ids.filtered(
            lambda aml: aml.product_id == self.backend.shopify_refund_product_id
        )
        self.assertAlmostEqual(adjustment.price_total, -5.0, places=2)
        self.assertIn(credit_note.payment_state, ("paid", "in_payment"))

    def test_goodwill_refund_without_adjustment_product_fails_then_applies(self):
        product = self.backend.shopify_refund_product_id
        self.backend.shopify_refund_product_id = False
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[1], 1)])
            refund = self.shop.refund_order(payload["name"], {self.skus[1]: 1}, restock=False)
            goodwill = self.goodwill(refund, 10.0, lines=False)
            event = self.receive("refunds/create", goodwill)
            self.run_jobs(trap)
            self.assertEqual((event.state, event.error_kind), ("failed", "business"))
            self.assertIn("no refund adjustment product", event.error_message)
            self.assertIn(
                "gives back 10.00 while its lines and shipping are worth 0.00", event.error_message
            )
            self.assertIn(self.backend.display_name, event.error_message)
            self.assertIn("Mappings", event.error_message)
            self.assert_nothing_applied(sale)
            self.backend.shopify_refund_product_id = product
            event.action_requeue()
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        credit_note = self.Refund._find(self.backend, goodwill["id"]).odoo_id
        self.assertAlmostEqual(credit_note.amount_total, 10.0, places=2)
        self.assertIn(credit_note.payment_state, ("paid", "in_payment"))
