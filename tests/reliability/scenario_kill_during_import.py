"""R2 for orders in: kill -9 of the worker importing an order, mid-burst.

Bursts of BURST ``orders/create`` webhooks (all answered 200). While their
jobs run two at a time, KILLS times the worker running a started job of one
of these events is killed with SIGKILL (``stack.server.kill_worker``): its
transaction dies with it, the prefork master starts another worker, and
queue_job's runner puts the dead job back in the queue (``Re-queued dead
job``) once 10 s have passed since it was enqueued, at its next pass. The
dead job holds its slot of the channel until then, and the runner passes
when a job changes, else once a minute: after each kill, orders keep coming
one a second until the dead job is requeued, then the next burst comes and
the next kill among its jobs, so that a kill never stops both slots. A job
seen started may commit before the signal lands: such a kill caught nothing
mid-run and does not count; another burst and another kill follow (at most
MAX_MISSED times).

Expected: every event done, none failed, none left queued or processing;
each applied once: one ``shopify.order.binding`` and one sale order with
the order's lines per Shopify order, processing started once per event (at
most twice for an event whose job was killed); every killed job requeued
and re-run to ``done``; no queue job of these events failed or left
started or enqueued.
"""

import collections
import random
import time
from concurrent.futures import ThreadPoolExecutor

from .harness import (
    WORKER_KILL_LOG,
    ScenarioFailed,
    post,
    shopify_delivery,
    silenced,
    wait_until,
)

KILLS = 3
# Kills that caught no job mid-run (it committed first) before giving up.
MAX_MISSED = 3
BURST = 30  # before the first kill and after each
# Orders made ready for the trickle while a dead job waits (one a second).
TRICKLE = 20
THREADS = 8
# A started job to kill, and the master's new worker, appear within seconds.
KILL_TIMEOUT = 30
# 10 s after it was enqueued, at the runner's next pass (at least once a minute).
REQUEUE_TIMEOUT = 75
# What is left after the last requeue takes 10-20 s with 2 workers.
PROCESS_TIMEOUT = 90
PENDING_STATES = ("received", "queued", "processing", "waiting")
# What killing a worker mid-job logs, and nothing more (harness.WORKER_KILL_LOG).
ALLOWED_LOG = WORKER_KILL_LOG


class _Orders:
    """The orders of the run, placed in the store, sent in order on demand."""

    def __init__(self, stack, rng, count):
        skus = stack.bound_skus()
        customers = stack.customers()
        with silenced(stack.shop) as shop:
            self.orders = [
                shop.create_order(
                    [(sku, rng.randint(1, 2)) for sku in rng.sample(skus, k=rng.randint(1, 3))],
                    customer=rng.choice(customers),
                )
                for _ in range(count)
            ]
        self.deliveries = [shopify_delivery(stack.shop, "orders/create", o) for o in self.orders]
        self.url = stack.webhook_url
        self.count = 0
        self.statuses = collections.Counter()

    def send(self, count):
        """The next ``count`` webhooks, from THREADS threads."""
        batch = self.deliveries[self.count : self.count + count]
        self.count += len(batch)
        with ThreadPoolExecutor(THREADS) as pool:
            self.statuses.update(pool.map(lambda d: post(self.url, d.body, d.headers)[0], batch))
        if set(self.statuses) != {200}:
            raise ScenarioFailed(f"webhooks answered {dict(self.statuses)}")

    @property
    def sent(self):
        return self.orders[: self.count]

    @property
    def webhook_ids(self):
        return tuple(d.webhook_id for d in self.deliveries[: self.count])


def _event_jobs(stack, webhook_ids):
    """Queue jobs of these events: (uuid, state, worker pid, event id)."""
    return stack.sql(
        "SELECT j.uuid, j.state, j.worker_pid, e.id FROM connector_event e "
        "JOIN connector_event_queue_job_rel r ON r.connector_event_id = e.id "
        "JOIN queue_job j ON j.id = r.queue_job_id "
        "WHERE e.backend_id = %s AND e.idempotency_key IN %s",
        (stack.backend_id, tuple(webhook_ids)),
    )


def _kill_one(stack, webhook_ids, killed):
    """Kill the HTTP worker of a started job of these events; record in
    ``killed`` ({job uuid: (pid, event id)}) the jobs the kill caught mid-run.

    A job seen started may commit between that read and the signal: then the
    kill caught nothing, or the worker's next job. What it caught is read
    after the kill: a job of this worker still ``started`` died with it (its
    transaction cannot commit any more). Returns the uuid of a job caught, or
    None when no started job was found in time or the kill caught none."""
    server = stack.server

    def started_job():
        http = set(server.workers()["http"])
        for job_uuid, state, pid, _event_id in _event_jobs(stack, webhook_ids):
            if state == "started" and pid in http and job_uuid not in killed:
                return pid
        return None

    try:
        pid = wait_until(started_job, KILL_TIMEOUT, interval=0.05, what="a started import job")
    except ScenarioFailed:
        return None
    server.kill_worker_and_wait(pid)
    caught = [
        (job_uuid, event_id)
        for job_uuid, state, job_pid, event_id in _event_jobs(stack, webhook_ids)
        if job_pid == pid and state == "started"
    ]
    for job_uuid, event_id in caught:
        killed[job_uuid] = (pid, event_id)
    return caught[0][0] if caught else None


def _requeued(stack, job_uuid, orders):
    """Send an order a second until the runner took the dead job back (no
    longer started); the seconds it took, or None after REQUEUE_TIMEOUT."""
    started = time.monotonic()
    trickle = TRICKLE
    while time.monotonic() - started < REQUEUE_TIMEOUT:
        state = stack.sql.value("SELECT state FROM queue_job WHERE uuid = %s", (job_uuid,))
        if state != "started":
            return time.monotonic() - started
        if trickle:
            orders.send(1)
            trickle -= 1
        time.sleep(1)
    return None


def _wait_settled(stack, webhook_ids):
    """Wait until no event is pending and no job of theirs is to run or running;
    why not, or None."""

    def settled():
        pending = stack.sql.value(
            "SELECT count(*) FROM connector_event WHERE backend_id = %s "
            "AND idempotency_key IN %s AND duplicate_of_id IS NULL AND state IN %s",
            (stack.backend_id, webhook_ids, PENDING_STATES),
        )
        jobs = collections.Counter(state for _u, state, _p, _e in _event_jobs(stack, webhook_ids))
        return not pending and not (jobs["started"] or jobs["enqueued"] or jobs["pending"])

    try:
        wait_until(settled, PROCESS_TIMEOUT, interval=1, what="events and their jobs settled")
    except ScenarioFailed as exc:
        return str(exc)
    return None


def _applied(stack, orders):
    """How many Shopify orders have one binding whose sale order has the
    order's lines, and how many sale orders they have in all."""
    rows = stack.sql(
        "SELECT b.external_id, b.odoo_id, "
        "  (SELECT count(*) FROM sale_order_line l WHERE l.order_id = b.odoo_id "
        "   AND l.shopify_line_item_id IS NOT NULL) "
        "FROM shopify_order_binding b WHERE b.backend_id = %s AND b.external_id IN %s",
        (stack.backend_id, tuple(str(order["id"]) for order in orders)),
    )
    applied = collections.defaultdict(list)
    for external_id, sale_order_id, lines in rows:
        applied[external_id].append((sale_order_id, lines))
    once = sum(
        1
        for order in orders
        if len(applied[str(order["id"])]) == 1
        and applied[str(order["id"])][0][1] == len(order["line_items"])
    )
    return once, len({so for found in applied.values() for so, _lines in found})


def _measure(stack, m, webhook_ids, killed, log_mark):
    """What became of the events, their jobs and the killed jobs."""
    events = stack.sql(
        "SELECT id, state, attempts, error_message FROM connector_event "
        "WHERE backend_id = %s AND idempotency_key IN %s AND duplicate_of_id IS NULL",
        (stack.backend_id, webhook_ids),
    )
    m["events"] = len(events)
    m["states"] = collections.Counter(state for _id, state, _a, _e in events)
    m["errors"] = sorted({e or "" for _i, s, _a, e in events if s == "failed"})
    m["attempts"] = collections.Counter(a for _id, _s, a, _e in events)
    # Processing starts once per run of the job: twice at most when it was killed.
    killed_events = {event_id for _pid, event_id in killed.values()}
    m["over"] = [
        (event_id, a)
        for event_id, _s, a, _e in events
        if a < 1 or a > (2 if event_id in killed_events else 1)
    ]
    jobs = {u: s for u, s, _p, _e in _event_jobs(stack, webhook_ids)}
    m["job_states"] = collections.Counter(jobs.values())
    m["rerun"] = sum(1 for job_uuid in killed if jobs.get(job_uuid) == "done")
    m["requeued"] = len(
        stack.server.log.records(
            log_mark, r"Re-queued dead job with uuid: (" + "|".join(killed or ["-"]) + ")"
        )
    )


def _failures(m, killed):
    states, sent = m["states"], m["sent"]
    why = []
    if len(killed) < KILLS:
        why.append(
            f"only {len(killed)} of {KILLS} kills caught a job mid-run "
            f"({m['missed']} kills caught none, or no started job was found in time)"
        )
    if None in m["requeue_times"]:
        why.append(f"a killed job not requeued within {REQUEUE_TIMEOUT} s")
    if m["timed_out"]:
        why.append(m["timed_out"])
    if states.get("failed"):
        why.append(f"{states['failed']} events failed ({'; '.join(m['errors'])[:300]})")
    if m["events"] != sent or states.get("done") != sent:
        why.append(f"{sent - states.get('done', 0)} events not done")
    if m["over"]:
        why.append(
            f"{len(m['over'])} events started an unexpected number of times, e.g. {m['over'][:3]}"
        )
    if m["rerun"] != len(killed) or m["requeued"] != len(killed):
        why.append(f"killed jobs: {m['requeued']} requeued, {m['rerun']} re-run to done")
    if m["job_states"].keys() - {"done"}:
        why.append(f"jobs not done: {dict(m['job_states'])}")
    if m["once"] != sent or m["sale_orders"] != sent:
        why.append(f"{sent - m['once']} orders not applied exactly once")
    if m["failed_jobs"]:
        why.append(f"{m['failed_jobs']} queue jobs failed")
    return why


def run(stack):
    db_start = stack.sql.value("SELECT now() at time zone 'utc'")
    log_mark = stack.server.log.mark()
    orders = _Orders(
        stack, random.Random(stack.seed), (KILLS + MAX_MISSED + 1) * BURST + KILLS * TRICKLE
    )
    killed, requeue_times, missed = {}, [], 0
    started = time.monotonic()
    orders.send(BURST)
    while len(killed) < KILLS and missed < MAX_MISSED:
        job_uuid = _kill_one(stack, orders.webhook_ids, killed)
        if job_uuid:
            requeue_times.append(_requeued(stack, job_uuid, orders))
        else:
            missed += 1
        # A fresh burst: the previous one was imported while the dead job
        # waited, and the next kill needs jobs still running to catch one.
        orders.send(BURST)
    webhook_ids = orders.webhook_ids
    m = {"timed_out": _wait_settled(stack, webhook_ids), "requeue_times": requeue_times}
    m["missed"] = missed
    elapsed = time.monotonic() - started
    _measure(stack, m, webhook_ids, killed, log_mark)
    m["sent"] = len(webhook_ids)
    m["once"], m["sale_orders"] = _applied(stack, orders.sent)
    m["failed_jobs"] = stack.sql.value(
        "SELECT count(*) FROM queue_job WHERE state = 'failed' AND date_created >= %s",
        (db_start,),
    )

    figures = (
        f"{m['sent']} webhooks ({len(killed) + missed + 1} bursts of {BURST}, the rest one a "
        f"second while a dead job waited; HTTP 200x{orders.statuses[200]}); {len(killed)} "
        f"workers killed mid-job (pids {', '.join(str(pid) for pid, _e in killed.values())}), "
        f"{missed} kills after the job seen started had committed; "
        f"{m['requeued']} dead jobs requeued after "
        + ", ".join("never" if s is None else f"{s:.0f} s" for s in requeue_times)
        + f", {m['rerun']}/{len(killed)} re-run to done; events "
        f"{dict(sorted(m['states'].items()))} after {elapsed:.0f} s, processing started "
        f"{dict(sorted(m['attempts'].items()))} times; jobs "
        f"{dict(sorted(m['job_states'].items()))}; {m['once']}/{m['sent']} orders applied once "
        f"with their lines, {m['sale_orders']} sale orders; {m['failed_jobs']} jobs failed"
    )
    why = _failures(m, killed)
    if why:
        raise ScenarioFailed(f"{'; '.join(why)} -- {figures}")
    return figures
