"""Horizontal scaling: job throughput with 1 and 2 job workers, on a real server.

``setup/bench scaling`` starts the server this file declares (3 HTTP
workers, a cron worker, queue_job's runner) on a throwaway database wired to
the Shopify simulator and to a POS fleet (:func:`wire`), then calls
:func:`main`. Rounds alternate between one job slot and two (the runner's
``root`` channel capacity; the server restarted between them), in the order
1, 2, 2, 1 ... so that the machine's drift hits both sides alike. Each round
measures two loads, one after the other:

- **orders**: ``BENCH_ORDERS`` Shopify ``orders/create`` webhooks (1 to 3
  lines, known customers): the sale orders confirmed, stock reserved,
  bindings written.
- **tickets**: an offline store's ``BENCH_TICKETS`` sales on its two
  registers uploaded in batches of 500: the POS orders paid.

The load is posted to the server restarted without a job runner
(``root:0``), then the server is restarted with the round's slots: what is
measured is the jobs' throughput, from the first job started to the last
event applied, not the intake's. It prints events/s of each side, the ratio two slots /
one slot per load (target 1.7 on 2 cores, QUALITY's "horizontal scaling"),
every event applied once, and the clashes with a concurrent transaction the
second slot caused (each retried; they are part of the cost of running side
by side). Environment: ``BENCH_ORDERS`` (300), ``BENCH_TICKETS`` (2000),
``BENCH_ROUNDS`` (2: rounds per side), ``BENCH_DB_PREFIX``.
"""

import json
import os
import random
import statistics
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from reliability.harness import (
    ScenarioFailed,
    post,
    shopify_delivery,
    silenced,
    wait_idle,
    wait_until,
)
from reliability.pos_stack import wire_pos_fleet
from simulators import PosSimulator

# Three HTTP workers: two run jobs when the runner gives two slots, one takes
# the uploads. The channel is set per round.
BENCH_SERVER = {"workers": 3, "cron_threads": 1, "channels": "root:2"}

ORDERS = int(os.environ.get("BENCH_ORDERS", "300"))
TICKETS = int(os.environ.get("BENCH_TICKETS", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
STORE, REGISTERS = "S01", ("R1", "R2")
BULK_BATCH = 500
TARGET = 1.7
SENDERS = 8
TIMEOUT = 1800


def wire(stack):
    """A POS fleet of one store with two registers, stock out at the close
    (a register's tickets are one key space: two apply side by side)."""
    pos = PosSimulator(
        seed=stack.seed,
        fleet_code="scaling-fleet",
        stores=1,
        registers=len(REGISTERS),
        bulk_batch_size=BULK_BATCH,
    )
    stack.pos = pos
    stack.pos_wiring = wire_pos_fleet(stack, pos, stores=(STORE,), stock_policy="closing")


def held(stack):
    """Restart the server without a job runner (``root:0``): what is posted
    now is stored, its jobs wait."""
    stack.server.channels = "root:0"
    stack.server.log.phase("held")
    stack.server.restart()


def clashes(stack):
    with open(stack.server.log_path, errors="replace") as log:
        return sum("clashed with a concurrent transaction" in line for line in log)


def released(stack, slots, keys):
    """Restart the server with ``slots`` job slots: the held jobs run. (Seconds
    from the first job started to the last event applied, events applied.)"""
    restarted = datetime.now(timezone.utc).replace(tzinfo=None)
    stack.server.channels = f"root:{slots}"
    stack.server.log.phase(f"{slots} slot(s)")
    stack.server.restart()

    def done():
        states = event_states(stack, keys)
        pending = sum(n for state, n in states.items() if state not in ("done", "failed"))
        return states if not pending and states else None

    states = wait_until(done, TIMEOUT, interval=0.5, what="every event of the round applied")
    if states.get("failed"):
        raise ScenarioFailed(f"{states['failed']} events failed: {states}")
    first = stack.sql.value(
        "SELECT min(date_started) FROM queue_job WHERE date_started >= %s", (restarted,)
    )
    last = stack.sql.value(
        "SELECT max(processed_at) FROM connector_event WHERE idempotency_key IN %s",
        (tuple(keys),),
    )
    return (last - first).total_seconds(), states.get("done", 0)


def event_states(stack, keys):
    return dict(
        stack.sql(
            "SELECT state, count(*) FROM connector_event WHERE idempotency_key IN %s "
            "GROUP BY state",
            (tuple(keys),),
        )
    )


def post_orders(stack, rng):
    """ORDERS ``orders/create`` webhooks, all answered 200; their webhook ids
    and the orders' ids."""
    skus, customers = stack.bound_skus(), stack.customers()
    with silenced(stack.shop) as shop:
        orders = [
            shop.create_order(
                [(sku, rng.randint(1, 2)) for sku in rng.sample(skus, k=rng.randint(1, 3))],
                customer=rng.choice(customers),
            )
            for _ in range(ORDERS)
        ]
    deliveries = [shopify_delivery(stack.shop, "orders/create", o) for o in orders]
    with ThreadPoolExecutor(SENDERS) as pool:
        statuses = set(
            pool.map(lambda d: post(stack.webhook_url, d.body, d.headers)[0], deliveries)
        )
    if statuses != {200}:
        raise ScenarioFailed(f"webhooks answered {statuses}")
    return [d.webhook_id for d in deliveries], [str(o["id"]) for o in orders]


def upload_tickets(stack, _rng):
    """TICKETS sales of the offline store, uploaded back online; their UUIDs
    (the events' keys and the POS orders')."""
    pos = stack.pos
    pos.set_offline(STORE)
    tickets = [pos.sale(STORE, REGISTERS[i % len(REGISTERS)]) for i in range(TICKETS)]
    uploads = pos.set_online(STORE)
    refused = [u for u in uploads if u["status"] != 200]
    if refused:
        raise ScenarioFailed(f"{len(refused)} uploads refused: {refused[0]['answer']}")
    uuids = [t["uuid"] for t in tickets]
    return uuids, uuids


def not_once(stack, load, ids, since):
    """What the round's ``ids`` did not make exactly once: each order one sale
    order (its binding), each ticket one POS order of the store; and what was
    made since ``since`` (the last ids before the round) that is not theirs.
    ``(what differs, other orders of the store made meanwhile)``."""
    if load == "orders":
        made = dict(
            stack.sql(
                "SELECT external_id, count(*) FROM shopify_order_binding "
                "WHERE backend_id = %s AND external_id IN %s GROUP BY 1",
                (stack.backend_id, tuple(ids)),
            )
        )
        besides = stack.sql(
            "SELECT so.name, b.external_id FROM sale_order so LEFT JOIN shopify_order_binding b "
            "ON b.odoo_id = so.id WHERE so.id > %s AND (b.id IS NULL OR NOT b.external_id IN %s)",
            (since[0], tuple(ids)),
        )
    else:
        made = dict(
            stack.sql(
                "SELECT uuid, count(*) FROM pos_order WHERE uuid IN %s GROUP BY 1", (tuple(ids),)
            )
        )
        besides = stack.sql(
            "SELECT o.name, NULL FROM pos_order o JOIN connector_pos_store s "
            "ON s.id = o.connector_pos_store_id WHERE s.code = %s AND o.id > %s "
            "AND NOT (o.uuid = ANY(%s))",
            (STORE, since[1], list(ids)),
        )
    wrong = [f"{i} made {made.get(i, 0)} times" for i in ids if made.get(i, 0) != 1]
    # Another order of the store imported meanwhile (the schedule's read of
    # the store's orders) is bound to its own order: not the round's, not a
    # duplicate. A sale order bound to none is.
    wrong += [f"{name} made besides, unbound" for name, key in besides if not key]
    return wrong, [f"{name} (order {key})" for name, key in besides if key]


def last_ids(stack):
    """(the last sale order id, the last POS order id): a round's records come after."""
    return (
        stack.sql.value("SELECT COALESCE(max(id), 0) FROM sale_order"),
        stack.sql.value("SELECT COALESCE(max(id), 0) FROM pos_order"),
    )


def main(stack):
    rng = random.Random(stack.seed)
    print(
        f"== Scaling: job throughput with 1 and 2 job slots, {ROUNDS} round(s) each "
        f"(order 1, 2, 2, 1 ...): {ORDERS} Shopify orders and {TICKETS} POS tickets "
        f"({len(REGISTERS)} registers) per round; {stack.server.workers_count} HTTP workers, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rates = {1: {"orders": [], "tickets": []}, 2: {"orders": [], "tickets": []}}
    clashed = {1: 0, 2: 0}
    wrong = []  # what a round made more or less than once
    plan = [(1, 2) if n % 2 == 0 else (2, 1) for n in range(ROUNDS)]
    for slots in [s for pair in plan for s in pair]:
        before = clashes(stack)
        for load, send in (("orders", post_orders), ("tickets", upload_tickets)):
            held(stack)
            since = last_ids(stack)
            keys, ids = send(stack, rng)
            seconds, done = released(stack, slots, keys)
            rates[slots][load].append(done / seconds)
            print(f"   {slots} slot(s): {done} {load} in {seconds:.1f} s = {done / seconds:.2f}/s")
            wait_idle(stack, timeout=300)
            differs, meanwhile = not_once(stack, load, ids, since)
            wrong += [f"{slots} slot(s), {load}: {what}" for what in differs]
            if meanwhile:
                print(f"   other orders of the store imported meanwhile: {', '.join(meanwhile)}")
        clashed[slots] += clashes(stack) - before
    ratios = {}
    print()
    for load in ("orders", "tickets"):
        one, two = (statistics.median(rates[s][load]) for s in (1, 2))
        ratios[load] = two / one
        print(
            f" {load}: 1 slot {one:.2f}/s, 2 slots {two:.2f}/s: ratio {ratios[load]:.2f} "
            f"(target >= {TARGET}: {'met' if ratios[load] >= TARGET else 'NOT met'})"
        )
    print(
        f" clashes with a concurrent transaction (retried): {clashed[1]} with 1 slot, "
        f"{clashed[2]} with 2; every round made its {ORDERS} sale orders and {TICKETS} "
        f"POS orders once: {'yes' if not wrong else 'NO'}"
    )
    lowest = min(ratios.values())
    summary = (
        f"{ORDERS} orders and {TICKETS} tickets a round, {ROUNDS} rounds a side: orders "
        f"x{ratios['orders']:.2f}, POS tickets x{ratios['tickets']:.2f} from 1 to 2 job slots "
        f"({os.cpu_count()} cores)"
    )
    result = {"bench": "scaling", "bar": "scaling", "summary": summary, "ratio": round(lowest, 2)}
    result.update(ratio_label="2 slots / 1 slot, lowest", target=f">= {TARGET}")
    print("RESULT " + json.dumps({**result, "met": lowest >= TARGET}))
    if wrong:
        print(f" PROBLEMS ({len(wrong)}): " + "; ".join(wrong[:10]))
        return 1
    return 0
