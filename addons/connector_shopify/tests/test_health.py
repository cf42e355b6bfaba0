from datetime import timedelta

from odoo import fields
from odoo.tests import TransactionCase

from .common import ACCESS_TOKEN, make_backend, start_shop

ADDRESS = "https://odoo.example.com/connector/shopify/webhook"


class TestShopifyHealth(TransactionCase):
    """The health cron verifies the store's webhooks (at most hourly) and
    reports the credentials Shopify refused."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        cls.shop = start_shop(cls, products=3)
        cls.backend = make_backend(cls.env, base_url=cls.shop.url, shopify_webhook_url=ADDRESS)
        cls.backend.responsible_id = cls.env.ref("base.user_admin")

    def setUp(self):
        super().setUp()
        self.shop.store.webhook_subscriptions.clear()
        self.shop.requests.clear()

    def run_checks(self):
        return dict(self.env["connector.backend"]._connector_run_health_checks()[self.backend.id])

    def activities(self, code):
        return self.env["mail.activity"].search(
            [
                ("res_model", "=", "connector.backend"),
                ("res_id", "=", self.backend.id),
                ("connector_health_check", "=", code),
            ]
        )

    def subscription_reads(self):
        return [
            entry
            for entry in self.shop.requests.entries()
            if "graphql:webhookSubscriptions" in entry["names"]
        ]

    def test_missing_subscriptions_raise_one_activity_closed_once_registered(self):
        checks = self.run_checks()
        self.assertIn("not subscribed: orders/cancelled", checks["webhooks"])
        self.assertIn("Press Register webhooks", checks["webhooks"])
        self.assertEqual(self.backend.shopify_webhook_state, "mismatch")
        self.assertEqual(len(self.subscription_reads()), 1)
        # The next runs reuse the verification: Shopify is not asked again.
        self.run_checks()
        self.run_checks()
        self.assertEqual(len(self.subscription_reads()), 1)
        activity = self.activities("webhooks")
        self.assertEqual(len(activity), 1)
        self.assertEqual(
            activity.summary, "Connector health: Shopify webhooks are missing or failing"
        )
        self.assertEqual(activity.user_id, self.env.ref("base.user_admin"))
        self.assertEqual(self.backend.health_state, "failing")

        self.backend.action_shopify_register_webhooks()
        self.assertNotIn("webhooks", self.run_checks())
        self.assertFalse(self.activities("webhooks"))
        self.assertEqual(self.backend.health_state, "ok")

    def test_verification_older_than_an_hour_is_made_again(self):
        self.backend.action_shopify_register_webhooks()
        self.shop.requests.clear()
        self.assertNotIn("webhooks", self.run_checks())
        self.assertFalse(self.subscription_reads(), "registered a moment ago: not asked again")
        # An hour later, somebody removed the subscriptions in Shopify's admin.
        self.shop.store.webhook_subscriptions.clear()
        self.backend.shopify_webhook_checked_at = fields.Datetime.now() - timedelta(minutes=61)
        checks = self.run_checks()
        self.assertEqual(len(self.subscription_reads()), 1)
        self.assertIn("not subscribed", checks["webhooks"])

    def test_rejected_token_is_reported_with_what_to_fix(self):
        self.backend.api_token = "shpat_revoked_token_000000"
        checks = self.run_checks()
        # The verification met Shopify's 401: the credentials check says what to do.
        self.assertTrue(self.backend.auth_rejected_at)
        self.assertIn("refused the credentials", checks["credentials"])
        self.assertIn("Enter a valid API token", checks["credentials"])
        self.assertIn("HTTP 401", checks["credentials"])
        self.assertEqual(self.backend.shopify_webhook_state, "error")
        self.assertIn("could not be verified", checks["webhooks"])
        self.assertEqual(len(self.activities("credentials")), 1)

        # The administrator enters the right token and tests the connection.
        self.backend.api_token = ACCESS_TOKEN
        self.backend.action_test_connection()
        self.assertFalse(self.backend.auth_rejected_at)
        self.backend.action_shopify_register_webhooks()
        checks = self.run_checks()
        self.assertEqual(checks, {})
        self.assertFalse(self.activities("credentials") | self.activities("webhooks"))

    def test_paused_store_is_not_asked(self):
        self.backend.action_pause()
        self.assertEqual(self.run_checks(), {})
        self.assertFalse(self.subscription_reads())
