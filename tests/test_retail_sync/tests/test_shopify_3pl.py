"""A Shopify order shipped by the 3PL is fulfilled in Shopify, with each parcel's tracking.

Neither connector knows the other: the 3PL connector validates the delivery
with its parcels' tracking numbers, the Shopify connector sends the
fulfillment of any validated delivery of a Shopify order. Both simulators
speak to Odoo over HTTP (API calls and signed webhooks), and the jobs Odoo
queues run as queue_job's runner would run them.

Refunded in Shopify with restock, the goods of such an order come back to
the 3PL: the return stays open, announced to the 3PL under its RMA, and is
received where the 3PL's report of each item sends it.
"""

from simulators.base import WebhookFaults

from odoo.tests import HttpCase, tagged

from odoo.addons.connector_3pl.tests.common import ACCESS_TOKEN as TPL_TOKEN
from odoo.addons.connector_3pl.tests.common import WEBHOOK_SECRET as TPL_SECRET
from odoo.addons.connector_3pl.tests.common import start_tpl
from odoo.addons.connector_shopify.tests.common import (
    ensure_chart_of_accounts,
    make_backend,
    start_shop,
)
from odoo.addons.queue_job.job import Job as QueueJob


@tagged("post_install", "-at_install")
class TestShopifyOrderShippedByThe3pl(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        ensure_chart_of_accounts(env)  # refunds become credit notes and payments
        cls.shop = start_shop(
            cls, seed=7, products=12, webhook_topics=["orders/create", "refunds/create"]
        )
        cls.tpl = start_tpl(cls)
        # The warehouse the 3PL operates, and the store's orders shipped from it.
        cls.warehouse = env["stock.warehouse"].create({"name": "3PL Lyon", "code": "TPL"})
        cls.shopify = make_backend(
            env, base_url=cls.shop.url, shopify_warehouse_id=cls.warehouse.id
        )
        cls.skus = sorted({row["sku"] for row in cls.shop.inventory()})[:2]
        for sku in cls.skus:
            product = env["product.product"].create(
                {"name": f"Product {sku}", "default_code": sku, "is_storable": True}
            )
            env["stock.quant"]._update_available_quantity(product, cls.warehouse.lot_stock_id, 20)
            cls.tpl.set_on_hand(sku, 50, name=product.name)
        cls.tpl_backend = env["connector.backend"].create(
            {
                "name": "3PL Lyon",
                "backend_type": "3pl",
                "base_url": cls.tpl.api_url,
                "api_token": TPL_TOKEN,
                "webhook_secret": TPL_SECRET,
                "tpl_warehouse_id": cls.warehouse.id,
                "tpl_channel_id": cls.tpl.headers["shipbob_channel_id"],
                "state": "running",
            }
        )
        service = env["product.product"].create({"name": "Shipping", "type": "service"})
        cls.dhl, cls.ups = env["delivery.carrier"].create(
            [
                {"name": "DHL Parcel", "product_id": service.id},
                {"name": "UPS Standard", "product_id": service.id},
            ]
        )
        env["tpl.carrier"].create(
            [
                {
                    "backend_id": cls.tpl_backend.id,
                    "carrier": "DHL",
                    "delivery_carrier_id": cls.dhl.id,
                },
                {
                    "backend_id": cls.tpl_backend.id,
                    "carrier": "UPS",
                    "delivery_carrier_id": cls.ups.id,
                },
            ]
        )

    def setUp(self):
        super().setUp()
        self.shop.webhook_url = f"{self.base_url()}/connector/shopify/webhook"
        self.tpl.webhook_url = f"{self.base_url()}/connector/3pl/{self.tpl_backend.id}/webhook"

    def deliver_webhooks(self, *simulators):
        # The simulators are other programs: let their requests in without the
        # session cookie Odoo's test server otherwise demands.
        with self.allow_requests(all_requests=True):
            for simulator in simulators:
                self.assertTrue(simulator.wait_webhooks(timeout=30), simulator.webhooks.log())

    def run_jobs(self):
        """Run the pending jobs, and those they queue in turn, as the runner would."""
        Job = self.env["queue.job"]
        for _ in range(20):
            jobs = Job.search([("state", "=", "pending")], order="id")
            if not jobs:
                return
            for record in jobs:
                job = QueueJob.load(self.env, record.uuid)
                job.set_started()
                job.perform()
                job.set_done()
                job.store()
        self.fail("jobs still queued after 20 rounds")

    def test_order_shipped_in_two_parcels_is_fulfilled_with_both_tracking_numbers(self):
        self.shop.webhooks.faults = WebhookFaults()
        order = self.shop.create_order([(self.skus[0], 2), (self.skus[1], 1)])
        self.deliver_webhooks(self.shop)
        self.run_jobs()
        sale = self.env["sale.order"].search([("client_order_ref", "=", order["name"])])
        self.assertEqual(sale.state, "sale")
        picking = sale.picking_ids
        self.assertEqual(picking.picking_type_id.warehouse_id, self.warehouse)
        # Reserved in the 3PL's warehouse: released to the 3PL.
        self.assertEqual(picking.tpl_release_state, "released", picking.tpl_message)
        (tpl_order,) = [o for o in self.tpl.orders() if o["reference_id"] == picking.name]
        self.assertEqual(
            {line["reference_id"]: line["quantity"] for line in tpl_order["products"]},
            {self.skus[0]: 2, self.skus[1]: 1},
        )

        # The 3PL ships it in two parcels, each with its carrier and tracking.
        shipment = self.tpl.ship(
            picking.name, parcels=[{self.skus[0]: 2}, {self.skus[1]: 1}], carriers=["DHL", "UPS"]
        )
        numbers = sorted(p["tracking_number"] for p in shipment["packages"])
        self.assertEqual(len(set(numbers)), 2)
        self.deliver_webhooks(self.tpl)
        self.run_jobs()
        self.assertEqual(picking.state, "done")
        self.assertEqual(sorted(picking.tpl_parcel_ids.mapped("tracking_number")), numbers)

        # The Shopify connector's own flow fulfilled it, with both numbers.
        (fulfillment,) = self.shop.fulfillments(order["name"])
        self.assertEqual(sorted(fulfillment["tracking_numbers"]), numbers)
        self.assertEqual(
            {line["sku"]: line["quantity"] for line in fulfillment["line_items"]},
            {self.skus[0]: 2, self.skus[1]: 1},
        )
        self.assertEqual(self.shop.order(order["name"])["fulfillment_status"], "fulfilled")
        item = self.env["connector.outbound"].search(
            [("topic", "=", "fulfillment.create"), ("res_id", "=", picking.id)]
        )
        self.assertEqual(item.state, "sent", item.error_message)

    # --- refunds with restock -------------------------------------------------------

    def shipped_by_the_3pl(self, lines):
        """A Shopify order of ``lines`` shipped by the 3PL and fulfilled."""
        order = self.shop.create_order(lines)
        self.deliver_webhooks(self.shop)
        self.run_jobs()
        sale = self.env["sale.order"].search([("client_order_ref", "=", order["name"])])
        delivery = sale.picking_ids
        self.assertEqual(delivery.tpl_release_state, "released", delivery.tpl_message)
        self.tpl.ship(delivery.name)
        self.deliver_webhooks(self.tpl)
        self.run_jobs()
        self.assertEqual(delivery.state, "done")
        self.assertEqual(self.shop.order(order["name"])["fulfillment_status"], "fulfilled")
        return order, sale, delivery

    def refunded_with_restock_twice(self, order, lines):
        """Refund ``lines`` of ``order`` with restock, its webhook delivered
        twice, then once more under another id; the refund's binding."""
        Event = self.env["connector.event"]
        before = Event.search([], order="id desc", limit=1)
        self.shop.webhooks.faults = WebhookFaults(duplicate=1.0)
        refund = self.shop.refund_order(order["name"], lines, restock=True)
        self.assertEqual(refund["refund_line_items"][0]["restock_type"], "return")
        self.deliver_webhooks(self.shop)
        self.shop.webhooks.faults = WebhookFaults()
        Event._receive(self.shopify, "refunds/create", refund, f"replay-{refund['id']}")
        self.run_jobs()
        events = Event.search([("topic", "=", "refunds/create"), ("id", ">", before.id)])
        self.assertEqual(sorted(events.mapped("state")), ["done", "done", "duplicate"])
        return self.env["shopify.refund.binding"]._find(self.shopify, refund["id"])

    def received(self, picking):
        """``{location: quantity}`` of the done moves of ``picking``."""
        found = {}
        for move in picking.move_ids.filtered(lambda m: m.state == "done"):
            found[move.location_dest_id] = found.get(move.location_dest_id, 0) + move.quantity
        return found

    def on_hand(self, sku, location):
        product = self.env["product.product"].search([("default_code", "=", sku)])
        return product.with_context(location=location.id).qty_available

    def test_refund_with_restock_comes_back_through_the_3pl(self):
        self.shop.webhooks.faults = WebhookFaults()
        order, sale, delivery = self.shipped_by_the_3pl([(self.skus[0], 3), (self.skus[1], 1)])
        stock = self.warehouse.lot_stock_id
        before = self.on_hand(self.skus[0], stock)
        rmas_before = len(self.tpl.returns())

        # Refunded without restock: the customer keeps it, nothing comes back.
        self.shop.refund_order(order["name"], {self.skus[1]: 1}, restock=False)
        self.deliver_webhooks(self.shop)
        self.run_jobs()
        self.assertFalse(sale.picking_ids.filtered(lambda p: p.picking_type_code == "incoming"))

        # Refunded with restock: one return, announced once.
        binding = self.refunded_with_restock_twice(order, {self.skus[0]: 3})
        self.assertEqual(binding.odoo_id.state, "posted", "Shopify refunded: the credit note")
        returned = binding.picking_ids
        self.assertEqual(len(returned), 1)
        self.assertEqual(returned.return_id, delivery)
        self.assertEqual(returned.state, "assigned", "the goods are not back yet")
        self.assertEqual(returned.move_ids.product_uom_qty, 3)
        self.assertTrue(
            any("Refunded in Shopify" in str(body) for body in returned.message_ids.mapped("body"))
        )
        self.assertEqual(
            sale.picking_ids.filtered(lambda p: p.picking_type_code == "incoming"), returned
        )
        rma = returned.tpl_return_binding_ids
        self.assertEqual(rma.state, "announced", rma.tpl_message)
        self.assertEqual(rma.reference, returned.name)
        announcement = self.env["connector.outbound"].search(
            [("topic", "=", "return.expect"), ("res_id", "=", returned.id)]
        )
        self.assertEqual(announcement.mapped("state"), ["sent"])
        self.assertEqual((rma.refund_state, rma.refunded_by_id), ("refunded", self.shopify))
        self.assertEqual(returned.tpl_rma_refund_state, "refunded")
        (tpl_return,) = [r for r in self.tpl.returns() if r["reference_id"] == rma.reference]
        self.assertEqual(len(self.tpl.returns()), rmas_before + 1)
        self.assertEqual(
            [item["quantity"] for item in tpl_return["inventory"]], [3], tpl_return["inventory"]
        )
        self.assertEqual(self.on_hand(self.skus[0], stock), before, "nothing received yet")

        # The 3PL reports what it did with each unit: received where that
        # maps; a unit it threw away is received, then scrapped.
        self.tpl.complete_return(
            rma.reference,
            [
                (self.skus[0], 1, "Restock", "SELLABLE"),
                (self.skus[0], 1, "Quarantine", "CARRIER_DAMAGED"),
                (self.skus[0], 1, "Dispose", "DEFECTIVE"),
            ],
        )
        self.deliver_webhooks(self.tpl)
        self.run_jobs()
        self.assertEqual(returned.state, "done")
        inspect = self.tpl_backend.tpl_inspect_location_id
        self.assertEqual(self.received(returned), {stock: 2, inspect: 1})
        self.assertEqual(self.on_hand(self.skus[0], stock), before + 1)
        self.assertEqual(self.on_hand(self.skus[0], inspect), 1)
        scrapped = self.env["stock.scrap"].search([("origin", "=", returned.name)])
        self.assertEqual((scrapped.scrap_qty, scrapped.state), (1, "done"))
        self.assertEqual(rma.state, "received")
        self.assertEqual(rma.refund_state, "refunded", "the money went back in Shopify")
        line = sale.order_line.filtered(lambda sol: sol.product_id.default_code == self.skus[0])
        self.assertEqual((line.qty_delivered, line.product_uom_qty), (0, 0))

    def test_refund_with_restock_from_a_warehouse_no_3pl_runs_is_received_at_once(self):
        self.shop.webhooks.faults = WebhookFaults()
        paris = self.env["stock.warehouse"].create({"name": "Paris", "code": "PAR"})
        product = self.env["product.product"].search([("default_code", "=", self.skus[1])])
        self.env["stock.quant"]._update_available_quantity(product, paris.lot_stock_id, 5)
        self.shopify.shopify_warehouse_id = paris
        rmas_before = len(self.tpl.returns())
        order = self.shop.create_order([(self.skus[1], 2)])
        self.deliver_webhooks(self.shop)
        self.run_jobs()
        sale = self.env["sale.order"].search([("client_order_ref", "=", order["name"])])
        delivery = sale.picking_ids
        self.assertEqual(delivery.picking_type_id.warehouse_id, paris)
        self.assertFalse(delivery.tpl_binding_ids, "no 3PL runs Paris")
        delivery.move_ids.quantity = 2
        delivery.move_ids.picked = True
        delivery._action_done()
        self.run_jobs()
        self.assertEqual(self.shop.order(order["name"])["fulfillment_status"], "fulfilled")
        refund = self.shop.refund_order(order["name"], {self.skus[1]: 1}, restock=True)
        self.deliver_webhooks(self.shop)
        self.run_jobs()
        returned = self.env["shopify.refund.binding"]._find(self.shopify, refund["id"]).picking_ids
        self.assertEqual((returned.state, returned.return_id), ("done", delivery))
        self.assertEqual(returned.location_dest_id, paris.lot_stock_id)
        self.assertEqual(product.with_context(location=paris.lot_stock_id.id).qty_available, 4)
        self.assertFalse(returned.tpl_return_binding_ids)
        self.assertEqual(len(self.tpl.returns()), rmas_before)

    def test_order_part_fulfilled_in_shopify_releases_only_the_rest_to_the_3pl(self):
        """The merchant fulfilled part of the order from Shopify's admin before
        Odoo read it: that part is delivered at import and never reaches the
        3PL; the 3PL ships the rest, and only the rest is fulfilled back."""
        self.shop.webhook_url = None  # Odoo reads the order once part fulfilled
        order = self.shop.create_order([(self.skus[0], 3), (self.skus[1], 1)])
        self.shop.fulfill_order(order["name"], tracking_number="ADMIN-1", lines={self.skus[0]: 2})
        self.env["connector.event"]._receive(
            self.shopify, "orders/create", self.shop.order(order["name"]), "wh-part"
        )
        self.run_jobs()
        sale = self.env["sale.order"].search([("client_order_ref", "=", order["name"])])
        done = sale.picking_ids.filtered(lambda p: p.state == "done")
        rest = sale.picking_ids - done
        self.assertTrue(done.shopify_fulfilled)
        self.assertFalse(done.tpl_binding_ids, "what Shopify fulfilled is never released")
        self.assertEqual(rest.tpl_release_state, "released", rest.tpl_message)
        released = {o["reference_id"]: o for o in self.tpl.orders()}
        self.assertNotIn(done.name, released)
        self.assertEqual(
            {line["reference_id"]: line["quantity"] for line in released[rest.name]["products"]},
            {self.skus[0]: 1, self.skus[1]: 1},
        )

        self.tpl.ship(rest.name, carriers=["DHL"])
        self.deliver_webhooks(self.tpl)
        self.run_jobs()
        self.assertEqual(rest.state, "done")
        fulfillments = self.shop.fulfillments(order["name"])
        self.assertEqual(
            sorted(
                sorted((line["sku"], line["quantity"]) for line in f["line_items"])
                for f in fulfillments
            ),
            sorted([[(self.skus[0], 2)], sorted([(self.skus[0], 1), (self.skus[1], 1)])]),
        )
        self.assertEqual(self.shop.order(order["name"])["fulfillment_status"], "fulfilled")
        items = self.env["connector.outbound"].search([("topic", "=", "fulfillment.create")])
        self.assertEqual(items.mapped("res_id"), [rest.id])
        self.assertEqual(items.state, "sent", items.error_message)

    def test_units_fulfilled_in_shopify_without_odoo_stock_never_reach_the_3pl(self):
        """Shopify fulfilled units Odoo has no stock of at the 3PL's warehouse:
        their delivery waits for someone to correct the stock; made ready
        then, it is still never released, for the goods already left."""
        self.shop.webhook_url = None
        sku = self.skus[1]
        product = self.env["product.product"].search([("default_code", "=", sku)])
        stock = self.warehouse.lot_stock_id
        on_hand = product.with_context(location=stock.id).qty_available
        self.env["stock.quant"]._update_available_quantity(product, stock, -on_hand)
        order = self.shop.create_order([(sku, 1)])
        self.shop.fulfill_order(order["name"], tracking_number="ADMIN-2")
        self.env["connector.event"]._receive(
            self.shopify, "orders/create", self.shop.order(order["name"]), "wh-short"
        )
        self.run_jobs()
        held = self.env["sale.order"].search([("client_order_ref", "=", order["name"])]).picking_ids
        self.assertEqual((held.state, held.shopify_fulfilled), ("confirmed", True))
        self.env["stock.quant"]._update_available_quantity(product, stock, 5)
        held.action_assign()
        self.run_jobs()
        self.assertEqual(held.state, "assigned")
        self.assertFalse(held.tpl_binding_ids, "goods Shopify fulfilled are never released")
        self.assertNotIn(held.name, {o["reference_id"] for o in self.tpl.orders()})
