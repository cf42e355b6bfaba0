from datetime import timedelta

from odoo import fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.http_client import RemoteError
from odoo.addons.connector_base.models.connector_health import CHECKED_STATES

# The health cron runs every 5 minutes; the store's subscriptions are read
# again when the last verification (by the cron or the Verify webhooks
# button) is older than this, so a check costs Shopify one query an hour.
WEBHOOK_CHECK_MINUTES = 60


class ConnectorBackend(models.Model):
    """Health of a Shopify backend: its webhook subscriptions."""

    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    def _connector_health_checks(self):
        # Asked first: a refusal of the credentials it meets is then reported
        # by the framework's check of this same run.
        webhooks = {
            backend.id: backend._shopify_health_webhooks()
            for backend in self
            if backend.backend_type == "shopify" and backend.state in CHECKED_STATES
        }
        checks = super()._connector_health_checks()
        for backend_id, problem in webhooks.items():
            if problem:
                checks[backend_id].append(("webhooks", problem))
        return checks

    def _health_check_labels(self):
        return {
            **super()._health_check_labels(),
            "webhooks": self.env._("Shopify webhooks are missing or failing"),
        }

    def _shopify_health_webhooks(self):
        """What is wrong with the store's webhook subscriptions, '' when none.

        The last verification's result, stored on the backend, unless it is
        older than ``WEBHOOK_CHECK_MINUTES`` and the store answers (circuit
        closed): then the store is asked again, as Verify webhooks does.
        """
        self.ensure_one()
        stale = fields.Datetime.now() - timedelta(minutes=WEBHOOK_CHECK_MINUTES)
        checked_at = self.shopify_webhook_checked_at
        if self.state == "running" and (not checked_at or checked_at < stale):
            self._shopify_verify_webhooks_now()
        if self.shopify_webhook_state in ("ok", "unknown"):
            return ""
        if self.shopify_webhook_state == "error":
            return self.env._(
                "The webhook subscriptions of %(backend)s could not be verified (%(why)s): "
                "until they are, orders may not reach Odoo. Fix the cause, then press Verify "
                "webhooks.",
                backend=self.display_name,
                why=self.shopify_webhook_note,
            )
        return self.env._(
            "Shopify does not send %(backend)s every webhook it needs. %(note)s",
            backend=self.display_name,
            note=self.shopify_webhook_note,
        )

    def _shopify_verify_webhooks_now(self):
        """Compare the store's subscriptions with the topics processed and keep
        the result (nothing is written while Shopify answers); a failure to
        ask is kept as the result too."""
        self.ensure_one()
        Subscriptions = self.env["shopify.webhook.subscriptions"]
        try:
            Subscriptions._check(self)
        except (RemoteError, UserError) as exc:
            Subscriptions._write_state(self, "error", str(exc))
