from odoo import http

from odoo.addons.connector_base.controllers.webhook import WebhookIntake, remote_route

from ..models.tpl_backend import WEBHOOK_ROUTE


class TplWebhook(WebhookIntake, http.Controller):
    """The 3PL's webhooks: the address names the backend, the signature
    (``X-3pl-Signature``) authenticates the 3PL."""

    @remote_route(WEBHOOK_ROUTE)
    def receive_tpl_webhook(self, backend_id):
        return self._receive_webhook([("backend_type", "=", "3pl"), ("id", "=", backend_id)])
