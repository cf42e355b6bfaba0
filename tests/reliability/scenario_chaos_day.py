"""R1: a chaos trading day, time-compressed, through the connectors at once.

The day runs in TICKS "hours". Each hour the Shopify store takes its share
of the day's orders (sent to Odoo by the store's own webhooks; a quarter of
them of the 3PL's SKUs, released to the 3PL, which ships them in one or two
parcels with their tracking numbers, Odoo then fulfilling them in Shopify)
and each register of three stores rings up its share of tickets, the online
stores uploading them as they go. Store S03 is offline the first half of the
day and, back online, uploads what it kept in bulk. Late in the day customers get part
of their orders refunded in Shopify. At the close each register sends its Z
report. In the evening customers send back part of what the 3PL shipped
them: the support staff make each return with Odoo's return wizard, which
announces it to the 3PL under its RMA; the 3PL processes each returned unit
as it comes in (restocked, quarantined or disposed of, mixed on one line).
The stores' card payments are captured at the card acquirer (the
finance simulator's) as the tickets are rung up; in the evening the acquirer
closes its batch and Shopify pays out, each payout landing on the bank as a
statement line; Odoo reads Shopify's payouts, the finance connector reads
and matches the settlements and exports the journals to the book of record.

All day long the remotes misbehave as the real ones do: Shopify answers 10 %
of Odoo's calls HTTP 429 (with its ``Retry-After``), 5 % HTTP 503 and holds
5 % past the backend's timeout (half of those applied anyway), and so do
the 3PL's API and the finance simulator's (the accounting API, the
acquirer's report download); Shopify's and the 3PL's webhooks come 3 %
twice and 5 % out of order; the POS loses the
answer to 5 % of its batches (it sends them again, same batch id), sends 3 %
of its tickets twice and 5 % of its batches after the next one. Twice, an
HTTP worker running a queue job is killed with SIGKILL (queue_job's runner
requeues the job; an upload or webhook it was answering is sent again by
its client).

At the end, with the faults off, Odoo is compared with the simulators'
ground truth, domain by domain: each Shopify order one sale order with its
SKUs, quantities and total; each refund one refund binding with its amount;
each ticket (no-sales aside) one Point of Sale order with its total; every
register's Z report agreed and every store day closed; Shopify's available
quantity equal to Odoo's for every bound SKU and mapped location; each
delivery of the 3PL's orders one 3PL order shipped once, done with the
quantities shipped, each parcel recorded once with its tracking number, and
one Shopify fulfillment with its lines and tracking numbers; each return
one RMA at the 3PL and one return receipt done in Odoo with the quantities
the 3PL processed, the quarantined units in the returns-to-inspect location
and the disposed of ones scrapped; each
acquirer batch and Shopify payout one settlement of its net, every line
matched and reconciled with its bank line; every entry posted in an exported
journal in one exported batch, each batch one posted journal of the book of
record and nothing else there. No event, outbound change or queue job
failed or left open. It prints the counts per domain and ``0 lost, 0
duplicated``, or exactly what differs.

CHAOS_SIZE=full runs the full day (a few hundred orders, a few hundred
tickets a store); the default is the short day (a few minutes), the first
scenario of the suite and so of CI.
"""

import collections
import os
import random
import time
from decimal import Decimal

import demo
from simulators import (
    FinanceSimulator,
    PosSimulator,
    WebhookFaults,
)
from simulators.pos.push import PushFaults

from .harness import (
    WORKER_KILL_LOG,
    ScenarioFailed,
    done_quantities,
    shopify_stock_mismatches,
    unsent_changes,
    wait_idle,
    wait_until,
)
from .pos_stack import wire_pos_fleet
from .scenario_tpl_faults import WarehouseClock
from .scenario_tpl_faults import _compare_shopify as compare_fulfillments
from .scenario_tpl_faults import _compare_tpl as compare_tpl_shipments
from .scenario_tpl_faults import _facts as tpl_facts
from .scenario_tpl_faults import _settle as settle_tpl
from .scenario_tpl_faults import wire as wire_tpl

SIZES = {
    # orders: Shopify orders of the day; tickets: per register; refunds: Shopify refunds.
    # returns: deliveries of the 3PL's orders sent back in part.
    "short": {"orders": 48, "tickets": 24, "refunds": 6, "returns": 4, "tick_seconds": 1.0},
    "full": {"orders": 400, "tickets": 150, "refunds": 40, "returns": 24, "tick_seconds": 3.0},
}
SIZE = os.environ.get("CHAOS_SIZE", "short")
TICKS = 12  # the day's hours
STORES = ("S01", "S02", "S03")
OFFLINE = "S03"  # offline the first half of the day
REGISTERS = 2
KILLS = 2
KILL_TICKS = (TICKS // 3, 2 * TICKS // 3)
KILL_TIMEOUT = 60
SETTLE_TIMEOUT = {"short": 420, "full": 1500}
# Shopify's API (every GraphQL call Odoo makes) and the finance simulator's:
# 10 % 429, 5 % 503, 5 % held past the backend's timeout (answered 504 then),
# half of those applied anyway.
SHOPIFY_FAULTS = (
    ("throttle", 0.10, {"retry_after": 1}),
    ("error", 0.05, {"status": 503}),
    ("timeout", 0.025, {"hold": 4.0}),
    ("timeout", 0.025, {"hold": 4.0, "apply": True}),
)
SHOPIFY_ENDPOINT = "graphql:*"
# The same faults on the accounting system's API and the acquirer's report download.
FINANCE_ENDPOINT = "*"
BACKEND_SETTINGS = {"timeout": 3, "circuit_threshold": 3, "circuit_cooldown": 2}
WEBHOOK_FAULTS = WebhookFaults(duplicate=0.03, out_of_order=0.05)
# The 3PL, wired as ``tpl_faults`` wires it (one 3PL backend a database): a
# quarter of the orders are of its SKUs; its API gets the same faults (its own
# limit of 150 a minute raised: the injected 429 stand for it), its webhooks
# too; its warehouse clock runs a simulated hour a second (shipped ~3 s after
# the release, a quarter of the orders of two units or more in two parcels,
# a few short).
TPL_SHARE = 0.25
TPL_ENDPOINT = "/2026-01/*"
TPL_CLOCK_RATE = 1.0
# How the 3PL finds each returned unit: (action, condition, weight).
RETURN_OUTCOMES = (
    ("Restock", "SELLABLE", 6),
    ("Quarantine", "CUSTOMER_DAMAGED", 2),
    ("Dispose", "DEFECTIVE", 1),
)
PUSH_FAULTS = PushFaults(lost_answer=0.05, duplicate=0.03, out_of_order=0.05)
OPEN_EVENTS = ("received", "queued", "processing", "waiting")
# What killing a worker mid-job logs, and nothing more (harness.WORKER_KILL_LOG).
ALLOWED_LOG = WORKER_KILL_LOG


def wire(stack):
    """Before the server starts: the day's fleet of three stores (stock
    leaves the stores at the close), their card terminals on the finance
    simulator's acquirer, the demo's finance wiring (book of record, bank
    journals the payouts land in, paused again when the day ends) and
    ``tpl_faults``'s 3PL wiring."""
    pos = PosSimulator(
        seed=stack.seed,
        fleet_code="chaos-fleet",
        stores=len(STORES),
        registers=REGISTERS,
        batch_size=10,
        bulk_batch_size=50,
    )
    stack.chaos_pos = pos
    stack.chaos_pos_wiring = wire_pos_fleet(stack, pos, stores=STORES, stock_policy="closing")
    finance = FinanceSimulator(seed=stack.seed).start()
    stack.cleanups.append(finance.stop)
    stack.chaos_finance = finance
    try:
        journals = demo.wire_finance(finance, stack.server.base_args())
    except demo.WiringFailed as exc:
        raise ScenarioFailed(str(exc)) from None
    # The payouts land on the bank (a statement line each), as the demo's bank books them.
    bank = demo.BankFeed(stack.server.url, stack.dbname, journals)
    stack.chaos_bank = bank
    stack.chaos_payout_journals = journals
    finance.acquirer.listeners.append(bank.acquirer_batch)
    stack.shop.payout_listeners.append(bank.shopify_payout)
    pos.fleet.listeners.append(CardTerminal(pos, finance.acquirer))
    wire_tpl(stack)


class CardTerminal:
    """The stores' card terminals: each card tender of a ticket captured
    (a sale) or refunded (a return, a void's sale) at the acquirer, as
    ``demo.PosTraffic`` settles them; a listener of the POS fleet."""

    def __init__(self, pos, acquirer):
        self.pos = pos
        self.acquirer = acquirer

    def __call__(self, _register, ticket):
        demo.settle_card_tenders(self.pos.fleet, self.acquirer, ticket)


# --- the day ---------------------------------------------------------------------------


class Day:
    """The trading day being played: what was sent, and the figures."""

    def __init__(self, stack, size):
        self.stack = stack
        self.size = size
        self.rng = random.Random(stack.seed)
        self.pos = stack.chaos_pos
        self.pos_backend = stack.chaos_pos_wiring["backend_id"]
        self.orders = []  # the Shopify orders placed, as their webhook JSON
        self.refunds = []  # (order id, refund JSON)
        self.killed = {}  # {job uuid: pid}
        self.finance = stack.chaos_finance
        self.finance_backend = stack.sql.value(
            "SELECT id FROM connector_backend WHERE backend_type = 'finance' ORDER BY id LIMIT 1"
        )
        self.batches = []  # the acquirer's batches closed
        self.payouts = []  # Shopify's payouts paid
        # The day's payout pays the day's charges: what the scenarios before it
        # left in the store's balance (orders some of them never sent to Odoo,
        # by design) goes into a payout of its own, scheduled and never paid,
        # which Odoo reads and does not settle.
        stack.shop.create_payout(status="SCHEDULED")
        self.db_start = stack.sql.value("SELECT now() at time zone 'utc'")
        self.job_start = stack.sql.value("SELECT COALESCE(max(id), 0) FROM queue_job") or 0
        self.budget = self._free_stock(stack.bound_skus())
        self.tpl = stack.tpl
        self.tpl_budget = self._free_stock(stack.tpl_skus)
        self.tpl_orders = []  # the orders of the 3PL's SKUs
        self.tpl_backend = stack.sql.value(
            "SELECT id FROM connector_backend WHERE backend_type = '3pl' ORDER BY id LIMIT 1"
        )
        self.customers = stack.customers()
        # {RMA: {(SKU, action, condition): units}}: what the 3PL processed.
        self.returns = {}

    def _free_stock(self, skus):
        free = dict(
            self.stack.sql(
                "SELECT pp.default_code, COALESCE(sum(q.quantity - q.reserved_quantity), 0) "
                "FROM product_product pp LEFT JOIN stock_quant q ON q.product_id = pp.id "
                "AND q.location_id IN (SELECT id FROM stock_location WHERE usage = 'internal') "
                "WHERE pp.default_code IN %s GROUP BY pp.default_code",
                (tuple(skus),),
            )
        )
        return {sku: int(free.get(sku) or 0) for sku in skus}

    def place_orders(self, count):
        """``count`` orders of one or two SKUs, within Odoo's free stock: a
        share of them of the 3PL's SKUs (shipped from its warehouse)."""
        for _ in range(count):
            shipped_by_tpl = self.rng.random() < TPL_SHARE
            budget = self.tpl_budget if shipped_by_tpl else self.budget
            candidates = [sku for sku, free in budget.items() if free >= 3]
            if not candidates:
                raise ScenarioFailed(f"no free stock left for order {len(self.orders) + 1}")
            lines = [
                (sku, self.rng.randint(1, 2))
                for sku in self.rng.sample(candidates, k=min(2, len(candidates)))[
                    : self.rng.randint(1, 2)
                ]
            ]
            for sku, quantity in lines:
                budget[sku] -= quantity
            order = self.stack.shop.create_order(lines, customer=self.rng.choice(self.customers))
            self.orders.append(order)
            if shipped_by_tpl:
                self.tpl_orders.append(order)

    def ring(self, count):
        """``count`` tickets on every register; the online stores upload them."""
        for _ in range(count):
            self.pos.ring()
        for store in STORES:
            if store != OFFLINE or self.pos.fleet.store(store).online:
                self.pos.push(store)

    def kill_one(self):
        """Kill the HTTP worker running a queue job of the day; returns its pid or None."""
        server, sql = self.stack.server, self.stack.sql

        def started_job():
            http = set(server.workers()["http"])
            for job_uuid, pid in sql(
                "SELECT uuid, worker_pid FROM queue_job WHERE id > %s AND state = 'started'",
                (self.job_start,),
            ):
                if pid in http and job_uuid not in self.killed:
                    return job_uuid, pid
            return None

        try:
            job_uuid, pid = wait_until(
                started_job, KILL_TIMEOUT, interval=0.05, what="a started queue job"
            )
        except ScenarioFailed:
            return None
        self.killed[job_uuid] = pid
        server.kill_worker_and_wait(pid)
        return pid

    def refund_some(self, count):
        """Refund one line (one unit, restocked) of ``count`` orders not
        shipped by the 3PL, as the store's staff do for customers who change
        their mind before the parcel leaves."""
        tpl_ids = {order["id"] for order in self.tpl_orders}
        candidates = [order for order in self.orders if order["id"] not in tpl_ids]
        for order in self.rng.sample(candidates, k=min(count, len(candidates))):
            line = self.rng.choice(order["line_items"])
            refund = self.stack.shop.refund_order(order["admin_graphql_api_id"], {line["sku"]: 1})
            self.refunds.append((str(order["id"]), refund))

    def return_some(self, count):
        """Customers send back part of ``count`` deliveries the 3PL shipped
        (one line each, one unit or more): the support staff make each return
        with Odoo's return wizard, which announces it to the 3PL. Returns
        ``{RMA: (SKU, units)}``."""
        deliveries = [
            row[0]
            for row in self.stack.sql(
                "SELECT p.id FROM shopify_order_binding b JOIN sale_order so ON so.id = b.odoo_id "
                "JOIN stock_picking p ON p.sale_id = so.id JOIN stock_picking_type t "
                "ON t.id = p.picking_type_id AND t.code = 'outgoing' "
                "WHERE b.backend_id = %s AND b.external_id IN %s AND p.state = 'done' "
                "ORDER BY p.id",
                (self.stack.backend_id, tuple(str(o["id"]) for o in self.tpl_orders) or ("",)),
            )
        ]
        shipped = done_quantities(self.stack, deliveries or [0])
        made = {}
        for picking_id in self.rng.sample(sorted(shipped), k=min(count, len(shipped))):
            sku, units = self.rng.choice(sorted(shipped[picking_id].items()))
            units = self.rng.randint(1, units)
            made[self._make_return(picking_id, sku, units)] = (sku, units)
        return made

    def _make_return(self, picking_id, sku, units):
        """The return of ``units`` of ``sku`` of a delivery, with Odoo's wizard
        as a user clicks it; returns its reference (the RMA)."""
        rpc = self.stack.rpc
        context = {"active_id": picking_id, "active_model": "stock.picking"}
        wizard = rpc("stock.return.picking", "create", {"picking_id": picking_id}, context=context)
        for line_id, code in self.stack.sql(
            "SELECT l.id, pp.default_code FROM stock_return_picking_line l "
            "JOIN product_product pp ON pp.id = l.product_id WHERE l.wizard_id = %s",
            (wizard,),
        ):
            rpc(
                "stock.return.picking.line",
                "write",
                [line_id],
                {"quantity": units if code == sku else 0},
            )
        action = rpc("stock.return.picking", "action_create_returns", [wizard], context=context)
        return self.stack.sql.value(
            "SELECT name FROM stock_picking WHERE id = %s", (action["res_id"],)
        )

    def process_returns(self, expected, timeout):
        """The 3PL processes each return once Odoo shows it announced (its
        parcel comes in later than the announcement): each unit restocked,
        quarantined or disposed of as drawn, several outcomes on one line."""
        left = dict(expected)
        outcomes = [outcome[:2] for outcome in RETURN_OUTCOMES]
        weights = [outcome[2] for outcome in RETURN_OUTCOMES]

        def processed_all():
            counts, example = _failed(self.stack, self)
            if counts:
                raise ScenarioFailed(f"failed: {dict(counts)}, e.g. {example[0]}: {example[1]}")
            announced = {
                row[0]
                for row in self.stack.sql(
                    "SELECT reference FROM tpl_return_binding WHERE backend_id = %s "
                    "AND reference IN %s AND state = 'announced'",
                    (self.tpl_backend, tuple(left) or ("",)),
                )
            }
            for rma in sorted(announced):
                sku, units = left.pop(rma)
                drawn = collections.Counter(
                    (sku, *outcome) for outcome in self.rng.choices(outcomes, weights, k=units)
                )
                self.tpl.complete_return(
                    rma, [(s, n, action, condition) for (s, action, condition), n in drawn.items()]
                )
                self.returns[rma] = drawn
            return not left

        wait_until(processed_all, timeout, interval=1, what="the returns announced to the 3PL")

    def play(self):
        """The day, hour by hour, under the faults."""
        size = self.size
        self.pos.set_offline(OFFLINE)
        for hour in range(TICKS):
            self.place_orders(size["orders"] // TICKS)
            self.ring(max(1, size["tickets"] // TICKS))
            if hour == TICKS // 2:
                self.pos.set_online(OFFLINE)
            if hour in KILL_TICKS:
                self.kill_one()
            if hour == TICKS - 2:
                self.refund_some(size["refunds"])
            time.sleep(size["tick_seconds"])
        for store in STORES:
            self.pos.close(store)
        self.pos.push()

    def close_books(self):
        """The evening's money, once the stores closed: the acquirer closes
        its batch and Shopify pays out (each payout lands on the bank); Odoo
        reads Shopify's payouts, the finance connector reads and matches the
        settlements, then exports the journals (a bank line's entry goes out
        once reconciled)."""
        stack = self.stack
        self.batches.append(self.finance.acquirer.close_batch())
        stack.shop.payout_listeners.append(self.payouts.append)
        try:
            stack.shop.create_payout(status="PAID")
        finally:
            stack.shop.payout_listeners.remove(self.payouts.append)
        for method, backend_id in (
            ("action_shopify_import_payouts", stack.backend_id),
            ("action_finance_read_settlements", self.finance_backend),
            ("action_finance_export_now", self.finance_backend),
        ):
            stack.rpc("connector.backend", method, [backend_id])
            _settle(stack, self, SETTLE_TIMEOUT[SIZE])

    def push_until_sent(self):
        """The stores send again what was not answered (a killed worker's upload)."""
        if any(r.pending or r.outbox or r.closings for r in self.pos.fleet.registers()):
            self.pos.push()


# --- faults on and off -----------------------------------------------------------------


def _faults_on(stack, day):
    """The remotes' faults on; returns the backends' settings to restore."""
    backends = (stack.backend_id, day.finance_backend, day.tpl_backend)
    saved = {
        row[0]: dict(zip(BACKEND_SETTINGS, row[1:], strict=True))
        for row in stack.sql(
            "SELECT id, timeout, circuit_threshold, circuit_cooldown FROM connector_backend "
            "WHERE id IN %s",
            (backends,),
        )
    }
    stack.rpc("connector.backend", "write", list(backends), BACKEND_SETTINGS)
    for kind, rate, options in SHOPIFY_FAULTS:
        stack.shop.faults.add(kind, rate=rate, endpoint=SHOPIFY_ENDPOINT, **options)
        day.finance.faults.add(kind, rate=rate, endpoint=FINANCE_ENDPOINT, **options)
    for kind, rate, options in SHOPIFY_FAULTS:
        day.tpl.faults.add(kind, rate=rate, endpoint=TPL_ENDPOINT, **options)
    stack.shop.webhooks.faults = WEBHOOK_FAULTS
    day.tpl.webhooks.faults = WEBHOOK_FAULTS
    stack.chaos_pos.push_faults = PUSH_FAULTS
    return saved


def _faults_off(stack, day, saved):
    stack.shop.faults.clear()
    day.finance.faults.clear()
    day.tpl.faults.clear()
    stack.shop.webhooks.faults = WebhookFaults()
    day.tpl.webhooks.faults = WebhookFaults()
    stack.chaos_pos.push_faults = PushFaults()
    for backend_id, values in saved.items():
        stack.rpc("connector.backend", "write", [backend_id], values)


# --- settling ------------------------------------------------------------------------------


def _failed(stack, day):
    """Failed events, changes and queue jobs of the day, and an example."""
    backends = (stack.backend_id, day.pos_backend, day.finance_backend, day.tpl_backend)
    rows = stack.sql(
        "SELECT 'event', error_message FROM connector_event WHERE backend_id IN %s "
        "AND state = 'failed' AND create_date >= %s "
        "UNION ALL SELECT 'change', error_message FROM connector_outbound "
        "WHERE backend_id IN %s AND state = 'failed' AND create_date >= %s "
        "UNION ALL SELECT 'job', exc_info FROM queue_job WHERE state = 'failed' AND id > %s",
        (backends, day.db_start, backends, day.db_start, day.job_start),
    )
    counts = collections.Counter(kind for kind, _why in rows)
    example = next(((kind, (why or "")[-300:]) for kind, why in rows), None)
    return counts, example


def _open_work(stack, day):
    """What is still to do: (what, count) of the first kind left, or None."""
    if stack.shop.webhooks.pending():
        return "Shopify webhooks to deliver", stack.shop.webhooks.pending()
    if day.tpl.webhooks.pending():
        return "3PL webhooks to deliver", day.tpl.webhooks.pending()
    if any(r.pending or r.outbox or r.closings for r in day.pos.fleet.registers()):
        return "POS uploads to send", 1
    events = stack.sql(
        "SELECT topic, state, coalesce(waiting_key, batch_key, sequence_key), "
        "left(coalesce(error_message, ''), 160), to_char(next_retry_at, 'HH24:MI:SS') "
        "FROM connector_event WHERE backend_id IN %s AND state IN %s AND create_date >= %s "
        "ORDER BY id",
        (
            (stack.backend_id, day.pos_backend, day.finance_backend, day.tpl_backend),
            OPEN_EVENTS,
            day.db_start,
        ),
    )
    if events:
        # (topic, state, key, reason, next retry) of the first three: what a
        # day that does not settle is waiting for.
        return "events open", f"{len(events)}, e.g. {[tuple(row) for row in events[:3]]}"
    jobs = stack.sql.value(
        "SELECT count(*) FROM queue_job WHERE id > %s "
        "AND state IN ('pending', 'enqueued', 'started', 'wait_dependencies')",
        (day.job_start,),
    )
    if jobs:
        return "queue jobs open", jobs
    returns = stack.sql.value(
        "SELECT count(*) FROM tpl_return_binding WHERE backend_id = %s AND reference IN %s "
        "AND state != 'received'",
        (day.tpl_backend, tuple(day.returns) or ("",)),
    )
    if returns:
        return "3PL returns not received", returns
    changes = unsent_changes(stack, ("inventory.set",)) + stack.sql.value(
        "SELECT count(*) FROM connector_outbound WHERE backend_id = %s "
        "AND state IN ('pending', 'sending')",
        (day.finance_backend,),
    )
    if changes:
        return "stock changes or journals unsent", changes
    closed = stack.sql.value(
        "SELECT count(*) FROM connector_pos_closing WHERE backend_id = %s AND state = 'closed'",
        (day.pos_backend,),
    )
    if closed < len(STORES) * REGISTERS:
        return "Z reports not closed", len(STORES) * REGISTERS - closed
    return None


def _settle(stack, day, timeout):
    """Wait until everything the day sent is applied; the POS sends again
    what a killed worker did not answer."""
    left = [None]

    def settled():
        counts, example = _failed(stack, day)
        if counts:
            raise ScenarioFailed(f"failed: {dict(counts)}, e.g. {example[0]}: {example[1]}")
        day.push_until_sent()
        left[0] = _open_work(stack, day)
        return left[0] is None

    try:
        wait_until(settled, timeout, interval=2, what="the day settled")
    except ScenarioFailed as exc:
        raise ScenarioFailed(f"{exc}; left: {left[0]}") from None


# --- the ground truth ------------------------------------------------------------------------


class Comparison:
    """Per domain: how many compared, lost (in the remote, not in Odoo),
    duplicated (twice in Odoo) and what differs."""

    def __init__(self):
        self.counts = collections.Counter()
        self.lost = collections.Counter()
        self.duplicated = collections.Counter()
        self.differs = collections.defaultdict(list)

    def check(self, domain, expected, made, what):
        """``expected``: {key: value} of the remote; ``made``: {key: [value...]} in Odoo."""
        self.counts[domain] += len(expected)
        for key, value in expected.items():
            found = made.get(key) or []
            if not found:
                self.lost[domain] += 1
                self.differs[f"{domain} lost"].append(str(key))
            elif len(found) > 1:
                self.duplicated[domain] += 1
                self.differs[f"{domain} duplicated"].append(f"{key} x{len(found)}")
            elif found[0] != value:
                self.differs[f"{domain} {what} differ"].append(
                    f"{key}: Odoo {found[0]}, remote {value}"
                )
        extra = set(made) - set(expected)
        if extra:
            self.differs[f"{domain} in Odoo of nothing remote"].extend(map(str, sorted(extra)))

    def summary(self):
        counts = ", ".join(f"{domain} {count}" for domain, count in self.counts.items())
        return (
            f"{counts}; {sum(self.lost.values())} lost, {sum(self.duplicated.values())} duplicated"
        )

    def problems(self):
        return "; ".join(
            f"{what}: {len(items)} ({', '.join(items[:3])})" for what, items in self.differs.items()
        )


def _compare_orders(stack, day, cmp):
    """Each Shopify order: one sale order, its SKUs and quantities, its total,
    as they are now (a refund takes its units and amount off both)."""
    expected = {}
    for order in day.orders:
        payload = stack.shop.order(order["admin_graphql_api_id"])
        lines = collections.Counter()
        for line in payload["line_items"]:
            lines[line["sku"]] += line["current_quantity"]
        expected[str(order["id"])] = (
            tuple(sorted(lines.items())),
            Decimal(payload["current_total_price"]).quantize(Decimal("0.01")),
        )
    order_ids = tuple(expected) or ("",)
    made = collections.defaultdict(list)
    for external_id, so_id, total in stack.sql(
        "SELECT b.external_id, so.id, so.amount_total FROM shopify_order_binding b "
        "JOIN sale_order so ON so.id = b.odoo_id WHERE b.backend_id = %s AND b.external_id IN %s",
        (stack.backend_id, order_ids),
    ):
        lines = collections.Counter()
        for sku, quantity in stack.sql(
            "SELECT pp.default_code, sum(l.product_uom_qty) FROM sale_order_line l "
            "JOIN product_product pp ON pp.id = l.product_id "
            "JOIN product_template pt ON pt.id = pp.product_tmpl_id WHERE l.order_id = %s "
            "AND pp.default_code IS NOT NULL AND pt.is_storable "
            "GROUP BY 1",
            (so_id,),
        ):
            lines[sku] += int(quantity)
        made[external_id].append(
            (tuple(sorted(lines.items())), Decimal(str(total)).quantize(Decimal("0.01")))
        )
    cmp.check("orders", expected, made, "lines or totals")
    cmp.counts["order lines"] += sum(len(v[0]) for v in expected.values())


def _compare_refunds(stack, day, cmp):
    """Each Shopify refund: one refund binding with the amount given back."""
    expected = {}
    for _order_id, refund in day.refunds:
        amount = sum(Decimal(t["amount"]) for t in refund.get("transactions") or ())
        expected[str(refund["id"])] = amount.quantize(Decimal("0.01"))
    made = collections.defaultdict(list)
    for external_id, amount in stack.sql(
        "SELECT external_id, amount FROM shopify_refund_binding WHERE backend_id = %s "
        "AND external_id IN %s",
        (stack.backend_id, tuple(expected) or ("",)),
    ):
        made[external_id].append(Decimal(str(amount)).quantize(Decimal("0.01")))
    cmp.check("refunds", expected, made, "amounts")


def _ticket_total(pos, ticket):
    """What the ticket's order amounts to, sign aside: a void carries no
    total of its own and takes back the whole sale it cancels."""
    if ticket["type"] == "void":
        ticket = pos.fleet.ticket(ticket["original_uuid"])
    return abs(Decimal(ticket["total"])).quantize(Decimal("0.01"))


def _compare_tickets(stack, day, cmp):
    """Each ticket but the no-sales: one Point of Sale order with its total."""
    expected = {
        t["uuid"]: _ticket_total(day.pos, t) for t in day.pos.tickets() if t["type"] != "no_sale"
    }
    made = collections.defaultdict(list)
    for uuid, total in stack.sql(
        "SELECT o.uuid, o.amount_total FROM pos_order o JOIN connector_pos_store s "
        "ON s.id = o.connector_pos_store_id WHERE s.backend_id = %s",
        (day.pos_backend,),
    ):
        made[uuid].append(abs(Decimal(str(total))).quantize(Decimal("0.01")))
    cmp.check("tickets", expected, made, "totals")
    closings = dict(
        stack.sql(
            "SELECT state, count(*) FROM connector_pos_closing WHERE backend_id = %s GROUP BY 1",
            (day.pos_backend,),
        )
    )
    cmp.counts["Z reports"] += sum(closings.values())
    if closings != {"closed": len(STORES) * REGISTERS}:
        cmp.differs["Z reports not all closed"].append(str(closings))
    open_days = stack.sql.value(
        "SELECT count(*) FROM pos_session p JOIN connector_pos_store s "
        "ON s.config_id = p.config_id WHERE s.backend_id = %s AND p.state != 'closed'",
        (day.pos_backend,),
    )
    if open_days:
        cmp.differs["store days left open"].append(str(open_days))


def _compare_stock(stack, cmp):
    """Shopify's available against Odoo's, per bound SKU and mapped location."""
    compared, mismatches = shopify_stock_mismatches(stack)
    cmp.counts["stock levels"] += compared
    for sku, location, remote, odoo in mismatches:
        cmp.differs["stock levels differ"].append(
            f"{sku}@{location}: Shopify {remote}, Odoo {odoo}"
        )


def _compare_shipments(stack, day, cmp):
    """The orders shipped by the 3PL, as ``tpl_faults`` compares them: each
    delivery one 3PL order shipped once, its done quantities the shipped
    ones, each parcel recorded once with its tracking number, all on the
    delivery; in Shopify one fulfillment per delivery with its lines and
    tracking numbers, nothing left to fulfil."""
    if not day.tpl_orders:
        return
    m = collections.Counter()
    order_ids = tuple(str(order["id"]) for order in day.tpl_orders)
    facts = tpl_facts(stack, m, order_ids, day.tpl_backend, day.db_start)
    missing = [order_id for order_id in order_ids if order_id not in facts["pickings"]]
    cmp.counts["3PL orders"] += len(order_ids)
    cmp.lost["3PL orders"] += len(missing)
    if missing:
        cmp.differs["3PL orders without a delivery"].extend(missing)
    for what, items in {
        **compare_tpl_shipments(m, facts),
        **compare_fulfillments(stack, m, facts, day.tpl_orders),
    }.items():
        cmp.differs[f"3PL {what}"].extend(items)
    cmp.counts["3PL deliveries"] += m["deliveries"]
    cmp.counts["parcels"] += m["parcels"]
    cmp.counts["fulfillments"] += m["fulfillments"]


def _compare_returns(stack, day, cmp):
    """Each return the 3PL processed: one RMA at the 3PL, one return receipt
    in Odoo received once, done with the quantities the 3PL processed, the
    quarantined units in the returns to inspect and the disposed of ones
    scrapped from stock with the return as their origin."""
    if not day.returns:
        return
    rmas = tuple(day.returns)
    at_tpl = collections.Counter(r["reference_id"] for r in day.tpl.returns())
    inspect = stack.sql.value(
        "SELECT tpl_inspect_location_id FROM connector_backend WHERE id = %s", (day.tpl_backend,)
    )
    expected = {}
    for rma, drawn in day.returns.items():
        units, quarantined, disposed = collections.Counter(), 0, 0
        for (sku, action, _condition), count in drawn.items():
            units[sku] += count
            quarantined += count if action == "Quarantine" else 0
            disposed += count if action == "Dispose" else 0
        expected[rma] = (tuple(sorted(units.items())), quarantined, disposed)
        if at_tpl[rma] > 1:
            cmp.duplicated["3PL returns"] += 1
            cmp.differs["3PL returns announced more than once"].append(f"{rma} x{at_tpl[rma]}")
    made = collections.defaultdict(list)
    for rma, picking_id, state in stack.sql(
        "SELECT b.reference, p.id, b.state FROM tpl_return_binding b "
        "JOIN stock_picking p ON p.id = b.odoo_id WHERE b.backend_id = %s AND b.reference IN %s",
        (day.tpl_backend, rmas),
    ):
        units = collections.Counter()
        quarantined = 0
        for sku, destination, quantity in stack.sql(
            "SELECT pp.default_code, m.location_dest_id, sum(m.quantity) FROM stock_move m "
            "JOIN product_product pp ON pp.id = m.product_id "
            "WHERE m.picking_id = %s AND m.state = 'done' GROUP BY 1, 2",
            (picking_id,),
        ):
            units[sku] += int(quantity)
            quarantined += int(quantity) if destination == inspect else 0
        disposed = stack.sql.value(
            "SELECT COALESCE(sum(scrap_qty), 0) FROM stock_scrap WHERE origin = %s "
            "AND state = 'done'",
            (rma,),
        )
        made[rma].append(
            (tuple(sorted(units.items())), quarantined, int(disposed))
            if state == "received"
            else f"{state}, not received"
        )
    cmp.check("3PL returns", expected, made, "units received, quarantined or scrapped")
    cmp.counts["returned units"] += sum(sum(d.values()) for d in day.returns.values())


def _payout_key(value):
    """A Shopify payout's number, from its id or GID."""
    return str(value).rsplit("/", 1)[-1]


def _compare_settlements(stack, day, cmp):
    """Each acquirer batch and Shopify payout: one settlement of its net,
    every line matched, reconciled with the payout's bank line."""
    cent = Decimal("0.01")
    expected = {
        ("acquirer", str(b["number"])): Decimal(b["payout"] or 0).quantize(cent)
        for b in day.batches
    }
    expected.update(
        {
            ("shopify", _payout_key(p["legacy_id"])): Decimal(p["net"]).quantize(cent)
            for p in day.payouts
        }
    )
    made = collections.defaultdict(list)
    rows = stack.sql(
        "SELECT s.source, s.batch_number, p.shopify_payout_id, s.net_amount, s.state, "
        "s.state_message, s.name FROM finance_settlement s "
        "LEFT JOIN shopify_payout p ON s.payout_model = 'shopify.payout' "
        "AND p.id = s.payout_res_id WHERE s.backend_id = %s AND s.create_date >= %s",
        (day.finance_backend, day.db_start),
    )
    for source, batch, payout, net, state, why, name in rows:
        key = (source, str(batch) if source == "acquirer" else _payout_key(payout))
        made[key].append(Decimal(str(net or 0)).quantize(cent))
        if state != "reconciled":
            cmp.differs["settlements not reconciled"].append(f"{name} {state}: {why}")
    cmp.check("settlements", expected, made, "payouts")
    unmatched = stack.sql(
        "SELECT s.name, l.kind, l.reference, l.reason FROM finance_settlement_line l "
        "JOIN finance_settlement s ON s.id = l.settlement_id WHERE s.backend_id = %s "
        "AND s.create_date >= %s AND l.state != 'matched'",
        (day.finance_backend, day.db_start),
    )
    for name, kind, reference, reason in unmatched:
        cmp.differs["settlement lines not matched"].append(f"{name}: {kind} {reference} {reason}")
    bank = stack.sql(
        "SELECT payment_ref, amount, is_reconciled FROM account_bank_statement_line "
        "WHERE journal_id IN %s AND create_date >= %s",
        (tuple(set(stack.chaos_payout_journals.values())), day.db_start),
    )
    cmp.counts["bank lines"] += len(bank)
    for ref, amount, reconciled in bank:
        if not reconciled:
            cmp.differs["bank lines not reconciled"].append(f"{ref} {amount}")
    if len(bank) != sum(1 for b in day.batches if b["payout"]) + len(day.payouts):
        cmp.differs["bank lines"].append(f"{len(bank)} for the payouts landed")
    mismatches = stack.sql(
        "SELECT business_key, remote_value FROM connector_reconciliation_mismatch "
        "WHERE backend_id = %s AND state = 'open'",
        (day.finance_backend,),
    )
    for key, remote in mismatches:
        cmp.differs["open mismatches"].append(f"{key}: {remote}")


def _compare_exports(stack, day, cmp):
    """Every entry posted in an exported journal went out in one batch; each
    batch exported is one posted journal of the book of record, and nothing
    else is there."""
    backend = stack.rpc(
        "connector.backend",
        "read",
        [day.finance_backend],
        ["finance_journal_ids", "finance_export_from"],
    )[0]
    posted = dict(
        stack.sql(
            "SELECT id, name FROM account_move WHERE journal_id IN %s AND state = 'posted' "
            "AND date >= %s",
            (tuple(backend["finance_journal_ids"]), backend["finance_export_from"] or "1970-01-01"),
        )
    )
    links = collections.defaultdict(list)
    for move_id, state in stack.sql(
        "SELECT l.move_id, e.state FROM finance_export_move l JOIN finance_export e "
        "ON e.id = l.export_id WHERE l.backend_id = %s",
        (day.finance_backend,),
    ):
        links[move_id].append(state)
    expected = dict.fromkeys(posted, "exported")
    made = {move_id: states for move_id, states in links.items() if move_id in posted}
    cmp.check("journal entries", expected, made, "export states")
    exported = dict(
        stack.sql(
            "SELECT remote_id, name FROM finance_export WHERE backend_id = %s "
            "AND state = 'exported'",
            (day.finance_backend,),
        )
    )
    remote = {j["ManualJournalID"] for j in day.finance.journals(status="POSTED")}
    cmp.counts["journals exported"] += len(remote)
    if set(exported) != remote:
        lost = sorted(set(exported) - remote)
        extra = sorted(remote - set(exported))
        if lost:
            cmp.lost["journals"] += len(lost)
            cmp.differs["journals not in the book of record"].extend(lost)
        if extra:
            cmp.duplicated["journals"] += len(extra)
            cmp.differs["journals in the book of record of no batch"].extend(extra)
    held = stack.sql(
        "SELECT name, state, reason FROM finance_export WHERE backend_id = %s "
        "AND state NOT IN ('exported')",
        (day.finance_backend,),
    )
    for name, state, reason in held:
        cmp.differs["batches not exported"].append(f"{name} {state}: {reason}")


def _fault_figures(stack, day, shop_since):
    faults = collections.Counter()
    for entry in stack.shop.requests.entries(shop_since):
        for fault in entry.get("faults") or ():
            faults[f"Shopify {'429' if fault == 'throttle' else fault}"] += 1
    for entry in day.finance.requests.entries():
        for fault in entry.get("faults") or ():
            faults[f"finance {'429' if fault == 'throttle' else fault}"] += 1
        if entry.get("rate_limited"):
            faults["finance 429 (its limit)"] += 1
    for entry in day.tpl.requests.entries():
        for fault in entry.get("faults") or ():
            faults[f"3PL {'429' if fault == 'throttle' else fault}"] += 1
    log = stack.shop.webhooks.log() + day.tpl.webhooks.log()
    faults["webhooks twice"] = sum(1 for e in log if e.get("duplicate"))
    faults["webhooks out of order"] = len(
        {e["number"] for e in log if "out_of_order" in e["faults"]}
    )
    uploads = day.pos.pusher.uploads
    faults["POS answers lost"] = sum(any(a.get("lost") for a in u["attempts"]) for u in uploads)
    faults["POS uploads failed and sent again"] = sum(
        1 for u in uploads if u["status"] != 200 and u["kind"] == "batches"
    )
    return ", ".join(f"{kind} x{count}" for kind, count in faults.items() if count)


def run(stack):
    if SIZE not in SIZES:
        raise ScenarioFailed(f"CHAOS_SIZE={SIZE!r}: one of {', '.join(SIZES)}")
    wait_idle(stack)
    day = Day(stack, SIZES[SIZE])
    try:
        return _play_and_compare(stack, day)
    finally:
        # The day's books close with it: the scenarios after it would have
        # each of their entries exported, one call each under the accounting
        # API's 60 a minute, holding the job slots they measure.
        stack.rpc("connector.backend", "action_pause", [day.finance_backend])


def _play_and_compare(stack, day):
    shop_since = (stack.shop.requests.entries() or [{"seq": 0}])[-1]["seq"]
    started = time.monotonic()
    saved = _faults_on(stack, day)
    clock = WarehouseClock(day.tpl, TPL_CLOCK_RATE)
    clock.start()
    try:
        day.play()
        played = time.monotonic() - started
        _settle(stack, day, SETTLE_TIMEOUT[SIZE])
        settle_tpl(
            stack,
            day.tpl_backend,
            tuple(str(o["id"]) for o in day.tpl_orders) or ("",),
            day.db_start,
            SETTLE_TIMEOUT[SIZE],
        )
        day.process_returns(day.return_some(day.size["returns"]), SETTLE_TIMEOUT[SIZE])
        _settle(stack, day, SETTLE_TIMEOUT[SIZE])
        day.close_books()
    finally:
        clock.stop()
        _faults_off(stack, day, saved)
    # The last stock changes, sent without faults, and nothing else running.
    wait_idle(stack)
    settled = time.monotonic() - started
    cmp = Comparison()
    _compare_orders(stack, day, cmp)
    _compare_refunds(stack, day, cmp)
    _compare_tickets(stack, day, cmp)
    _compare_stock(stack, cmp)
    _compare_shipments(stack, day, cmp)
    _compare_returns(stack, day, cmp)
    _compare_settlements(stack, day, cmp)
    _compare_exports(stack, day, cmp)
    counts, example = _failed(stack, day)
    if counts:
        cmp.differs[f"failed {dict(counts)}"].append(f"{example[0]}: {example[1]}")
    if len(day.killed) < KILLS:
        cmp.differs["workers killed"].append(f"{len(day.killed)} of {KILLS}")
    not_done = stack.sql.value(
        "SELECT count(*) FROM queue_job WHERE uuid IN %s AND state != 'done'",
        (tuple(day.killed) or ("",),),
    )
    if not_done:
        cmp.differs["killed jobs not done again"].append(str(not_done))
    figures = (
        f"{SIZE} day: {cmp.summary()}; {len(day.killed)} workers killed (jobs redone); "
        f"faults: {_fault_figures(stack, day, shop_since)}; played in {played:.0f} s, "
        f"settled in {settled:.0f} s"
    )
    if cmp.differs:
        raise ScenarioFailed(f"{cmp.problems()} -- {figures}")
    return figures
