"""P5: a flash sale, 10,000 order webhooks in 60 s, on a real server.

``setup/bench flash_sale`` starts the server this file declares
(BENCH_SERVER: 4 HTTP workers, no cron worker, queue_job's runner with 2
slots) on a throwaway database wired to the Shopify simulator, then calls
:func:`main`. Distinct orders are placed in the simulated store beforehand
(its catalogue, customers and prices, the webhooks silenced), then sent as
signed ``orders/create`` webhooks:

- **burst**: ``BENCH_WEBHOOKS`` webhooks paced evenly over
  ``BENCH_SECONDS`` by ``BENCH_SENDERS`` concurrent senders, each webhook
  triggered (``X-Shopify-Triggered-At``) when it is sent. Every HTTP answer
  is counted: all must be 200. While the job runner drains them, the
  Connectors overview's own figures are read every ``BENCH_SAMPLE`` seconds
  (``connector.backend`` ``read`` of its ``overview_*`` fields, as the
  kanban tile reads them): the backlog, the oldest pending message, the lag
  p95; printed as the backlog curve.
- **reference (P2)**, before and after the burst: ``BENCH_REFERENCE``
  orders each time, stored by the intake while the job runner is stopped,
  then drained by the same runner, channel and workers: the order import as
  P2 measures it (stored event -> confirmed sale order), without a sale
  going on.

Both rates are events applied per second from the first applied to the
last, polled from the database every 0.2 s; their ratio is P5's figure
(target >= 0.90). At the end: every webhook stored once, every order
imported once (one binding, one confirmed sale order each).
"""

import collections
import json
import os
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from reliability.harness import Rpc, ScenarioFailed, post, shopify_delivery, silenced, wait_until

# No cron worker: the scheduled actions (the store's orders read again, the
# catalogue, the stock sent whole, health checks) would add jobs of their own
# to one side and not the other; what is measured is the webhooks' drain.
BENCH_SERVER = {"workers": 4, "cron_threads": 0, "channels": "root:2"}

WEBHOOKS = int(os.environ.get("BENCH_WEBHOOKS", "10000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
SENDERS = int(os.environ.get("BENCH_SENDERS", "16"))
REFERENCE = int(os.environ.get("BENCH_REFERENCE", "200"))
SAMPLE_EVERY = float(os.environ.get("BENCH_SAMPLE", "5"))
TARGET = 0.90  # QUALITY P5: drained at >= 90 % of P2's throughput
POLL = 0.2
STALLED = 300  # seconds without an event applied: the drain is stuck
# The overview's figures of the backlog and the lag, read as its tile reads them.
OVERVIEW_FIELDS = [
    "overview_state",
    "overview_backlog_count",
    "overview_waiting_count",
    "overview_failed_count",
    "overview_oldest_pending_age",
    "overview_lag_p95",
    "overview_lag",
]
# Events that will not move any more: the drain is over for them.
END_STATES = ("done", "failed", "ignored", "stale", "duplicate")


def _orders(stack, rng, count):
    """``count`` distinct orders placed in the simulated store (its SKUs,
    customers and prices), as their ``orders/create`` payloads."""
    skus = stack.bound_skus()
    customers = stack.customers()
    with silenced(stack.shop) as shop:
        return [
            shop.create_order(
                [(sku, rng.randint(1, 2)) for sku in rng.sample(skus, k=rng.randint(1, 3))],
                customer=rng.choice(customers),
            )
            for _ in range(count)
        ]


def _deliveries(stack, orders, tag):
    """Signed webhooks of ``orders``, webhook ids ``<tag>-<n>``."""
    return [
        shopify_delivery(stack.shop, "orders/create", order, webhook_id=f"{tag}-{number}")
        for number, order in enumerate(orders)
    ]


def _send(url, deliveries, seconds):
    """POST ``deliveries`` from SENDERS threads, the n-th not before ``n *
    seconds / len`` after the start, each triggered when sent (Shopify signs
    the body only). ``(answers by status, send seconds, latencies)``."""
    statuses = collections.Counter()
    latencies = []
    lock = threading.Lock()
    numbers = iter(range(len(deliveries)))
    started = time.monotonic()
    step = seconds / len(deliveries) if deliveries else 0

    def sender():
        while True:
            with lock:
                number = next(numbers, None)
            if number is None:
                return
            due = started + number * step
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            delivery = deliveries[number]
            headers = dict(delivery.headers)
            headers["X-Shopify-Triggered-At"] = datetime.now(timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
            sent = time.monotonic()
            try:
                status, _body = post(url, delivery.body, headers)
            except OSError as exc:  # no answer: counted as failed, by kind
                status = type(exc).__name__
            with lock:
                statuses[str(status)] += 1
                latencies.append(time.monotonic() - sent)

    with ThreadPoolExecutor(SENDERS) as pool:
        for _ in range(SENDERS):
            pool.submit(sender)
    return statuses, time.monotonic() - started, latencies


def _counts(stack, tag):
    """(events stored, applied, in an end state) of the webhooks ``<tag>-*``."""
    return stack.sql(
        "SELECT count(*), count(*) FILTER (WHERE state = 'done'), "
        "count(*) FILTER (WHERE state IN %s) "
        "FROM connector_event WHERE backend_id = %s AND idempotency_key LIKE %s",
        (END_STATES, stack.backend_id, f"{tag}-%"),
    )[0]


class Drain(threading.Thread):
    """Polls how many events of ``tag`` are applied, every POLL seconds,
    until ``total`` are in an end state; the moments of the first and of
    the last applied, on this process' clock."""

    def __init__(self, stack, tag, total):
        super().__init__(name=f"drain-{tag}", daemon=True)
        self.stack, self.tag, self.total = stack, tag, total
        self.first = None  # (moment, applied then)
        self.last = None  # (moment, applied then)
        self.ended = threading.Event()
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            _stored, applied, ended = _counts(self.stack, self.tag)
            now = time.monotonic()
            if applied and self.first is None:
                self.first = (now, applied)
            if self.last is None or applied > self.last[1]:
                self.last = (now, applied)
            if ended >= self.total:
                self.ended.set()
                return
            time.sleep(POLL)

    def rate(self):
        """Events applied per second from the first applied to the last."""
        if not self.first or not self.last or self.last[0] <= self.first[0]:
            return None
        return (self.last[1] - self.first[1]) / (self.last[0] - self.first[0])

    def wait(self):
        """Until every event ended; fails when none was applied for STALLED
        seconds (a drain stuck, not a slow one: the machine may be shared)."""
        started = time.monotonic()
        while not self.ended.wait(5):
            progress = self.last[0] if self.last else started
            if time.monotonic() - progress > STALLED:
                self.stopped.set()
                applied = self.last[1] if self.last else 0
                raise ScenarioFailed(
                    f"{self.tag}: {applied} of {self.total} events applied, none for {STALLED} s"
                )


CURVE_HEADER = (
    "  t s | webhooks stored | applied | overview: backlog  waiting  failed  "
    "oldest pending s  lag p95 s     state | read ms"
)


def _curve_line(sample):
    moment, read_seconds, stored, applied, tile = sample
    return (
        f" {moment:5.0f} | {stored:15} | {applied:7} | {tile['overview_backlog_count']:17} "
        f"{tile['overview_waiting_count']:8} {tile['overview_failed_count']:7} "
        f"{tile['overview_oldest_pending_age']:17} {tile['overview_lag_p95']:10} "
        f"{tile['overview_state']:>9} | {read_seconds * 1000:7.0f}"
    )


class Overview(threading.Thread):
    """Reads the Connectors overview's figures of the backend every
    SAMPLE_EVERY seconds, as its tile reads them, over JSON-RPC, and prints
    each reading as it comes: the backlog curve, while it drains."""

    def __init__(self, stack, tag):
        super().__init__(name="overview", daemon=True)
        self.stack, self.tag = stack, tag
        self.rpc = Rpc(stack.server.url, stack.dbname)
        self.samples = []
        self.stopped = threading.Event()
        self.started_at = None

    def run(self):
        self.started_at = time.monotonic()
        while True:
            asked = time.monotonic()
            tile = self.rpc("connector.backend", "read", [self.stack.backend_id], OVERVIEW_FIELDS)[
                0
            ]
            answered = time.monotonic()
            stored, applied, _ended = _counts(self.stack, self.tag)
            sample = (asked - self.started_at, answered - asked, stored, applied, tile)
            self.samples.append(sample)
            print(_curve_line(sample), flush=True)
            if self.stopped.wait(max(0.0, SAMPLE_EVERY - (time.monotonic() - asked))):
                return


def _quiet(stack, timeout=300):
    """No queue job to run or running (the first crons' jobs done)."""
    wait_until(
        lambda: (
            not stack.sql.value(
                "SELECT count(*) FROM queue_job WHERE state IN ('pending', 'enqueued', 'started') "
                "AND (eta IS NULL OR eta <= now() AT TIME ZONE 'utc')"
            )
        ),
        timeout,
        interval=1,
        what="no queue job to run",
    )


def _reference(stack, deliveries, tag):
    """P2 on this server: the orders stored while the job runner is stopped,
    then drained by it; (applied per second, send statuses)."""
    _quiet(stack)
    stack.server.freeze_job_runner()
    try:
        statuses, _seconds, _latencies = _send(stack.webhook_url, deliveries, 0)
        wait_until(
            lambda: _counts(stack, tag)[0] >= statuses.get("200", 0),
            60,
            what=f"{tag}: every webhook stored",
        )
    finally:
        stack.server.thaw_job_runner()
    drain = Drain(stack, tag, len(deliveries))
    drain.start()
    drain.wait()
    rate = drain.rate()
    print(
        f"   reference {tag}: {len(deliveries)} stored orders drained at {rate:.2f} orders/s "
        f"(statuses {dict(statuses)})",
        flush=True,
    )
    return rate, statuses


def _check(stack, tags, expected, since):
    """Every webhook stored once, every order imported once: the problems found."""
    problems = []
    for tag, count in zip(tags, expected, strict=True):
        events, distinct, duplicates, done = stack.sql(
            "SELECT count(*), count(DISTINCT idempotency_key), "
            "count(*) FILTER (WHERE duplicate_of_id IS NOT NULL), "
            "count(*) FILTER (WHERE state = 'done') "
            "FROM connector_event WHERE backend_id = %s AND idempotency_key LIKE %s",
            (stack.backend_id, f"{tag}-%"),
        )[0]
        if not events == distinct == done == count or duplicates:
            states = dict(
                stack.sql(
                    "SELECT state, count(*) FROM connector_event WHERE backend_id = %s "
                    "AND idempotency_key LIKE %s GROUP BY 1",
                    (stack.backend_id, f"{tag}-%"),
                )
            )
            problems.append(
                f"{tag}: {count} sent, {events} stored ({distinct} distinct ids, "
                f"{duplicates} duplicates), states {states}"
            )
    bindings, bound_orders, confirmed = stack.sql(
        "SELECT count(*), count(DISTINCT b.odoo_id), count(*) FILTER (WHERE so.state = 'sale') "
        "FROM shopify_order_binding b JOIN sale_order so ON so.id = b.odoo_id "
        "WHERE b.backend_id = %s AND b.create_date >= %s",
        (stack.backend_id, since),
    )[0]
    orders = stack.sql.value("SELECT count(*) FROM sale_order WHERE create_date >= %s", (since,))
    total = sum(expected)
    if not bindings == bound_orders == confirmed == orders == total:
        problems.append(
            f"{total} orders sent: {bindings} bindings of {bound_orders} sale orders, "
            f"{confirmed} confirmed; {orders} sale orders made"
        )
    print(
        f"\n stored and imported: {total} webhooks sent, {bindings} orders bound to "
        f"{bound_orders} sale orders ({confirmed} confirmed), {orders} sale orders made"
        + (f"; PROBLEMS: {'; '.join(problems)}" if problems else "; each stored and imported once")
    )
    return problems


def _unaccepted(statuses):
    """(webhooks refused: another status than 200, failed: no answer)."""
    refused = sum(n for s, n in statuses.items() if s.isdigit() and s != "200")
    return refused, sum(n for s, n in statuses.items() if not s.isdigit())


def _burst(stack, deliveries):
    """The sale: the webhooks sent while the queue drains and the overview is
    read; (HTTP statuses, seconds to send, drain rate, the overview's readings)."""
    _quiet(stack)
    print(f"\n the burst, and the Connectors overview read every {SAMPLE_EVERY:g} s:")
    print(CURVE_HEADER, flush=True)
    drain = Drain(stack, "p5-burst", WEBHOOKS)
    overview = Overview(stack, "p5-burst")
    overview.start()
    drain.start()
    statuses, sent_in, latencies = _send(stack.webhook_url, deliveries, SECONDS)
    sent_at = time.monotonic()
    latencies.sort()
    refused, failed = _unaccepted(statuses)
    print(
        f"   burst sent in {sent_in:.1f} s ({WEBHOOKS / sent_in:.0f} webhooks/s, asked "
        f"{WEBHOOKS / SECONDS:.0f}/s): {statuses.get('200', 0)} answered 200, {refused} "
        f"refused, {failed} failed (statuses {dict(statuses)}); answer p50 "
        f"{latencies[len(latencies) // 2] * 1000:.0f} ms, p99 "
        f"{latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms",
        flush=True,
    )
    try:
        drain.wait()
    finally:
        drain.stopped.set()
        overview.stopped.set()
        overview.join()
    burst = drain.rate()
    drained_in = drain.last[0] - (sent_at - sent_in)
    print(
        f"   burst drained: {drain.last[1]} orders applied {drained_in:.0f} s after the first "
        f"webhook ({drained_in - sent_in:.0f} s after the last), {burst:.2f} orders/s from the "
        f"first applied to the last",
        flush=True,
    )
    return statuses, sent_in, burst, overview


def main(stack):
    """Reference, burst, reference; print the curve, the ratio, the checks."""
    rng = random.Random(stack.seed)
    _quiet(stack)
    since = stack.sql.value("SELECT now() AT TIME ZONE 'utc'")
    started = time.monotonic()
    tags = ("p5-before", "p5-burst", "p5-after")
    sizes = (REFERENCE, WEBHOOKS, REFERENCE)
    deliveries = {
        tag: _deliveries(stack, _orders(stack, rng, size), tag)
        for tag, size in zip(tags, sizes, strict=True)
    }
    median_body = statistics.median(len(d.body) for d in deliveries["p5-burst"])
    print(
        f"== P5 flash sale: {WEBHOOKS} orders/create webhooks over {SECONDS:g} s by "
        f"{SENDERS} senders (distinct orders of the simulated store, median body "
        f"{median_body:.0f} bytes, made in {time.monotonic() - started:.0f} s); reference: "
        f"{REFERENCE} stored orders drained before and after; {stack.server.workers_count} "
        f"workers, job channel {stack.server.channels}, {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    before, before_statuses = _reference(stack, deliveries["p5-before"], "p5-before")

    statuses, sent_in, burst, overview = _burst(stack, deliveries["p5-burst"])
    refused, failed = _unaccepted(statuses)
    after, after_statuses = _reference(stack, deliveries["p5-after"], "p5-after")

    reference = (before + after) / 2
    ratio = burst / reference
    met = ratio >= TARGET and statuses.get("200", 0) == WEBHOOKS
    peak = max(s[4]["overview_backlog_count"] for s in overview.samples)
    oldest = max(s[4]["overview_oldest_pending_age"] for s in overview.samples)
    lag = max(s[4]["overview_lag_p95"] for s in overview.samples)
    # The tile turns Degraded when a flow's oldest pending message or lag
    # p95 is past its SLA (Orders in: 5 minutes).
    degraded = next((s[0] for s in overview.samples if s[4]["overview_state"] == "degraded"), None)
    shown = f"Degraded from {degraded:.0f} s" if degraded is not None else "never Degraded"
    print(
        f"\n drain {burst:.2f} orders/s vs P2 reference {reference:.2f} orders/s (before "
        f"{before:.2f}, after {after:.2f}): ratio {ratio:.2f} (P5 target >= {TARGET:.2f}: "
        f"{'met' if ratio >= TARGET else 'NOT met'}); {statuses.get('200', 0)} of {WEBHOOKS} "
        f"accepted; overview: backlog up to {peak}, oldest pending up to {oldest} s, lag p95 "
        f"up to {lag} s, {shown}"
    )
    problems = _check(stack, tags, sizes, since)
    if statuses.get("200", 0) != WEBHOOKS:
        problems.append(f"{WEBHOOKS - statuses.get('200', 0)} webhooks not accepted")
    for name, answers in (("before", before_statuses), ("after", after_statuses)):
        if set(answers) - {"200"}:
            problems.append(f"reference {name}: statuses {dict(answers)}")
    summary = (
        f"{WEBHOOKS} webhooks in {sent_in:.0f} s: {statuses.get('200', 0)} accepted, "
        f"{refused} refused, {failed} failed; drained at {burst:.2f} orders/s vs "
        f"{reference:.2f} stored orders/s (P2 on the same server); overview backlog up to "
        f"{peak}, oldest pending up to {oldest} s, lag p95 up to {lag} s, {shown}"
    )
    result = {
        "bench": "flash_sale",
        "bar": "P5",
        "summary": summary,
        "ratio": round(ratio, 2),
        "ratio_label": "burst drain / P2 reference drain, same server",
        "target": f">= {TARGET:.2f}, all accepted",
        "met": met and not problems,
    }
    print("RESULT " + json.dumps(result))
    return 1 if problems else 0
