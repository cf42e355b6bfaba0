from odoo import http

from odoo.addons.connector_base.controllers.webhook import WebhookIntake

from ..models.tpl_backend import WEBHOOK_ROUTE


class TplWebhook(WebhookIntake, http.Controller):
    """The 3PL's webhooks: the address names the backend, the signature
    (``X-3pl-Signature``) authenticates the 3PL."""

    @http.route(
        WEBHOOK_ROUTE,
        type="http",
        # The remote is no user: the intake authenticates it by the signature.
        auth="none",
        readonly=False,
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def receive_tpl_webhook(self, backend_id):
        return self._receive_webhook([("backend_type", "=", "3pl"), ("id", "=", backend_id)])
