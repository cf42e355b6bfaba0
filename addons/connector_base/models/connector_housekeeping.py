import logging
from datetime import timedelta

from odoo import api, fields, models

_logger = logging.getLogger(__name__)

# Housekeeping works in chunks, each committed on its own: a large backlog
# never makes one long transaction that holds locks jobs need, and a run cut
# short keeps what it did. A run stops after MAX_CHUNKS; the next run goes on.
CHUNK = 1000
MAX_CHUNKS = 50
ALIVE_JOB_STATES = ("wait_dependencies", "pending", "enqueued", "started")


# connector.event is split by concern, one file each (intake, processing,
# support, housekeeping): deliberately not one class.
class ConnectorEvent(models.Model):
    """Crons that keep the inbox healthy: stuck events requeued, old ones purged."""

    _inherit = "connector.event"  # pylint: disable=consider-merging-classes-inherited

    @api.model
    def _cron_reset_stuck(self, minutes=30):
        """Queued or processing events whose job is gone, done or failed are
        queued again (a job was cancelled or deleted, or its queue lost it)."""
        limit = fields.Datetime.now() - timedelta(minutes=minutes)
        last_id = requeued = 0
        for _chunk in range(MAX_CHUNKS):
            with self.env["connector.backend"]._new_transaction() as env:
                candidates = env["connector.event"].search(
                    [
                        ("state", "in", ("queued", "processing")),
                        ("write_date", "<", limit),
                        ("id", ">", last_id),
                    ],
                    order="id",
                    limit=CHUNK,
                )
                if not candidates:
                    break
                last_id = candidates[-1].id
                stuck = candidates.filtered(
                    lambda e: not e.sudo().job_ids.filtered(lambda j: j.state in ALIVE_JOB_STATES)
                )
                # A batched upload drains job after job: its later events wait
                # for a later job of their key space than the one they were
                # queued with.
                stuck -= stuck._with_live_batch_job()
                if stuck:
                    stuck._audit("requeue", env._("Requeued automatically: its job was gone."))
                    requeued += len(stuck._enqueue(from_states=("queued", "processing")))
        # Received events whose dispatcher job was lost (deleted, cancelled).
        self.env.cr.execute(
            "SELECT DISTINCT backend_id FROM connector_event WHERE state = 'received' "
            "AND received_at < %s",
            (limit,),
        )
        backends = self.env["connector.backend"].browse(row[0] for row in self.env.cr.fetchall())
        for backend in backends.filtered(lambda b: b.state in ("running", "circuit_open")):
            self._wake_dispatcher(backend)
        if requeued:
            _logger.info("requeued %d stuck connector events", requeued)
        self.env.invalidate_all()
        return f"{requeued} stuck events requeued"

    @api.model
    def _cron_purge(self, chunk=CHUNK):
        """Delete processed events, and sent or dead outbound changes, past their
        backend's retention period; failed and waiting events are kept for
        support staff whatever their age."""
        backends = self.env["connector.backend"].with_context(active_test=False)
        purged = {"connector.event": 0, "connector.outbound": 0}
        for backend in backends.search([("retention_days", ">", 0)]):
            before = fields.Datetime.now() - timedelta(days=backend.retention_days)
            purged["connector.event"] += self._purge_in_chunks(
                chunk,
                "connector.event",
                [
                    ("backend_id", "=", backend.id),
                    ("state", "in", ("done", "duplicate", "ignored", "stale")),
                    ("received_at", "<", before),
                ],
            )
            purged["connector.outbound"] += self._purge_in_chunks(
                chunk,
                "connector.outbound",
                [
                    ("backend_id", "=", backend.id),
                    ("state", "in", ("sent", "failed", "cancelled")),
                    ("write_date", "<", before),
                ],
            )
        # Rejected webhooks become their backend's totals (insert-only rows).
        with self.env["connector.backend"]._new_transaction() as env:
            env["connector.webhook.rejection"]._fold()
        if any(purged.values()):
            _logger.info(
                "purged %(connector.event)d events and %(connector.outbound)d outbound changes",
                purged,
            )
        self.env.invalidate_all()
        return purged

    @api.model
    def _purge_in_chunks(self, chunk, model, domain):
        deleted = 0
        for _chunk in range(MAX_CHUNKS):
            with self.env["connector.backend"]._new_transaction() as env:
                records = env[model].search(domain, order="id", limit=chunk)
                if not records:
                    break
                deleted += len(records)
                records.unlink()
        return deleted
