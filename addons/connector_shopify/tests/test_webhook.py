from datetime import datetime

from odoo.tests import BaseCase, HttpCase, tagged

from ..models.shopify_backend import _parse_time
from .common import SHOP_DOMAIN, make_backend, order_payload, signed


@tagged("post_install", "-at_install")
class TestShopifyWebhook(HttpCase):
    """Shopify's signed webhooks: verified on the raw body, stored, acknowledged."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend = make_backend(cls.env)

    def post(
        self, payload, *, webhook_id="wh-1", topic="orders/create", domain=SHOP_DOMAIN, secret=None
    ):
        raw, signature = signed(payload, **({"secret": secret} if secret else {}))
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": domain,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Triggered-At": "2026-11-23T10:00:00.123456789Z",
            "X-Shopify-Api-Version": "2026-10",
            "X-Shopify-Hmac-Sha256": signature,
        }
        return self.url_open("/connector/shopify/webhook", data=raw, headers=headers, timeout=20)

    def events(self):
        return self.env["connector.event"].search([("backend_id", "=", self.backend.id)])

    def test_signed_webhook_is_stored_with_shopify_identity(self):
        response = self.post(order_payload())
        self.assertEqual(response.status_code, 200)
        event = self.events()
        self.assertEqual((event.topic, event.idempotency_key), ("orders/create", "wh-1"))
        self.assertEqual(event.sequence_key, "order:820982911946154508")
        self.assertEqual(event.occurred_at, datetime(2026, 11, 23, 10, 0, 0, 123456))
        self.assertEqual(event.state, "received", "its job comes from the dispatcher")

    def test_invalid_signature_is_refused_and_stores_nothing(self):
        response = self.post(order_payload(), secret="someone-else")
        self.assertEqual(response.status_code, 401)
        self.assertFalse(self.events())
        self.assertEqual(self.backend.webhook_rejected_count, 1)

    def test_unknown_shop_domain_is_refused(self):
        response = self.post(order_payload(), domain="unknown-shop.myshopify.com")
        self.assertEqual(response.status_code, 401)
        self.assertFalse(self.events())


class TestShopifyTimes(BaseCase):
    def test_a_time_beyond_the_calendar_is_no_time_not_a_crash(self):
        # Found by fuzzing the endpoint: X-Shopify-Triggered-At was an HTTP 500.
        self.assertEqual(
            _parse_time("2026-11-23T10:00:00.123Z"), datetime(2026, 11, 23, 10, 0, 0, 123000)
        )
        for value in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "soon", ""):
            self.assertIsNone(_parse_time(value), value)
