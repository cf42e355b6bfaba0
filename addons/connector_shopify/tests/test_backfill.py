from odoo.tests import TransactionCase

from odoo.addons.connector_base.tests.common import trap_jobs

from .common import (
    connect_store,
    ensure_chart_of_accounts,
    make_backend,
    make_products,
    run_jobs,
    start_shop,
)

ORDER_COUNT = 500


class TestOrderBackfill(TransactionCase):
    """Orders and refunds a webhook never brought are read back by updated_at,
    exactly once."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        ensure_chart_of_accounts(cls.env)
        # A generous bucket: this test is about faults, not about pacing.
        cls.shop = start_shop(
            cls, seed=23, products=10, orders=ORDER_COUNT, restore_rate=50000, bucket_size=50000
        )
        cls.backend = make_backend(cls.env, base_url=cls.shop.url, circuit_threshold=50)
        make_products(cls.env, sorted({row["sku"] for row in cls.shop.inventory()}), on_hand=5000)

    def test_500_orders_under_throttling_and_errors_are_imported_exactly_once(self):
        self.shop.faults.add("throttle", rate=0.10, endpoint="graphql:orders", retry_after=1)
        self.shop.faults.add("error", rate=0.05, status=502, endpoint="graphql:orders")
        with trap_jobs() as trap:
            self.backend.with_delay()._shopify_backfill_orders("2000-01-01T00:00:00Z")
            _done, retries = run_jobs(self, trap, limit=5000)
        names = {order["name"] for order in self.shop.orders()}
        self.assertEqual(len(names), ORDER_COUNT)
        sales = self.env["sale.order"].search([("client_order_ref", "in", list(names))])
        self.assertEqual(len(sales), ORDER_COUNT, "every order imported")
        self.assertEqual(set(sales.mapped("client_order_ref")), names, "none twice")
        events = self.env["connector.event"].search([("backend_id", "=", self.backend.id)])
        self.assertFalse(events.filtered(lambda e: e.state not in ("done", "duplicate")))
        self.assertGreater(retries, 0, "the faults were met and retried")
        refunds = self.env["shopify.refund.binding"].search([("backend_id", "=", self.backend.id)])
        shop_refunds = {
            str(refund["id"]) for order in self.shop.orders() for refund in order["refunds"]
        }
        self.assertTrue(shop_refunds, "the seeded store has refunded orders")
        self.assertEqual(set(refunds.mapped("external_id")), shop_refunds, "every refund in")
        self.assertEqual(len(refunds.odoo_id), len(shop_refunds), "one credit note each")
        self.assertTrue(self.backend._policy("orders_in").watermark)
        # A second full read (the next backfill) recognises every order: no effect.
        self.shop.faults.clear()
        done = len(events.filtered(lambda e: e.state == "done"))
        with trap_jobs() as trap:
            self.backend.with_delay()._shopify_backfill_orders("2000-01-01T00:00:00Z")
            run_jobs(self, trap, limit=5000)
        self.assertEqual(
            self.env["sale.order"].search_count([("id", "in", sales.ids)]), ORDER_COUNT
        )
        events = self.env["connector.event"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(len(events.filtered(lambda e: e.state == "done")), done)
        self.assertEqual(
            self.env["shopify.refund.binding"].search_count([("backend_id", "=", self.backend.id)]),
            len(refunds),
        )


class TestLongOrderBackfill(TransactionCase):
    """An order longer than the page of line items read with the order."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        connect_store(cls, sku_count=12, on_hand=20, seed=29, products=8, orders=0)

    def test_an_order_of_twelve_lines_is_read_whole(self):
        self.assertEqual(len(self.skus), 12)
        order = self.shop.create_order([(sku, 1) for sku in self.skus])
        with trap_jobs() as trap:
            self.backend.with_delay()._shopify_backfill_orders("2000-01-01T00:00:00Z")
            run_jobs(self, trap)
        sale = self.env["sale.order"].search([("client_order_ref", "=", order["name"])])
        self.assertEqual(
            sorted(
                sale.order_line.filtered("product_id.is_storable").mapped("product_id.default_code")
            ),
            self.skus,
            "the 12 lines, not the first page of 10",
        )
        calls = [e for e in self.shop.requests.entries() if "graphql:order" in e["names"]]
        self.assertTrue(calls, "the lines beyond the first page were read with their order's id")

    def test_a_read_started_from_the_backend_shows_its_task(self):
        self.shop.create_order([(self.skus[0], 1)])
        self.shop.create_order([(self.skus[1], 2)])
        Task = self.env["connector.task"]
        with trap_jobs() as trap:
            self.backend.action_shopify_import_orders()
            task = Task.search([("backend_id", "=", self.backend.id)], limit=1)
            self.assertEqual(task.kind, "backfill")
            self.assertTrue(task.planning, "its pages are still to read")
            self.assertEqual((task.state, task.estimate), ("running", "Estimating…"))
            self.assertIn(task, self.backend.running_task_ids)
            run_jobs(self, trap)
        task.invalidate_recordset()
        orders = len(self.shop.orders())
        self.assertFalse(task.planning)
        self.assertEqual((task.state, task.done_count, task.total_count), ("done", orders, orders))
        applied = self.env["connector.event"].search(task.action_view_done()["domain"])
        self.assertEqual(set(applied.mapped("topic")), {"orders/updated"})
        self.assertEqual(len(applied), orders)
        # The next read meets orders already in: skipped as duplicates.
        with trap_jobs() as trap:
            self.backend.action_shopify_import_orders()
            run_jobs(self, trap)
        again = Task.search([("backend_id", "=", self.backend.id)], limit=1)
        self.assertNotEqual(again, task)
        self.assertEqual((again.state, again.done_count, again.failed_count), ("done", 0, 0))
        self.assertTrue(again.skipped_count)
        self.assertEqual(again.skipped_count, again.total_count)
        skipped = self.env["connector.event"].search(again.action_view_skipped()["domain"])
        self.assertEqual(set(skipped.mapped("state")), {"duplicate"})
