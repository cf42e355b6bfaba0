from odoo import http
from odoo.http import request

from odoo.addons.connector_base.controllers.webhook import WebhookIntake, remote_route

from ..models.shopify_webhook import WEBHOOK_ROUTE


class ShopifyWebhook(WebhookIntake, http.Controller):
    """Shopify webhooks of every store: the shop domain header names the backend."""

    @remote_route(WEBHOOK_ROUTE)
    def receive_shopify_webhook(self):
        domain = request.httprequest.headers.get("X-Shopify-Shop-Domain") or ""
        return self._receive_webhook(
            [("backend_type", "=", "shopify"), ("shopify_shop_domain", "=", domain.lower())]
        )
