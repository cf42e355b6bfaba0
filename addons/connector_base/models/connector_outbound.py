import json
import logging
import math
import random
import time
import traceback
import uuid
from datetime import timedelta

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from odoo.addons.queue_job.exception import RetryableJobError

from ..components.conflicts import PG_CONCURRENCY_ERRORS, PG_RETRYABLE_ERRORS, expected_conflicts
from ..components.http_client import RemoteError, RemoteRetryableError
from ..components.topics import OutboundTopic
from .connector_backend import JOB_MAX_RETRIES

_logger = logging.getLogger(__name__)

OUTBOUND_STATES = [
    ("pending", "Pending"),
    ("sending", "Sending"),
    ("sent", "Sent"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
]
# A send whose job cannot be told alive or dead (no job: a direct call) is
# taken back after this long; the slowest batch (timeouts x calls) ends well before.
UNOWNED_SENDING_MINUTES = 30
# A flush job sends batch after batch for this long at most, then leaves the
# rest to another job: a backlog that keeps coming (journals exported while
# orders flow) must not run one job past the HTTP worker's time limit
# (limit_time_real, 120 s by default), which kills it.
FLUSH_BUDGET_SECONDS = 60

# The claim: the oldest pending changes of a topic, skipping rows another
# transaction holds, keys that already have a send in flight and all but the
# oldest pending change of a key (one queued unmerged beside it), so that the
# changes of one key reach the remote one at a time, in order.
CLAIM_SQL = """
SELECT pending.id, pending.coalescing_key, pending.write_date, pending.change_count
  FROM connector_outbound pending
 WHERE pending.backend_id = %(backend)s
   AND pending.topic = %(topic)s
   AND pending.state = 'pending'
   AND NOT EXISTS (
         SELECT 1 FROM connector_outbound other
          WHERE other.backend_id = pending.backend_id
            AND other.topic = pending.topic
            AND other.coalescing_key = pending.coalescing_key
            AND (other.state = 'sending'
                 OR (other.state = 'pending' AND other.id < pending.id)))
 ORDER BY pending.id
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED
"""
# The other pending changes of the claimed keys (queued unmerged): merged at the claim.
CLAIM_SIBLINGS_SQL = """
SELECT id, coalescing_key, write_date, change_count
  FROM connector_outbound
 WHERE backend_id = %(backend)s AND topic = %(topic)s AND state = 'pending'
   AND coalescing_key IN %(keys)s AND id NOT IN %(claimed)s
   FOR UPDATE SKIP LOCKED
"""
CLAIMED_SQL = """
UPDATE connector_outbound
   SET state = 'sending', attempt = attempt + 1, claimed_at = %(now)s,
       claim_job_uuid = %(job)s, write_date = %(now)s
 WHERE id IN %(ids)s
"""
# Queue a change, merged into the pending change of its key if there is one.
_INSERT = """
INSERT INTO connector_outbound (
    backend_id, company_id, flow, topic, coalescing_key, payload, state,
    change_count, attempt, retry_count, correlation_id, res_model, res_id,
    task_id, create_uid, write_uid, create_date, write_date, unmerged
)
VALUES (%s, %s, %s, %s, %s, %s, 'pending', 1, 0, 0, %s, %s, %s, %s, %s, %s,
        now() at time zone 'UTC', now() at time zone 'UTC', {unmerged})
"""
UPSERT_SQL = (
    _INSERT.format(unmerged="false")
    + """
ON CONFLICT (backend_id, topic, coalescing_key) WHERE state = 'pending' AND unmerged IS NOT TRUE
DO UPDATE SET payload = EXCLUDED.payload,
              change_count = connector_outbound.change_count + 1,
              res_model = EXCLUDED.res_model, res_id = EXCLUDED.res_id,
              task_id = COALESCE(EXCLUDED.task_id, connector_outbound.task_id),
              write_uid = EXCLUDED.write_uid, write_date = EXCLUDED.write_date
RETURNING id
"""
)
# The same change on its own, when merging it clashed with another transaction.
UNMERGED_INSERT_SQL = _INSERT.format(unmerged="true") + "RETURNING id"
# A change that was being sent, back in the queue (or out of it).
BACK_SQL = (
    "UPDATE connector_outbound SET state = %(state)s, error_kind = %(error_kind)s, "
    "error_message = %(error_message)s, retry_count = %(retries)s, "
    "claim_job_uuid = NULL, write_date = %(now)s WHERE id = %(id)s"
)
# Whether the queue job that claimed a send still runs: queue_job's runner
# holds the row of queue_job_lock for as long as the job's transaction lives,
# and a killed worker's connection releases it.
JOB_ALIVE_SQL = """
SELECT EXISTS (
           SELECT 1 FROM queue_job job
             JOIN queue_job_lock lock ON lock.queue_job_id = job.id
            WHERE job.uuid = %(job)s AND job.state = 'started')
   AND NOT EXISTS (
           SELECT 1 FROM queue_job_lock lock
             JOIN queue_job job ON lock.queue_job_id = job.id
            WHERE job.uuid = %(job)s
              FOR NO KEY UPDATE OF lock SKIP LOCKED)
"""


# Whether a job of this identity key waits to run: queue_job's own check, on
# the partial index it keeps for it.
WAITING_JOB_SQL = """
SELECT 1 FROM queue_job
 WHERE identity_key = %(key)s
   AND state IN ('wait_dependencies', 'pending', 'enqueued')
 LIMIT 1
"""


class ConnectorOutbound(models.Model):
    """One change waiting to be sent to a remote system: the outbox.

    Changes carry a coalescing key (a SKU at a location, a product): while a
    change is pending, newer changes of the same key replace its payload, so
    that many changes before a send become one send of the latest value.

    Sending goes claim → send → record, each step its own transaction: a
    batch is claimed (``sending``) and committed at once, the remote is called
    with no database lock held, and the outcome is recorded when it answers.
    A send that died between claim and record (a killed worker) is taken back
    to ``pending`` and sent again: senders are idempotent.
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
    attempt = fields.Integer(
        string="Sends started", default=0, readonly=True, help="Sends of this change started."
    )
    retry_count = fields.Integer(
        default=0,
        readonly=True,
        help="Transient failures of the remote counted against the topic's attempts; "
        "failures while the remote is known to be down (circuit open) do not count.",
    )
    claimed_at = fields.Datetime(string="Sending since", readonly=True)
    # Kept once sent or refused: the correlation view shows the job that sent it.
    claim_job_uuid = fields.Char(
        string="Sending job",
        readonly=True,
        copy=False,
        help="The queue job sending it, or that last sent it.",
    )
    error_kind = fields.Selection(
        [
            ("remote", "Refused by the remote"),
            ("superseded", "Superseded by a newer change"),
            ("unexpected", "Unexpected error"),
        ],
        readonly=True,
    )
    error_message = fields.Text(readonly=True)
    error_traceback = fields.Text(readonly=True)
    correlation_id = fields.Char(readonly=True, default=lambda self: uuid.uuid4().hex, index=True)
    res_model = fields.Char(string="Record model", readonly=True)
    res_id = fields.Many2oneReference(string="Record ID", model_field="res_model", readonly=True)
    sent_at = fields.Datetime(readonly=True)
    remote_result = fields.Char(readonly=True, help="What the remote answered for this change.")
    task_id = fields.Many2one(
        "connector.task",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        help="The long operation (full stock push, catalog export…) that queued this change.",
    )
    audit_ids = fields.One2many("connector.outbound.audit", "outbound_id", readonly=True)

    unmerged = fields.Boolean(
        readonly=True,
        help="Queued as a change of its own: when it was queued, the pending change "
        "of its key was being claimed for a send or changed by another transaction. "
        "It is sent after the changes of its key queued before it.",
    )

    # At most one pending change per key to merge into: the coalescing point.
    _pending_key_uniq = models.UniqueIndex(
        "(backend_id, topic, coalescing_key) WHERE state = 'pending' AND unmerged IS NOT TRUE",
        "A pending change with this key already exists; it should have been updated.",
    )
    _claim_idx = models.Index("(backend_id, topic, id) WHERE state IN ('pending', 'sending')")
    # The metrics' period filter on what was sent.
    _sent_idx = models.Index("(sent_at) WHERE sent_at IS NOT NULL")
    # The overview's last change sent per backend: the end of this index.
    _backend_sent_idx = models.Index("(backend_id, sent_at) WHERE state = 'sent'")

    @api.depends("payload")
    def _compute_payload_text(self):
        for item in self:
            item.payload_text = json.dumps(item.payload, indent=2, ensure_ascii=False)

    # Support staff and managers only read the outbox (see ir.model.access.csv):
    # a payload or a state is never written over RPC. The actions below check
    # the group, then change the queue with the system's rights; the flush
    # jobs they queue are the framework's too.

    def _check_user(self):
        if not self.env.user.has_group("connector_base.group_connector_user"):
            raise AccessError(self.env._("Only connector users may act on outbound changes."))

    def _audit(self, action, note=None):
        """One audit line per change, in the acting user's name."""
        self.env["connector.outbound.audit"]._log(self, action, note)

    def action_requeue(self):
        """Send failed changes again (unless a newer change of the key is pending)."""
        self._check_user()
        failed = self.filtered(lambda i: i.state == "failed")
        if not failed:
            raise UserError(self.env._("Only failed changes can be sent again."))
        failed = failed.sudo()
        for item in failed:
            newer = self.search_count(
                [
                    ("backend_id", "=", item.backend_id.id),
                    ("topic", "=", item.topic),
                    ("coalescing_key", "=", item.coalescing_key),
                    ("state", "=", "pending"),
                ]
            )
            item._audit(
                "requeue",
                self.env._("A newer change of this key is pending: it is sent instead of this one.")
                if newer
                else None,
            )
            item.write(
                {
                    "state": "cancelled" if newer else "pending",
                    "retry_count": 0,
                    "claim_job_uuid": False,
                    "error_message": False,
                    "error_kind": False,
                }
            )
        for backend, topic in {(i.backend_id, i.topic) for i in failed}:
            backend._schedule_outbound_flush(topic)
        return True

    def action_cancel(self):
        """Drop pending or failed changes: they will not be sent."""
        self._check_user()
        items = self.filtered(lambda i: i.state in ("pending", "failed"))
        if not items:
            raise UserError(self.env._("Only pending or failed changes can be cancelled."))
        items._audit("cancel")
        items.sudo().write({"state": "cancelled"})
        return True

    # --- the steps of a send, each in its own transaction --------------------

    @api.model
    def _claim(self, backend, topic, declaration):
        """Claim up to a batch of pending changes of ``topic`` for this job, and
        commit at once: nothing stays locked while the remote is called.
        Returns their ids, oldest first.

        A key with several pending changes (one was queued unmerged) is sent
        once: the change queued from the newest snapshot (latest write) is
        claimed, the others are merged into it, superseded."""
        params = {
            "now": fields.Datetime.now(),
            "job": self.env.context.get("job_uuid"),
            "backend": backend.id,
            "topic": topic,
            "limit": declaration.batch_size,
        }
        with backend._new_transaction(read_committed=True) as env:
            cr = env.cr
            cr.execute(CLAIM_SQL, params)
            firsts = cr.fetchall()
            if not firsts:
                return []
            groups = {key: [(date, item_id, count)] for item_id, key, date, count in firsts}
            cr.execute(
                CLAIM_SIBLINGS_SQL,
                {**params, "keys": tuple(groups), "claimed": tuple(row[0] for row in firsts)},
            )
            for item_id, key, date, count in cr.fetchall():
                groups[key].append((date, item_id, count))
            claimed = []
            for rows in groups.values():
                newest = max(rows)
                claimed.append(newest[1])
                merged = [row for row in rows if row is not newest]
                if not merged:
                    continue
                cr.execute(
                    "UPDATE connector_outbound SET state = 'cancelled', "
                    "error_kind = 'superseded', error_message = %s, write_date = %s "
                    "WHERE id IN %s",
                    (
                        env._("Merged into the newer change %(id)s of the same key.", id=newest[1]),
                        params["now"],
                        tuple(row[1] for row in merged),
                    ),
                )
                cr.execute(
                    "UPDATE connector_outbound SET change_count = change_count + %s WHERE id = %s",
                    (sum(row[2] for row in merged), newest[1]),
                )
            cr.execute(CLAIMED_SQL, {**params, "ids": tuple(claimed)})
            return sorted(claimed)

    @api.model
    def _take_back_abandoned(self, backend_ids=None, topic=None):
        """Return to ``pending`` the changes left ``sending`` by a send that died.

        A send is dead when its queue job no longer runs (the worker was
        killed, the server restarted), when it is this very job's own earlier
        run, or, for a send without a job, after a long while. Whatever the
        dead send did on the remote is found again by the next one (senders
        are idempotent). Returns how many changes were taken back.
        """
        me = self.env.context.get("job_uuid")
        clauses = ["state = 'sending'"]
        params = {"old": fields.Datetime.now() - timedelta(minutes=UNOWNED_SENDING_MINUTES)}
        if backend_ids:
            clauses.append("backend_id IN %(backends)s")
            params["backends"] = tuple(backend_ids)
        if topic:
            clauses.append("topic = %(topic)s")
            params["topic"] = topic
        self.flush_model()
        # Its own short transaction: testing a job's lock takes it for a moment.
        with self.env.registry.cursor() as cr:
            cr.execute(
                "SELECT id, claim_job_uuid, claimed_at FROM connector_outbound WHERE "
                + " AND ".join(clauses),
                params,
            )
            rows = cr.fetchall()
            alive = {}
            for job_uuid in {row[1] for row in rows if row[1] and row[1] != me}:
                cr.execute(JOB_ALIVE_SQL, {"job": job_uuid})
                alive[job_uuid] = cr.fetchone()[0]
        dead = self.browse(
            row[0]
            for row in rows
            if (row[1] and (row[1] == me or not alive[row[1]]))
            or (not row[1] and row[2] and row[2] < params["old"])
        )
        if dead:
            _logger.info("taking back %d outbound changes whose send died", len(dead))
            dead._back_to_pending(
                self.env._("Sent again: the send that took it stopped before it was recorded."),
                spent=False,
            )
        return len(dead)

    def _back_to_pending(self, message, spent, give_up_after=None, backend=None):
        """Put changes that were being sent back in the queue, in a transaction
        of their own: pending again, or superseded when a newer change of the
        same key is already pending (it carries the latest value), or failed
        once ``give_up_after`` attempts were spent on them.

        ``backend``: theirs, given by a flush job: the changes it claimed on a
        cursor of their own may have been queued after its transaction's
        snapshot, which cannot read them.

        Returns ``(retries, given_up)``: the most attempts spent on one of
        them before this failure, and how many were given up.
        """
        if not self:
            return 0, 0
        backend = backend or self[:1].backend_id
        previous = given_up = 0
        with backend._new_transaction(read_committed=True) as env:
            env.cr.execute(
                "SELECT item.id, item.retry_count, "
                "       (SELECT min(newer.id) FROM connector_outbound newer "
                "         WHERE newer.backend_id = item.backend_id AND newer.topic = item.topic "
                "           AND newer.coalescing_key = item.coalescing_key "
                "           AND newer.state = 'pending') "
                "FROM connector_outbound item "
                "WHERE item.id IN %s AND item.state = 'sending' FOR UPDATE OF item",
                (tuple(self.ids),),
            )
            for item_id, retry_count, newer_id in env.cr.fetchall():
                previous = max(previous, retry_count)
                retries = retry_count + (1 if spent else 0)
                if give_up_after and spent and retries >= give_up_after:
                    given_up += 1
                    vals = {
                        "state": "failed",
                        "error_kind": "remote",
                        "error_message": env._(
                            "Gave up after %(n)d attempts; the remote kept failing: %(error)s",
                            n=retries,
                            error=message,
                        ),
                    }
                elif newer_id:
                    vals = {
                        "state": "cancelled",
                        "error_kind": "superseded",
                        "error_message": env._(
                            "Superseded by the newer pending change %(id)s of the same key.",
                            id=newer_id,
                        ),
                    }
                else:
                    vals = {"state": "pending", "error_kind": "remote", "error_message": message}
                params = {**vals, "retries": retries, "now": fields.Datetime.now(), "id": item_id}
                if vals["state"] != "pending":
                    env.cr.execute(BACK_SQL, params)
                    continue
                try:
                    # A change of the key may have been queued since the
                    # SELECT: then it is the newer one, this one superseded.
                    with env.cr.savepoint(flush=False):
                        env.cr.execute(BACK_SQL, params, log_exceptions=False)
                except psycopg2.errors.UniqueViolation:
                    env.cr.execute(
                        BACK_SQL,
                        {
                            **params,
                            "state": "cancelled",
                            "error_kind": "superseded",
                            "error_message": env._(
                                "Superseded by a newer pending change of the same key."
                            ),
                        },
                    )
        self.invalidate_recordset()
        return previous, given_up


class ConnectorBackend(models.Model):
    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    outbound_pending_count = fields.Integer(compute="_compute_outbound_counts")
    outbound_failed_count = fields.Integer(compute="_compute_outbound_counts")

    def _compute_outbound_counts(self):
        counts = {
            (backend.id, state): count
            for backend, state, count in self.env["connector.outbound"]._read_group(
                [("backend_id", "in", self.ids), ("state", "in", ("pending", "sending", "failed"))],
                ["backend_id", "state"],
                ["__count"],
            )
        }
        for backend in self:
            backend.outbound_pending_count = counts.get((backend.id, "pending"), 0) + counts.get(
                (backend.id, "sending"), 0
            )
            backend.outbound_failed_count = counts.get((backend.id, "failed"), 0)

    def _send_later(self, topic, key, payload, record=None, correlation_id=None):
        """Queue a change for the remote; coalesced with a pending one of the same key.

        Returns the pending outbound change. Safe under concurrency: the
        pending change of a key is updated in place by one SQL upsert. A
        change whose key is being sent right now is a new pending change,
        sent after that send.
        """
        self.ensure_one()
        declaration = self._get_topic(topic, OutboundTopic)
        item = self._upsert_change(
            declaration, topic, key, payload, record=record, correlation_id=correlation_id
        )
        self._schedule_outbound_flush(topic)
        return item

    def _send_later_here(self, topic, changes):
        """Queue many changes (``(key, payload, record)``) as :meth:`_send_later`
        does, in the caller's transaction (they go if it commits), with one
        look for the flush job instead of one per change."""
        self.ensure_one()
        declaration = self._get_topic(topic, OutboundTopic)
        items = self.env["connector.outbound"]
        for key, payload, record in changes:
            items |= self._upsert_change(declaration, topic, key, payload, record=record)
        if items:
            self._schedule_outbound_flush(topic)
        return items

    def _send_later_many(self, topic, changes, chunk=200, tries=5):
        """Queue many changes (``(key, payload, record)``), a reconciliation's:
        in chunks, each its own short transaction, so that a snapshot of the
        whole catalogue never holds the pending rows that stock moves update,
        and a chunk that clashes with one of them is simply done again."""
        self.ensure_one()
        declaration = self._get_topic(topic, OutboundTopic)
        changes = list(changes)
        for start in range(0, len(changes), chunk):
            for attempt in range(1, tries + 1):
                try:
                    with self._new_transaction() as env:
                        backend = self.with_env(env)
                        for key, payload, record in changes[start : start + chunk]:
                            backend._upsert_change(
                                declaration,
                                topic,
                                key,
                                payload,
                                record=record and record.with_env(env),
                            )
                    break
                except PG_CONCURRENCY_ERRORS:
                    if attempt == tries:
                        raise
                    time.sleep(random.uniform(0, 0.1 * 2**attempt))
        self.env["connector.outbound"].invalidate_model()
        if changes:
            self._schedule_outbound_flush(topic)
        return len(changes)

    def _upsert_change(self, declaration, topic, key, payload, *, record=None, correlation_id=None):
        """The pending change of ``key``, created or given this newer payload.

        Never a conflict for the caller: a stock move validated while a send
        claims the pending change of its key (or while another transaction
        changes it) runs on a snapshot older than that change, and merging
        into it would fail the whole validation with a serialization error,
        retried seconds later. Its change is then queued unmerged, on its
        own: the claim sends it after the key's older changes.

        In the context ``connector_task_id``, the change becomes part of that
        task (a full stock push, a catalog export), even if it was pending
        already."""
        self.env["connector.outbound"].flush_model()
        values = (
            self.id,
            self.company_id.id,
            declaration.flow,
            topic,
            str(key),
            json.dumps(payload),
            correlation_id or uuid.uuid4().hex,
            record._name if record else None,
            record.id if record else None,
            self.env.context.get("connector_task_id"),
            self.env.uid,
            self.env.uid,
        )
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(UPSERT_SQL, values, log_exceptions=False)
                item_id = self.env.cr.fetchone()[0]
        except PG_RETRYABLE_ERRORS:
            self.env.cr.execute(UNMERGED_INSERT_SQL, values)
            item_id = self.env.cr.fetchone()[0]
        item = self.env["connector.outbound"].browse(item_id)
        item.invalidate_recordset()
        return item

    def _schedule_outbound_flush(self, topic):
        """One pending flush job per backend and topic sends what is pending.

        Real-time: after the topic's short window, so that a burst of changes
        coalesces; micro-batch: after the policy's interval; scheduled at set
        times of day: at the next one; scheduled every N minutes: by the cron
        only.
        """
        self.ensure_one()
        if self.state not in ("running", "circuit_open"):
            return None
        declaration = self._get_topic(topic, OutboundTopic)
        policy = self._policy(declaration.flow)
        if not policy.enabled:
            return None
        if policy.mode == "scheduled":
            run = policy._next_run()
            return run and self._enqueue_outbound_flush(topic, eta=run)
        return self._enqueue_outbound_flush(
            topic, eta=policy._processing_delay() or declaration.window_seconds
        )

    def _flush_pending(self, topic):
        """Queue the flush of ``topic`` when changes of it are pending: what a
        run queued, and what was queued since the last one (a scheduled flow)."""
        self.ensure_one()
        pending = self.env["connector.outbound"].search_count(
            [("backend_id", "=", self.id), ("topic", "=", topic), ("state", "=", "pending")],
            limit=1,
        )
        if pending:
            self._enqueue_outbound_flush(topic)

    def _enqueue_outbound_flush(self, topic, eta=None, recheck=True):
        """The flush job of ``topic`` on the flow's channel; none is added while
        one is already waiting to run (its identity key).

        The job found waiting may start, send what it finds and end before
        this transaction commits its change (a job importing fifty orders
        commits late): with ``recheck``, once committed, a flush is queued
        again if changes are pending and none waits.
        """
        self.ensure_one()
        declaration = self._get_topic(topic, OutboundTopic)
        identity_key = f"connector.outbound-{self.id}-{topic}"
        # Every stock move asks: when the flush is already waiting, say so in
        # one indexed query instead of queue_job's building a job to find it.
        self.env.cr.execute(WAITING_JOB_SQL, {"key": identity_key})
        if self.env.cr.fetchone():
            if recheck:
                self._ensure_flush_after_commit(topic, eta)
            return None
        # Sent as the backend's connector user, whoever made the change.
        backend = self.with_user(self._connector_user()).sudo()
        return backend.with_delay(
            channel=self._policy(declaration.flow).channel,
            eta=eta,
            max_retries=JOB_MAX_RETRIES,
            identity_key=identity_key,
            description=f"{self.name}: send {topic}",
        )._flush_outbound(topic)

    def _ensure_flush_after_commit(self, topic, eta):
        """Once this transaction is committed, queue the flush of ``topic`` if
        changes of it are pending and no flush waits (once a transaction)."""
        known = self.env.cr.postcommit.data.setdefault("connector.outbound.recheck", set())
        if (self.id, topic) in known:
            return
        known.add((self.id, topic))
        registry, uid, context = self.env.registry, self.env.uid, dict(self.env.context)
        backend_id = self.id

        def ensure():
            with registry.cursor() as cr:
                env = api.Environment(cr, uid, context, su=True)
                backend = env["connector.backend"].browse(backend_id).exists()
                if backend and env["connector.outbound"].search_count(
                    [
                        ("backend_id", "=", backend.id),
                        ("topic", "=", topic),
                        ("state", "=", "pending"),
                    ],
                    limit=1,
                ):
                    backend._enqueue_outbound_flush(topic, eta=eta, recheck=False)

        self.env.cr.postcommit.add(ensure)

    def _flush_outbound(self, topic):
        """Send the pending changes of ``topic`` in batches (the queue job).

        Batch after batch: claim (committed), send with no lock held, record
        (committed). A refusal is recorded on the refused changes; a transient
        fault puts the batch back and asks queue_job to run the job again
        when the remote allows, without spending an attempt while the remote
        is known to be down (circuit open).
        """
        self.ensure_one()
        if not self.env.su:
            # Queued by whoever changed what is sent (a manager's button, a
            # stock move): the outbox is the framework's to write, users
            # only read it.
            return self.sudo()._flush_outbound(topic)
        backend = self.with_company(self.company_id)
        declaration = backend._get_topic(topic, OutboundTopic)
        if backend.state not in ("running", "circuit_open"):
            return f"{topic}: backend {backend.state}, nothing sent"
        if not backend._policy(declaration.flow).enabled:
            return f"{topic}: flow {declaration.flow} disabled, nothing sent"
        # One flush of a topic at a time per backend: a second one would take
        # a second worker for the same remote, and senders that look up what
        # an earlier send made (fulfillments) must not run side by side. The
        # lock lives as long as this job's transaction; a flush that finds it
        # taken waits its turn without holding a worker.
        self.env.cr.execute(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"connector.outbound.flush:{backend.id}:{topic}",),
        )
        if not self.env.cr.fetchone()[0]:
            raise RetryableJobError(
                self.env._("Another flush of %(topic)s is sending: this one waits.", topic=topic),
                seconds=max(1, declaration.window_seconds),
                ignore_retry=True,
            )
        Outbound = self.env["connector.outbound"]
        self.env.flush_all()  # other cursors read what this one queued
        Outbound._take_back_abandoned([backend.id], topic)
        sent = failed = 0
        started = time.monotonic()
        try:
            while True:
                is_open, wait = backend._circuit_status_now()
                if is_open and wait > 0:
                    raise RetryableJobError(
                        self.env._("Circuit open: waiting %(s)d s for the remote.", s=wait),
                        seconds=max(1, math.ceil(wait)),
                        ignore_retry=True,
                    )
                batch_ids = Outbound._claim(backend, topic, declaration)
                if not batch_ids:
                    break
                ok, ko = backend._send_batch(declaration, batch_ids)
                sent += ok
                failed += ko
                if time.monotonic() - started >= FLUSH_BUDGET_SECONDS:
                    # Another job goes on (it waits for this one's lock to go).
                    backend._enqueue_outbound_flush(topic, recheck=False)
                    return f"{topic}: {sent} sent, {failed} failed; the rest in another job"
        finally:
            # The sends wrote in transactions of their own: read afresh.
            self.env.invalidate_all()
        return f"{topic}: {sent} sent, {failed} failed"

    def _send_batch(self, declaration, batch_ids):
        """Send one claimed batch and record its outcome; ``(sent, failed)``.

        The sender runs on a cursor of its own: what it reads is current, and
        what it writes (bindings, remote results) is committed with the
        outcome. A transient fault rolls that back, puts the batch back in
        the queue and raises :class:`RetryableJobError` for the job.
        """
        Outbound = self.env["connector.outbound"]
        with self._new_transaction() as env:
            backend = self.with_env(env)
            items = env["connector.outbound"].browse(batch_ids)
            try:
                with expected_conflicts():
                    refused = getattr(backend, declaration.sender)(items) or {}
                    # What the sender wrote meets a concurrent writer here,
                    # not at the commit below, where a clash would escape.
                    env.flush_all()
            except RemoteRetryableError as exc:
                env.cr.rollback()
                spent, is_open, wait = self._transient_fault_outlook(exc)
                retries, given_up = Outbound.browse(batch_ids)._back_to_pending(
                    self.env._("Retrying: %(error)s", error=exc),
                    spent=spent,
                    give_up_after=declaration.max_attempts,
                    backend=self,
                )
                if given_up == len(batch_ids):
                    return 0, given_up
                raise RetryableJobError(
                    str(exc),
                    seconds=self._retry_delay(exc, retries, wait if is_open else None),
                    ignore_retry=not spent,
                ) from exc
            except PG_RETRYABLE_ERRORS as exc:
                # Another transaction wrote what the sender writes: send again later.
                env.cr.rollback()
                Outbound.browse(batch_ids)._back_to_pending(
                    self.env._("Retrying after a conflict with another transaction."),
                    spent=True,
                    give_up_after=declaration.max_attempts,
                    backend=self,
                )
                raise RetryableJobError(str(exc), seconds=5) from exc
            except RemoteError as exc:
                env.cr.rollback()
                refused = dict.fromkeys(batch_ids, str(exc))
            except Exception as exc:
                # A bug in the sender: recorded on the batch, which leaves the
                # queue, so the next batch is a different one (never a loop).
                env.cr.rollback()
                _logger.info("outbound %s: sender failed unexpectedly: %s", batch_ids, exc)
                items.write(
                    {
                        "state": "failed",
                        "error_kind": "unexpected",
                        "error_message": str(exc) or exc.__class__.__name__,
                        "error_traceback": traceback.format_exc(),
                    }
                )
                return 0, len(batch_ids)
            accepted = items.filtered(lambda i: i.id not in refused)
            accepted.write(
                {
                    "state": "sent",
                    "sent_at": fields.Datetime.now(),
                    "error_message": False,
                    "error_kind": False,
                }
            )
            for item in items - accepted:
                item.write(
                    {
                        "state": "failed",
                        "error_kind": "remote",
                        "error_message": refused[item.id],
                    }
                )
            return len(accepted), len(items) - len(accepted)

    @api.model
    def _cron_flush_outbound(self):
        """Scheduled flows, changes whose flush job was lost and sends that died."""
        Outbound = self.env["connector.outbound"]
        Outbound._take_back_abandoned()
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
                due = policy._due_since(oldest.create_date)
            else:
                due = oldest.write_date < stale
            if policy.enabled and due:
                backend._enqueue_outbound_flush(topic)

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
                backend._enqueue_outbound_flush(topic)
        return True
