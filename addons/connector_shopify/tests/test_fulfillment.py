from odoo.tests import TransactionCase

from odoo.addons.queue_job.tests.common import trap_jobs

from .common import connect_store


class TestFulfillmentOut(TransactionCase):
    """A delivery done in Odoo becomes a Shopify fulfillment with its tracking."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        connect_store(cls, sku_count=2, on_hand=20, seed=31, products=8)
        cls.carrier = cls.env["delivery.carrier"].create(
            {"name": "DHL Express", "product_id": cls.backend.shopify_shipping_product_id.id}
        )

    def run_jobs(self, trap):
        while trap.enqueued_jobs:
            trap.perform_enqueued_jobs()

    def import_order(self, trap, lines):
        payload = self.shop.create_order(lines)
        event = self.env["connector.event"]._receive(
            self.backend, "orders/create", payload, f"wh-{payload['id']}"
        )
        self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        return payload, event._produced_record()

    def deliver(self, picking, quantities, tracking):
        for move in picking.move_ids:
            move.quantity = quantities.get(move.product_id.default_code, 0)
        picking.write({"carrier_id": self.carrier.id, "carrier_tracking_ref": tracking})
        picking.move_ids.picked = True
        return picking.with_context(cancel_backorder=False)._action_done()

    def test_full_delivery_creates_one_fulfillment_with_tracking(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[0], 2), (self.skus[1], 1)])
            self.deliver(sale.picking_ids, {self.skus[0]: 2, self.skus[1]: 1}, "TRACK-1")
            self.run_jobs(trap)
        fulfillments = self.shop.fulfillments(payload["name"])
        items = self.env["connector.outbound"].search([("topic", "=", "fulfillment.create")])
        self.assertEqual(len(fulfillments), 1, items.mapped(lambda i: (i.state, i.error_message)))
        self.assertEqual(fulfillments[0]["tracking_number"], "TRACK-1")
        self.assertEqual(fulfillments[0]["tracking_company"], "DHL Express")
        shipped = {line["sku"]: line["quantity"] for line in fulfillments[0]["line_items"]}
        self.assertEqual(shipped, {self.skus[0]: 2, self.skus[1]: 1})

    def test_partial_delivery_then_backorder_make_two_fulfillments(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[0], 3)])
            self.deliver(sale.picking_ids, {self.skus[0]: 1}, "PART-1")
            self.run_jobs(trap)
            self.assertEqual(len(self.shop.fulfillments(payload["name"])), 1)
            backorder = sale.picking_ids.filtered(lambda p: p.state not in ("done", "cancel"))
            self.assertEqual(len(backorder), 1)
            self.deliver(backorder, {self.skus[0]: 2}, "PART-2")
            self.run_jobs(trap)
        fulfillments = self.shop.fulfillments(payload["name"])
        self.assertEqual(
            sorted((f["tracking_number"], f["line_items"][0]["quantity"]) for f in fulfillments),
            [("PART-1", 1), ("PART-2", 2)],
        )
        self.assertEqual(self.shop.order(payload["name"])["fulfillment_status"], "fulfilled")

    def test_delivery_of_an_order_not_from_shopify_sends_nothing(self):
        partner = self.env["res.partner"].create({"name": "Walk-in"})
        product = self.env["product.product"].search([("default_code", "=", self.skus[0])])
        sale = self.env["sale.order"].create(
            {
                "partner_id": partner.id,
                "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 1})],
            }
        )
        sale.action_confirm()
        with trap_jobs():
            self.deliver(sale.picking_ids, {self.skus[0]: 1}, "LOCAL")
        self.assertFalse(
            self.env["connector.outbound"].search([("topic", "=", "fulfillment.create")])
        )
