from odoo import http

from odoo.addons.connector_base.controllers.webhook import WebhookIntake, remote_route


class TestWebhook(WebhookIntake, http.Controller):
    @remote_route("/connector_test/webhook/<int:backend_id>")
    def receive_test_webhook(self, backend_id):
        return self._receive_webhook([("id", "=", backend_id), ("backend_type", "=", "test")])
