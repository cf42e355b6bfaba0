from simulators.base import WebhookFaults

from odoo.tests import HttpCase, tagged

from odoo.addons.queue_job.job import Job as QueueJob

from .common import make_backend, make_products, start_shop


@tagged("post_install", "-at_install")
class TestShopifyEndToEnd(HttpCase):
    """The simulated store sends signed webhooks to Odoo's HTTP server; jobs apply them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.shop = start_shop(
            cls,
            seed=5,
            products=12,
            webhook_topics=["orders/create", "orders/updated", "orders/cancelled"],
        )
        cls.backend = make_backend(cls.env, base_url=cls.shop.url)
        cls.skus = sorted({row["sku"] for row in cls.shop.inventory()})[:3]
        make_products(cls.env, cls.skus, on_hand=50)

    def setUp(self):
        super().setUp()
        self.shop.webhook_url = f"{self.base_url()}/connector/shopify/webhook"

    def deliver_and_apply(self):
        """Deliver the store's webhooks, then run the jobs Odoo queued for them,
        as queue_job's runner would (and those these jobs queue in turn)."""
        self.deliver()
        Job = self.env["queue.job"]
        for _ in range(5):
            jobs = Job.search(
                [
                    ("state", "=", "pending"),
                    ("method_name", "in", ("_dispatch_received", "_process", "_process_batch")),
                ]
            )
            if not jobs:
                return
            for record in jobs:
                job = QueueJob.load(self.env, record.uuid)
                job.perform()
                job.set_done()
                job.store()

    def deliver(self):
        # The store is another program: let its requests in without the
        # session cookie Odoo's test server otherwise demands.
        with self.allow_requests(all_requests=True):
            self.assertTrue(self.shop.wait_webhooks(timeout=30), "webhooks still undelivered")

    def test_order_delivered_twice_becomes_one_confirmed_sale_order(self):
        self.shop.webhooks.faults = WebhookFaults(duplicate=1.0)
        order = self.shop.create_order([(self.skus[0], 2), (self.skus[1], 1)])
        self.deliver_and_apply()
        self.shop.webhooks.faults = WebhookFaults()
        events = self.env["connector.event"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(
            sorted(events.mapped("state")), ["done", "duplicate"], self.shop.webhooks.log()
        )
        sale = self.env["sale.order"].search([("client_order_ref", "=", order["name"])])
        self.assertEqual(len(sale), 1)
        self.assertEqual(sale.state, "sale")
        self.assertEqual(sale.currency_id.name, order["currency"])
        self.assertAlmostEqual(sale.amount_total, float(order["total_price"]), places=2)
        self.assertEqual(
            sorted(sale.order_line.mapped("product_id.default_code"))[:2],
            sorted(self.skus[:2]),
        )
        self.assertEqual(sale.partner_id.email, order["customer"]["email"])

    def test_bad_signature_from_the_store_is_refused(self):
        self.shop.webhooks.faults = WebhookFaults(bad_signature=1.0)
        self.shop.create_order([(self.skus[2], 1)])
        self.deliver()
        self.shop.webhooks.faults = WebhookFaults()
        self.assertFalse(self.env["connector.event"].search([("backend_id", "=", self.backend.id)]))
        self.assertFalse(self.env["queue.job"].search([("model_name", "=", "connector.event")]))
        self.backend.invalidate_recordset()  # written by the HTTP request, on its own cursor
        self.assertGreaterEqual(self.backend.webhook_rejected_count, 1)
