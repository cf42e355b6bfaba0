import requests
from simulators.testing import WebhookReceiver

from odoo.tests import TransactionCase

from ..models.shopify_webhook import SUBSCRIBE, topic_enum
from .common import make_backend, start_shop

ADDRESS = "https://odoo.example.com/connector/shopify/webhook"


class TestWebhookRegistration(TransactionCase):
    """Register webhooks: one subscription per processed topic, at our address only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        cls.shop = start_shop(cls, products=3)
        cls.backend = make_backend(cls.env, base_url=cls.shop.url, shopify_webhook_url=ADDRESS)
        cls.topics = cls.env["shopify.webhook.subscriptions"]._wanted_topics(cls.backend)

    def setUp(self):
        super().setUp()
        self.shop.store.webhook_subscriptions.clear()

    def subscriptions(self, address=ADDRESS):
        rows = self.shop.snapshot(["webhook_subscriptions"])["webhook_subscriptions"]
        return sorted(row["topic"] for row in rows if row["uri"] == address)

    def subscribe_as_another_app(self, topic, address):
        answer = requests.post(
            self.shop.graphql_url,
            json={
                "query": SUBSCRIBE,
                "variables": {"topic": topic_enum(topic), "input": {"uri": address}},
            },
            headers=self.shop.headers,
            timeout=10,
        )
        self.assertFalse(answer.json()["data"]["webhookSubscriptionCreate"]["userErrors"])

    def test_topics_are_the_inbound_topics_the_connector_processes(self):
        self.assertIn("orders/create", self.topics)
        self.assertIn("orders/cancelled", self.topics)
        self.assertNotIn("inventory.set", self.topics)

    def test_register_subscribes_every_topic_once(self):
        self.backend.action_shopify_verify_webhooks()
        self.assertEqual(self.backend.shopify_webhook_state, "mismatch")
        self.assertIn("not subscribed: orders/cancelled", self.backend.shopify_webhook_note)

        self.backend.action_shopify_register_webhooks()
        self.assertEqual(self.subscriptions(), sorted(self.topics))
        self.assertEqual(self.backend.shopify_webhook_state, "ok")

        # Pressing it again changes nothing in the store.
        self.backend.action_shopify_register_webhooks()
        self.assertEqual(self.subscriptions(), sorted(self.topics))
        self.backend.action_shopify_verify_webhooks()
        self.assertEqual(self.backend.shopify_webhook_state, "ok")
        self.assertIn(ADDRESS, self.backend.shopify_webhook_note)

    def test_other_addresses_are_left_alone_ours_are_cleaned(self):
        other = "https://erp-staging.example.com/hooks"
        self.subscribe_as_another_app("orders/create", other)
        self.subscribe_as_another_app("products/update", ADDRESS)  # not processed
        self.subscribe_as_another_app("orders/create", ADDRESS)
        self.subscribe_as_another_app("orders/create", ADDRESS)  # each delivery twice

        self.backend.action_shopify_verify_webhooks()
        self.assertIn("2 subscriptions to remove", self.backend.shopify_webhook_note)
        self.backend.action_shopify_register_webhooks()

        self.assertEqual(self.subscriptions(), sorted(self.topics))
        self.assertEqual(self.subscriptions(other), ["orders/create"])

    def test_address_defaults_to_odoo_base_url(self):
        self.env["ir.config_parameter"].set_param("web.base.url", "https://shop-erp.example.com/")
        backend = make_backend(
            self.env,
            name="Second store",
            base_url=self.shop.url,
            shopify_shop_domain="second.myshopify.com",
        )
        self.assertEqual(
            backend._shopify_webhook_address(),
            "https://shop-erp.example.com/connector/shopify/webhook",
        )
        # The form shows the address registered, to copy it whole.
        self.assertEqual(
            backend.webhook_address, "https://shop-erp.example.com/connector/shopify/webhook"
        )
        self.assertEqual(self.backend.webhook_address, ADDRESS)

    def test_registered_store_delivers_its_webhooks_to_the_address(self):
        with WebhookReceiver() as receiver:
            self.backend.shopify_webhook_url = receiver.url
            self.backend.action_shopify_register_webhooks()
            self.shop.create_order([(self.shop.inventory()[0]["sku"], 1)])
            delivery = receiver.wait_for(1)[0]
        self.assertEqual(delivery["headers"]["X-Shopify-Topic"], "orders/create")
        self.assertTrue(delivery["headers"]["X-Shopify-Hmac-Sha256"])
