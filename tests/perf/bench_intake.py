"""P1: Shopify webhook intake beside Odoo's bare JSON route, on a real server.

``setup/bench intake`` starts the server this file declares (BENCH_SERVER: 2
HTTP workers, queue_job server-wide with its runner off) on a throwaway
database wired to the Shopify simulator, then calls :func:`main`. Side by
side in one run, alternating, same server, same concurrency, wrk measures:

- **bare**: ``POST /web/webclient/version_info``, a JSON-RPC route that does
  nothing (Odoo's own HTTP stack, the floor);
- **webhook**: signed ``orders/create`` webhooks to the Shopify route, each
  with its own ``X-Shopify-Webhook-Id`` (verified, stored, dispatcher woken, 200).

At 1, 2, 8 and 32 connections, it prints requests/s, p50 and p99 of each
side and the ratios. Then the **soak**: signed webhooks for ``BENCH_SOAK``
seconds at ``BENCH_SOAK_CONNECTIONS``, the resident memory (RSS) of the HTTP
workers sampled every ``BENCH_SOAK_SAMPLE`` seconds meanwhile; it prints the
RSS curve and each worker's growth from the first minute to the last (flat:
at most ``SOAK_MAX_GROWTH``). Last, it checks in SQL that every webhook
answered 200, of the rounds and of the soak, was stored once. Environment:
``BENCH_DURATION`` (seconds per wrk run, 15), ``BENCH_ROUNDS`` (2),
``BENCH_CONNECTIONS`` (``1,2,8,32``), ``BENCH_SOAK`` (600; 0: no soak),
``BENCH_SOAK_CONNECTIONS`` (8), ``BENCH_SOAK_SAMPLE`` (10).
"""

import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import threading
import time

import psutil
from reliability.harness import ScenarioFailed, shopify_delivery, silenced

# What setup/bench starts for this benchmark (see tests/perf/README.md):
# ODOO_QUEUE_JOB_CHANNELS=root:0 keeps queue_job's runner off, so the jobs the
# intake enqueues stay pending and do not take the workers from the intake.
BENCH_SERVER = {"workers": 2, "cron_threads": 0, "channels": "root:0"}

DURATION = int(os.environ.get("BENCH_DURATION", "15"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "1,2,8,32").split(",")]
SOAK = int(os.environ.get("BENCH_SOAK", "600"))
SOAK_CONNECTIONS = int(os.environ.get("BENCH_SOAK_CONNECTIONS", "8"))
SOAK_SAMPLE = float(os.environ.get("BENCH_SOAK_SAMPLE", "10"))
# The soak's memory is flat when no HTTP worker's RSS grew more than this
# share from the first minute of the soak to its last.
SOAK_MAX_GROWTH = 0.05
WARMUP = 3
# Distinct orders whose signed bodies wrk cycles through (the webhook id varies
# per request and is not signed: Shopify signs the body only).
BODIES = 200
BARE_PATH = "/web/webclient/version_info"
BARE_BODY = '{"jsonrpc":"2.0","method":"call","params":{}}'
# P1 targets (QUALITY.md).
MIN_THROUGHPUT_RATIO = 0.70
MAX_P99_RATIO = 2.0

# wrk's Lua: a request per call, a count per HTTP status, one JSON line at the end.
LUA = r"""
local threads = {}
-- Global, so that done() can read each thread's counts with thread:get().
statuses = {}
local counter = 0
local serial = 0

function setup(thread)
  serial = serial + 1
  thread:set("thread_id", serial)
  table.insert(threads, thread)
end

function init(args)
  if DATA then
    items = dofile(DATA)
  end
end

function request()
  counter = counter + 1
  if not DATA then
    return wrk.format("POST", PATH, {["Content-Type"] = "application/json"}, BODY)
  end
  local item = items[(counter + thread_id * 37) % #items + 1]
  local id = string.format("%s-%d-%d", TAG, thread_id, counter)
  return wrk.format("POST", PATH, {
    ["Content-Type"] = "application/json",
    ["X-Shopify-Topic"] = "orders/create",
    ["X-Shopify-Hmac-Sha256"] = item.sig,
    ["X-Shopify-Shop-Domain"] = DOMAIN,
    ["X-Shopify-Webhook-Id"] = id,
    ["X-Shopify-Event-Id"] = id,
    ["X-Shopify-Triggered-At"] = TRIGGERED,
    ["X-Shopify-API-Version"] = API,
  }, item.body)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(counts) do
    table.insert(parts, string.format('"%s": %d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
    .. '"statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, table.concat(parts, ", ")))
end
"""


def prerequisites():
    """What this benchmark needs besides Odoo: wrk."""
    if not shutil.which("wrk"):
        raise ScenarioFailed("wrk is not installed: apt-get install -y wrk")


def _lua_string(text):
    """``text`` as a Lua long string literal whose brackets it does not contain."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[\n{text}]{'=' * level}]"


def _write_webhook_data(stack, path, rng):
    skus = stack.bound_skus()
    customers = stack.customers()
    with silenced(stack.shop) as shop:
        orders = [
            shop.create_order(
                [(sku, rng.randint(1, 2)) for sku in rng.sample(skus, k=rng.randint(1, 3))],
                customer=rng.choice(customers),
            )
            for _ in range(BODIES)
        ]
    items = []
    for order in orders:
        delivery = shopify_delivery(stack.shop, "orders/create", order)
        body = delivery.body.decode()
        items.append(
            f'{{body = {_lua_string(body)}, sig = "{delivery.headers["X-Shopify-Hmac-Sha256"]}"}}'
        )
    path.write_text("return {\n" + ",\n".join(items) + "\n}\n")
    sizes = sorted(len(json.dumps(o)) for o in orders)
    return sizes[len(sizes) // 2]


def _script(folder, name, variables):
    path = folder / f"{name}.lua"
    header = "".join(f"{key} = {_lua_value(value)}\n" for key, value in variables.items())
    path.write_text(header + LUA)
    return path


def _lua_value(value):
    if value is None:
        return "nil"
    return json.dumps(value)  # a JSON string is a valid Lua string here (no \u escapes)


def _wrk(url, script, connections, duration):
    threads = min(connections, 2)
    proc = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"^BENCH (\{.*\})$", proc.stdout, re.MULTILINE)
    if proc.returncode or not found:
        raise ScenarioFailed(f"wrk failed (exit {proc.returncode}): {proc.stderr or proc.stdout}")
    figures = json.loads(found.group(1))
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    figures["ok"] = figures["statuses"].get("200", 0)
    return figures


class Sides:
    """The two sides of the comparison and their wrk scripts."""

    def __init__(self, stack, folder, rng):
        self.stack = stack
        self.folder = folder
        self.data = folder / "webhooks.lua"
        self.median_body = _write_webhook_data(stack, self.data, rng)
        self.runs = 0

    def script(self, side, tag):
        if side == "bare":
            return _script(self.folder, "bare", {"PATH": BARE_PATH, "BODY": BARE_BODY})
        shop = self.stack.shop
        return _script(
            self.folder,
            tag,
            {
                "DATA": str(self.data),
                "PATH": "/connector/shopify/webhook",
                "TAG": tag,
                "DOMAIN": shop.shop_domain,
                "API": shop.api_version,
                "TRIGGERED": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            },
        )

    def measure(self, side, connections, duration):
        self.runs += 1
        tag = f"bench-{self.runs}-{side}-c{connections}"
        figures = _wrk(
            self.stack.server.url + (BARE_PATH if side == "bare" else ""),
            self.script(side, tag),
            connections,
            duration,
        )
        figures["tag"] = tag
        return figures


def _stored(stack, tag):
    """(events, distinct webhook ids, duplicates) stored for one wrk run."""
    return stack.sql(
        "SELECT count(*), count(DISTINCT idempotency_key), "
        "count(*) FILTER (WHERE duplicate_of_id IS NOT NULL) "
        "FROM connector_event WHERE backend_id = %s AND idempotency_key LIKE %s",
        (stack.backend_id, f"{tag}-%"),
    )[0]


def _mean(values):
    return sum(values) / len(values) if values else 0.0


def _ms(microseconds):
    return f"{microseconds / 1000:.1f}"


def _socket_errors(figures):
    """wrk's requests without an HTTP answer (connect, read, write, timeout), if any."""
    errors = {kind: count for kind, count in figures["errors"].items() if count}
    return f"  no answer: {errors}" if errors else ""


class MemorySampler(threading.Thread):
    """The resident memory of the server's HTTP workers, every SOAK_SAMPLE
    seconds until stopped: ``samples`` of (seconds since the start, {pid: RSS})."""

    def __init__(self, server):
        super().__init__(name="soak-rss", daemon=True)
        self.server = server
        self.samples = []
        self.stopped = threading.Event()

    def run(self):
        started = time.monotonic()
        while True:
            rss = {}
            for pid in self.server.workers()["http"]:
                with contextlib.suppress(psutil.Error):  # a worker recycled meanwhile
                    rss[pid] = psutil.Process(pid).memory_info().rss
            self.samples.append((time.monotonic() - started, rss))
            if self.stopped.wait(SOAK_SAMPLE):
                return


def _soak(sides):
    """Webhooks for SOAK seconds, the workers' RSS sampled meanwhile; (wrk's
    figures, the samples)."""
    sampler = MemorySampler(sides.stack.server)
    sampler.start()
    try:
        figures = sides.measure("webhook", SOAK_CONNECTIONS, SOAK)
    finally:
        sampler.stopped.set()
        sampler.join()
    return figures, sampler.samples


def _soak_report(figures, samples):
    """Print the soak's RSS curve and growth; (the largest growth of a
    worker in MB, as a share, memory flat or not)."""
    pids = sorted({pid for _t, rss in samples for pid in rss})
    print(
        f"\n soak: {figures['requests']} webhooks in {figures['duration_us'] / 1e6:.0f} s at "
        f"c={SOAK_CONNECTIONS} = {figures['rps']:.1f} req/s, p50 {_ms(figures['p50_us'])} ms, "
        f"p99 {_ms(figures['p99_us'])} ms, statuses {figures['statuses']}" + _socket_errors(figures)
    )
    print("   t s | " + " ".join(f"{pid:>9}" for pid in pids) + " | total MB (HTTP workers' RSS)")
    for moment, rss in samples:
        cells = " ".join(f"{rss[pid] / 2**20:9.1f}" if pid in rss else f"{'-':>9}" for pid in pids)
        print(f" {moment:5.0f} | {cells} | {sum(rss.values()) / 2**20:8.1f}")
    end = samples[-1][0]
    window = min(60.0, end / 3)
    first = [rss for moment, rss in samples if moment <= window]
    last = [rss for moment, rss in samples if moment >= end - window]
    growths = {}  # pid: (MB, share), of the workers alive in both windows
    for pid in pids:
        before = _mean([rss[pid] for rss in first if pid in rss])
        after = _mean([rss[pid] for rss in last if pid in rss])
        if before and after:
            growths[pid] = ((after - before) / 2**20, (after - before) / before)
    recycled = [pid for pid in pids if pid not in growths]
    worst_mb, worst_share = max(growths.values(), key=lambda growth: growth[1], default=(0, 0))
    flat = bool(growths) and worst_share <= SOAK_MAX_GROWTH and not recycled
    print(
        f" RSS growth, mean of the first {window:.0f} s vs the last {window:.0f} s: "
        + ", ".join(f"{pid} {mb:+.1f} MB ({share:+.1%})" for pid, (mb, share) in growths.items())
        + (f"; workers recycled meanwhile: {recycled}" if recycled else "")
        + f" (flat: at most {SOAK_MAX_GROWTH:.0%} each): {'flat' if flat else 'NOT flat'}"
    )
    return worst_mb, worst_share, flat


def _check_stored(stack, webhook_runs):
    """Every webhook answered 200 stored once, per wrk run; the problems found.

    A request cut off when wrk stops may be stored without its answer being
    counted: at most one per connection.
    """
    answered = stored = 0
    problems = []
    for figures, connections in webhook_runs:
        events, distinct, duplicates = _stored(stack, figures["tag"])
        answered += figures["ok"]
        stored += events
        if duplicates or distinct != events:
            problems.append(f"{figures['tag']}: {duplicates} duplicates")
        if not figures["ok"] <= events <= figures["ok"] + connections:
            problems.append(f"{figures['tag']}: {figures['ok']} answered 200, {events} stored")
        if set(figures["statuses"]) - {"200"}:
            problems.append(f"{figures['tag']}: statuses {figures['statuses']}")
    pending_jobs = stack.sql.value("SELECT count(*) FROM queue_job WHERE state = 'pending'")
    print(
        f"stored: {answered} webhooks answered 200, {stored} events stored, "
        f"{pending_jobs} jobs enqueued (pending: the job runner is off)"
        + (f"; PROBLEMS: {'; '.join(problems)}" if problems else "; each stored once")
    )
    return problems


def main(stack):
    """Run the comparison; print the table and the storage check; 0 when stored right."""
    rng = random.Random(stack.seed)
    folder = stack.workdir / "bench_intake"
    folder.mkdir(exist_ok=True)
    sides = Sides(stack, folder, rng)
    print(
        f"== P1 intake: bare JSON route vs signed orders/create webhooks (median body "
        f"{sides.median_body} bytes), {stack.server.workers_count} workers, "
        f"{DURATION} s per run, {ROUNDS} alternated rounds, connections {CONNECTIONS}"
        + (f"; then a {SOAK} s soak at c={SOAK_CONNECTIONS}" if SOAK else ""),
        flush=True,
    )
    for side in ("bare", "webhook"):
        sides.measure(side, 2, WARMUP)
    results = {(side, c): [] for side in ("bare", "webhook") for c in CONNECTIONS}
    for round_number in range(ROUNDS):
        for connections in CONNECTIONS:
            order = ("bare", "webhook") if round_number % 2 == 0 else ("webhook", "bare")
            for side in order:
                figures = sides.measure(side, connections, DURATION)
                results[side, connections].append(figures)
                print(
                    f"   round {round_number + 1} c={connections} {side:8} "
                    f"{figures['rps']:7.1f} req/s  p50 {_ms(figures['p50_us']):>6} ms  "
                    f"p99 {_ms(figures['p99_us']):>6} ms  statuses {figures['statuses']}"
                    + _socket_errors(figures),
                    flush=True,
                )

    print(
        "\n conn | bare req/s   p50 ms   p99 ms | webhook req/s   p50 ms   p99 ms "
        "| throughput ratio | p99 ratio"
    )
    met = True
    ratios = {}
    for connections in CONNECTIONS:
        bare, hook = results["bare", connections], results["webhook", connections]
        bare_rps = sum(f["requests"] for f in bare) / sum(f["duration_us"] / 1e6 for f in bare)
        hook_rps = sum(f["requests"] for f in hook) / sum(f["duration_us"] / 1e6 for f in hook)
        bare_p50, bare_p99 = (_mean([f[k] for f in bare]) for k in ("p50_us", "p99_us"))
        hook_p50, hook_p99 = (_mean([f[k] for f in hook]) for k in ("p50_us", "p99_us"))
        ratio = hook_rps / bare_rps if bare_rps else 0.0
        p99_ratio = hook_p99 / bare_p99 if bare_p99 else float("inf")
        ok = ratio >= MIN_THROUGHPUT_RATIO and p99_ratio <= MAX_P99_RATIO
        met = met and ok
        ratios[connections] = (ratio, p99_ratio, hook_rps)
        print(
            f" {connections:4} | {bare_rps:10.1f} {_ms(bare_p50):>8} {_ms(bare_p99):>8} "
            f"| {hook_rps:13.1f} {_ms(hook_p50):>8} {_ms(hook_p99):>8} "
            f"| {ratio:16.2f} | {p99_ratio:9.2f}  {'met' if ok else 'NOT met'}"
        )
    print(
        f"P1 target (throughput ratio >= {MIN_THROUGHPUT_RATIO:.2f}, p99 ratio <= "
        f"{MAX_P99_RATIO:.1f}): {'met' if met else 'NOT met'} at every concurrency"
        if met
        else f"P1 target (throughput ratio >= {MIN_THROUGHPUT_RATIO:.2f}, p99 ratio <= "
        f"{MAX_P99_RATIO:.1f}): NOT met"
    )

    webhook_runs = [
        (figures, connections)
        for (side, connections), runs in results.items()
        if side == "webhook"
        for figures in runs
    ]
    soak = None
    if SOAK:
        figures, samples = _soak(sides)
        webhook_runs.append((figures, SOAK_CONNECTIONS))
        soak = (figures, *_soak_report(figures, samples))
        met = met and soak[3]

    problems = _check_stored(stack, webhook_runs)
    summary = "; ".join(
        f"c={c}: {rps:.0f} webhooks/s, throughput {t:.2f}, p99 {p:.2f}"
        for c, (t, p, rps) in ratios.items()
    )
    if soak:
        figures, worst_mb, worst_share, flat = soak
        summary += (
            f"; soak {figures['duration_us'] / 1e6:.0f} s at c={SOAK_CONNECTIONS}: "
            f"{figures['rps']:.0f} webhooks/s, worker RSS growth at most {worst_mb:+.1f} MB "
            f"({worst_share:+.1%}, {'flat' if flat else 'NOT flat'})"
        )
    result = {"bench": "intake", "bar": "P1", "summary": summary}
    result.update(ratio=round(min(t for t, _p, _r in ratios.values()), 2))
    result.update(
        ratio_label="webhook / bare route, lowest", target=">= 0.70, p99 <= 2x; soak RSS flat"
    )
    print("RESULT " + json.dumps({**result, "met": met and not problems}))
    return 1 if problems else 0
