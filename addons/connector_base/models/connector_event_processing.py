import logging
import time
import traceback
from collections import defaultdict
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from odoo.addons.queue_job.exception import RetryableJobError

from ..components.conflicts import (
    PG_CONCURRENCY_ERRORS,
    PG_RETRYABLE_ERRORS,
    expected_conflicts,
)
from ..components.http_client import RemoteError, RemoteRetryableError
from ..components.topics import InboundTopic
from ..components.validation import PayloadError, validate_payload
from .connector_event import EVENT_STATES, OPEN_STATES, RECHECK_FIRST, RECHECK_MAX

_logger = logging.getLogger(__name__)

# Clashes with concurrent jobs (two orders of one new customer) are retried
# with a growing pause; this many in a row is no longer a clash but a fault.
MAX_CONFLICT_RETRIES = 10


# connector.event is split by concern, one file each (intake, processing,
# support, housekeeping): deliberately not one class.
class ConnectorEvent(models.Model):
    """Processing of an event: the queue job, ordering, waiting and waking."""

    _inherit = "connector.event"  # pylint: disable=consider-merging-classes-inherited

    # --- the job --------------------------------------------------------------

    def _process(self):
        """Apply one event; the queue job of every event of an unbatched topic
        (a batched topic's job applies several, see ``_process_batch``).

        Failures that a person must look at are recorded on the event and the
        job ends normally; transient remote failures and clashes with
        concurrent transactions raise RetryableJobError so that queue_job
        runs the job again later, on a fresh snapshot.
        """
        self.ensure_one()
        # Records the handler makes belong to the backend's company.
        backend = self.backend_id.with_company(self.company_id)
        try:
            declaration = backend._get_topic(self.topic, InboundTopic)
        except UserError as exc:
            return self._fail("configuration", exc)
        return self._apply(backend, declaration)

    def _apply(self, backend, declaration, wake=True):
        """Apply this event as its topic's ``declaration`` says, and record the
        outcome on it: the step of a job of one event and, for each of its
        events, of a batch job. Returns what happened; a transient fault is
        recorded for a retry and raised as RetryableJobError.

        ``wake``: queue at once the events that waited for this one; a batch
        job wakes those of all its events at its end instead, in one go.
        """
        started = time.monotonic()
        try:
            # Everything that touches the event or applies it happens in this
            # savepoint: on a transient failure it is rolled back, which also
            # releases the event's row lock for the retry bookkeeping. The
            # conflicts it expects include those of the flush when it ends.
            with expected_conflicts(), self.env.cr.savepoint():
                if not self._start_processing():
                    return f"nothing to do: event is {self.state}"
                self._lock_sequence()
                blocker = self._blocking_reason(declaration, wake=wake)
                if blocker:
                    return blocker
                payload = validate_payload(declaration.schema, self.payload)
                record = getattr(backend, declaration.handler)(self, payload)
        except RemoteRetryableError as exc:
            return self._retry_later(exc, declaration)
        except PG_RETRYABLE_ERRORS as exc:
            return self._retry_after_conflict(exc)
        except PayloadError as exc:
            return self._fail("validation", exc)
        except RemoteError as exc:
            return self._fail("remote", exc)
        except (UserError, ValidationError) as exc:
            return self._fail("business", exc)
        except Exception as exc:
            # Recorded on the event with its traceback, for support staff; the
            # job ends, so the same error is never looped on.
            return self._fail("unexpected", exc, traceback.format_exc())
        return self._succeed(record, started, wake=wake)

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
            name = f"connector.event:{self.backend_id.id}:{self.sequence_key}"
            # A batch job applies a register's tickets one after the other: the
            # lock taken for the first is held until the job's end. The memo
            # is emptied with a rolled-back savepoint, which releases a lock
            # taken in it.
            locked = self._batch_memo().setdefault("connector_base.locked", set())
            if name in locked:
                return
            self.env.cr.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (name,))
            locked.add(name)

    # --- what holds an event back ------------------------------------------------

    def _blocker(self, declaration, releasing=None):
        """Why the event may not be applied yet, without changing anything:
        ``(reason, kind, waiting_key)``, or None when it may be applied.

        Sequence: an earlier event of its sequence key is still open (an
        earlier event that itself waits for a prerequisite does not hold later
        ones back: one of them may be the very record it waits for; nor does
        a failed one when the topic says its events are independent).
        Prerequisite: the record it needs is missing.

        ``releasing``: earlier events of its key being queued with it, to be
        applied before it, which do not hold it back.
        """
        if self.sequence_key:
            # The first one only, found by the database: an offline store's
            # upload puts thousands of open events before the last ones.
            holding = [
                ("backend_id", "=", self.backend_id.id),
                ("sequence_key", "=", self.sequence_key),
                ("duplicate_of_id", "=", False),
                ("state", "in", OPEN_STATES),
                *self._before_me(),
                "|",
                ("state", "!=", "waiting"),
                ("error_kind", "!=", "prerequisite"),
            ]
            if not declaration.failed_holds_key:
                holding.append(("state", "!=", "failed"))
            if releasing:
                holding.append(("id", "not in", releasing.ids))
            first = self.search(holding, order="occurred_at, id", limit=1)
            if first:
                return (
                    self.env._(
                        "Waiting for the earlier event %(event)s (%(state)s) about %(key)s.",
                        event=first.display_name,
                        state=dict(EVENT_STATES)[first.state],
                        key=self.sequence_key,
                    ),
                    "sequence",
                    self.sequence_key,
                )
        if declaration.prerequisite:
            missing = getattr(self.backend_id, declaration.prerequisite)(self, self.payload)
            if missing:
                reason, key = missing if isinstance(missing, tuple) else (missing, None)
                return reason, "prerequisite", key
        return None

    def _blocking_reason(self, declaration, wake=True):
        """Put the event aside when it may not be applied yet; return why."""
        blocker = self._blocker(declaration)
        if blocker:
            reason, kind, key = blocker
            return self._wait(reason, waiting_key=key, kind=kind)
        if declaration.skip_stale and self.sequence_key and self._newer_one_done():
            # Its own state, not "ignored": support staff must tell what the
            # framework skipped by design from what a person chose to skip.
            self.write(
                {
                    "state": "stale",
                    "processed_at": fields.Datetime.now(),
                    "error_kind": False,
                    "error_message": self.env._(
                        "Stale: a newer message about %(key)s was already applied.",
                        key=self.sequence_key,
                    ),
                }
            )
            # Later events of its key that waited for it need not wait longer.
            if wake:
                self._wake_waiting()
            return "skipped: stale"
        return None

    def _before_me(self):
        """Domain of the events ordered before this one: ``(occurred_at, id)`` smaller."""
        return [
            "|",
            ("occurred_at", "<", self.occurred_at),
            "&",
            ("occurred_at", "=", self.occurred_at),
            ("id", "<", self.id),
        ]

    def _newer_one_done(self):
        """Whether an event of the same key that occurred after this one is done."""
        return bool(
            self.search_count(
                [
                    ("backend_id", "=", self.backend_id.id),
                    ("sequence_key", "=", self.sequence_key),
                    ("duplicate_of_id", "=", False),
                    ("state", "=", "done"),
                    "|",
                    ("occurred_at", ">", self.occurred_at),
                    "&",
                    ("occurred_at", "=", self.occurred_at),
                    ("id", ">", self.id),
                ],
                limit=1,
            )
        )

    def _still_blocked(self, releasing=None):
        """Whether a waiting event must keep waiting (no side effect);
        ``releasing`` as for :meth:`_blocker`."""
        return bool(self._current_blocker(releasing))

    def _current_blocker(self, releasing=None):
        """:meth:`_blocker` of a waiting event, its topic looked up."""
        self.ensure_one()
        declaration = self.backend_id._connector_topics().get(self.topic)
        if not isinstance(declaration, InboundTopic):
            return None
        return self._blocker(declaration, releasing)

    def _wait(self, reason, waiting_key=None, kind="prerequisite"):
        self.write(
            {
                "state": "waiting",
                "error_kind": kind,
                "error_message": reason,
                "waiting_key": waiting_key,
                "next_retry_at": fields.Datetime.now() + RECHECK_FIRST,
                "recheck_count": 0,
            }
        )
        if waiting_key:
            # What it waits for may have been committed after this job's
            # snapshot was taken: look again once this wait is committed.
            self._recheck_waiting_after_commit({(self.backend_id.id, waiting_key)})
        return f"waiting: {reason}"

    # --- outcomes ---------------------------------------------------------------

    def _succeed(self, record, started, wake=True):
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
            "next_retry_at": False,
        }
        if record:
            vals.update(res_model=record._name, res_id=record[:1].id)
        self.write(vals)
        if wake:
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
                "next_retry_at": False,
            }
        )
        _logger.info("event %s failed (%s): %s", self.id, kind, message)
        return f"failed: {message}"

    def _retry_later(self, exc, declaration):
        """A transient remote fault: retry as the remote asked, or give up.

        Faults met while the remote is known to be down (circuit open) do not
        count: an outage postpones the event, it does not use up its attempts.
        """
        spent, is_open, wait = self.backend_id._transient_fault_outlook(exc)
        if spent and self.retry_count + 1 >= declaration.max_attempts:
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
        seconds = self.backend_id._retry_delay(exc, self.retry_count, wait if is_open else None)
        self._record_retry(
            self.env._("Retrying: %(error)s", error=exc), seconds, spent, error_kind="remote"
        )
        raise RetryableJobError(str(exc), seconds=seconds, ignore_retry=not spent)

    def _retry_after_conflict(self, exc):
        """A clash with a concurrent transaction (a serialization failure, two
        jobs creating one customer's binding): run again shortly, on a fresh
        snapshot, where the other transaction's work is visible. Not an error
        for support staff, unless it keeps happening."""
        if self.retry_count + 1 >= MAX_CONFLICT_RETRIES:
            return self._fail(
                "unexpected",
                UserError(
                    self.env._(
                        "Kept clashing with other transactions after %(n)d tries: %(error)s",
                        n=self.retry_count + 1,
                        error=str(exc).strip(),
                    )
                ),
            )
        seconds = min(60, 2 ** (self.retry_count + 1))
        _logger.info(
            "event %s: clashed with a concurrent transaction, retry in %s s", self.id, seconds
        )
        self._record_retry(
            self.env._("Retrying after a clash with a concurrent update of the same records."),
            seconds,
            spent=True,
            error_kind=False,
        )
        raise RetryableJobError(str(exc), seconds=seconds)

    def _record_retry(self, message, seconds, spent, error_kind):
        """The retry's bookkeeping, on its own cursor: this job's transaction
        is rolled back when queue_job postpones it. Only while the event is
        still to be applied: a clash with another job that applied it
        meanwhile must not queue it again."""
        self.flush_model()
        with self.env.registry.cursor() as cr:
            cr.execute(
                "UPDATE connector_event SET state = 'queued', retry_count = retry_count + %s, "
                "error_kind = %s, error_message = %s, next_retry_at = %s "
                "WHERE id = %s AND state IN ('queued', 'processing')",
                (
                    1 if spent else 0,
                    error_kind or None,
                    message,
                    fields.Datetime.now() + timedelta(seconds=seconds),
                    self.id,
                ),
            )
        self.invalidate_recordset()

    # --- waking what waits ---------------------------------------------------------

    def _wake_waiting(self):
        """Queue the events that waited for these ones and may now be applied,
        now and once committed (a waiter this transaction cannot see yet)."""
        keys = self._wake_keys()
        if keys:
            # The check after commit first: it also covers a release below
            # that clashes with a concurrent change of a waiter.
            self._recheck_waiting_after_commit(keys)
            self._release_waiters(keys)

    def _wake_keys(self):
        """``{(backend id, key)}`` these events' application may unblock: their
        sequence keys, and what their topics say they wake (``wakes``)."""
        keys = {(event.backend_id.id, event.sequence_key) for event in self if event.sequence_key}
        topics = {}
        for event in self:
            backend = event.backend_id
            if backend not in topics:
                topics[backend] = backend._connector_topics()
            declaration = topics[backend].get(event.topic)
            if not (isinstance(declaration, InboundTopic) and declaration.wakes):
                continue
            try:
                woken = declaration.wakes(event.payload)
            except (KeyError, TypeError, ValueError, AttributeError):
                continue  # a payload it cannot read wakes nothing more
            keys.update((backend.id, key) for key in woken or () if key)
        return keys

    def _recheck_waiting_after_commit(self, keys):
        """Once this transaction is committed, queue the events waiting on
        ``keys`` that may be applied by then.

        Two jobs about one aggregate each read the other as of their own
        snapshot, which may predate the other's commit: the waiter may not
        see the record it needs, and the job that made it may not see the
        waiter. Whichever commits last sees the other's final state here, in a
        new transaction.
        """
        env = self.env
        registry, uid, context = env.registry, env.uid, dict(env.context)
        keys = set(keys)

        def recheck():
            # Framework bookkeeping, in superuser mode whoever this job runs
            # as: the job's user need not read events (a connector user, the
            # public user of a webhook's intake).
            with registry.cursor() as cr:
                api.Environment(cr, uid, context, su=True)["connector.event"]._release_waiters(keys)

        self.env.cr.postcommit.add(recheck)

    @api.model
    def _release_waiters(self, keys):
        """Queue each event waiting on one of ``keys`` (``(backend id, key)``)
        that may now be applied; the others keep waiting, with no job. One
        search per backend: a batch job releases the waiters of all its
        events at once."""
        by_backend = defaultdict(set)
        for backend_id, key in keys:
            by_backend[backend_id].add(key)
        for backend_id, backend_keys in by_backend.items():
            waiting = self.search(
                [
                    ("backend_id", "=", backend_id),
                    ("state", "=", "waiting"),
                    "|",
                    ("waiting_key", "in", list(backend_keys)),
                    ("sequence_key", "in", list(backend_keys)),
                ],
                order="occurred_at, id",
            )
            # Oldest first, each one looked at as if those released before it
            # were queued already: they will be applied before it, in order.
            # Else a key's chain of waiters (its events put aside behind one
            # retried after a clash) would be released one per job.
            released, moved = self.browse(), []
            for event in waiting:
                blocker = event._current_blocker(releasing=released)
                if not blocker:
                    released |= event
                elif blocker[2] != (event.waiting_key or None):
                    moved.append((event, blocker))
            if not released and not moved:
                continue
            # A waiter another transaction changed since this one's snapshot
            # (it queued it too, or applied it) cannot be updated here: the
            # clash is left to that transaction and to the check after commit,
            # never allowed to undo the work of the job that woke it.
            try:
                with expected_conflicts(), self.env.cr.savepoint():
                    released._enqueue(from_states=("waiting",))
                    # Still blocked, by something else now (a Z report that
                    # waited for the one before it, and now for a ticket of
                    # its register delivered late): it waits on that key, so
                    # that the wake of what it waits for finds it.
                    for event, (reason, kind, key) in moved:
                        event._wait(reason, waiting_key=key, kind=kind)
            except PG_CONCURRENCY_ERRORS as exc:
                _logger.info(
                    "events %s changed meanwhile by another transaction, not queued here: %s",
                    (released | self.browse(event.id for event, _blocker in moved)).ids,
                    exc.__class__.__name__,
                )

    # --- the safety net ----------------------------------------------------------------

    @api.model
    def _cron_recheck_waiting(self, limit=500):
        """Waiting events whose check is due are looked at again: what they
        wait for may have come by a path that did not wake them (a record
        created by hand). Those still blocked are checked again later and
        later (10 minutes, doubling, at most daily); no job is created for
        them. Bounded per run, and every waiting event gets its turn."""
        now = fields.Datetime.now()
        due = self.search(
            [
                ("state", "=", "waiting"),
                "|",
                ("next_retry_at", "=", False),
                ("next_retry_at", "<=", now),
            ],
            order="next_retry_at, id",
            limit=limit,
        )
        blockers = {event: event._current_blocker() for event in due}
        blocked = due.filtered(lambda e: blockers[e])
        ready = due - blocked
        # Short bookkeeping of its own: a job may wake one of them meanwhile.
        with self.env["connector.backend"]._new_transaction(read_committed=True) as env:
            for event in blocked:
                pause = min(RECHECK_FIRST * 2 ** min(event.recheck_count + 1, 10), RECHECK_MAX)
                # What it waits for now, which may not be what it waited for.
                reason, kind, key = blockers[event]
                env.cr.execute(
                    "UPDATE connector_event SET next_retry_at = %s, "
                    "recheck_count = recheck_count + 1, error_message = %s, error_kind = %s, "
                    "waiting_key = %s WHERE id = %s AND state = 'waiting'",
                    (now + pause, reason, kind, key, event.id),
                )
            ready.with_env(env)._enqueue(from_states=("waiting",))
        due.invalidate_recordset()
        return f"{len(ready)} released, {len(blocked)} still waiting"
