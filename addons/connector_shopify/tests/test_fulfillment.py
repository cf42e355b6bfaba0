from datetime import timedelta

from odoo import fields
from odoo.tests import TransactionCase

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs
from odoo.addons.queue_job.exception import RetryableJobError

from .common import connect_store

TOPIC = "fulfillment.create"


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
        run_trapped_jobs(self.env, trap)

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

    def outbound(self, picking):
        return self.env["connector.outbound"].search(
            [
                ("topic", "=", TOPIC),
                ("res_model", "=", "stock.picking"),
                ("res_id", "=", picking.id),
            ]
        )

    def lose_next_answer(self):
        """Shopify makes the next fulfillment, its answer never arrives."""
        self.shop.faults.add("drop", limit=1, apply=True, endpoint="graphql:fulfillmentCreate")

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

    def test_delivery_in_two_parcels_sends_each_tracking_number(self):
        """Two parcels' numbers in the tracking reference reach Shopify as two
        numbers, not as one nor the first alone (odoo/odoo#80636); a retry
        after a lost answer recognises the fulfillment by both."""
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[0], 1), (self.skus[1], 1)])
            self.deliver(sale.picking_ids, {self.skus[0]: 1, self.skus[1]: 1}, "PARCEL-1, PARCEL-2")
        self.lose_next_answer()
        with self.assertRaises(RetryableJobError):
            self.backend._flush_outbound(TOPIC)
        self.backend._flush_outbound(TOPIC)
        (fulfillment,) = self.shop.fulfillments(payload["name"])
        self.assertEqual(fulfillment["tracking_numbers"], ["PARCEL-1", "PARCEL-2"])
        self.assertEqual(fulfillment["tracking_company"], "DHL Express")
        self.assertEqual(self.outbound(sale.picking_ids).state, "sent")

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

    def test_lost_answer_is_recorded_on_retry_not_sent_twice(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[0], 2), (self.skus[1], 1)])
            self.deliver(sale.picking_ids, {self.skus[0]: 2, self.skus[1]: 1}, "LOST-1")
        item = self.outbound(sale.picking_ids)
        self.lose_next_answer()
        with self.assertRaises(RetryableJobError):
            self.backend._flush_outbound(TOPIC)
        self.assertEqual(len(self.shop.fulfillments(payload["name"])), 1, "made, answer lost")
        self.assertEqual(item.state, "pending")
        self.assertFalse(item.remote_result)

        self.backend._flush_outbound(TOPIC)
        fulfillments = self.shop.fulfillments(payload["name"])
        self.assertEqual(len(fulfillments), 1, "the retry found it instead of making another")
        self.assertEqual(item.state, "sent", item.error_message)
        self.assertEqual(item.remote_result, fulfillments[0]["admin_graphql_api_id"])
        self.assertEqual(fulfillments[0]["tracking_number"], "LOST-1")
        self.assertEqual(self.shop.order(payload["name"])["fulfillment_status"], "fulfilled")

    def test_delivery_and_backorder_alike_are_two_fulfillments_never_confused(self):
        # Same product, same quantity, no tracking number: only the time and
        # what each delivery recorded tell the two fulfillments apart.
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[0], 2)])
            first = sale.picking_ids
            self.deliver(first, {self.skus[0]: 1}, False)
        self.backend._flush_outbound(TOPIC)
        backorder = sale.picking_ids - first
        self.assertEqual(len(backorder), 1)
        with trap_jobs():
            self.deliver(backorder, {self.skus[0]: 1}, False)
        self.lose_next_answer()
        with self.assertRaises(RetryableJobError):
            self.backend._flush_outbound(TOPIC)
        self.backend._flush_outbound(TOPIC)

        fulfillments = self.shop.fulfillments(payload["name"])
        self.assertEqual([f["line_items"][0]["quantity"] for f in fulfillments], [1, 1])
        self.assertEqual(
            [self.outbound(first).remote_result, self.outbound(backorder).remote_result],
            [f["admin_graphql_api_id"] for f in fulfillments],
        )
        self.assertEqual(
            (self.outbound(first) | self.outbound(backorder)).mapped("state"), ["sent", "sent"]
        )
        self.assertEqual(self.shop.order(payload["name"])["fulfillment_status"], "fulfilled")

    def test_fulfillment_made_by_hand_after_validation_is_adopted_not_doubled(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[0], 1), (self.skus[1], 2)])
            self.deliver(sale.picking_ids, {self.skus[0]: 1, self.skus[1]: 2}, "HAND-1")
        # Before Odoo sends it, someone fulfills the order in Shopify's admin
        # with the parcel's tracking number.
        by_hand = self.shop.fulfill_order(payload["name"], tracking_number="HAND-1")
        self.backend._flush_outbound(TOPIC)
        fulfillments = self.shop.fulfillments(payload["name"])
        self.assertEqual([f["id"] for f in fulfillments], [by_hand["id"]])
        item = self.outbound(sale.picking_ids)
        self.assertEqual(item.state, "sent", item.error_message)
        self.assertEqual(item.remote_result, by_hand["admin_graphql_api_id"])

    def test_fulfillment_by_hand_with_another_tracking_number_is_not_adopted(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[0], 1)])
            self.deliver(sale.picking_ids, {self.skus[0]: 1}, "PARCEL-9")
        by_hand = self.shop.fulfill_order(payload["name"], tracking_number="OTHER-1")
        self.backend._flush_outbound(TOPIC)
        self.assertEqual(
            [f["id"] for f in self.shop.fulfillments(payload["name"])], [by_hand["id"]]
        )
        item = self.outbound(sale.picking_ids)
        self.assertEqual(item.state, "failed")
        self.assertFalse(item.remote_result)
        self.assertIn("nothing left to fulfill", item.error_message)

    def test_fulfillment_by_hand_before_validation_is_not_adopted(self):
        with trap_jobs() as trap:
            payload, sale = self.import_order(trap, [(self.skus[1], 1)])
            by_hand = self.shop.fulfill_order(payload["name"], tracking_number="EARLY-1")
            self.deliver(sale.picking_ids, {self.skus[1]: 1}, "EARLY-1")
        # The delivery was validated a quarter of an hour after the fulfillment
        # made by hand: that one is an earlier shipment, not this delivery's.
        sale.picking_ids.date_done = fields.Datetime.now() + timedelta(minutes=15)
        self.backend._flush_outbound(TOPIC)
        self.assertEqual(
            [f["id"] for f in self.shop.fulfillments(payload["name"])], [by_hand["id"]]
        )
        item = self.outbound(sale.picking_ids)
        self.assertEqual(item.state, "failed")
        self.assertFalse(item.remote_result)


class TestFulfillmentOfALongOrder(TransactionCase):
    """An order longer than one page of Shopify's fulfillment order lines."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        connect_store(cls, sku_count=30, on_hand=5, seed=37, products=14)

    def test_thirty_lines_are_fulfilled_whole(self):
        self.assertEqual(len(self.skus), 30, "the store sells 30 SKUs")
        with trap_jobs() as trap:
            payload = self.shop.create_order([(sku, 1) for sku in self.skus])
            event = self.env["connector.event"]._receive(
                self.backend, "orders/create", payload, f"wh-{payload['id']}"
            )
            run_trapped_jobs(self.env, trap)
            self.assertEqual(event.state, "done", event.error_message)
            picking = event._produced_record().picking_ids
            picking.move_ids.quantity = 1
            picking.move_ids.picked = True
            picking._action_done()
            self.backend._flush_outbound(TOPIC)
        change = self.env["connector.outbound"].search(
            [("topic", "=", TOPIC), ("res_id", "=", picking.id)]
        )
        self.assertEqual(change.state, "sent", change.error_message)
        fulfillments = self.shop.fulfillments(payload["name"])
        self.assertEqual(len(fulfillments), 1)
        shipped = {line["sku"]: line["quantity"] for line in fulfillments[0]["line_items"]}
        self.assertEqual(shipped, dict.fromkeys(self.skus, 1), "all 30 lines, not the first 25")
