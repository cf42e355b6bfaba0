"""The webhooks of a polled legacy POS: a hint to poll sooner, nothing more.

The legacy POS posts a form with the changed sale as JSON (Lightspeed's
``sale.update``), retried for two days and not guaranteed: polling is the
source of truth. So the body is not read for its data, and not trusted: a
webhook only queues the fleet's next poll now, once however many arrive
while it waits (its job's identity), and answers at once.
"""

from odoo import SUPERUSER_ID, http
from odoo.http import request

from odoo.addons.connector_base.controllers.webhook import remote_route

from ..models.pos_pull import LEGACY_WEBHOOK_ROUTE


class PosLegacyWebhook(http.Controller):
    @remote_route(LEGACY_WEBHOOK_ROUTE)
    def legacy_pos_webhook(self, fleet, **_form):
        env = request.env(user=SUPERUSER_ID)
        backend = env["connector.backend"]._webhook_backend(
            (("backend_type", "=", "pos"), ("pos_fleet_code", "=", fleet))
        )
        if not backend or backend.pos_mode != "pull":
            return request.make_json_response({"status": "unknown fleet"}, status=404)
        if backend.state == "running" and backend._policy("tickets_poll").enabled:
            backend._pos_hint_pull()
            return request.make_json_response({"status": "poll queued"})
        return request.make_json_response({"status": "not polling"})
