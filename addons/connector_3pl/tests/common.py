from datetime import datetime, timezone

from simulators import ThirdPartyLogisticsSimulator

from odoo import Command

from odoo.addons.connector_base.tests.common import run_trapped_jobs

EPOCH = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
ACCESS_TOKEN = "tpl_test_token_0123456789"
WEBHOOK_SECRET = "tpl-test-webhook-secret"


def start_tpl(test_class, **options):
    """A 3PL simulator with the test credentials, stopped with the class."""
    tpl = ThirdPartyLogisticsSimulator(
        **{
            "seed": 13,
            "epoch": EPOCH,
            "access_token": ACCESS_TOKEN,
            "webhook_secret": WEBHOOK_SECRET,
            **options,
        }
    ).start()
    test_class.addClassCleanup(tpl.stop)
    return tpl


def connect_3pl(test_class, sku_count=2, on_hand=10, **options):
    """A 3PL and its backend set up as the configuration guide says: a
    warehouse of its own, the token and channel, ``sku_count`` of the 3PL's
    SKUs as storable products with ``on_hand`` units in that warehouse (and
    50 on the 3PL's shelves), a customer with a full address."""
    env = test_class.env
    tpl = test_class.tpl = start_tpl(test_class, **options)
    warehouse = test_class.warehouse = env["stock.warehouse"].create(
        {"name": "3PL Lyon", "code": "TPL"}
    )
    test_class.skus = sorted(tpl.inventory())[:sku_count]
    products = env["product.product"]
    for sku in test_class.skus:
        tpl.set_on_hand(sku, 50)
        product = env["product.product"].create(
            {"name": f"Product {sku}", "default_code": sku, "is_storable": True}
        )
        env["stock.quant"]._update_available_quantity(product, warehouse.lot_stock_id, on_hand)
        products |= product
    test_class.products = products
    test_class.customer = env["res.partner"].create(
        {
            "name": "Camille Martin",
            "email": "camille@example.com",
            "street": "12 rue de la Paix",
            "city": "Paris",
            "zip": "75002",
            "country_id": env.ref("base.fr").id,
        }
    )
    test_class.backend = env["connector.backend"].create(
        {
            "name": "3PL Lyon",
            "backend_type": "3pl",
            "base_url": tpl.api_url,
            "api_token": ACCESS_TOKEN,
            "webhook_secret": WEBHOOK_SECRET,
            "tpl_warehouse_id": warehouse.id,
            "tpl_channel_id": tpl.headers["shipbob_channel_id"],
            "state": "running",
        }
    )
    return test_class.backend


class TplCaseMixin:
    """Deliveries of the 3PL's warehouse and what the 3PL made of them."""

    def product(self, sku):
        return self.products.filtered(lambda p: p.default_code == sku)

    def make_delivery(self, lines, customer=None, warehouse=None, user=None, context=None):
        """A confirmed delivery of ``{sku: quantity}``, reserved as far as the
        stock allows (which queues its release), made by ``user`` if given,
        in ``context`` if given."""
        warehouse = warehouse or self.warehouse
        customers = self.env.ref("stock.stock_location_customers")
        env = self.env(user=user) if user else self.env
        env = env(context=dict(env.context, **context)) if context else env
        picking = env["stock.picking"].create(
            {
                "picking_type_id": warehouse.out_type_id.id,
                "partner_id": (customer or self.customer).id,
                "location_id": warehouse.lot_stock_id.id,
                "location_dest_id": customers.id,
                "move_ids": [
                    Command.create(
                        {
                            "product_id": self.product(sku).id,
                            "product_uom_qty": quantity,
                            "location_id": warehouse.lot_stock_id.id,
                            "location_dest_id": customers.id,
                        }
                    )
                    for sku, quantity in lines.items()
                ],
            }
        )
        picking.action_confirm()
        picking.action_assign()
        return picking

    def run_jobs(self, trap):
        run_trapped_jobs(self.env, trap)

    def outbound(self, picking, topic="order.release"):
        return self.env["connector.outbound"].search(
            [
                ("topic", "=", topic),
                ("res_model", "=", "stock.picking"),
                ("res_id", "=", picking.id),
            ]
        )

    def tpl_orders(self, picking):
        """The 3PL's orders of this delivery's reference."""
        return [o for o in self.tpl.orders() if o["reference_id"] == picking.name]

    def tpl_quantities(self, order):
        return {line["reference_id"]: line["quantity"] for line in order["products"]}

    def receive_webhooks(self, topic=None, seen=None):
        """Store the 3PL's webhooks of ``topic`` not stored yet, as the intake
        does (same keys, same times); returns the events."""
        seen = self._seen_webhooks if seen is None else seen
        events = self.env["connector.event"]
        for message in self.tpl.webhook_messages(topic):
            if message["message_id"] in seen:
                continue
            seen.add(message["message_id"])
            headers = {"X-3pl-Message-Id": message["message_id"], "X-3pl-Topic": message["topic"]}
            found = self.backend._webhook_message(message["payload"], headers)
            events |= self.env["connector.event"]._receive(
                self.backend,
                found["topic"],
                message["payload"],
                found["idempotency_key"],
                occurred_at=found["occurred_at"],
            )
        return events

    def release(self, lines, trap):
        """A delivery of ``lines`` released to the 3PL."""
        picking = self.make_delivery(lines)
        self.run_jobs(trap)
        self.assertEqual(picking.tpl_release_state, "released", picking.tpl_message)
        return picking
