from odoo.tests import TransactionCase

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs

from .common import connect_store

TOPIC = "fulfillment.create"


class TestFulfilledInShopify(TransactionCase):
    """An order Shopify fulfilled, wholly or in part, before Odoo shipped it:
    those units leave Odoo's stock as delivered, and nothing goes back."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        connect_store(cls, sku_count=2, on_hand=20, seed=53, products=8)
        cls.stock = cls.env.ref("stock.warehouse0").lot_stock_id

    def product(self, sku):
        return self.products.filtered(lambda p: p.default_code == sku)

    def on_hand(self, sku):
        return self.product(sku).with_context(location=self.stock.id).qty_available

    def receive(self, trap, topic, payload, key):
        event = self.env["connector.event"]._receive(self.backend, topic, payload, key)
        run_trapped_jobs(self.env, trap)
        return event

    def import_order(self, trap, name):
        event = self.receive(trap, "orders/create", self.shop.order(name), f"wh-{name}")
        self.assertEqual(event.state, "done", event.error_message)
        return event._produced_record()

    def fulfillment_creates(self):
        return [
            entry
            for entry in self.shop.requests.entries()
            if "fulfillmentCreate" in (entry.get("fields") or [])
        ]

    def deliveries(self, sale):
        return sale.picking_ids.filtered(lambda p: p.picking_type_code == "outgoing")

    def delivered(self, pickings):
        """{SKU: units} done on ``pickings``."""
        units = {}
        for move in pickings.move_ids.filtered(lambda m: m.state == "done"):
            sku = move.product_id.default_code
            units[sku] = units.get(sku, 0) + move.quantity
        return units

    def to_ship(self, pickings):
        """{SKU: units} still to ship on ``pickings``."""
        units = {}
        for move in pickings.move_ids.filtered(lambda m: m.state not in ("done", "cancel")):
            sku = move.product_id.default_code
            units[sku] = units.get(sku, 0) + move.product_uom_qty
        return units

    def messages(self, sale):
        return "\n".join(sale.message_ids.mapped("body"))

    def test_fully_fulfilled_order_is_delivered_and_nothing_is_sent(self):
        first, second = self.skus
        order = self.shop.create_order([(first, 2), (second, 1)])
        self.shop.fulfill_order(order["name"], tracking_number="ADMIN-1")
        self.shop.requests.clear()
        with trap_jobs() as trap:
            sale = self.import_order(trap, order["name"])
            run_trapped_jobs(self.env, trap)
        delivery = self.deliveries(sale)
        self.assertEqual(delivery.mapped("state"), ["done"])
        self.assertTrue(delivery.shopify_fulfilled)
        self.assertEqual(self.delivered(delivery), {first: 2, second: 1})
        self.assertEqual((self.on_hand(first), self.on_hand(second)), (18, 19))
        self.assertEqual(self.fulfillment_creates(), [])
        self.assertFalse(self.env["connector.outbound"].search([("topic", "=", TOPIC)]))
        self.assertEqual(len(self.shop.fulfillments(order["name"])), 1)
        self.assertIn(
            "3 units were already fulfilled in Shopify: delivered in Odoo", self.messages(sale)
        )

    def test_partly_fulfilled_order_ships_the_rest_as_one_fulfillment(self):
        first, second = self.skus
        order = self.shop.create_order([(first, 3), (second, 1)])
        self.shop.fulfill_order(order["name"], tracking_number="STORE-1", lines={first: 2})
        with trap_jobs() as trap:
            sale = self.import_order(trap, order["name"])
            done = self.deliveries(sale).filtered(lambda p: p.state == "done")
            rest = self.deliveries(sale) - done
            self.assertTrue(done.shopify_fulfilled)
            self.assertEqual(self.delivered(done), {first: 2})
            self.assertEqual(rest.backorder_id, done)
            self.assertFalse(rest.shopify_fulfilled)
            self.assertEqual(rest.state, "assigned")
            self.assertEqual(self.to_ship(rest), {first: 1, second: 1})
            self.assertEqual(self.fulfillment_creates(), [])
            self.assertIn("2 units were already fulfilled in Shopify", self.messages(sale))

            rest.move_ids.quantity = 1
            rest.move_ids.picked = True
            rest.carrier_tracking_ref = "ODOO-1"
            rest._action_done()
            run_trapped_jobs(self.env, trap)
            # Shopify's orders/updated after Odoo's fulfillment: nothing more
            # to deliver, nothing sent again.
            update = self.receive(trap, "orders/updated", self.shop.order(order["name"]), "wh-u")
            self.assertEqual(update.state, "done", update.error_message)
        self.assertEqual(len(self.fulfillment_creates()), 1)
        fulfillments = self.shop.fulfillments(order["name"])
        self.assertEqual(
            sorted(
                (
                    f["tracking_number"],
                    sorted((li["sku"], li["quantity"]) for li in f["line_items"]),
                )
                for f in fulfillments
            ),
            [("ODOO-1", sorted([(first, 1), (second, 1)])), ("STORE-1", [(first, 2)])],
        )
        self.assertEqual(self.shop.order(order["name"])["fulfillment_status"], "fulfilled")
        self.assertEqual(self.delivered(self.deliveries(sale)), {first: 3, second: 1})
        self.assertEqual(self.to_ship(self.deliveries(sale)), {})

    def test_fulfilled_units_short_of_stock_wait_apart_never_negative(self):
        first, _second = self.skus
        self.env["stock.quant"]._update_available_quantity(self.product(first), self.stock, -19)
        order = self.shop.create_order([(first, 3)])
        self.shop.fulfill_order(order["name"])
        with trap_jobs() as trap:
            sale = self.import_order(trap, order["name"])
            run_trapped_jobs(self.env, trap)
        deliveries = self.deliveries(sale)
        done = deliveries.filtered(lambda p: p.state == "done")
        held = deliveries - done
        self.assertEqual(self.delivered(done), {first: 1})
        self.assertEqual(self.to_ship(held), {first: 2})
        self.assertEqual(held.mapped("shopify_fulfilled"), [True])
        self.assertEqual(self.on_hand(first), 0, "never below zero")
        self.assertIn(
            f"Fulfilled in Shopify but not in stock in Odoo, so not delivered: 2 x {first}",
            self.messages(sale),
        )
        # The stock is corrected, someone validates the units set aside:
        # still nothing goes to Shopify, which has nothing left to fulfill.
        self.env["stock.quant"]._update_available_quantity(self.product(first), self.stock, 2)
        with trap_jobs() as trap:
            held.action_assign()
            held.move_ids.picked = True
            held._action_done()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(held.state, "done")
        self.assertEqual(self.on_hand(first), 0)
        self.assertEqual(self.fulfillment_creates(), [])
        self.assertFalse(self.env["connector.outbound"].search([("topic", "=", TOPIC)]))

    def test_fulfilled_order_with_nothing_in_stock_waits_whole(self):
        first, _second = self.skus
        self.env["stock.quant"]._update_available_quantity(self.product(first), self.stock, -20)
        order = self.shop.create_order([(first, 2)])
        self.shop.fulfill_order(order["name"])
        with trap_jobs() as trap:
            sale = self.import_order(trap, order["name"])
            run_trapped_jobs(self.env, trap)
        delivery = self.deliveries(sale)
        self.assertEqual(len(delivery), 1, "no empty delivery left behind")
        self.assertTrue(delivery.shopify_fulfilled)
        self.assertEqual(self.to_ship(delivery), {first: 2})
        self.assertEqual(self.on_hand(first), 0)
        self.assertNotIn("already fulfilled in Shopify: delivered", self.messages(sale))
        self.assertIn(f"not delivered: 2 x {first}", self.messages(sale))

    def test_order_fulfilled_in_shopify_after_import_is_delivered_on_update(self):
        first, second = self.skus
        order = self.shop.create_order([(first, 2), (second, 2)])
        with trap_jobs() as trap:
            sale = self.import_order(trap, order["name"])
            self.shop.fulfill_order(order["name"], lines={second: 2})
            payload = self.shop.order(order["name"])
            self.receive(trap, "orders/updated", payload, "wh-u1")
            # The same fulfillment told again (a later update): delivered once.
            self.receive(trap, "orders/updated", dict(payload, note="gift"), "wh-u2")
        deliveries = self.deliveries(sale)
        self.assertEqual(self.delivered(deliveries), {second: 2})
        self.assertEqual(self.to_ship(deliveries), {first: 2})
        self.assertEqual(self.on_hand(second), 18)
        self.assertEqual(self.fulfillment_creates(), [])
        self.assertEqual(self.messages(sale).count("already fulfilled in Shopify"), 1)

    def test_order_read_by_the_backfill_is_delivered_as_its_fulfillments_say(self):
        """The GraphQL read gives the same: each fulfillment's lines."""
        first, second = self.skus
        order = self.shop.create_order([(first, 3), (second, 1)])
        self.shop.fulfill_order(order["name"], lines={first: 1})
        self.shop.fulfill_order(order["name"], lines={first: 1, second: 1})
        with trap_jobs() as trap:
            self.backend._shopify_backfill_orders("2000-01-01T00:00:00Z")
            run_trapped_jobs(self.env, trap)
        sale = self.env["sale.order"].search([("client_order_ref", "=", order["name"])])
        self.assertEqual(self.delivered(self.deliveries(sale)), {first: 2, second: 1})
        self.assertEqual(self.to_ship(self.deliveries(sale)), {first: 1})
        self.assertEqual(self.fulfillment_creates(), [])

    def fulfilled_payload(self, sku, line_items):
        """A fully fulfilled order's webhook, its fulfillment's lines replaced."""
        order = self.shop.create_order([(sku, 2)])
        self.shop.fulfill_order(order["name"])
        payload = self.shop.order(order["name"])
        lines = line_items(payload["line_items"][0]["id"])
        fulfillment = dict(payload["fulfillments"][0], line_items=lines)
        return dict(payload, fulfillments=[fulfillment])

    def test_fulfillment_of_an_unknown_line_or_too_many_units_is_refused_whole(self):
        first, _second = self.skus
        unknown = self.fulfilled_payload(first, lambda _line: [{"id": 999, "quantity": 1}])
        too_many = self.fulfilled_payload(first, lambda line: [{"id": line, "quantity": 3}])
        with trap_jobs() as trap:
            refused = [
                self.receive(trap, "orders/create", unknown, "wh-bad-1"),
                self.receive(trap, "orders/create", too_many, "wh-bad-2"),
            ]
        self.assertEqual([e.state for e in refused], ["failed", "failed"])
        self.assertIn(
            f"line item 999 is not one of order {unknown['name']}'s", refused[0].error_message
        )
        self.assertIn(
            f"line item {too_many['line_items'][0]['id']} of order {too_many['name']} is "
            "fulfilled 3 times but ordered 2",
            refused[1].error_message,
        )
        names = [unknown["name"], too_many["name"]]
        self.assertFalse(self.env["sale.order"].search([("client_order_ref", "in", names)]))
        self.assertEqual(self.on_hand(first), 20)
