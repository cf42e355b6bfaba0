"""R for store tickets: an offline store catches up, its registers side by
side, under lost answers, duplicates and out-of-order batches, while workers
are killed with SIGKILL.

Store S01 (two registers) rings up TICKETS_PER_REGISTER tickets a register
offline (the simulator's realistic mix: sales with several tenders,
discounts, returns of earlier sales, voids, no-sales) and, back online,
uploads them in batches of BULK_BATCH; store S02 keeps selling, a ticket
about every second, while S01's registers drain. The POS client loses the
answer to a tenth of its batches (it sends them again), sends a twentieth of
its tickets twice and a twentieth of its batches after the next one. Twice,
the HTTP worker running a batch job of the fleet is killed with SIGKILL: its
hundred tickets' transaction dies with it and queue_job's runner puts the
job back (``Re-queued dead job``). Then both stores close their day (a Z
report per register, sent with the same faults).

Expected: every ticket the stores rang up applied once (one Point of Sale
order per sale, return and void, none for a no-sale, no UUID twice), none
failed or left pending; each register's sales made in its ticket order; the
four Z reports agree with the tickets and both store days are closed; every
killed job requeued and done.
"""

import time

from simulators import PosSimulator
from simulators.pos.push import PushFaults

from .harness import WORKER_KILL_LOG, ScenarioFailed, wait_idle, wait_until
from .pos_stack import wire_pos_fleet

OFFLINE, LIVE = "S01", "S02"
TICKETS_PER_REGISTER = 300
BULK_BATCH = 100
FAULTS = PushFaults(lost_answer=0.1, duplicate=0.05, out_of_order=0.05)
KILLS = 2
KILL_TIMEOUT = 60
# Both registers drained, the dead jobs requeued (10 s after they were
# enqueued, at the runner's next pass: at least once a minute).
DRAIN_TIMEOUT = 600
CLOSE_TIMEOUT = 300
PENDING = ("received", "queued", "processing", "waiting")
# What killing a worker mid-job logs, and nothing more (harness.WORKER_KILL_LOG).
ALLOWED_LOG = WORKER_KILL_LOG


def wire(stack):
    """The fleet of two stores, before the server starts; stock leaves at
    the close, so that a store's registers are applied side by side."""
    pos = PosSimulator(
        seed=stack.seed,
        fleet_code="reliability-fleet",
        stores=2,
        registers=2,
        bulk_batch_size=BULK_BATCH,
    )
    stack.pos = pos
    stack.pos_wiring = wire_pos_fleet(stack, pos, stores=(OFFLINE, LIVE), stock_policy="closing")


def _batch_jobs(stack):
    """(uuid, state, worker pid) of the fleet's batch jobs."""
    return stack.sql(
        "SELECT uuid, state, worker_pid FROM queue_job WHERE identity_key LIKE %s",
        (f"connector.event.batch%-{stack.pos_wiring['backend_id']}-ticket:%",),
    )


def _kill_one(stack, killed):
    """Kill the HTTP worker of a started batch job of the fleet; record the
    jobs the kill caught mid-run in ``killed`` ({uuid: pid})."""
    server = stack.server

    def started_job():
        http = set(server.workers()["http"])
        for job_uuid, state, pid in _batch_jobs(stack):
            if state == "started" and pid in http and job_uuid not in killed:
                return pid
        return None

    try:
        pid = wait_until(started_job, KILL_TIMEOUT, interval=0.05, what="a started batch job")
    except ScenarioFailed:
        return
    server.kill_worker_and_wait(pid)
    for job_uuid, state, job_pid in _batch_jobs(stack):
        if job_pid == pid and state == "started":
            killed[job_uuid] = pid


def _states(stack):
    return dict(
        stack.sql(
            "SELECT state, count(*) FROM connector_event WHERE backend_id = %s GROUP BY state",
            (stack.pos_wiring["backend_id"],),
        )
    )


def _sell_live_while(stack, condition, timeout, what):
    """A ticket at S02 about every second until ``condition()`` holds."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise ScenarioFailed(f"{what} not reached in {timeout} s: events {_states(stack)}")
        stack.pos.ring(LIVE, register="R1")
        stack.pos.push(LIVE)
        time.sleep(1)


def _check_orders(stack):
    """Problems of the orders against what the stores rang up (this fleet's
    stores: the chaos day's fleet has stores of the same codes)."""
    pos, sql = stack.pos, stack.sql
    backend_id = stack.pos_wiring["backend_id"]
    problems = []
    rung = pos.tickets()
    expected = {t["uuid"] for t in rung if t["type"] != "no_sale"}
    made = dict(
        sql(
            "SELECT o.uuid, count(*) FROM pos_order o JOIN connector_pos_store s "
            "ON s.id = o.connector_pos_store_id WHERE s.backend_id = %s AND s.code IN %s "
            "GROUP BY o.uuid",
            (backend_id, (OFFLINE, LIVE)),
        )
    )
    missing = expected - set(made)
    extra = set(made) - expected
    twice = [uuid for uuid, count in made.items() if count > 1]
    if missing:
        problems.append(f"{len(missing)} tickets without their order, e.g. {sorted(missing)[0]}")
    if extra:
        problems.append(f"{len(extra)} orders of no ticket, e.g. {sorted(extra)[0]}")
    if twice:
        problems.append(f"{len(twice)} tickets made twice, e.g. {twice[0]}")
    for store in (OFFLINE, LIVE):
        for register in ("R1", "R2"):
            numbers = [
                row[0]
                for row in sql(
                    "SELECT o.connector_pos_sequence FROM pos_order o JOIN connector_pos_store s "
                    "ON s.id = o.connector_pos_store_id WHERE s.backend_id = %s AND s.code = %s "
                    "AND o.connector_pos_register = %s AND NOT o.is_refund ORDER BY o.id",
                    (backend_id, store, register),
                )
            ]
            if numbers != sorted(numbers):
                problems.append(f"{store}/{register}: sales not made in ticket order")
    return problems, len(rung), len(made)


def run(stack):
    pos, wiring = stack.pos, stack.pos_wiring
    backend_id = wiring["backend_id"]
    wait_idle(stack)
    pos.push_faults = FAULTS
    pos.set_offline(OFFLINE)
    pos.ring(OFFLINE, count=TICKETS_PER_REGISTER)
    started = time.monotonic()
    uploads = pos.set_online(OFFLINE)
    refused = [u for u in uploads if u["status"] != 200]
    if refused:
        raise ScenarioFailed(f"{len(refused)} uploads refused: {refused[0].get('answer')}")
    killed = {}
    for _ in range(KILLS):
        _kill_one(stack, killed)
        pos.ring(LIVE, register="R2")
        pos.push(LIVE)
    if not killed:
        raise ScenarioFailed("no batch job was caught running by a kill")

    def drained():
        states = _states(stack)
        return not any(states.get(state) for state in PENDING)

    _sell_live_while(stack, drained, DRAIN_TIMEOUT, "every ticket applied")
    drain_seconds = time.monotonic() - started
    states = _states(stack)
    if states.get("failed"):
        reason = stack.sql.value(
            "SELECT error_message FROM connector_event WHERE backend_id = %s AND state = 'failed' "
            "ORDER BY id LIMIT 1",
            (backend_id,),
        )
        raise ScenarioFailed(f"{states['failed']} events failed: {reason}; events {states}")
    not_done = [
        job_uuid
        for job_uuid, state, _pid in _batch_jobs(stack)
        if job_uuid in killed and state != "done"
    ]
    if not_done:
        raise ScenarioFailed(f"{len(not_done)} killed jobs not done again")

    pos.close(OFFLINE)
    pos.close(LIVE)
    pos.push()

    def closed():
        return stack.sql(
            "SELECT c.state, count(*) FROM connector_pos_closing c WHERE c.backend_id = %s "
            "GROUP BY c.state",
            (backend_id,),
        )

    try:
        wait_until(
            lambda: dict(closed()).get("closed") == 4, CLOSE_TIMEOUT, interval=1, what="days closed"
        )
    except ScenarioFailed:
        raise ScenarioFailed(f"Z reports: {dict(closed())}; events {_states(stack)}") from None
    open_days = stack.sql.value(
        "SELECT count(*) FROM pos_session p JOIN connector_pos_store s "
        "ON s.config_id = p.config_id WHERE s.backend_id = %s AND p.state != 'closed'",
        (backend_id,),
    )
    problems, rung, made = _check_orders(stack)
    if open_days:
        problems.append(f"{open_days} store days left open")
    lost = sum(any(a.get("lost") for a in u["attempts"]) for u in pos.pusher.uploads)
    figures = (
        f"{rung} tickets rung up ({TICKETS_PER_REGISTER * 2} offline), {made} orders, "
        f"{len(pos.pusher.uploads)} uploads ({lost} answers lost, sent again), "
        f"{_states(stack).get('duplicate', 0)} duplicates counted once, "
        f"{len(killed)} batch jobs killed and redone, drained in {drain_seconds:.0f} s, "
        "4 Z reports agreed, 2 days closed"
    )
    if problems:
        raise ScenarioFailed("; ".join(problems) + f" -- {figures}")
    return figures
