import json
import logging
import traceback
import uuid
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.queue_job.exception import RetryableJobError

from ..components.http_client import RemoteError, RemoteRetryableError
from ..components.topics import OutboundTopic

_logger = logging.getLogger(__name__)

OUTBOUND_STATES = [
    ("pending", "Pending"),
    ("sent", "Sent"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
]


class ConnectorOutbound(models.Model):
    """One change waiting to be sent to a remote system: the outbox.

    Changes carry a coalescing key (a SKU at a location, a product): while a
    change is pending, newer changes of the same key replace its payload, so
    that many changes before a send become one send of the latest value.
    Pending changes of a topic are sent in batches by one job per backend and
    topic.
    """

    _name = "connector.outbound"
    _description = "Connector Outbound Change"
    _order = "id desc"

    backend_id = fields.Many2one(
        "connector.backend", required=True, ondelete="cascade", index=True, readonly=True
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    flow = fields.Char(readonly=True, index=True)
    topic = fields.Char(required=True, readonly=True, index=True)
    coalescing_key = fields.Char(required=True, readonly=True, index=True)
    payload = fields.Json(readonly=True)
    payload_text = fields.Text(string="Payload (JSON)", compute="_compute_payload_text")
    state = fields.Selection(
        OUTBOUND_STATES, default="pending", required=True, readonly=True, index=True
    )
    change_count = fields.Integer(
        default=1, readonly=True, help="Changes coalesced into this one send."
    )
    retry_count = fields.Integer(default=0, readonly=True)
    error_kind = fields.Selection(
        [("remote", "Refused by the remote"), ("unexpected", "Unexpected error")], readonly=True
    )
    error_message = fields.Text(readonly=True)
    error_traceback = fields.Text(readonly=True)
    correlation_id = fields.Char(readonly=True, default=lambda self: uuid.uuid4().hex, index=True)
    res_model = fields.Char(string="Record model", readonly=True)
    res_id = fields.Many2oneReference(string="Record ID", model_field="res_model", readonly=True)
    sent_at = fields.Datetime(readonly=True)
    remote_result = fields.Char(readonly=True, help="What the remote answered for this change.")

    # At most one pending change per key: the coalescing point.
    _pending_key_uniq = models.UniqueIndex(
        "(backend_id, topic, coalescing_key) WHERE state = 'pending'",
        "A pending change with this key already exists; it should have been updated.",
    )

    @api.depends("payload")
    def _compute_payload_text(self):
        for item in self:
            item.payload_text = json.dumps(item.payload, indent=2, ensure_ascii=False)

    def action_requeue(self):
        """Send failed changes again (unless a newer change of the key is pending)."""
        failed = self.filtered(lambda i: i.state == "failed")
        for item in failed:
            newer = self.search_count(
                [
                    ("backend_id", "=", item.backend_id.id),
                    ("topic", "=", item.topic),
                    ("coalescing_key", "=", item.coalescing_key),
                    ("state", "=", "pending"),
                ]
            )
            item.write(
                {
                    "state": "cancelled" if newer else "pending",
                    "retry_count": 0,
                    "error_message": False,
                    "error_kind": False,
                }
            )
        for backend, topic in {(i.backend_id, i.topic) for i in failed}:
            backend._schedule_outbound_flush(topic)
        return True

    def action_cancel(self):
        self.filtered(lambda i: i.state in ("pending", "failed")).write({"state": "cancelled"})
        return True


class ConnectorBackend(models.Model):
    _inherit = "connector.backend"

    outbound_pending_count = fields.Integer(compute="_compute_outbound_counts")
    outbound_failed_count = fields.Integer(compute="_compute_outbound_counts")

    def _compute_outbound_counts(self):
        counts = {
            (backend.id, state): count
            for backend, state, count in self.env["connector.outbound"]._read_group(
                [("backend_id", "in", self.ids), ("state", "in", ("pending", "failed"))],
                ["backend_id", "state"],
                ["__count"],
            )
        }
        for backend in self:
            backend.outbound_pending_count = counts.get((backend.id, "pending"), 0)
            backend.outbound_failed_count = counts.get((backend.id, "failed"), 0)

    def _send_later(self, topic, key, payload, record=None, correlation_id=None):
        """Queue a change for the remote; coalesced with a pending one of the same key.

        Returns the pending outbound change. Safe under concurrency: the
        pending change of a key is updated in place by one SQL upsert.
        """
        self.ensure_one()
        declaration = self._get_topic(topic, OutboundTopic)
        self.env["connector.outbound"].flush_model()
        self.env.cr.execute(
            """
            INSERT INTO connector_outbound (
                backend_id, company_id, flow, topic, coalescing_key, payload, state,
                change_count, retry_count, correlation_id, res_model, res_id,
                create_uid, write_uid, create_date, write_date
            )
            VALUES (%s, %s, %s, %s, %s, %s, 'pending', 1, 0, %s, %s, %s, %s, %s,
                    now() at time zone 'UTC', now() at time zone 'UTC')
            ON CONFLICT (backend_id, topic, coalescing_key) WHERE state = 'pending'
            DO UPDATE SET payload = EXCLUDED.payload,
                          change_count = connector_outbound.change_count + 1,
                          res_model = EXCLUDED.res_model, res_id = EXCLUDED.res_id,
                          write_uid = EXCLUDED.write_uid, write_date = EXCLUDED.write_date
            RETURNING id
            """,
            (
                self.id,
                self.company_id.id,
                declaration.flow,
                topic,
                str(key),
                json.dumps(payload),
                correlation_id or uuid.uuid4().hex,
                record._name if record else None,
                record.id if record else None,
                self.env.uid,
                self.env.uid,
            ),
        )
        item = self.env["connector.outbound"].browse(self.env.cr.fetchone()[0])
        item.invalidate_recordset()
        self._schedule_outbound_flush(topic)
        return item

    def _schedule_outbound_flush(self, topic):
        """One pending flush job per backend and topic sends what is pending.

        Real-time: after the topic's short window, so that a burst of changes
        coalesces; micro-batch: after the policy's interval; scheduled: by the
        cron only.
        """
        self.ensure_one()
        if self.state not in ("running", "circuit_open"):
            return None
        declaration = self._get_topic(topic, OutboundTopic)
        policy = self._policy(declaration.flow)
        if not policy.enabled or policy.mode == "scheduled":
            return None
        delay = policy._processing_delay() or declaration.window_seconds
        return self.with_delay(
            channel=policy.channel,
            eta=delay,
            identity_key=f"connector.outbound-{self.id}-{topic}",
            description=f"{self.name}: send {topic}",
        )._flush_outbound(topic)

    def _flush_outbound(self, topic):
        """Send the pending changes of ``topic`` in batches (the queue job).

        Each batch is taken with SKIP LOCKED so that two flushes never send
        the same change. A transient failure puts the batch back as pending
        and retries the job when the remote allows.
        """
        self.ensure_one()
        self = self.with_company(self.company_id)  # noqa: PLW0642 - act as the backend's company
        declaration = self._get_topic(topic, OutboundTopic)
        Outbound = self.env["connector.outbound"]
        Outbound.flush_model()
        sent = failed = 0
        while True:
            batch = Outbound
            try:
                # Taken and sent in one savepoint: a transient failure rolls it
                # back, releasing the rows for the retry bookkeeping.
                with self.env.cr.savepoint():
                    self.env.cr.execute(
                        "SELECT id FROM connector_outbound WHERE backend_id = %s AND topic = %s "
                        "AND state = 'pending' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                        (self.id, topic, declaration.batch_size),
                    )
                    batch = Outbound.browse([row[0] for row in self.env.cr.fetchall()])
                    if not batch:
                        break
                    refused = getattr(self, declaration.sender)(batch) or {}
            except RemoteRetryableError as exc:
                return self._retry_outbound(batch, exc, declaration)
            except RemoteError as exc:
                refused = dict.fromkeys(batch.ids, str(exc))
            except Exception as exc:
                batch.write(
                    {
                        "state": "failed",
                        "error_kind": "unexpected",
                        "error_message": str(exc),
                        "error_traceback": traceback.format_exc(),
                    }
                )
                failed += len(batch)
                continue
            now = fields.Datetime.now()
            accepted = batch.filtered(lambda i, r=refused: i.id not in r)
            accepted.write(
                {"state": "sent", "sent_at": now, "error_message": False, "error_kind": False}
            )
            for item in batch - accepted:
                item.write(
                    {"state": "failed", "error_kind": "remote", "error_message": refused[item.id]}
                )
            sent += len(accepted)
            failed += len(batch) - len(accepted)
        return f"{topic}: {sent} sent, {failed} failed"

    def _retry_outbound(self, batch, exc, declaration):
        retries = max(batch.mapped("retry_count") or [0]) + 1
        if retries >= declaration.max_attempts:
            batch.write(
                {
                    "state": "failed",
                    "error_kind": "remote",
                    "error_message": self.env._(
                        "Gave up after %(n)d attempts; the remote kept failing: %(error)s",
                        n=retries,
                        error=exc,
                    ),
                }
            )
            return f"failed: {exc}"
        batch.flush_model()
        with self.env.registry.cursor() as cr:
            cr.execute(
                "UPDATE connector_outbound SET retry_count = retry_count + 1, "
                "error_kind = 'remote', error_message = %s WHERE id IN %s",
                (self.env._("Retrying: %(error)s", error=exc), tuple(batch.ids)),
            )
        batch.invalidate_recordset()
        raise RetryableJobError(str(exc), seconds=exc.retry_after)

    @api.model
    def _cron_flush_outbound(self):
        """Scheduled flows, and changes whose flush job was lost, are sent here."""
        Outbound = self.env["connector.outbound"]
        stale = fields.Datetime.now() - timedelta(minutes=5)
        for backend, topic in Outbound._read_group(
            [("state", "=", "pending")], ["backend_id", "topic"]
        ):
            if backend.state not in ("running", "circuit_open"):
                continue
            declaration = backend._connector_topics().get(topic)
            if not isinstance(declaration, OutboundTopic):
                continue
            policy = backend._policy(declaration.flow)
            oldest = Outbound.search(
                [("backend_id", "=", backend.id), ("topic", "=", topic), ("state", "=", "pending")],
                order="write_date",
                limit=1,
            )
            if policy.mode == "scheduled":
                interval = timedelta(minutes=policy.interval_minutes)
                due = oldest.create_date < fields.Datetime.now() - interval
            else:
                due = oldest.write_date < stale
            if policy.enabled and due:
                backend.with_delay(
                    channel=policy.channel,
                    identity_key=f"connector.outbound-{backend.id}-{topic}",
                    description=f"{backend.name}: send {topic}",
                )._flush_outbound(topic)

    def action_send_pending(self):
        """Send what is pending now, whatever the policy's pace."""
        for backend in self:
            topics = set(
                self.env["connector.outbound"]
                .search([("backend_id", "=", backend.id), ("state", "=", "pending")])
                .mapped("topic")
            )
            if not topics:
                raise UserError(self.env._("Nothing is waiting to be sent."))
            for topic in topics:
                backend.with_delay(
                    identity_key=f"connector.outbound-{backend.id}-{topic}",
                    description=f"{backend.name}: send {topic}",
                )._flush_outbound(topic)
        return True
