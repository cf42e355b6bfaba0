import contextlib
import json
import logging
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import config, split_every

from ..components.topics import InboundTopic
from .connector_backend import JOB_MAX_RETRIES

_logger = logging.getLogger(__name__)

EVENT_STATES = [
    ("received", "Received"),
    ("queued", "Queued"),
    ("processing", "Processing"),
    ("waiting", "Waiting"),
    ("done", "Done"),
    ("failed", "Failed"),
    ("ignored", "Ignored"),
    ("stale", "Skipped (stale)"),
    ("duplicate", "Duplicate"),
]
# States in which an event still has to be applied: later events of its
# sequence key wait for it.
OPEN_STATES = ("received", "queued", "processing", "waiting", "failed")
ERROR_KINDS = [
    ("validation", "Invalid data"),
    ("sequence", "Waiting for an earlier message"),
    ("prerequisite", "Missing prerequisite"),
    ("remote", "Remote system error"),
    ("business", "Cannot be applied in Odoo"),
    ("configuration", "Configuration"),
    ("unexpected", "Unexpected error"),
]
# A webhook's event gets its job from the backend's dispatcher, due this many
# seconds after the first event it has to queue: the events received meanwhile
# share its run, and a webhook costs no job of its own (QUALITY P1).
DISPATCH_WINDOW = 1
DISPATCH_CHUNK = 500
# Per worker: until when a backend's dispatcher is known to be waiting (due
# later, so not started: queue_job runs no job before its eta), so that the
# webhooks of that second need not ask. The margin covers the clocks of the
# runner and of this worker.
_DISPATCHER_WAITING = {}
DISPATCHER_MARGIN = 0.25


def _remember_waiting(known, eta):
    """Remember that the dispatcher of ``known`` waits until ``eta`` (naive UTC,
    as queue_job stores it), measured on this worker's monotonic clock."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # to the microsecond
    due_in = (eta - now).total_seconds()
    _DISPATCHER_WAITING[known] = time.monotonic() + due_in - DISPATCHER_MARGIN


# The safety net of waiting events: first check after 10 minutes, then
# doubling, at most once a day (they are woken at once by what they wait for).
RECHECK_FIRST = timedelta(minutes=10)
RECHECK_MAX = timedelta(days=1)
SOURCES = [
    ("webhook", "Webhook"),
    ("poll", "Polling / backfill"),
    ("upload", "Uploaded batch"),
    ("manual", "Manual import"),
]
# The intake's one statement: the unique index of originals settles two
# deliveries of one message racing, in the database (see _receive).
INSERT_EVENT_SQL = """
INSERT INTO connector_event (
    backend_id, company_id, flow, topic, idempotency_key, sequence_key, batch_key, waiting_key,
    occurred_at, received_at, source, payload, correlation_id, state, attempts,
    retry_count, recheck_count, error_kind, error_message, next_retry_at,
    duplicate_of_id, create_uid, write_uid, create_date, write_date
)
SELECT
    %(backend_id)s, %(company_id)s, %(flow)s, %(topic)s, %(idempotency_key)s,
    %(sequence_key)s, %(batch_key)s, %(waiting_key)s, %(occurred_at)s, %(now)s, %(source)s,
    %(payload)s, %(correlation_id)s, %(state)s, 0, 0, 0, %(error_kind)s, %(error_message)s,
    %(next_retry_at)s, %(duplicate_of_id)s, %(uid)s, %(uid)s, %(now)s, %(now)s
-- The dispatcher's lock, shared, in the same round trip (see _wake_dispatcher).
FROM (SELECT pg_advisory_xact_lock_shared(hashtextextended(%(dispatch_key)s, 0))) AS dispatch
ON CONFLICT (backend_id, idempotency_key) WHERE duplicate_of_id IS NULL DO NOTHING
RETURNING id
"""

# The intake of many messages in one statement: what differs from row to row
# comes as arrays (cheap to pass, one round trip), the rest once.
INSERT_MANY_SQL = """
INSERT INTO connector_event (
    backend_id, company_id, flow, topic, idempotency_key, sequence_key, batch_key,
    waiting_key, occurred_at, received_at, source, payload, correlation_id, state, attempts,
    retry_count, recheck_count, error_kind, error_message, next_retry_at,
    create_uid, write_uid, create_date, write_date
)
SELECT
    %(backend_id)s, %(company_id)s, m.flow, m.topic, m.idempotency_key, m.sequence_key,
    m.batch_key, m.waiting_key, m.occurred_at, %(now)s, %(source)s, m.payload::jsonb,
    m.correlation_id, m.state, 0, 0, 0, m.error_kind, m.error_message, m.next_retry_at,
    %(uid)s, %(uid)s, %(now)s, %(now)s
FROM unnest(
    %(flow)s::varchar[], %(topic)s::varchar[], %(idempotency_key)s::varchar[],
    %(sequence_key)s::varchar[], %(batch_key)s::varchar[], %(waiting_key)s::varchar[],
    %(occurred_at)s::timestamp[], %(payload)s::text[], %(correlation_id)s::varchar[],
    %(state)s::varchar[], %(error_kind)s::varchar[], %(error_message)s::text[],
    %(next_retry_at)s::timestamp[]
) AS m(
    flow, topic, idempotency_key, sequence_key, batch_key, waiting_key, occurred_at,
    payload, correlation_id, state, error_kind, error_message, next_retry_at
)
ON CONFLICT (backend_id, idempotency_key) WHERE duplicate_of_id IS NULL DO NOTHING
RETURNING idempotency_key, id
"""
INSERT_MANY_COLUMNS = (
    "flow",
    "topic",
    "idempotency_key",
    "sequence_key",
    "batch_key",
    "waiting_key",
    "occurred_at",
    "payload",
    "correlation_id",
    "state",
    "error_kind",
    "error_message",
    "next_retry_at",
)
# Rows of one statement of _receive_many: a thousand tickets, a page of orders.
INSERT_MANY_CHUNK = 1000


class ConnectorEvent(models.Model):
    """One message received from a remote system: the inbox.

    Stored before anything else happens, so that nothing received is lost;
    then processed by a queue job, exactly once in effect, in order per
    sequence key. Its state is the audit trail of that message, and failed or
    waiting events make the exception queue of support staff.
    """

    _name = "connector.event"
    _description = "Connector Event"
    _order = "received_at desc, id desc"
    _rec_names_search = ["idempotency_key", "sequence_key", "topic", "correlation_id"]

    # Indexes are what an insert pays for on every webhook: only those the
    # framework and support searches use (the composite ones below cover
    # backend, sequence, waiting and dispatching).
    backend_id = fields.Many2one(
        "connector.backend", required=True, ondelete="cascade", readonly=True
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    backend_type = fields.Selection(related="backend_id.backend_type")
    # A selection over the flows of the sync policies, so that the flow shows
    # by its name and can be a category of the exceptions' filter panel; the
    # column stays the flow's code, written by the intake's SQL.
    flow = fields.Selection(selection="_selection_flow", readonly=True)
    topic = fields.Char(required=True, readonly=True)
    idempotency_key = fields.Char(required=True, readonly=True)
    sequence_key = fields.Char(readonly=True, help="The aggregate the message is about.")
    waiting_key = fields.Char(
        readonly=True, help="The aggregate whose arrival this waiting event needs."
    )
    batch_key = fields.Char(
        readonly=True,
        help="Batched topics: the key space (a POS store and register) whose events one "
        "job applies together; empty: one per backend and topic.",
    )
    occurred_at = fields.Datetime(required=True, readonly=True)
    received_at = fields.Datetime(
        required=True, readonly=True, default=fields.Datetime.now, index=True
    )
    source = fields.Selection(SOURCES, required=True, default="webhook", readonly=True)
    payload = fields.Json(readonly=True)
    payload_text = fields.Text(
        string="Payload (JSON)", compute="_compute_payload_text", readonly=True
    )
    correlation_id = fields.Char(
        readonly=True,
        index=True,
        default=lambda self: uuid.uuid4().hex,
        help="Follows the message from the remote system to the Odoo record and beyond.",
    )
    state = fields.Selection(
        EVENT_STATES, default="received", required=True, readonly=True, index=True
    )
    attempts = fields.Integer(default=0, readonly=True, help="How many times processing started.")
    retry_count = fields.Integer(
        default=0,
        readonly=True,
        help="Transient failures since the event was last queued by a person.",
    )
    error_kind = fields.Selection(ERROR_KINDS, readonly=True)
    error_message = fields.Text(readonly=True)
    error_traceback = fields.Text(readonly=True)
    next_retry_at = fields.Datetime(
        string="Next check",
        readonly=True,
        help="Retrying: when the next try is due. Waiting: when the safety net checks "
        "again whether it may be applied (it is also woken as soon as what it waits for "
        "arrives).",
    )
    recheck_count = fields.Integer(
        default=0,
        readonly=True,
        help="How many times the safety net found the waiting event still blocked.",
    )
    processed_at = fields.Datetime(readonly=True)
    # Averaged when grouped (lists, pivots, the dashboard's charts): a sum of
    # durations or lags means nothing.
    duration_ms = fields.Integer(string="Duration (ms)", readonly=True, aggregator="avg")
    lag_seconds = fields.Integer(
        readonly=True,
        aggregator="avg",
        help="From the moment it occurred to the moment it was applied.",
    )
    res_model = fields.Char(string="Record model", readonly=True)
    res_id = fields.Many2oneReference(string="Record ID", model_field="res_model", readonly=True)
    record_name = fields.Char(compute="_compute_record_name")
    duplicate_of_id = fields.Many2one(
        "connector.event", readonly=True, index="btree_not_null", ondelete="set null"
    )
    duplicate_count = fields.Integer(compute="_compute_duplicate_count")
    job_ids = fields.Many2many(
        "queue.job",
        string="Jobs",
        readonly=True,
        copy=False,
        groups="queue_job.group_queue_job_manager",
    )
    audit_ids = fields.One2many("connector.event.audit", "event_id", readonly=True)
    task_id = fields.Many2one(
        "connector.task",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        help="The long operation (backfill, replay window…) this event is part of.",
    )

    # Duplicates keep the key of the event they repeat: unique among originals.
    _idempotency_uniq = models.UniqueIndex(
        "(backend_id, idempotency_key) WHERE duplicate_of_id IS NULL",
        "This message was already received by this backend.",
    )
    _sequence_idx = models.Index("(backend_id, sequence_key, occurred_at)")
    # The first open event of a key, which holds the later ones back: found
    # without reading the key's history, which grows by the day (a register
    # applied 100,000 tickets would be read back for each new one).
    _open_sequence_idx = models.Index(
        "(backend_id, sequence_key, occurred_at, id) WHERE duplicate_of_id IS NULL AND "
        f"state IN ({', '.join(repr(state) for state in OPEN_STATES)})"
    )
    _waiting_idx = models.Index("(backend_id, waiting_key) WHERE state = 'waiting'")
    _received_idx = models.Index("(backend_id, occurred_at, id) WHERE state = 'received'")
    # What a batch job takes: the queued events of its key space, oldest first.
    _queued_batch_idx = models.Index(
        "(backend_id, topic, batch_key, occurred_at, id) WHERE state = 'queued'"
    )
    _recheck_idx = models.Index("(next_retry_at, id) WHERE state = 'waiting'")
    # The metrics' period filter (an insert has no processed_at: it costs nothing there).
    _processed_idx = models.Index("(processed_at) WHERE processed_at IS NOT NULL")
    # The overview's last webhook received per backend: the end of this index.
    _webhook_received_idx = models.Index("(backend_id, received_at) WHERE source = 'webhook'")

    @api.model
    def _selection_flow(self):
        """Every flow code of the sync policies, with its name (the first
        policy's, when backends name one flow differently)."""
        names = {}
        policies = self.env["connector.sync.policy"].sudo().with_context(active_test=False)
        for flow, name in policies.search_fetch([], ["flow", "name"]).mapped(
            lambda p: (p.flow, p.name)
        ):
            names.setdefault(flow, name)
        return sorted(names.items(), key=lambda item: item[1] or item[0])

    @api.depends("payload")
    def _compute_payload_text(self):
        for event in self:
            event.payload_text = json.dumps(event.payload, indent=2, ensure_ascii=False)

    def _compute_record_name(self):
        for event in self:
            record = event._produced_record()
            event.record_name = record.display_name if record else False

    def _compute_duplicate_count(self):
        counts = dict(
            self.env["connector.event"]._read_group(
                [("duplicate_of_id", "in", self.ids)], ["duplicate_of_id"], ["__count"]
            )
        )
        for event in self:
            event.duplicate_count = counts.get(event, 0)

    @api.depends("topic", "sequence_key", "backend_id")
    def _compute_display_name(self):
        for event in self:
            event.display_name = f"{event.topic} {event.sequence_key or event.idempotency_key}"

    def _produced_record(self):
        self.ensure_one()
        if not (self.res_model and self.res_id) or self.res_model not in self.env:
            return None
        record = self.env[self.res_model].browse(self.res_id).exists()
        return record or None

    def write(self, vals):
        if "payload" in vals and not self.env.user.has_group(
            "connector_base.group_connector_manager"
        ):
            raise AccessError(self.env._("Only connector managers may change an event's payload."))
        return super().write(vals)

    # --- intake -------------------------------------------------------------

    @api.model
    def _receive(
        self,
        backend,
        topic,
        payload,
        idempotency_key,
        *,
        occurred_at=None,
        source="webhook",
        correlation_id=None,
        sequence_key=None,
        raw=None,
    ):
        """Store one message received from ``backend`` and queue its processing.

        A message whose ``idempotency_key`` this backend already has is stored
        as a duplicate of the first one, without its payload, and has no
        other effect. A message of a
        topic the backend does not declare is stored as failed, for support
        staff to see. One whose prerequisite is missing is stored waiting,
        without a job: it is queued when what it waits for arrives. ``raw``:
        the JSON text ``payload`` was parsed from, stored as it came. Returns
        the stored event.

        The hot path of every webhook, a few statements and no ORM: one
        INSERT settles duplicates in the database (two copies racing: the
        second waits for the first and, as its snapshot cannot see it, fails
        with a serialization error that Odoo's request handling retries; the
        retry sees the first and stores a duplicate), and the event is left
        *received* for the backend's dispatcher, which gives it its job a
        moment later with the others received meanwhile (see
        ``_wake_dispatcher``): creating a queue job is most of what a webhook
        would otherwise cost.
        """
        backend.ensure_one()
        vals = self._intake_values(
            backend,
            backend._connector_topics(),
            topic,
            payload,
            idempotency_key,
            occurred_at=occurred_at,
            source=source,
            correlation_id=correlation_id,
            sequence_key=sequence_key,
            raw=raw,
        )
        self.env.cr.execute(INSERT_EVENT_SQL, vals, log_exceptions=False)
        row = self.env.cr.fetchone()
        if not row:
            original = self._find_original(backend, idempotency_key)
            # A redelivery, or a captured webhook replayed: the original holds
            # the payload, a replay must not make the database grow by it.
            vals.update(
                state="duplicate",
                payload=None,
                duplicate_of_id=original.id,
                batch_key=None,
                error_kind=None,
                error_message=None,
                waiting_key=None,
                next_retry_at=None,
            )
            # Its reference to the original locks the original's key, which a
            # job may have just changed: a serialization failure the request's
            # retry settles, not an error worth logging.
            self.env.cr.execute(INSERT_EVENT_SQL, vals, log_exceptions=False)
            row = self.env.cr.fetchone()
        event = self.browse(row[0])
        # What the webhook's answer says, known here: not read back.
        self._fields["state"]._update_cache(event, vals["state"])
        if vals["state"] == "received" and backend.state in ("running", "circuit_open"):
            if self.env.context.get("queue_job__no_delay"):
                event._enqueue(from_states=("received",))  # processed here and now
            else:
                self._wake_dispatcher(backend)
        elif vals["state"] == "waiting":
            event._recheck_waiting_after_commit({(backend.id, vals["waiting_key"])})
        return event

    @api.model
    def _receive_many(self, backend, messages, *, source="upload"):
        """Store many messages received from ``backend`` at once (an uploaded
        batch, a polled page), each as :meth:`_receive` stores one.

        ``messages``: dicts with ``topic``, ``payload``, ``idempotency_key``
        and optionally ``occurred_at``, ``sequence_key``, ``correlation_id``,
        ``raw``. Returns the stored events in the order of ``messages``; a
        message repeating an earlier one (of this call or before) is stored as
        its duplicate.

        One INSERT stores the originals (a thousand messages cost what a few
        webhooks do), with the same guarantees: the unique index of originals
        settles duplicates and races in the database, and the dispatcher is
        woken once for all.
        """
        backend.ensure_one()
        if not messages:
            return self.browse()
        if self.env.context.get("queue_job__no_delay"):
            # Processed here and now, each in turn: the single path does it.
            return self.browse(
                [
                    self._receive(backend, source=source, **self._message_args(m)).id
                    for m in messages
                ]
            )
        topics = backend._connector_topics()
        now = fields.Datetime.now()
        rows = [
            self._intake_values(
                backend, topics, source=source, now=now, **self._message_args(message)
            )
            for message in messages
        ]
        first = {}  # idempotency key -> its first row of this call
        for index, vals in enumerate(rows):
            first.setdefault(vals["idempotency_key"], index)
        # The dispatcher's lock, shared, as each single intake takes it.
        self.env.cr.execute(
            "SELECT pg_advisory_xact_lock_shared(hashtextextended(%s, 0))",
            (self._dispatcher_key(backend),),
        )
        stored = {}  # idempotency key -> id of the original this call stored
        for chunk in split_every(INSERT_MANY_CHUNK, [rows[i] for i in first.values()]):
            self.env.cr.execute(
                INSERT_MANY_SQL,
                {
                    "backend_id": backend.id,
                    "company_id": backend.company_id.id,
                    "now": now,
                    "source": source,
                    "uid": self.env.uid,
                    **{column: [vals[column] for vals in chunk] for column in INSERT_MANY_COLUMNS},
                },
                log_exceptions=False,
            )
            stored.update(self.env.cr.fetchall())
        before = {}  # idempotency key -> id of the original an earlier intake stored
        if set(first) - set(stored):
            originals = self.search(
                [
                    ("backend_id", "=", backend.id),
                    ("idempotency_key", "in", list(set(first) - set(stored))),
                    ("duplicate_of_id", "=", False),
                ]
            )
            before = {event.idempotency_key: event.id for event in originals}
        ids = []
        for index, vals in enumerate(rows):
            key = vals["idempotency_key"]
            if first[key] == index and key in stored:
                ids.append(stored[key])
                continue
            # A redelivery: stored without its payload, as a duplicate.
            vals.update(
                state="duplicate",
                payload=None,
                duplicate_of_id=stored.get(key) or before[key],
                batch_key=None,
                error_kind=None,
                error_message=None,
                waiting_key=None,
                next_retry_at=None,
            )
            # As for one message: the reference locks the original's key, a
            # serialization failure the request's retry settles.
            self.env.cr.execute(INSERT_EVENT_SQL, vals, log_exceptions=False)
            ids.append(self.env.cr.fetchone()[0])
        events = self.browse(ids)
        for event, vals in zip(events, rows, strict=True):
            self._fields["state"]._update_cache(event, vals["state"])
        running = backend.state in ("running", "circuit_open")
        if running and any(vals["state"] == "received" for vals in rows):
            self._wake_dispatcher(backend)
        waiting = {(backend.id, v["waiting_key"]) for v in rows if v["state"] == "waiting"}
        if waiting:
            events[:1]._recheck_waiting_after_commit(waiting)
        return events

    @api.model
    def _message_args(self, message):
        """The arguments of :meth:`_receive` one message of ``_receive_many`` gives."""
        return {
            "topic": message["topic"],
            "payload": message["payload"],
            "idempotency_key": message["idempotency_key"],
            "occurred_at": message.get("occurred_at"),
            "correlation_id": message.get("correlation_id"),
            "sequence_key": message.get("sequence_key"),
            "raw": message.get("raw"),
        }

    def _intake_values(
        self,
        backend,
        topics,
        topic,
        payload,
        idempotency_key,
        *,
        occurred_at=None,
        source="webhook",
        correlation_id=None,
        sequence_key=None,
        raw=None,
        now=None,
    ):
        """The row the intake stores for one message (see :meth:`_receive`):
        its flow, sequence key and state as the topic declares; ``topics``,
        the backend's declarations, read once per intake."""
        declaration = topics.get(topic)
        now = now or fields.Datetime.now()
        vals = {
            "backend_id": backend.id,
            "company_id": backend.company_id.id,
            "flow": None,
            "topic": topic,
            "idempotency_key": str(idempotency_key),
            "sequence_key": sequence_key,
            "batch_key": None,
            "waiting_key": None,
            "occurred_at": occurred_at or now,
            "now": now,
            "source": source,
            "payload": raw if raw is not None else json.dumps(payload),
            "correlation_id": correlation_id or uuid.uuid4().hex,
            "state": "received",
            "error_kind": None,
            "error_message": None,
            "next_retry_at": None,
            "duplicate_of_id": None,
            "uid": self.env.uid,
            "dispatch_key": self._dispatcher_key(backend),
        }
        if isinstance(declaration, InboundTopic):
            vals["flow"] = declaration.flow
            if sequence_key is None and declaration.sequence_key and isinstance(payload, dict):
                # A malformed payload has no key: validation will name what is wrong.
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    vals["sequence_key"] = declaration.sequence_key(payload)
            if declaration.batch_key and isinstance(payload, dict):
                # Unreadable: the default key space, where its validation fails alone.
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    vals["batch_key"] = declaration.batch_key(payload) or None
                if vals["batch_key"] is not None:
                    vals["batch_key"] = str(vals["batch_key"])
            if backend.state in ("running", "circuit_open"):
                vals.update(self._intake_state(backend, declaration, payload, now))
        else:
            vals.update(
                state="failed",
                error_kind="configuration",
                error_message=self.env._(
                    "Backend %(backend)s does not process the topic %(topic)r; the message "
                    "is kept here.",
                    backend=backend.display_name,
                    topic=topic,
                ),
            )
        return vals

    def _intake_state(self, backend, declaration, payload, now):
        """Received (its job comes from the dispatcher), or waiting without a
        job when its prerequisite is missing."""
        if declaration.prerequisite and isinstance(payload, dict):
            try:
                missing = getattr(backend, declaration.prerequisite)(self.browse(), payload)
            except (KeyError, TypeError, ValueError, AttributeError):
                missing = None  # a malformed payload: its job's validation says why
            if missing:
                reason, key = missing if isinstance(missing, tuple) else (missing, None)
                return {
                    "state": "waiting",
                    "error_kind": "prerequisite",
                    "error_message": reason,
                    "waiting_key": key,
                    "next_retry_at": now + RECHECK_FIRST,
                }
        return {}

    def _find_original(self, backend, idempotency_key):
        return self.search(
            [
                ("backend_id", "=", backend.id),
                ("idempotency_key", "=", str(idempotency_key)),
                ("duplicate_of_id", "=", False),
            ],
            limit=1,
        )

    # --- queueing -----------------------------------------------------------

    def _enqueue(self, from_states=("received", "failed", "waiting"), identity=True):
        """Queue the events of a running backend for processing: one job per
        event, or, for a batched topic, the job of its key space (see
        ``_enqueue_batch_job``), whatever ``identity`` says.

        The state change is a conditional UPDATE, so that two requeues racing
        never enqueue two jobs for one event; the job's identity key guards
        the same within one transaction.
        """
        events = self.filtered(lambda e: e.backend_id.state in ("running", "circuit_open")).sudo()
        if not events:
            return self.browse()
        self.flush_model()  # the conditional UPDATE below must see pending ORM writes
        self.env.cr.execute(
            "UPDATE connector_event SET state = 'queued', next_retry_at = NULL, "
            "retry_count = 0, recheck_count = 0 WHERE id IN %s AND state IN %s RETURNING id",
            (tuple(events.ids), tuple(from_states)),
        )
        queued = events.browse([row[0] for row in self.env.cr.fetchall()])
        queued.invalidate_recordset(["state", "next_retry_at", "retry_count", "recheck_count"])
        batches = defaultdict(list)
        topics = {}
        for event in queued.sorted(lambda e: (e.occurred_at, e.id)):
            backend = event.backend_id
            if backend not in topics:
                topics[backend] = backend._connector_topics()
            declaration = topics[backend].get(event.topic)
            if isinstance(declaration, InboundTopic) and declaration.batched:
                lane = declaration.batch_topic(event.topic)
                batches[backend, lane, event.batch_key or None].append(event.id)
            else:
                event._enqueue_job(identity_key=f"connector.event-{event.id}" if identity else None)
        for (backend, topic, batch_key), ids in batches.items():
            queued.browse(ids)._enqueue_batch_job(backend, topic, batch_key)
        return queued

    def _enqueue_job(self, identity_key=None):
        """Create the processing job of this queued event, on its flow's channel."""
        self.ensure_one()
        event = self.sudo()
        channel, delay = self.env["connector.sync.policy"]._job_settings(
            event.backend_id.id, event.flow
        )
        # The job runs as the backend's connector user, whoever queued it (the
        # public user of a webhook, a support user's requeue, a cron): the
        # records it makes and the messages it posts are the connector's. In
        # superuser mode, as every framework job: it writes the framework's rows.
        event = event.with_user(event.backend_id._connector_user()).sudo()
        job = event.with_delay(
            channel=channel,
            eta=delay or None,
            max_retries=JOB_MAX_RETRIES,
            identity_key=identity_key,
            description=event._job_description(),
        )._process()
        event._link_job(getattr(job, "uuid", None))
        return job

    def _link_job(self, job_uuid):
        """Show the job ``job_uuid`` among the jobs of these events (nothing to
        link when the job ran inline, queue_job__no_delay, or is trapped)."""
        if not (self and job_uuid):
            return
        self.env.cr.execute(
            "INSERT INTO connector_event_queue_job_rel (connector_event_id, queue_job_id) "
            "SELECT event_id, job.id FROM queue_job job, unnest(%s::int[]) AS event_id "
            "WHERE job.uuid = %s ON CONFLICT DO NOTHING",
            (self.ids, job_uuid),
        )
        self.invalidate_recordset(["job_ids"])

    def _job_description(self):
        self.ensure_one()
        return f"{self.backend_id.name}: {self.topic} {self.sequence_key or ''}".strip()

    # --- the dispatcher -------------------------------------------------------

    @api.model
    def _dispatcher_key(self, backend):
        return f"connector.dispatch-{backend.id}"

    @api.model
    def _wake_dispatcher(self, backend):
        """Make sure a dispatcher job of ``backend`` is waiting to run.

        A webhook leaves its event *received*; one dispatcher job per backend,
        due a moment later (:data:`DISPATCH_WINDOW`), gives the events
        received meanwhile their processing jobs. While one waits, a webhook
        costs one statement here. The shared advisory lock, held until this
        transaction ends, lets the dispatcher wait for the intakes in flight,
        so none stores an event after the dispatcher's last look while
        believing it would be seen.
        """
        backend.ensure_one()
        known = (self.env.cr.dbname, backend.id)
        # Not under tests: their transactions (and jobs) are rolled back, not this.
        remembered = not config["test_enable"]
        if remembered and time.monotonic() < _DISPATCHER_WAITING.get(known, 0):
            return None  # seen waiting, due later: it cannot have started yet
        key = self._dispatcher_key(backend)
        self.env.cr.execute(
            "SELECT pg_advisory_xact_lock_shared(hashtextextended(%s, 0)), state, eta "
            "FROM queue_job WHERE identity_key = %s "
            "AND state IN ('pending', 'enqueued', 'wait_dependencies') LIMIT 1",
            (key, key),
        )
        row = self.env.cr.fetchone()
        if row:
            # It will see this transaction's events: it waits for the lock.
            if remembered and row[1] == "pending" and row[2]:
                _remember_waiting(known, row[2])
            return None
        # Run as the backend's connector user, as the jobs it queues: not as
        # the public user of the webhook that woke it.
        job = (
            self.with_user(backend._connector_user())
            .sudo()
            .with_context(allowed_company_ids=backend.company_id.ids)
            .with_delay(
                eta=DISPATCH_WINDOW,
                max_retries=JOB_MAX_RETRIES,
                identity_key=key,
                description=f"{backend.name}: queue the messages received",
            )
            ._dispatch_received(backend.id)
        )
        if remembered and job is not None and job.eta:
            # The eta as stored (to the second) is the one the runner keeps.
            eta = job.eta.replace(microsecond=0)
            self.env.cr.postcommit.add(lambda: _remember_waiting(known, eta))
        return job

    @api.model
    def _dispatch_received(self, backend_id, chunk=DISPATCH_CHUNK):
        """Give every received event of a backend its processing job (the
        dispatcher job), oldest first, in chunks each committed on its own."""
        backend = self.env["connector.backend"].browse(backend_id).exists()
        if backend.state not in ("running", "circuit_open"):
            return f"backend {backend.state or 'gone'}: nothing queued"
        # Wait for the intakes in flight (they hold the lock shared until they
        # commit): what they stored is seen below; later ones wake a new
        # dispatcher, this one being started.
        with backend._new_transaction() as env:
            env.cr.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (self._dispatcher_key(backend),),
            )
        queued = 0
        while True:
            with backend._new_transaction() as env:
                env.cr.execute(
                    "SELECT id FROM connector_event WHERE backend_id = %s AND state = 'received' "
                    "ORDER BY occurred_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
                    (backend.id, chunk),
                )
                ids = [row[0] for row in env.cr.fetchall()]
                events = env["connector.event"].browse(ids)
                # Claimed by the conditional UPDATE: no identity check per event.
                queued += len(events._enqueue(from_states=("received",), identity=False))
            if len(ids) < chunk:
                break
        self.env.invalidate_all()
        return f"{queued} events queued"
