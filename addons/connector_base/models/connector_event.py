import json
import logging
import time
import traceback
import uuid
from datetime import timedelta

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import mute_logger

from odoo.addons.queue_job.exception import RetryableJobError

from ..components.http_client import RemoteError, RemoteRetryableError
from ..components.topics import InboundTopic
from ..components.validation import PayloadError, validate_payload

_logger = logging.getLogger(__name__)

EVENT_STATES = [
    ("received", "Received"),
    ("queued", "Queued"),
    ("processing", "Processing"),
    ("waiting", "Waiting"),
    ("done", "Done"),
    ("failed", "Failed"),
    ("ignored", "Ignored"),
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
SOURCES = [
    ("webhook", "Webhook"),
    ("poll", "Polling / backfill"),
    ("upload", "Uploaded batch"),
    ("manual", "Manual import"),
]
PG_CONCURRENCY_ERRORS = (
    psycopg2.errors.SerializationFailure,
    psycopg2.errors.DeadlockDetected,
    psycopg2.errors.LockNotAvailable,
)


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

    backend_id = fields.Many2one(
        "connector.backend", required=True, ondelete="cascade", index=True, readonly=True
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    backend_type = fields.Selection(related="backend_id.backend_type")
    flow = fields.Char(readonly=True, index=True)
    topic = fields.Char(required=True, readonly=True, index=True)
    idempotency_key = fields.Char(required=True, readonly=True)
    sequence_key = fields.Char(
        readonly=True, index=True, help="The aggregate the message is about."
    )
    waiting_key = fields.Char(
        readonly=True,
        index=True,
        help="The aggregate whose arrival this waiting event needs.",
    )
    occurred_at = fields.Datetime(required=True, readonly=True, index=True)
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
    error_kind = fields.Selection(ERROR_KINDS, readonly=True, index=True)
    error_message = fields.Text(readonly=True)
    error_traceback = fields.Text(readonly=True)
    next_retry_at = fields.Datetime(readonly=True)
    processed_at = fields.Datetime(readonly=True)
    duration_ms = fields.Integer(string="Duration (ms)", readonly=True)
    lag_seconds = fields.Integer(
        readonly=True, help="From the moment it occurred to the moment it was applied."
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

    # Duplicates keep the key of the event they repeat: unique among originals.
    _idempotency_uniq = models.UniqueIndex(
        "(backend_id, idempotency_key) WHERE duplicate_of_id IS NULL",
        "This message was already received by this backend.",
    )
    _sequence_idx = models.Index("(backend_id, sequence_key, occurred_at)")

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
    ):
        """Store one message received from ``backend`` and queue its processing.

        A message whose ``idempotency_key`` this backend already has is stored
        as a duplicate of the first one and has no other effect. A message of a
        topic the backend does not declare is stored as failed, for support
        staff to see. Returns the stored event.
        """
        backend.ensure_one()
        declaration = backend._connector_topics().get(topic)
        vals = {
            "backend_id": backend.id,
            "topic": topic,
            "payload": payload,
            "idempotency_key": str(idempotency_key),
            "occurred_at": occurred_at or fields.Datetime.now(),
            "source": source,
            "correlation_id": correlation_id or uuid.uuid4().hex,
        }
        if isinstance(declaration, InboundTopic):
            vals["flow"] = declaration.flow
            if sequence_key is None and declaration.sequence_key and isinstance(payload, dict):
                try:
                    sequence_key = declaration.sequence_key(payload)
                except (KeyError, TypeError, ValueError):
                    sequence_key = None  # validation will name what is wrong
            vals["sequence_key"] = sequence_key
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
        original = self._find_original(backend, idempotency_key)
        if not original:
            try:
                # Two deliveries racing: the unique index decides, quietly.
                with self.env.cr.savepoint(), mute_logger("odoo.sql_db"):
                    event = self.create(vals)
            except psycopg2.errors.UniqueViolation:
                original = self._find_original(backend, idempotency_key)
        if original:
            return self.create(
                dict(
                    vals,
                    state="duplicate",
                    duplicate_of_id=original.id,
                    error_kind=False,
                    error_message=False,
                )
            )
        if event.state == "received":
            event._enqueue()
        return event

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

    def _enqueue(self, from_states=("received", "failed", "waiting")):
        """Queue one processing job per event of a running backend.

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
            "retry_count = 0 WHERE id IN %s AND state IN %s RETURNING id",
            (tuple(events.ids), tuple(from_states)),
        )
        queued = events.browse([row[0] for row in self.env.cr.fetchall()])
        queued.invalidate_recordset(["state", "next_retry_at", "retry_count"])
        for event in queued.sorted(lambda e: (e.occurred_at, e.id)):
            policy = event.backend_id.policy_ids.filtered(lambda p, e=event: p.flow == e.flow)[:1]
            delay = policy._processing_delay() if policy else 0
            job = event.with_delay(
                channel=policy.channel if policy else None,
                eta=delay or None,
                identity_key=f"connector.event-{event.id}",
                description=event._job_description(),
            )._process()
            # Nothing to link when the job ran inline (queue_job__no_delay).
            stored = job.db_record() if hasattr(job, "db_record") else None
            if stored:
                event.sudo().job_ids = [fields.Command.link(stored.id)]
        return queued

    def _job_description(self):
        self.ensure_one()
        return f"{self.backend_id.name}: {self.topic} {self.sequence_key or ''}".strip()

    # --- processing (the job) ---------------------------------------------------

    def _process(self):
        """Apply one event; the queue job of every event.

        Failures that a person must look at are recorded on the event and the
        job ends normally; transient remote failures raise RetryableJobError
        so that queue_job retries later, as the remote asked.
        """
        self.ensure_one()
        # Records the handler makes belong to the backend's company.
        backend = self.backend_id.with_company(self.company_id)
        try:
            declaration = backend._get_topic(self.topic, InboundTopic)
        except UserError as exc:
            return self._fail("configuration", exc)
        started = time.monotonic()
        try:
            # Everything that touches the event or applies it happens in this
            # savepoint: on a transient failure it is rolled back, which also
            # releases the event's row lock for the retry bookkeeping.
            with self.env.cr.savepoint():
                if not self._start_processing():
                    return f"nothing to do: event is {self.state}"
                self._lock_sequence()
                blocker = self._blocking_reason(declaration)
                if blocker:
                    return blocker
                payload = validate_payload(declaration.schema, self.payload)
                record = getattr(backend, declaration.handler)(self, payload)
        except RemoteRetryableError as exc:
            return self._retry_later(exc, declaration)
        except PG_CONCURRENCY_ERRORS as exc:
            raise RetryableJobError(str(exc), seconds=5) from exc
        except PayloadError as exc:
            return self._fail("validation", exc)
        except RemoteError as exc:
            return self._fail("remote", exc)
        except (UserError, ValidationError) as exc:
            return self._fail("business", exc)
        except Exception as exc:
            return self._fail("unexpected", exc, traceback.format_exc())
        return self._succeed(record, started)

    def _start_processing(self):
        """Take the event: a conditional UPDATE that also locks its row, so
        that a job run twice (a requeue of a job still running) waits for the
        first and then finds nothing to do. False when already handled."""
        self.flush_model()
        self.env.cr.execute(
            "UPDATE connector_event SET state = 'processing', attempts = attempts + 1 "
            "WHERE id = %s AND state IN ('queued', 'processing') RETURNING id",
            (self.id,),
        )
        started = bool(self.env.cr.fetchone())
        # Read the event as stored now, not as this job's cache last saw it.
        self.invalidate_recordset()
        return started

    def _lock_sequence(self):
        """One transaction at a time per aggregate: events of one sequence key
        see each other's final state, never a half-committed one."""
        if self.sequence_key:
            self.env.cr.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"connector.event:{self.backend_id.id}:{self.sequence_key}",),
            )

    def _blocking_reason(self, declaration):
        """Put the event aside when it may not be applied yet; return why."""
        if self.sequence_key:
            siblings = self.search(
                [
                    ("backend_id", "=", self.backend_id.id),
                    ("sequence_key", "=", self.sequence_key),
                    ("duplicate_of_id", "=", False),
                    ("id", "!=", self.id),
                ]
            )
            # An earlier event waiting for a prerequisite does not hold later
            # ones back: one of them may be the very record it waits for.
            earlier = siblings.filtered(
                lambda e: (
                    (e.occurred_at, e.id) < (self.occurred_at, self.id)
                    and e.state in OPEN_STATES
                    and not (e.state == "waiting" and e.error_kind == "prerequisite")
                )
            )
            if earlier:
                first = earlier.sorted(lambda e: (e.occurred_at, e.id))[0]
                return self._wait(
                    self.env._(
                        "Waiting for the earlier event %(event)s (%(state)s) about %(key)s.",
                        event=first.display_name,
                        state=dict(EVENT_STATES)[first.state],
                        key=self.sequence_key,
                    ),
                    kind="sequence",
                )
            if declaration.skip_stale and siblings.filtered(
                lambda e: (e.occurred_at, e.id) > (self.occurred_at, self.id) and e.state == "done"
            ):
                self.write(
                    {
                        "state": "ignored",
                        "processed_at": fields.Datetime.now(),
                        "error_kind": False,
                        "error_message": self.env._(
                            "Stale: a newer message about %(key)s was already applied.",
                            key=self.sequence_key,
                        ),
                    }
                )
                return "ignored: stale"
        if declaration.prerequisite:
            missing = getattr(self.backend_id, declaration.prerequisite)(self, self.payload)
            if missing:
                reason, key = missing if isinstance(missing, tuple) else (missing, None)
                return self._wait(reason, waiting_key=key)
        return None

    def _wait(self, reason, waiting_key=None, kind="prerequisite"):
        self.write(
            {
                "state": "waiting",
                "error_kind": kind,
                "error_message": reason,
                "waiting_key": waiting_key,
            }
        )
        if kind == "sequence":
            self._recheck_sequence_after_commit()
        return f"waiting: {reason}"

    def _succeed(self, record, started):
        now = fields.Datetime.now()
        vals = {
            "state": "done",
            "processed_at": now,
            "duration_ms": int((time.monotonic() - started) * 1000),
            "lag_seconds": int((now - self.occurred_at).total_seconds()),
            "error_kind": False,
            "error_message": False,
            "error_traceback": False,
            "waiting_key": False,
        }
        if record:
            vals.update(res_model=record._name, res_id=record[:1].id)
        self.write(vals)
        self._wake_waiting()
        return f"done: {record[:1].display_name}" if record else "done"

    def _fail(self, kind, exc, trace=None):
        message = exc.args[0] if isinstance(exc, UserError) and exc.args else str(exc)
        self.write(
            {
                "state": "failed",
                "error_kind": kind,
                "error_message": message or exc.__class__.__name__,
                "error_traceback": trace or False,
                "processed_at": fields.Datetime.now(),
            }
        )
        _logger.info("event %s failed (%s): %s", self.id, kind, message)
        return f"failed: {message}"

    def _retry_later(self, exc, declaration):
        """A transient remote fault: retry as the remote asked, or give up."""
        if self.retry_count + 1 >= declaration.max_attempts:
            return self._fail(
                "remote",
                RemoteError(
                    self.env._(
                        "Gave up after %(n)d attempts; the remote kept failing: %(error)s",
                        n=self.retry_count + 1,
                        error=exc,
                    )
                ),
            )
        seconds = exc.retry_after
        delay = seconds if seconds is not None else 10 * 2 ** min(self.retry_count, 8)
        # Own cursor: this transaction is rolled back when the job is retried.
        self.flush_model()
        with self.env.registry.cursor() as cr:
            cr.execute(
                "UPDATE connector_event SET state = 'queued', retry_count = retry_count + 1, "
                "error_kind = 'remote', error_message = %s, next_retry_at = %s WHERE id = %s",
                (
                    self.env._("Retrying: %(error)s", error=exc),
                    fields.Datetime.now() + timedelta(seconds=delay),
                    self.id,
                ),
            )
        self.invalidate_recordset()
        raise RetryableJobError(str(exc), seconds=seconds)

    def _wake_waiting(self):
        """Re-queue the events that were waiting for this one."""
        if not self.sequence_key:
            return
        others = self.search(
            [
                ("backend_id", "=", self.backend_id.id),
                ("state", "in", OPEN_STATES),
                ("id", "!=", self.id),
                "|",
                ("sequence_key", "=", self.sequence_key),
                ("waiting_key", "=", self.sequence_key),
            ],
            order="occurred_at, id",
        )
        others.filtered(lambda e: e.state == "waiting")._enqueue(from_states=("waiting",))
        if others.filtered(lambda e: e.state != "waiting" and e.sequence_key == self.sequence_key):
            # One of them may be waiting for this event already, as of a
            # snapshot this transaction cannot see.
            self._recheck_sequence_after_commit()

    def _recheck_sequence_after_commit(self):
        """Once this transaction is committed, release the events of the same
        sequence key that wait for an earlier event which is no longer open.

        Two jobs of one key serialize on the advisory lock, but each reads the
        other as of its own snapshot, which may predate the other's commit: the
        waiter may read its blocker as still queued, and the blocker may not see
        the waiter it should wake. Whichever commits last sees the other's final
        state here, in a new transaction.
        """
        keys = {(event.backend_id.id, event.sequence_key) for event in self if event.sequence_key}
        if not keys:
            return
        registry, uid, context = self.env.registry, self.env.uid, dict(self.env.context)

        def recheck():
            with registry.cursor() as cr:
                env = api.Environment(cr, uid, context)
                env["connector.event"]._release_sequence_waiters(keys)

        self.env.cr.postcommit.add(recheck)

    @api.model
    def _release_sequence_waiters(self, keys):
        """Queue each event waiting for an earlier event of its sequence key when
        no earlier one is open any more (the rule of :meth:`_blocking_reason`)."""
        for backend_id, sequence_key in keys:
            events = self.search(
                [
                    ("backend_id", "=", backend_id),
                    ("sequence_key", "=", sequence_key),
                    ("duplicate_of_id", "=", False),
                    ("state", "in", OPEN_STATES),
                ],
                order="occurred_at, id",
            )
            blocking = events.filtered(
                lambda e: not (e.state == "waiting" and e.error_kind == "prerequisite")
            )
            for event in events.filtered(
                lambda e: e.state == "waiting" and e.error_kind == "sequence"
            ):
                if not blocking.filtered(
                    lambda b, e=event: (b.occurred_at, b.id) < (e.occurred_at, e.id)
                ):
                    event._enqueue(from_states=("waiting",))

    # --- support actions --------------------------------------------------------

    def _audit(self, action, note=None):
        self.env["connector.event.audit"].create(
            [{"event_id": event.id, "action": action, "note": note} for event in self]
        )

    def _check_user(self):
        if not self.env.user.has_group("connector_base.group_connector_user"):
            raise AccessError(self.env._("Only connector users may act on connector events."))

    def action_requeue(self):
        """Queue failed or waiting events again (one or many)."""
        self._check_user()
        events = self.filtered(lambda e: e.state in ("failed", "waiting", "received"))
        if not events:
            raise UserError(self.env._("Only failed, waiting or received events can be requeued."))
        not_running = events.filtered(
            lambda e: e.backend_id.state not in ("running", "circuit_open")
        )
        if not_running:
            raise UserError(
                self.env._(
                    "Backend %(backend)s is not running: start it to process its events.",
                    backend=not_running[0].backend_id.display_name,
                )
            )
        events._audit("requeue")
        events._enqueue()
        return True

    def action_replay(self, note=None):
        """Apply events again, done ones included; handlers are idempotent, so
        a replayed event updates what it made instead of duplicating it."""
        self._check_user()
        events = self.filtered(lambda e: e.state in ("done", "failed", "waiting", "ignored"))
        events._audit("replay", note)
        return events._enqueue(from_states=("done", "failed", "waiting", "ignored"))

    def action_ignore(self, reason):
        self._check_user()
        if not reason:
            raise UserError(self.env._("Say why the event is ignored."))
        events = self.filtered(lambda e: e.state in ("failed", "waiting", "received", "queued"))
        events._audit("ignore", reason)
        events.write(
            {
                "state": "ignored",
                "error_message": self.env._(
                    "Ignored by %(user)s: %(reason)s", user=self.env.user.name, reason=reason
                ),
                "processed_at": fields.Datetime.now(),
            }
        )
        for event in events:
            event._wake_waiting()
        return True

    def action_edit_payload(self, payload, note=None):
        """Managers correct the payload of a failed event and queue it again."""
        self.ensure_one()
        if not self.env.user.has_group("connector_base.group_connector_manager"):
            raise AccessError(self.env._("Only connector managers may edit a payload."))
        if self.state not in ("failed", "waiting"):
            raise UserError(self.env._("Only a failed or waiting event's payload can be edited."))
        self._audit("edit", note or self.env._("Payload edited"))
        self.write({"payload": payload})
        self._enqueue()
        return True

    def action_open_record(self):
        self.ensure_one()
        record = self._produced_record()
        if not record:
            raise UserError(self.env._("This event has not produced a record (yet)."))
        return {
            "type": "ir.actions.act_window",
            "res_model": record._name,
            "res_id": record.id,
            "view_mode": "form",
        }

    def action_view_jobs(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("queue_job.action_queue_job")
        action["domain"] = [("id", "in", self.job_ids.ids)]
        action["context"] = {}
        return action

    # --- housekeeping (crons) ---------------------------------------------------

    @api.model
    def _cron_recheck_waiting(self):
        """Waiting events are re-evaluated: a prerequisite may have landed by a
        path that did not wake them (a record created by hand)."""
        waiting = self.search([("state", "=", "waiting")], order="occurred_at, id", limit=5000)
        waiting._enqueue(from_states=("waiting",))

    @api.model
    def _cron_reset_stuck(self, minutes=30):
        """Queued or processing events whose job is gone, done or failed are
        queued again (a worker died, a job was cancelled or deleted)."""
        limit = fields.Datetime.now() - timedelta(minutes=minutes)
        candidates = self.search(
            [("state", "in", ("queued", "processing")), ("write_date", "<", limit)]
        )
        alive = ("wait_dependencies", "pending", "enqueued", "started")
        stuck = candidates.filtered(
            lambda e: not e.sudo().job_ids.filtered(lambda j: j.state in alive)
        )
        if stuck:
            _logger.info("requeueing %d stuck connector events", len(stuck))
            stuck._audit("requeue", self.env._("Requeued automatically: its job was gone."))
            stuck._enqueue(from_states=("queued", "processing"))

    @api.model
    def _cron_purge(self):
        """Delete processed events past their backend's retention period."""
        backends = self.env["connector.backend"].with_context(active_test=False)
        for backend in backends.search([("retention_days", ">", 0)]):
            before = fields.Datetime.now() - timedelta(days=backend.retention_days)
            old = self.search(
                [
                    ("backend_id", "=", backend.id),
                    ("state", "in", ("done", "duplicate", "ignored")),
                    ("received_at", "<", before),
                ]
            )
            if old:
                _logger.info("purging %d events of backend %s", len(old), backend.id)
                old.unlink()


class ConnectorEventAudit(models.Model):
    """Who did what to an event, and when: requeue, ignore, edit, replay."""

    _name = "connector.event.audit"
    _description = "Connector Event Audit"
    _order = "id desc"

    event_id = fields.Many2one("connector.event", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="event_id.company_id", store=True)
    action = fields.Selection(
        [
            ("requeue", "Requeued"),
            ("replay", "Replayed"),
            ("ignore", "Ignored"),
            ("edit", "Payload edited"),
        ],
        required=True,
    )
    note = fields.Text()
    user_id = fields.Many2one("res.users", default=lambda self: self.env.user, required=True)
    date = fields.Datetime(default=fields.Datetime.now, required=True)
