import logging
import math
import time
from collections import Counter
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from odoo.addons.queue_job.exception import RetryableJobError

from ..components.conflicts import PG_RETRYABLE_ERRORS, expected_conflicts
from ..components.topics import InboundTopic
from .connector_backend import JOB_MAX_RETRIES
from .connector_event import DISPATCH_CHUNK

_logger = logging.getLogger(__name__)

# A batch job that finds another one of its key space applying events runs
# again this many seconds later, without spending a retry.
BATCH_BUSY_SECONDS = 5
# A batch job stops taking events of its key space after this many seconds
# and queues the next job for the rest: behind the jobs that waited
# meanwhile (another store's tickets, a stock flush), which a day's backlog
# uploaded at once would otherwise keep out of the job slots for minutes.
BATCH_BUDGET_SECONDS = 2
# The job of the rest of a backlog runs behind fresh work (queue_job's
# default priority is 10, the smaller first): a store's new sale, a stock
# flush, queued after that job, still take the next free slot before it.
BACKLOG_PRIORITY = 20
# The context key telling handlers they run inside a batch job, whose memo
# (``_batch_memo``) lives in the cursor's cache under the same name.
BATCH_MEMO = "connector_batch_memo"
# Alive queue job states: the job of a key space is waiting, or running.
WAITING_JOB_STATES = ("wait_dependencies", "pending", "enqueued")
ALIVE_JOB_STATES = (*WAITING_JOB_STATES, "started")


# connector.event is split by concern, one file each (intake, processing,
# batches, support, housekeeping): deliberately not one class.
class ConnectorEvent(models.Model):
    """Batched topics: one job applies up to ``batch_size`` events of one key
    space, each exactly as a job of its own would (``_apply``)."""

    _inherit = "connector.event"  # pylint: disable=consider-merging-classes-inherited

    # --- queueing ---------------------------------------------------------------

    @api.model
    def _batch_identity_key(self, backend_id, topic, batch_key, retry=False):
        """The identity key of the job of a key space (``retry``: of the one
        retrying its transient faults); the former also names the lock that
        lets one job of it apply events at a time."""
        key = f"connector.event.batch{'-retry' if retry else ''}-{backend_id}-{topic}"
        return f"{key}:{batch_key}" if batch_key else key

    def _enqueue_batch_job(
        self, backend, topic, batch_key, *, eta=None, retry=False, recheck=True, backlog=False
    ):
        """Make sure a job will apply the queued events of a key space, and
        link these events (just queued) to it.

        One job per key space waits at a time (its identity key): a burst of
        events makes one job, which takes ``batch_size`` of them and queues
        the next. ``eta``: seconds until it is due; None: the flow's pace.
        ``retry``: the job that takes the events retrying a transient fault;
        it has an identity key of its own, so that what arrives meanwhile is
        not held back until it is due. ``backlog``: the job of what a job left
        of the key space, queued behind fresh work (BACKLOG_PRIORITY).

        A waiting job found here may start before this transaction commits,
        and not see its events: once committed, a job is made sure of again
        (``recheck``).
        """
        declaration = backend._get_topic(topic, InboundTopic)
        channel, delay = self.env["connector.sync.policy"]._job_settings(
            backend.id, declaration.flow
        )
        identity_key = self._batch_identity_key(backend.id, topic, batch_key, retry=retry)
        self.env.cr.execute(
            "SELECT eta FROM queue_job WHERE identity_key = %s AND state IN %s LIMIT 1",
            (identity_key, WAITING_JOB_STATES),
        )
        found = self.env.cr.fetchone()
        if found and retry and found[0] and eta:
            due = fields.Datetime.now() + timedelta(seconds=eta)
            if found[0] > due:
                # The waiting retry is due later than this one may be tried.
                identity_key, found = None, None
        # Run as the backend's connector user, as the jobs of single events.
        Event = self.env["connector.event"].with_user(backend._connector_user()).sudo()
        job = Event.with_delay(
            channel=channel,
            eta=eta if eta is not None else (delay or None),
            priority=BACKLOG_PRIORITY if backlog else None,
            max_retries=JOB_MAX_RETRIES,
            identity_key=identity_key,
            description=f"{backend.name}: {topic} {batch_key or ''}".strip(),
        )._process_batch(backend.id, topic, batch_key)
        self._link_job(getattr(job, "uuid", None))
        if found and recheck:
            self._ensure_batch_job_after_commit(backend, topic, batch_key)
        return job

    def _ensure_batch_job_after_commit(self, backend, topic, batch_key):
        """Once this transaction is committed, make sure that a job not
        started yet will apply the queued events of the key space: the one
        found waiting may have started meanwhile, on a snapshot without them."""
        env = self.env
        registry, uid, context = env.registry, env.uid, dict(env.context)
        backend_id = backend.id

        def ensure():
            with registry.cursor() as cr:
                Event = api.Environment(cr, uid, context, su=True)["connector.event"]
                Event._ensure_batch_job(backend_id, topic, batch_key)

        self.env.cr.postcommit.add(ensure)

    @api.model
    def _ensure_batch_job(self, backend_id, topic, batch_key):
        backend = self.env["connector.backend"].browse(backend_id).exists()
        if backend and self._queued_of_batch(backend, topic, batch_key, limit=1):
            self._enqueue_batch_job(backend, topic, batch_key, recheck=False)

    @api.model
    def _queued_of_batch(self, backend, topic, batch_key, limit):
        """The queued events of a key space whose retry (if any) is due, oldest first."""
        self.flush_model()
        self.env.cr.execute(
            SQL(
                "SELECT id FROM connector_event WHERE %s AND state = 'queued' "
                "AND (next_retry_at IS NULL OR next_retry_at <= %s) "
                "ORDER BY occurred_at, id LIMIT %s",
                self._batch_where(backend, topic, batch_key),
                fields.Datetime.now(),
                limit,
            )
        )
        return self.browse(row[0] for row in self.env.cr.fetchall())

    @api.model
    def _batch_where(self, backend, topic, batch_key):
        """The events of a key space, as the index of queued ones reads it."""
        return SQL(
            "backend_id = %s AND topic = ANY(%s) AND %s",
            backend.id,
            self._batch_topics(backend, topic),
            SQL("batch_key = %s", batch_key) if batch_key else SQL("batch_key IS NULL"),
        )

    @api.model
    def _batch_topics(self, backend, topic):
        """The topics whose events the jobs of ``topic``'s key spaces apply:
        itself, and those declared ``batch_with`` it."""
        joined = [
            name
            for name, declaration in backend._connector_topics().items()
            if name != topic
            and isinstance(declaration, InboundTopic)
            and declaration.batched
            and declaration.batch_topic(name) == topic
        ]
        return [topic, *joined]

    # --- the job -------------------------------------------------------------------

    @api.model
    def _process_batch(self, backend_id, topic, batch_key=None):
        """Apply up to ``batch_size`` queued events of one key space, oldest
        first, for at most about BATCH_BUDGET_SECONDS; the queue job of
        batched topics.

        Each event is applied as a job of its own would apply it (``_apply``:
        taken by a conditional UPDATE, in order of its sequence key, waiting
        for what it needs, validated, applied in a savepoint of its own, its
        failure recorded on it), so one bad event fails alone and the others
        are applied. One that meets a transient fault (the remote, a clash
        with another transaction) is put back in the queue and retried by a
        later job of the key space, alone, when due; those applied are kept.
        The events that waited for the applied ones are queued at the end, and
        the next job queued when events of the key space are left.
        """
        # Two jobs of one key space (one queued while the other ran) never
        # apply events side by side. The lock lives as long as this
        # transaction; a job that finds it taken waits its turn without
        # holding a worker. Taken first, so that this job's snapshot is the
        # one of the moment the previous job committed, all but in the few
        # statements queue_job runs before; an event that previous job
        # applied meanwhile clashes on its conditional UPDATE and is left
        # alone, never applied twice.
        self.env.cr.execute(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))",
            (self._batch_identity_key(backend_id, topic, batch_key),),
        )
        if not self.env.cr.fetchone()[0]:
            raise RetryableJobError(
                self.env._("Another job is applying these events: this one waits."),
                seconds=BATCH_BUSY_SECONDS,
                ignore_retry=True,
            )
        backend = self.env["connector.backend"].browse(backend_id).exists()
        if not backend:
            return "backend gone: nothing applied"
        # Records the handlers make belong to the backend's company.
        backend = backend.with_company(backend.company_id)
        topics = backend._connector_topics()
        declaration = topics.get(topic)
        size = declaration.batch_size if isinstance(declaration, InboundTopic) else DISPATCH_CHUNK
        events = self._queued_of_batch(backend, topic, batch_key, limit=size)
        outcomes, retries = Counter(), []
        in_batch = backend.with_context(**{BATCH_MEMO: True})
        started, taken = time.monotonic(), self.browse()
        try:
            for event in events.with_env(in_batch.env):
                if taken and time.monotonic() - started >= BATCH_BUDGET_SECONDS:
                    break  # the rest to the next job, behind those that waited
                taken |= event
                # Its own topic's: a topic joined with ``batch_with`` has its handler.
                declared = topics.get(event.topic)
                try:
                    if isinstance(declared, InboundTopic):
                        result = event._apply(in_batch, declared, wake=False)
                    else:
                        # No longer declared: its _process says so.
                        result = event._process()
                except RetryableJobError as retry:
                    # Recorded on the event (its own cursor); tried again below.
                    retries.append(retry.seconds or 1)
                    result = "retry"
                # "done: …", "failed: …", "waiting: …", "skipped: stale", …
                outcomes[result.split(":")[0]] += 1
        finally:
            self.env.cr.cache.pop(BATCH_MEMO, None)
        taken = taken.with_env(self.env)
        taken._link_job(self.env.context.get("job_uuid"))
        self._wake_waiters_of(taken.filtered(lambda e: e.state in ("done", "stale")))
        summary = (
            f"{outcomes.pop('done', 0)} applied, {outcomes.pop('failed', 0)} failed, "
            f"{outcomes.pop('waiting', 0)} waiting"
        )
        if retry := outcomes.pop("retry", 0):
            summary += f", {retry} to retry"
        if skipped := sum(outcomes.values()):
            summary += f", {skipped} skipped"
        return summary + self._continue_batch(backend, topic, batch_key, taken, retries)

    @api.model
    def _batch_memo(self):
        """A dict a handler may keep look-ups in (a store by its code, a
        mapping) while one batch job applies its events: found once per batch,
        not once per event. Emptied when the job ends and when an event's
        savepoint is rolled back (the cursor's cache is), so it never outlives
        what it read. Outside a batch job, a new dict each time: nothing kept."""
        if not self.env.context.get(BATCH_MEMO):
            return {}
        return self.env.cr.cache.setdefault(BATCH_MEMO, {})

    @api.model
    def _wake_waiters_of(self, events):
        """Queue what waited for ``events``, in a savepoint: a waiter changed
        meanwhile by another transaction (requeued by support staff) clashes,
        and is looked at again once this one is committed anyway."""
        if not events:
            return
        try:
            with expected_conflicts(), self.env.cr.savepoint():
                events._wake_waiting()
        except PG_RETRYABLE_ERRORS as exc:
            _logger.info("waking what waited for %s clashed, checked after commit: %s", events, exc)

    @api.model
    def _continue_batch(self, backend, topic, batch_key, taken, retries):
        """Queue the job of what is left of the key space: at once when events
        are due, else when the earliest retry is, behind the fresh work queued
        meanwhile; ``""`` or what was queued."""
        now = fields.Datetime.now()
        self.flush_model()
        self.env.cr.execute(
            SQL(
                "SELECT min(COALESCE(next_retry_at, %s)) FROM connector_event "
                "WHERE %s AND state = 'queued' AND NOT (id = ANY(%s::int[]))",
                now,
                self._batch_where(backend, topic, batch_key),
                taken.ids,
            )
        )
        due = self.env.cr.fetchone()[0]
        if retries:
            # Put back by this job, on a cursor of its own: not in its snapshot.
            retry_at = now + timedelta(seconds=min(retries))
            due = min(due, retry_at) if due else retry_at
        if not due:
            return ""
        seconds = max(0, math.ceil((due - now).total_seconds()))
        self.browse()._enqueue_batch_job(
            backend, topic, batch_key, eta=seconds, retry=seconds > 0, backlog=True
        )
        return f"; next try in {seconds} s" if seconds > 0 else "; next batch queued"

    # --- the job of a key space, for housekeeping and the correlation view ---------------

    def _batch_job_keys(self):
        """``{event: identity keys of its key space's jobs}`` (the job, the
        retry) for the events of batched topics."""
        keys, topics = {}, {}
        for event in self:
            backend = event.backend_id
            if backend not in topics:
                topics[backend] = backend._connector_topics()
            declaration = topics[backend].get(event.topic)
            if isinstance(declaration, InboundTopic) and declaration.batched:
                keys[event] = tuple(
                    self._batch_identity_key(
                        backend.id,
                        declaration.batch_topic(event.topic),
                        event.batch_key or None,
                        retry=retry,
                    )
                    for retry in (False, True)
                )
        return keys

    def _with_live_batch_job(self):
        """Those of these events whose key space has a job waiting or running:
        a queued event of a long batched upload waits for a later job of its
        key space than the one it was queued with."""
        keys = self._batch_job_keys()
        if not keys:
            return self.browse()
        self.env.cr.execute(
            "SELECT identity_key FROM queue_job WHERE identity_key IN %s AND state IN %s",
            (tuple({name for names in keys.values() for name in names}), ALIVE_JOB_STATES),
        )
        alive = {row[0] for row in self.env.cr.fetchall()}
        return self.filtered(lambda e: alive.intersection(keys.get(e, ())))
