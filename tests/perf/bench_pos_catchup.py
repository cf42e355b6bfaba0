"""P4: an offline store's catch-up beside Odoo's own POS order sync, on a real server.

``setup/bench pos_catchup`` starts the server this file declares
(BENCH_SERVER: 3 HTTP workers, a cron worker, queue_job's runner with 2
slots) on a throwaway database wired to the Shopify simulator and, by
:func:`wire`, to a POS fleet of the POS simulator (stores S01, S02; S03 plays
Odoo's own POS), then calls :func:`main`. In one run, on the same server:

- **raw**, before and after the catch-up (half each): the same kind of
  sales (fresh UUIDs, same products, tenders and taxes) created by
  ``pos.order.sync_from_ui``, the method Odoo's POS frontend syncs its
  orders through, called as the frontend calls it (JSON-RPC to
  ``/web/dataset/call_kw``, a logged-in session), by two clients (one per
  register) in chunks of ``RAW_CHUNK`` orders, into a session opened as a
  cashier opens it. Over HTTP, in the server's workers, as the connector's
  jobs run: the same process kind, the same concurrency (two registers).
- **connector**: store S01 goes offline, rings up 10,000 sales on its two
  registers and, back online, uploads them as 20 signed batches of 500
  (the contract's bulk batches); timed from the first upload to the last
  ticket's event done (its ``processed_at``).

It prints both rates and their ratio (P4 target: 0.85), the intake time per
batch, the peak RSS growth of the HTTP workers (which answer uploads and run
jobs) per phase, and the upload-to-applied latency of a sale of store S02
uploaded while S01 drains, against the flow's SLA. Environment:
``BENCH_TICKETS`` (10000), ``BENCH_RAW_TICKETS`` (2000), ``BENCH_REGISTERS``
(2), ``BENCH_STOCK_POLICY`` (``closing``; or ``real_time``),
``BENCH_DB_PREFIX`` (the database's name, see setup/bench).
"""

import json
import os
import statistics
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal

import psutil
from reliability.harness import Rpc, ScenarioFailed, wait_idle, wait_until
from reliability.pos_stack import wire_pos_fleet
from simulators import PosSimulator
from simulators.pos.fleet import money, tax_included

# Jobs run in the HTTP workers the runner calls: 2 slots for jobs (an
# offline store's two registers side by side), a third worker for uploads.
BENCH_SERVER = {"workers": 3, "cron_threads": 1, "channels": "root:2"}

TICKETS = int(os.environ.get("BENCH_TICKETS", "10000"))
RAW_TICKETS = int(os.environ.get("BENCH_RAW_TICKETS", "2000"))
# Stock out at the session's close (one delivery per store day) or a delivery
# per order (``real_time``), the fleet's and the reference tills' alike.
STOCK_POLICY = os.environ.get("BENCH_STOCK_POLICY", "closing")
BULK_BATCH = 500  # what an offline store uploads per batch when back online
RAW_CHUNK = 100  # orders per sync_from_ui call: as many as a connector job applies
OFFLINE, LIVE, REFERENCE = "S01", "S02", "S03"
# Registers of the offline store, and tills of the reference (one client each).
REGISTERS = tuple(f"R{n}" for n in range(1, int(os.environ.get("BENCH_REGISTERS", "2")) + 1))
FLOW = "tickets_in"
MIN_RATIO = 0.85  # QUALITY P4
SAMPLE_SECONDS = 0.5
TIMEOUT = 3600


def wire(stack):
    """The POS fleet (before the server starts): stores S01 and S02 on a
    backend, the reference Point of Sale with its session open."""
    pos = PosSimulator(
        seed=stack.seed,
        fleet_code="bench-fleet",
        stores=3,
        registers=len(REGISTERS),
        bulk_batch_size=BULK_BATCH,
    )
    stack.pos = pos
    stack.pos_wiring = wire_pos_fleet(
        stack,
        pos,
        stores=(OFFLINE, LIVE),
        reference_tills=len(REGISTERS),
        stock_policy=STOCK_POLICY,
    )


# --- memory -----------------------------------------------------------------------


class MemorySampler(threading.Thread):
    """RSS of the server's HTTP workers every SAMPLE_SECONDS; peaks per phase."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.processes = [psutil.Process(pid) for pid in pids]
        self.phase = None
        self.base = {}
        self.peaks = {}  # phase: {pid: peak rss}
        self.stopped = threading.Event()

    def rss(self):
        found = {}
        for process in self.processes:
            try:
                found[process.pid] = process.memory_info().rss
            except psutil.Error:
                continue
        return found

    def start_phase(self, name):
        self.base[name] = self.rss()
        self.peaks[name] = dict(self.base[name])
        self.phase = name

    def run(self):
        while not self.stopped.wait(SAMPLE_SECONDS):
            phase = self.phase
            if phase is None:
                continue
            peaks = self.peaks[phase]
            for pid, rss in self.rss().items():
                peaks[pid] = max(peaks.get(pid, 0), rss)

    def growth(self, name):
        """(peak growth of one worker, peak growth of the workers' sum), in MB."""
        base, peaks = self.base[name], self.peaks[name]
        per_worker = max((peaks[pid] - base.get(pid, peaks[pid]) for pid in peaks), default=0)
        return per_worker / 2**20, (sum(peaks.values()) - sum(base.values())) / 2**20


# --- the reference: Odoo's own POS sync ----------------------------------------------


def utc_text(moment):
    return (
        datetime.fromisoformat(moment)
        .astimezone(timezone.utc)
        .replace(tzinfo=None)
        .strftime("%Y-%m-%d %H:%M:%S")
    )


def frontend_order(ticket, wiring, till, rates):
    """The order as Odoo's POS frontend of ``till`` sends it to
    ``sync_from_ui``: lines with their amounts computed by the POS,
    payments, totals, paid."""
    products, taxes, methods = wiring["products"], wiring["taxes"], till["methods"]
    when = utc_text(ticket["closed_at"])
    lines = []
    for line in ticket["lines"]:
        qty, price = Decimal(line["quantity"]), Decimal(line["unit_price"])
        off = Decimal(line.get("discount") or "0")
        gross = qty * price
        incl = money(gross) - off
        tax = tax_included(incl, rates[line["tax_code"]])
        product_id, name = products[line["sku"]]
        lines.append(
            [
                0,
                0,
                {
                    "uuid": line["line_uuid"],
                    "product_id": product_id,
                    "full_product_name": name,
                    "qty": float(qty),
                    "price_unit": float(price),
                    "discount": float(off / gross * 100) if off and gross else 0.0,
                    "tax_ids": [[6, 0, [taxes[line["tax_code"]]]]],
                    "price_subtotal": float(incl - tax),
                    "price_subtotal_incl": float(incl),
                },
            ]
        )
    payments = [
        [
            0,
            0,
            {
                "amount": float(Decimal(tender["amount"])),
                "payment_method_id": methods[tender["type"]],
                "payment_date": when,
                "transaction_id": tender.get("reference") or False,
            },
        ]
        for tender in ticket["tenders"]
    ]
    total = float(Decimal(ticket["total"]))
    return {
        "uuid": ticket["uuid"],
        "session_id": till["session_id"],
        "pricelist_id": till["pricelist_id"],
        "date_order": when,
        "lines": lines,
        "payment_ids": payments,
        "amount_total": total,
        "amount_tax": float(Decimal(ticket["total_tax"])),
        "amount_paid": total,
        "amount_return": 0,
        "partner_id": False,
        "fiscal_position_id": False,
        "to_invoice": False,
        "state": "paid",
    }


def sync_from_ui(stack, orders_by_register):
    """One client per register sends its orders in chunks; returns the seconds
    from the first call to the last answer."""
    clients = [Rpc(stack.server.url, stack.dbname, timeout=600) for _ in orders_by_register]
    errors = []

    def send(rpc, orders):
        start = 0
        try:
            for start in range(0, len(orders), RAW_CHUNK):
                rpc("pos.order", "sync_from_ui", orders[start : start + RAW_CHUNK])
        except Exception as exc:
            # The till stops at its first refused chunk; the run fails with it.
            errors.append(f"orders {start}-{start + RAW_CHUNK - 1}: {exc!r}")

    threads = [
        threading.Thread(target=send, args=(rpc, orders))
        for rpc, orders in zip(clients, orders_by_register, strict=True)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if errors:
        raise ScenarioFailed(f"sync_from_ui failed: {errors[0]}")
    return elapsed


# --- the connector ---------------------------------------------------------------------


def event_states(stack, store):
    rows = stack.sql(
        "SELECT state, count(*) FROM connector_event WHERE backend_id = %s "
        "AND payload->>'store' = %s GROUP BY state",
        (stack.pos_wiring["backend_id"], store),
    )
    return dict(rows)


def timed_posts(pusher):
    """Record how long each POST of the upload client takes (the intake's answer)."""
    durations = []
    post = pusher.post

    def timed(*args, **kwargs):
        started = time.monotonic()
        try:
            return post(*args, **kwargs)
        finally:
            durations.append(time.monotonic() - started)

    pusher.post = timed
    return durations


def count_clashes(stack):
    """Events that clashed with a concurrent transaction (retried), as logged."""
    with open(stack.server.log_path, errors="replace") as log:
        return sum("clashed with a concurrent transaction" in line for line in log)


def ring_up(pos, wiring):
    """S01's day kept offline; S03's sales (never uploaded) as Odoo's POS
    frontend sends them, per till, cut in halves (before, after)."""
    pos.set_offline(OFFLINE)
    pos.set_offline(REFERENCE)
    for index in range(TICKETS):
        pos.sale(OFFLINE, REGISTERS[index % len(REGISTERS)])
    for index in range(RAW_TICKETS):
        pos.sale(REFERENCE, REGISTERS[index % len(REGISTERS)])
    rates = pos.fleet.tax_rates
    # A register of the reference store is a till of Odoo's POS, its own
    # Point of Sale (as Odoo advises: one per device).
    reference = [
        [
            frontend_order(t, wiring, till, rates)
            for t in pos.tickets(store=REFERENCE, register=register)
        ]
        for register, till in zip(REGISTERS, wiring["raw"], strict=True)
    ]
    return (
        [orders[: len(orders) // 2] for orders in reference],
        [orders[len(orders) // 2 :] for orders in reference],
    )


def raw_half(stack, sampler, phase, orders):
    sampler.start_phase(phase)
    seconds = sync_from_ui(stack, orders)
    print(f"   {phase}: {sum(map(len, orders))} orders in {seconds:.1f} s", flush=True)
    return seconds


def upload(stack):
    """S01 back online: its batches uploaded; (first upload's time, uploads, POST times)."""
    durations = timed_posts(stack.pos.pusher)
    first_upload = datetime.now(timezone.utc).replace(tzinfo=None)
    started = time.monotonic()
    uploads = stack.pos.set_online(OFFLINE)
    upload_seconds = time.monotonic() - started
    refused = [u for u in uploads if u["status"] != 200]
    if refused:
        raise ScenarioFailed(f"{len(refused)} uploads refused: {refused[0]['answer']}")
    size = sum(u["bytes"] for u in uploads)
    print(
        f"   uploaded {len(uploads)} batches ({size / 2**20:.1f} MB) in {upload_seconds:.1f} s",
        flush=True,
    )
    return first_upload, uploads, list(durations)


def live_sale(stack):
    """Mid-drain: a sale at store S02; its latency from upload to applied."""
    backend_id = stack.pos_wiring["backend_id"]

    def drained_share():
        return event_states(stack, OFFLINE).get("done", 0) / TICKETS

    wait_until(lambda: drained_share() >= 0.3, TIMEOUT, what="30% of S01's tickets applied")
    live = stack.pos.sale(LIVE, "R1")
    share_at_upload = drained_share()
    uploaded = datetime.now(timezone.utc).replace(tzinfo=None)
    started = time.monotonic()
    stack.pos.push(LIVE)

    def applied():
        return stack.sql.value(
            "SELECT processed_at FROM connector_event WHERE backend_id = %s AND "
            "idempotency_key = %s AND state = 'done'",
            (backend_id, live["uuid"]),
        )

    done = wait_until(applied, TIMEOUT, interval=0.2, what="S02's sale applied")
    return {
        "latency": (done - uploaded).total_seconds(),
        "seen": time.monotonic() - started,
        "share_at_upload": share_at_upload,
        "share_when_done": drained_share(),
    }


def drain(stack, first_upload):
    """Wait until every S01 ticket is applied or failed; (states, seconds from
    the first upload to the last applied)."""

    def drained():
        states = event_states(stack, OFFLINE)
        pending = sum(n for state, n in states.items() if state not in ("done", "failed"))
        return states if not pending else None

    states = wait_until(drained, TIMEOUT, interval=0.5, what=f"every ticket of {OFFLINE} applied")
    last_applied = stack.sql.value(
        "SELECT max(processed_at) FROM connector_event WHERE backend_id = %s "
        "AND payload->>'store' = %s",
        (stack.pos_wiring["backend_id"], OFFLINE),
    )
    return states, (last_applied - first_upload).total_seconds()


def made(stack, first_upload):
    """(S01's orders paid, reference orders paid, batch jobs run)."""
    applied = stack.sql.value(
        "SELECT count(*) FROM pos_order o JOIN connector_pos_store s "
        "ON s.id = o.connector_pos_store_id WHERE s.code = %s AND o.state IN ('paid', 'done')",
        (OFFLINE,),
    )
    raw_made = stack.sql.value(
        "SELECT count(*) FROM pos_order WHERE session_id IN %s AND state IN ('paid', 'done')",
        (tuple(till["session_id"] for till in stack.pos_wiring["raw"]),),
    )
    jobs = stack.sql.value(
        "SELECT count(*) FROM queue_job WHERE method_name = '_process_batch' "
        "AND date_created >= %s",
        (first_upload,),
    )
    return applied, raw_made, jobs


def main(stack):
    """Run both sides and the live sale; print the figures; 0 when every ticket was applied."""
    pos, wiring = stack.pos, stack.pos_wiring
    backend_id = wiring["backend_id"]
    sla_minutes = (
        stack.sql.value(
            "SELECT sla_lag_minutes FROM connector_sync_policy WHERE backend_id = %s AND flow = %s",
            (backend_id, FLOW),
        )
        or 15
    )
    wait_idle(stack, timeout=180)
    before, after = ring_up(pos, wiring)
    print(
        f"== P4 POS catch-up: {TICKETS} sales of store {OFFLINE} (offline, {len(REGISTERS)} "
        f"registers) in batches of {BULK_BATCH}, beside {RAW_TICKETS} of Odoo's POS "
        f"(sync_from_ui over JSON-RPC, chunks of {RAW_CHUNK}, {len(REGISTERS)} tills); stock "
        f"{STOCK_POLICY}; {stack.server.workers_count} workers, job channel "
        f"{stack.server.channels}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    sampler = MemorySampler(stack.server.workers()["http"])
    sampler.start()
    raw_seconds = raw_half(stack, sampler, "raw (1st half)", before)
    sampler.start_phase("connector")
    first_upload, uploads, batch_times = upload(stack)
    live = live_sale(stack)
    states, connector_seconds = drain(stack, first_upload)
    clashes = count_clashes(stack)
    raw_seconds += raw_half(stack, sampler, "raw (2nd half)", after)
    sampler.stopped.set()
    sampler.join()
    applied, raw_made, jobs = made(stack, first_upload)
    failed = states.get("failed", 0)

    raw_rate = RAW_TICKETS / raw_seconds
    connector_rate = TICKETS / connector_seconds
    ratio = connector_rate / raw_rate
    one, total = sampler.growth("connector")
    raw_one = max(sampler.growth("raw (1st half)")[0], sampler.growth("raw (2nd half)")[0])
    size = sum(u["bytes"] for u in uploads)
    median_ms = statistics.median(batch_times) * 1000
    print(
        f"\n connector: {TICKETS} tickets, first upload to last applied "
        f"{connector_seconds:.1f} s = {connector_rate:.1f} tickets/s "
        f"({jobs} batch jobs; {applied} orders paid, {failed} events failed; "
        f"{clashes} clashes with a concurrent transaction, retried)"
    )
    print(
        f" raw:       {RAW_TICKETS} orders by sync_from_ui in {raw_seconds:.1f} s"
        f" = {raw_rate:.1f} orders/s ({raw_made} orders paid)"
    )
    print(
        f" ratio connector / raw: {ratio:.2f} (P4 target >= {MIN_RATIO:.2f}: "
        f"{'met' if ratio >= MIN_RATIO else 'NOT met'})"
    )
    print(
        f" intake per batch of {BULK_BATCH}: median {median_ms:.0f} ms, "
        f"max {max(batch_times) * 1000:.0f} ms ({size / len(uploads) / 1024:.0f} KB per batch)"
    )
    print(
        f" HTTP workers' peak RSS growth during the catch-up: {one:.1f} MB in one worker, "
        f"{total:.1f} MB all together (upload {size / 2**20:.1f} MB; "
        f"raw sync: {raw_one:.1f} MB in one worker)"
    )
    print(
        f" store {LIVE}'s sale uploaded with {live['share_at_upload']:.0%} of {OFFLINE} "
        f"applied: applied {live['latency']:.1f} s after its upload (seen in "
        f"{live['seen']:.1f} s; {OFFLINE} {live['share_when_done']:.0%} applied then); "
        f"SLA {sla_minutes} min: {'met' if live['latency'] <= sla_minutes * 60 else 'NOT met'}"
    )
    summary = (
        f"{TICKETS} tickets, {len(REGISTERS)} registers: connector {connector_rate:.1f} tickets/s, "
        f"raw sync_from_ui {raw_rate:.1f} orders/s; peak RSS growth {one:.1f} MB in one worker"
    )
    result = {"bench": "pos_catchup", "bar": "P4", "summary": summary, "ratio": round(ratio, 2)}
    result.update(ratio_label="connector / raw", target=f">= {MIN_RATIO:.2f}")
    print("RESULT " + json.dumps({**result, "met": ratio >= MIN_RATIO}))
    problems = []
    if failed or applied != TICKETS:
        reason = stack.sql.value(
            "SELECT error_message FROM connector_event WHERE backend_id = %s "
            "AND state = 'failed' ORDER BY id LIMIT 1",
            (backend_id,),
        )
        problems.append(f"{applied} of {TICKETS} tickets applied, {failed} failed ({reason})")
    if raw_made != RAW_TICKETS:
        problems.append(f"{raw_made} of {RAW_TICKETS} reference orders made")
    if problems:
        print(" PROBLEMS: " + "; ".join(problems))
        return 1
    return 0
