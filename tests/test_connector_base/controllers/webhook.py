from odoo import http

from odoo.addons.connector_base.controllers.webhook import WebhookIntake


class TestWebhook(WebhookIntake, http.Controller):
    @http.route(
        "/connector_test/webhook/<int:backend_id>",
        type="http",
        # The remote is no user: the intake authenticates it by the signature.
        auth="none",
        readonly=False,
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def receive_test_webhook(self, backend_id):
        return self._receive_webhook([("id", "=", backend_id), ("backend_type", "=", "test")])
