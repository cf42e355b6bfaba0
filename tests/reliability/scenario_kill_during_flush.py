"""kill -9 of the worker sending a batch of stock changes (R2 for outbound).

The store's available quantity of every bound SKU at every mapped location
is set to SKEWED (another app changed it), so that only a send from Odoo
makes it right again. Shopify holds the first ``inventorySetQuantities``
HOLD seconds and then answers 504 without applying it; the reconciliation
(*Push stock*) queues a change per SKU and location, and while its flush
job's batch is held there, the worker running the job is killed with
SIGKILL. The prefork master starts another worker; queue_job's runner finds
the job dead (its lock went with the worker's connection) and queues it
again.

Expected: the job runs again and ends done; the changes that were being
sent are taken back and sent (state sent, 2 sends started each), none left
pending or sending, none failed, no queue job failed or left started;
Shopify's available quantity equal to Odoo's for every SKU and location,
which it is only if the changes were sent again (the held send never
reached the store).
"""

import collections
import time

from .harness import (
    ScenarioFailed,
    shopify_stock_mismatches,
    silenced,
    wait_idle,
    wait_sent,
    wait_until,
)

TOPIC = "inventory.set"
SET_QUANTITIES = "graphql:inventorySetQuantities"
# Shopify's quantity before the scenario's send: never Odoo's.
SKEWED = 997
# Long enough to find the job and kill its worker; under the backend's 30 s timeout.
HOLD = 20
# queue_job's runner answers the job's start request after 1 s at most and then
# stops listening; killing later keeps its request out of the story.
STARTED_FOR = 2
# The runner requeues a dead job once enqueued 10 s ago, at its next wake-up
# (at most a minute); the job then sends its batch again.
RECOVERY_TIMEOUT = 120
SETTLE_TIMEOUT = 60
ALLOWED_LOG = (
    r"WARNING odoo\.addons\.queue_job\.jobrunner\.runner: Re-queued dead job with uuid: [0-9a-f-]+",
)


def _unsent(stack, since_id=0):
    """Stock changes still pending or being sent (of ids above ``since_id``)."""
    return stack.sql.value(
        "SELECT count(*) FROM connector_outbound WHERE backend_id = %s AND topic = %s "
        "AND state IN ('pending', 'sending') AND id > %s",
        (stack.backend_id, TOPIC, since_id),
    )


def _skew_store(stack):
    """Set every bound SKU's available quantity at every mapped location to
    SKEWED in the store, without webhook. Returns how many levels changed."""
    items = {
        row[0]
        for row in stack.sql(
            "SELECT inventory_item_id FROM shopify_product_binding WHERE backend_id = %s "
            "AND inventory_item_id IS NOT NULL",
            (stack.backend_id,),
        )
    }
    locations = {
        row[0]
        for row in stack.sql(
            "SELECT external_id FROM shopify_location WHERE backend_id = %s AND active "
            "AND location_id IS NOT NULL",
            (stack.backend_id,),
        )
    }
    shop = stack.shop
    with shop.lock:
        for item_id in items:
            for location_id in locations:
                shop.store.set_available(item_id, location_id, SKEWED, emit=False)
    return len(items) * len(locations)


def _held_send(stack, since_id, rule_id):
    """The flush job whose batch Shopify is holding, once it holds it and the
    job has run STARTED_FOR seconds: (job uuid, worker pid, ids being sent)."""
    rows = stack.sql(
        "SELECT o.id, o.claim_job_uuid, j.state, j.worker_pid, "
        "  EXTRACT(EPOCH FROM (now() AT TIME ZONE 'utc' - j.date_started)) "
        "FROM connector_outbound o JOIN queue_job j ON j.uuid = o.claim_job_uuid "
        "WHERE o.backend_id = %s AND o.topic = %s AND o.id > %s AND o.state = 'sending'",
        (stack.backend_id, TOPIC, since_id),
    )
    held = any(r["id"] == rule_id and r["applied"] for r in stack.shop.faults.describe())
    if not rows or not held:
        return None
    jobs = {(r[1], r[2], r[3]) for r in rows}
    if len(jobs) != 1:
        raise ScenarioFailed(f"changes sent by {len(jobs)} jobs at once: {sorted(jobs)}")
    ((job_uuid, state, pid),) = jobs
    if state != "started" or not pid or min(r[4] for r in rows) < STARTED_FOR:
        return None
    return job_uuid, pid, sorted(r[0] for r in rows)


def _kill_and_recover(stack, since_id):
    """Push stock with Shopify holding the first send, kill the worker sending
    it, wait until the job ran again and everything is sent. What was seen."""
    server = stack.server
    rule = stack.shop.faults.add(
        "timeout", hold=HOLD, apply=False, endpoint=SET_QUANTITIES, limit=1
    )
    stack.rpc("connector.backend", "action_shopify_push_stock", [stack.backend_id])
    job_uuid, pid, in_flight = wait_until(
        lambda: _held_send(stack, since_id, rule.id),
        30,
        interval=0.2,
        what="a flush job's batch held by Shopify",
    )
    seen = {"job": job_uuid, "pid": pid, "in_flight": in_flight, "timed_out": None}
    seen["http_before"] = server.workers()["http"]
    if pid not in seen["http_before"]:
        raise ScenarioFailed(f"job {job_uuid} runs in {pid}, not an HTTP worker")
    server.kill_worker(pid)
    killed = time.monotonic()

    def recovered():
        job_state = stack.sql.value("SELECT state FROM queue_job WHERE uuid = %s", (job_uuid,))
        return job_state == "done" and not _unsent(stack, since_id)

    try:
        wait_until(
            recovered,
            RECOVERY_TIMEOUT,
            interval=0.5,
            what="the killed job run again and every change sent",
        )
    except ScenarioFailed as exc:
        seen["timed_out"] = str(exc)
    seen["recovered_in"] = time.monotonic() - killed
    seen["http_after"] = server.workers()["http"]
    return seen


def _verdict(seen, job_state, rows, jobs, mismatches):
    """Why the scenario fails (empty: it passes)."""
    why = []
    if seen["timed_out"]:
        why.append(seen["timed_out"])
    if job_state != "done":
        why.append(f"the killed job is {job_state}")
    states = collections.Counter(row[1] for row in rows)
    resent = sum(1 for row in rows if row[0] in seen["in_flight"] and row[1:] == ("sent", 2))
    if resent != len(seen["in_flight"]):
        why.append(f"{len(seen['in_flight']) - resent} changes in flight not sent again once")
    for state in ("pending", "sending", "failed"):
        if states.get(state):
            why.append(f"{states[state]} changes {state}")
    if len(seen["http_after"]) != len(seen["http_before"]) or seen["pid"] in seen["http_after"]:
        why.append(
            f"HTTP workers {seen['http_before']} before the kill, {seen['http_after']} after"
        )
    for state, count in sorted(jobs.items()):
        why.append(f"{count} queue jobs {state}")
    if mismatches:
        why.append(
            f"{len(mismatches)} SKU x location differ, e.g. "
            + ", ".join(f"{sku}@{loc}: Shopify {r}, Odoo {o}" for sku, loc, r, o in mismatches[:3])
        )
    return why


def run(stack):
    shop = stack.shop
    wait_idle(stack)
    wait_sent(stack, (TOPIC,), SETTLE_TIMEOUT, what="earlier stock sent")
    db_start = stack.sql.value("SELECT now() AT TIME ZONE 'utc'")
    with silenced(shop):
        try:
            skewed = _skew_store(stack)
            since_id = stack.sql.value("SELECT COALESCE(max(id), 0) FROM connector_outbound")
            since_request = max((e["seq"] for e in shop.requests.entries()), default=0)
            seen = _kill_and_recover(stack, since_id)
        finally:
            shop.faults.clear()
        job_state, job_retry = stack.sql(
            "SELECT state, retry FROM queue_job WHERE uuid = %s", (seen["job"],)
        )[0]
        rows = stack.sql(
            "SELECT id, state, attempt FROM connector_outbound "
            "WHERE backend_id = %s AND topic = %s AND id > %s",
            (stack.backend_id, TOPIC, since_id),
        )
        calls = [
            (entry["status"], entry.get("processed"))
            for entry in shop.requests.entries(since_request)
            if SET_QUANTITIES in (entry.get("names") or ())
        ]
        compared, mismatches = shopify_stock_mismatches(stack)
    jobs = dict(
        stack.sql(
            "SELECT state, count(*) FROM queue_job WHERE date_created >= %s "
            "AND state IN ('failed', 'started') GROUP BY state",
            (db_start,),
        )
    )
    requeued = any(seen["job"] in line for _phase, line in stack.server.log.allowed_seen)
    states = collections.Counter(row[1] for row in rows)
    attempts = collections.Counter(row[2] for row in rows)
    figures = (
        f"{len(rows)} changes ({skewed} levels skewed in the store); worker {seen['pid']} "
        f"killed with {len(seen['in_flight'])} changes in flight; HTTP workers "
        f"{seen['http_before']} -> {seen['http_after']}; its job "
        f"{'requeued (logged), ' if requeued else ''}{job_state} (queue_job retry {job_retry}), "
        f"everything sent {seen['recovered_in']:.0f} s after the kill; changes "
        f"{dict(sorted(states.items()))}, sends started {dict(sorted(attempts.items()))}; "
        f"inventorySetQuantities calls "
        + ", ".join(f"HTTP {status}{'' if done else ' unapplied'}" for status, done in calls)
        + f"; {compared - len(mismatches)}/{compared} SKU x location equal in Shopify"
    )
    why = _verdict(seen, job_state, rows, jobs, mismatches)
    if why:
        raise ScenarioFailed(f"{'; '.join(why)} -- {figures}")
    return figures
