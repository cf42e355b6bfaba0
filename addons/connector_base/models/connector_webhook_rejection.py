import logging

from odoo import api, fields, models

_logger = logging.getLogger(__name__)


class ConnectorWebhookRejection(models.Model):
    """One webhook refused for a missing or wrong signature: insert-only rows.

    Anybody can send a request with a bad signature, so counting one must
    cost about what storing a good webhook costs and must never wait: an
    UPDATE of the backend's counter would queue every such request behind
    whatever holds the backend row (a job recording the remote's health, an
    administrator saving the form) and behind each other. An INSERT here
    takes no lock that an UPDATE of the backend holds (the foreign key only
    takes a KEY SHARE lock, which ordinary updates do not block). The daily
    purge folds the rows into the backend's total and deletes them.
    """

    _name = "connector.webhook.rejection"
    _description = "Rejected Connector Webhook"
    _log_access = False
    _order = "id desc"

    backend_id = fields.Many2one(
        "connector.backend", required=True, ondelete="cascade", index=True, readonly=True
    )
    rejected_at = fields.Datetime(required=True, readonly=True)

    @api.model
    def _record(self, backend_id):
        """Count one rejected webhook of ``backend_id``, in the request's own
        transaction, by one INSERT."""
        self.env.cr.execute(
            "INSERT INTO connector_webhook_rejection (backend_id, rejected_at) "
            "VALUES (%s, now() at time zone 'UTC')",
            (backend_id,),
        )

    @api.model
    def _fold(self):
        """Add the rows to their backend's totals and delete them (daily purge).

        One statement: a row inserted meanwhile is either folded and deleted
        or left for the next run, never counted twice or lost.
        """
        self.env.cr.execute(
            """
            WITH gone AS (
                DELETE FROM connector_webhook_rejection RETURNING backend_id, rejected_at
            ), counted AS (
                SELECT backend_id, count(*) AS n, max(rejected_at) AS last
                  FROM gone GROUP BY backend_id
            )
            UPDATE connector_backend backend
               SET webhook_rejected_folded = COALESCE(backend.webhook_rejected_folded, 0)
                                             + counted.n,
                   webhook_rejected_folded_at = GREATEST(
                       backend.webhook_rejected_folded_at, counted.last)
              FROM counted
             WHERE backend.id = counted.backend_id
            RETURNING counted.n
            """
        )
        folded = sum(row[0] for row in self.env.cr.fetchall())
        if folded:
            _logger.info("folded %d rejected webhooks into their backends' totals", folded)
        self.env["connector.backend"].invalidate_model(
            ["webhook_rejected_folded", "webhook_rejected_folded_at"]
        )
        return folded
