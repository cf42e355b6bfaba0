"""Metrics per backend and flow, computed over 1,000,000 events.

Runs inside ``odoo shell`` (``env`` given) on a database with
connector_shopify installed; ``setup/bench metrics`` does all that. Fills the
event table with 1,000,000 rows (and the outbound table with 100,000) spread
over the last week, 4 backends x 5 flows, a mix of states; runs ANALYZE; then
times ``connector.backend._connector_metrics`` for the last hour, day and week,
best of a few runs, and prints the plan of each statement; then times the
Connectors overview (its kanban's fields, read as the web client does).
"""

import json
import os
import time

from lxml import etree

from odoo import fields
from odoo.tools import SQL

EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
OUTBOUND = EVENTS // 10
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
BACKENDS = 4
FLOWS = ["orders_in", "refunds_in", "products_in", "stock_out", "fulfillment_out"]
WEEK = 7 * 24 * 3600

# g % 100 decides the state: mostly applied, a few of each other state. The
# open ones (failed, waiting, received, queued: 6%) are a large backlog.
EVENT_STATE = """
    CASE WHEN g %% 100 < 85 THEN 'done'
         WHEN g %% 100 < 89 THEN 'duplicate'
         WHEN g %% 100 < 92 THEN 'ignored'
         WHEN g %% 100 < 95 THEN 'failed'
         WHEN g %% 100 < 97 THEN 'waiting'
         WHEN g %% 100 < 99 THEN 'received'
         ELSE 'queued' END
"""


def make_backends(env):
    warehouse = env["stock.warehouse"].search([("company_id", "=", env.company.id)], limit=1)
    return env["connector.backend"].create(
        [
            {
                "name": f"Bench store {n}",
                "backend_type": "shopify",
                "shopify_shop_domain": f"bench{n}.example",
                "base_url": "http://127.0.0.1:9",
                "shopify_warehouse_id": warehouse.id,
                "shopify_tax_policy": "shopify",
                "state": "paused",
            }
            for n in range(BACKENDS)
        ]
    )


def fill(env, backends, now):
    """1,000,000 events and 100,000 outbound changes, in two INSERT ... SELECT."""
    started = time.monotonic()
    # Both tables spread their rows alike over the backends, flows and week.
    spread = {
        "backends": backends.ids,
        "n_backends": BACKENDS,
        "flows": FLOWS,
        "n_flows": len(FLOWS),
        "now": now,
        "week": WEEK,
    }
    # Event g is received g/EVENTS of a week ago; processed up to a minute
    # later; it occurred up to half a minute before it was received.
    env.cr.execute(
        SQL(
            """
            WITH rows AS (
                SELECT g, (%(backends)s)[1 + g %% %(n_backends)s] AS backend_id,
                       (%(flows)s)[1 + (g / %(n_backends)s) %% %(n_flows)s] AS flow,
                       %(now)s - make_interval(secs => g * %(week)s::float / %(events)s)
                           AS received_at,
                       %(state)s AS state
                  FROM generate_series(1, %(events)s) AS g
            )
            INSERT INTO connector_event (backend_id, company_id, flow, topic, idempotency_key,
                occurred_at, received_at, processed_at, lag_seconds, source, payload, state,
                attempts, retry_count, recheck_count)
            SELECT backend_id, %(company)s, flow, flow || '/event', 'bench-' || g,
                   received_at - make_interval(secs => g %% 30), received_at,
                   CASE WHEN state IN ('done', 'failed', 'ignored')
                        THEN received_at + make_interval(secs => g %% 60) END,
                   CASE WHEN state = 'done' THEN g %% 30 + g %% 60 END,
                   'webhook', jsonb_build_object('id', g, 'name', 'Bench #' || g), state,
                   1, 0, 0
              FROM rows
            """,
            **spread,
            events=EVENTS,
            company=env.company.id,
            state=SQL(EVENT_STATE),
        )
    )
    env.cr.execute(
        SQL(
            """
            INSERT INTO connector_outbound (backend_id, company_id, flow, topic, coalescing_key,
                state, change_count, attempt, retry_count, sent_at, create_date, write_date)
            SELECT (%(backends)s)[1 + g %% %(n_backends)s],
                   %(company)s,
                   (%(flows)s)[1 + (g / %(n_backends)s) %% %(n_flows)s],
                   'bench/send', 'bench-' || g,
                   CASE WHEN g %% 100 < 95 THEN 'sent' WHEN g %% 100 < 98 THEN 'pending'
                        ELSE 'failed' END,
                   1, 1, 0,
                   CASE WHEN g %% 100 < 95
                        THEN %(now)s - make_interval(secs => g * %(week)s::float / %(rows)s) END,
                   %(now)s - make_interval(secs => g * %(week)s::float / %(rows)s + 5),
                   %(now)s
              FROM generate_series(1, %(rows)s) AS g
            """,
            **spread,
            rows=OUTBOUND,
            company=env.company.id,
        )
    )
    env.cr.commit()
    env.cr.execute("ANALYZE connector_event")
    env.cr.execute("ANALYZE connector_outbound")
    env.cr.commit()
    print(
        f"filled {EVENTS:,} events and {OUTBOUND:,} outbound changes "
        f"in {time.monotonic() - started:.1f} s (ANALYZE included)"
    )


def statements_of(env, compute):
    """The SQL statements ``compute()`` runs."""
    statements = []
    cursor = env.cr
    execute = cursor.execute

    def spy(query, params=None, log_exceptions=True):
        statements.append(query)
        return execute(query, params, log_exceptions)

    cursor.execute = spy
    try:
        compute()
    finally:
        del cursor.execute
    return statements


def main(env):
    now = fields.Datetime.now()
    backends = make_backends(env)
    env.cr.commit()
    fill(env, backends, now)
    total = 0.0
    for period in ("hour", "day", "week"):
        timings = []
        for _ in range(RUNS):
            env.invalidate_all()
            started = time.perf_counter()
            metrics = backends._connector_metrics(period)
            timings.append(time.perf_counter() - started)
        best = min(timings)
        total += best
        flows = len(metrics)
        backlog = sum(values["backlog"] for values in metrics.values())
        applied = sum(values["applied_per_minute"] for values in metrics.values())
        print(
            f"{period:5}: best {best * 1000:7.1f} ms of {RUNS} "
            f"(median {sorted(timings)[RUNS // 2] * 1000:7.1f} ms)  "
            f"{flows} backend/flow rows, backlog {backlog:,}, {applied:,.1f} applied/min"
        )
        for query in statements_of(env, lambda p=period: backends._connector_metrics(p)):
            env.cr.execute(SQL("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) %s", query))
            plan = [line for (line,) in env.cr.fetchall()]
            scans = [line.strip() for line in plan if "Scan" in line or "Execution" in line]
            print("       " + "\n       ".join(scans))
    print(f"hour + day + week: {total * 1000:.1f} ms")
    result(overview(env), total)


def overview(env):
    """The Connectors overview as the web client loads it: the kanban's
    fields of every backend, read by one web_search_read."""
    view = env.ref("connector_base.connector_backend_view_kanban_overview")
    names = sorted(set(etree.fromstring(view.arch.encode()).xpath("//field/@name")))
    specification = {name: {} for name in names}
    Backend = env["connector.backend"]
    timings = []
    for _ in range(RUNS):
        env.invalidate_all()
        started = time.perf_counter()
        result = Backend.web_search_read([], specification)
        timings.append(time.perf_counter() - started)
    best = min(timings)
    print(
        f"overview: best {best * 1000:7.1f} ms of {RUNS} "
        f"(median {sorted(timings)[RUNS // 2] * 1000:7.1f} ms), {result['length']} tiles, "
        f"{len(specification)} fields (target: under 1 s)"
    )
    env.invalidate_all()
    for query in statements_of(env, lambda: Backend.web_search_read([], specification)):
        env.cr.execute(SQL("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) %s", query))
        plan = [line for (line,) in env.cr.fetchall()]
        scans = [line.strip() for line in plan if "Scan" in line or "Execution" in line]
        print("       " + "\n       ".join(scans))
    return best


def result(overview_best, total):
    """The headline figures, one machine-readable line (setup/bench all reads it)."""
    print(
        "RESULT "
        + json.dumps(
            {
                "bench": "metrics",
                "bar": "overview",
                "summary": f"{EVENTS:,} events: Connectors overview {overview_best * 1000:.0f} ms, "
                f"metrics hour + day + week {total * 1000:.0f} ms",
                "ratio": round(overview_best, 3),
                "ratio_label": "overview seconds / 1 s",
                "target": "overview under 1 s",
                "met": overview_best < 1.0,
            }
        )
    )


main(env)  # noqa: F821
