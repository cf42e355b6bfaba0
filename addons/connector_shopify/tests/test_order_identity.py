from datetime import datetime

from odoo.tests import TransactionCase, new_test_user

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs

from ..components.mapper_order import shopify_time
from .common import (
    ensure_chart_of_accounts,
    make_backend,
    make_products,
    order_payload,
    run_jobs,
    start_shop,
)

# 10:15:30 in New York is 15:15:30 UTC.
PROCESSED_AT = "2026-11-23T10:15:30-05:00"
PROCESSED_AT_UTC = datetime(2026, 11, 23, 15, 15, 30)


class TestOrderIdentity(TransactionCase):
    """An order keeps Shopify's date, the backend's salesperson and team, and is
    made by the backend's connector user: never the public user of a webhook,
    never the support user who requeued it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        cls.salesperson = new_test_user(
            cls.env, login="rs_seller", groups="sales_team.group_sale_salesman"
        )
        cls.team = cls.env["crm.team"].create({"name": "Web shop"})
        cls.backend = make_backend(
            cls.env, shopify_user_id=cls.salesperson.id, shopify_team_id=cls.team.id
        )
        # No remote behind this backend: only the orders flow is under test here.
        for flow in ("stock_out", "fulfillment_out"):
            cls.backend._policy(flow).enabled = False
        cls.products = make_products(cls.env)
        cls.robot = cls.backend.connector_user_id
        cls.public = cls.env.ref("base.public_user")
        cls.support = new_test_user(
            cls.env, login="rs_support_requeue", groups="connector_base.group_connector_user"
        )

    def receive_as_public(self, payload, webhook_id):
        """As the webhook route stores a message: the public user, in sudo."""
        Event = self.env["connector.event"].with_user(self.public).sudo()
        return Event._receive(
            self.backend.with_env(Event.env), "orders/create", payload, webhook_id
        )

    def assert_made_by_robot(self, order):
        self.assertEqual(order.create_uid, self.robot)
        binding = self.env["shopify.order.binding"].search([("odoo_id", "=", order.id)])
        self.assertEqual(binding.create_uid, self.robot)
        self.assertTrue(order.message_ids)
        self.assertEqual(order.message_ids.author_id, self.robot.partner_id)
        self.assertEqual(order.picking_ids.create_uid, self.robot)

    def test_order_date_salesperson_team_and_creator(self):
        payload = order_payload(processed_at=PROCESSED_AT, created_at="2026-11-23T16:00:00Z")
        with trap_jobs() as trap:
            event = self.receive_as_public(payload, "wh-identity")
            run_trapped_jobs(self.env, trap)
        self.assertEqual(event.state, "done", event.error_message)
        order = event._produced_record()
        self.assertEqual(order.state, "sale")
        self.assertEqual(order.date_order, PROCESSED_AT_UTC)
        self.assertEqual(order.user_id, self.salesperson)
        self.assertEqual(order.team_id, self.team)
        self.assert_made_by_robot(order)
        self.assertNotEqual(order.create_uid, self.public)

    def test_order_date_is_created_at_without_processed_at(self):
        payload = order_payload(id=4242, name="#4242", created_at="2026-10-01T08:00:00Z")
        payload.pop("processed_at", None)
        with trap_jobs() as trap:
            event = self.receive_as_public(payload, "wh-created-at")
            run_trapped_jobs(self.env, trap)
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(event._produced_record().date_order, datetime(2026, 10, 1, 8, 0, 0))

    def test_order_date_that_is_not_a_time_fails_naming_it(self):
        payload = order_payload(id=4343, name="#4343", processed_at="yesterday")
        with trap_jobs() as trap:
            event = self.receive_as_public(payload, "wh-bad-date")
            run_trapped_jobs(self.env, trap)
        self.assertEqual((event.state, event.error_kind), ("failed", "validation"))
        self.assertIn("processed_at", event.error_message)
        self.assertIn("must be an ISO 8601 time", event.error_message)
        self.assertFalse(self.env["sale.order"].search([("client_order_ref", "=", "#4343")]))

    def test_no_salesperson_on_the_backend_is_no_salesperson_not_the_robot(self):
        self.backend.shopify_user_id = False
        payload = order_payload(id=4444, name="#4444", processed_at=PROCESSED_AT)
        with trap_jobs() as trap:
            event = self.receive_as_public(payload, "wh-no-seller")
            run_trapped_jobs(self.env, trap)
        self.assertEqual(event.state, "done", event.error_message)
        self.assertFalse(event._produced_record().user_id)

    def test_order_requeued_by_support_is_still_made_by_the_connector_user(self):
        payload = order_payload(id=4545, name="#4545", processed_at=PROCESSED_AT)
        payload["line_items"][0]["sku"] = "MUG-GREEN"
        with trap_jobs() as trap:
            event = self.receive_as_public(payload, "wh-requeue")
            run_trapped_jobs(self.env, trap)
            self.assertEqual(event.state, "failed")
            self.assertIn("MUG-GREEN", event.error_message)
            make_products(self.env, ["MUG-GREEN"])
            event.with_user(self.support).action_requeue()
            job = trap.enqueued_jobs[-1]
            # The job does not depend on who queued it.
            self.assertEqual((job.recordset.env.uid, job.recordset.env.su), (self.robot.id, True))
            run_trapped_jobs(self.env, trap)
        self.assertEqual(event.state, "done", event.error_message)
        order = event._produced_record()
        self.assert_made_by_robot(order)
        self.assertNotEqual(order.create_uid, self.support)
        self.assertEqual(order.date_order, PROCESSED_AT_UTC)
        self.assertEqual(order.user_id, self.salesperson)


class TestConnectorUser(TransactionCase):
    """Each backend has a user of its own that its jobs run as."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        cls.backend = make_backend(cls.env, name="Paris store")

    def test_a_backend_gets_its_connector_user_when_created(self):
        user = self.backend.connector_user_id
        self.assertTrue(user)
        self.assertEqual(user.name, "Shopify connector: Paris store")
        self.assertFalse(user.share, "an internal user")
        self.assertEqual(user.company_id, self.backend.company_id)
        self.assertIn(self.backend.company_id, user.company_ids)
        self.assertEqual(user.notification_type, "inbox")
        for group in (
            "connector_base.group_connector_robot",
            "base.group_user",
            "sales_team.group_sale_salesman_all_leads",
            "stock.group_stock_user",
            "account.group_account_invoice",
        ):
            self.assertTrue(user.has_group(group), group)
        self.assertFalse(user.has_group("base.group_system"))
        other = make_backend(self.env, name="Lyon store", shopify_shop_domain="lyon.myshopify.com")
        self.assertNotEqual(other.connector_user_id, user)

    def test_renamed_backend_renames_its_user_and_removed_one_archives_it(self):
        user = self.backend.connector_user_id
        self.backend.name = "Paris flagship"
        self.assertEqual(user.name, "Shopify connector: Paris flagship")
        self.backend.unlink()
        self.assertTrue(user.exists())
        self.assertFalse(user.active)

    def test_backend_without_user_gets_one_on_first_job(self):
        user = self.backend.connector_user_id
        self.backend.connector_user_id = False
        self.assertEqual(self.backend._connector_user(), user, "its own, found again")
        self.backend.connector_user_id = False
        user.login = "someone.else"
        new = self.backend._connector_user()
        self.assertNotEqual(new, user)
        self.assertEqual(self.backend.connector_user_id, new)
        self.assertEqual(new.name, "Shopify connector: Paris store")

    def test_outbound_sends_run_as_the_connector_user(self):
        clerk = new_test_user(self.env, login="rs_stock_clerk", groups="stock.group_stock_user")
        with trap_jobs() as trap:
            self.backend.with_user(clerk).sudo()._enqueue_outbound_flush("inventory.set")
            job = trap.enqueued_jobs[-1]
        self.assertEqual(
            (job.recordset.env.uid, job.recordset.env.su),
            (self.backend.connector_user_id.id, True),
        )

    def test_after_commit_recheck_does_not_depend_on_the_jobs_user(self):
        """The recheck of waiting events after a commit reads events, which the
        job's user (a connector user, the public user) may not."""
        event = self.env["connector.event"].create(
            {
                "backend_id": self.backend.id,
                "topic": "orders/create",
                "idempotency_key": "wh-waiting",
                "occurred_at": datetime(2026, 11, 23),
                "state": "waiting",
                "waiting_key": "order:1",
            }
        )
        public = self.env.ref("base.public_user")
        self.env.cr.postcommit.clear()
        event.with_user(public)._recheck_waiting_after_commit({(self.backend.id, "order:1")})
        with trap_jobs():
            self.env.cr.postcommit.run()
        event.invalidate_recordset()
        self.assertEqual(event.state, "queued")


class TestBackfilledOrderIdentity(TransactionCase):
    """Orders a webhook never brought keep Shopify's date too."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        ensure_chart_of_accounts(cls.env)
        cls.shop = start_shop(cls, seed=29, products=4, orders=6)
        cls.backend = make_backend(cls.env, base_url=cls.shop.url)
        make_products(cls.env, sorted({row["sku"] for row in cls.shop.inventory()}), on_hand=500)

    def test_backfilled_orders_keep_their_date_and_are_made_by_the_connector_user(self):
        with trap_jobs() as trap:
            self.backend.with_delay()._shopify_backfill_orders("2000-01-01T00:00:00Z")
            run_jobs(self, trap)
        orders = {order["name"]: order for order in self.shop.orders()}
        sales = self.env["sale.order"].search([("client_order_ref", "in", list(orders))])
        self.assertEqual(len(sales), len(orders))
        for sale in sales:
            shopify = orders[sale.client_order_ref]
            self.assertEqual(sale.date_order, shopify_time(shopify["processed_at"]))
            self.assertEqual(sale.create_uid, self.backend.connector_user_id)
