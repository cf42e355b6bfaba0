from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.tests import TransactionCase

from odoo.addons.connector_base.tests.common import (
    perform_trapped_jobs,
    run_trapped_jobs,
    trap_jobs,
)

from .common import connect_store

ON_HAND = 20


class TestOrderRouting(TransactionCase):
    """An online order ships from the warehouse of the Shopify location it is
    routed to: a store shipping from its shelves reserves the store's stock."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        connect_store(cls, sku_count=1, on_hand=ON_HAND, seed=47, products=4, locations=3)
        cls.backend._policy("stock_out").enabled = False
        cls.main, cls.store_location, cls.unmapped = cls.backend.shopify_location_ids.sorted("id")
        cls.default = cls.backend.shopify_warehouse_id
        # The administrator's setup of a store that ships online orders: a
        # warehouse of its own, its Shopify location mapped to its stock.
        cls.store = cls.env["stock.warehouse"].create({"name": "Store Soho", "code": "SOH"})
        cls.store_location.write(
            {"warehouse_id": cls.store.id, "location_id": cls.store.lot_stock_id.id}
        )
        cls.product = cls.products
        cls.env["stock.quant"]._update_available_quantity(
            cls.product, cls.store.lot_stock_id, ON_HAND
        )

    def import_order(self, location):
        before = self.routing_calls()
        payload = self.shop.create_order([(self.skus[0], 2)], location=location.external_id)
        with trap_jobs() as trap:
            event = self.env["connector.event"]._receive(
                self.backend, "orders/create", payload, f"wh-{payload['id']}"
            )
            run_trapped_jobs(self.env, trap)
        self.assertEqual(event.state, "done", event.error_message)
        return event._produced_record(), self.routing_calls() - before

    def routing_calls(self):
        return sum("graphql:order" in entry["names"] for entry in self.shop.requests.entries())

    def free(self, warehouse):
        return self.product.with_context(location=warehouse.lot_stock_id.id).free_qty

    def test_order_routed_to_a_store_reserves_the_stores_stock(self):
        order, calls = self.import_order(self.store_location)
        self.assertEqual(order.warehouse_id, self.store)
        self.assertEqual(calls, 1, "one question to Shopify: where the order is routed")
        picking = order.picking_ids
        self.assertEqual(picking.location_id, self.store.lot_stock_id)
        self.assertEqual(picking.state, "assigned")
        # What the stock flow sends Shopify for the store counts the order.
        self.assertEqual(self.free(self.store), ON_HAND - 2)
        self.assertEqual(self.free(self.default), ON_HAND)

    def test_order_routed_to_the_main_location_stays_on_the_backends_warehouse(self):
        order, _calls = self.import_order(self.main)
        self.assertEqual(order.warehouse_id, self.default)
        self.assertEqual(order.picking_ids.location_id, self.default.lot_stock_id)
        self.assertEqual(self.free(self.store), ON_HAND)

    def test_order_routed_to_a_location_mapped_to_no_warehouse_stays_on_the_backends(self):
        order, _calls = self.import_order(self.unmapped)
        self.assertEqual(order.warehouse_id, self.default)

    def test_without_a_store_mapped_no_routing_is_asked(self):
        self.store_location.write({"warehouse_id": False, "location_id": False})
        order, calls = self.import_order(self.store_location)
        self.assertEqual(order.warehouse_id, self.default)
        self.assertEqual(calls, 0)

    def test_routing_unanswered_is_retried_then_the_order_imported_once(self):
        self.shop.faults.add("error", status=503, limit=2, endpoint="graphql:order")
        # Two failures do not open the circuit here: no time passes in a test.
        self.backend.circuit_threshold = 100
        payload = self.shop.create_order(
            [(self.skus[0], 1)], location=self.store_location.external_id
        )
        start = fields.Datetime.now()
        with trap_jobs() as trap:
            event = self.env["connector.event"]._receive(
                self.backend, "orders/create", payload, f"wh-{payload['id']}"
            )
            # A minute later each time: the retry is due.
            for minute in range(1, 6):
                with freeze_time(start + timedelta(minutes=minute)):
                    perform_trapped_jobs(self.env, trap)
                if event.state == "done":
                    break
                self.assertEqual(event.state, "queued", "waiting for its retry, nothing lost")
        self.assertEqual(event.state, "done", event.error_message)
        refused = [
            entry
            for entry in self.shop.requests.entries()
            if "graphql:order" in entry["names"] and entry["status"] == 503
        ]
        self.assertEqual(len(refused), 2, "the 503s were met")
        orders = self.env["sale.order"].search([("client_order_ref", "=", payload["name"])])
        self.assertEqual(len(orders), 1)
        self.assertEqual(orders.warehouse_id, self.store)
