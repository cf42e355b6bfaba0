"""Shopify orders shipped by the 3PL while its API and its webhooks misbehave.

The 3PL simulator is wired before the server starts (the scenario's
``wire(stack)``, the demo's 3PL wiring): a warehouse "3PL Lyon" the 3PL
runs, the first TPL_SKUS store SKUs delivered from it (STOCK units each, in
Odoo and on the 3PL's shelves), a running 3PL backend, the simulator's
webhooks sent to it. Those SKUs are the scenario's own: the other scenarios'
orders leave them out.

ORDERS Shopify orders of those SKUs arrive by signed ``orders/create``
webhooks and are imported; each delivery, made in the 3PL's warehouse and
reserved, is released to the 3PL. Meanwhile the 3PL's API answers 10 % of
the requests HTTP 429 (with its ``x-retry-after``) and 5 % HTTP 503; its
webhooks are sent out of order (a fifth overtaken by the next one, a tenth
delayed 2 s behind later ones) and a tenth twice; Shopify answers the
fulfillment lookup and ``fulfillmentCreate`` with 10 % 429 and 5 % 503. The
warehouse clock runs CLOCK_RATE simulated hours a second (picked, packed,
shipped three hours after the release, delivered a day later): a quarter of
the orders of two units or more leave in two parcels, SHORT_SHARE of them a
unit short, whose backorder is released in turn. Once everything shipped,
the shipments not acknowledged are read as the schedule reads them (the
webhooks' safety net), under the same faults. Both backends' circuit
breakers open at the first failure for 2 s, as in ``fulfillment_faults``
(restored after).

Expected: at the 3PL, exactly one order per delivery (backorders included),
each shipped once; in Odoo every delivery of these orders done with the
quantities the 3PL shipped, each parcel recorded once with its tracking
number, all on the delivery's tracking reference; in Shopify exactly one
fulfillment per delivery (the one recorded on its change) with its SKUs,
quantities and every parcel's tracking number, nothing left to fulfil; no
event, change or queue job failed, none left open.
"""

import collections
import contextlib
import random
import threading
import time

import demo
from simulators import ThirdPartyLogisticsSimulator, WebhookFaults

from .harness import (
    ScenarioFailed,
    done_quantities,
    post,
    shopify_delivery,
    silenced,
    wait_idle,
    wait_until,
)

ORDERS = 200
STOCK = 400  # units of each 3PL SKU, in Odoo's 3PL warehouse and on the 3PL's shelves
CLOCK_RATE = 1.0  # simulated hours a second: shipped ~3 s after its release
SPLIT_SHARE = 0.25
SHORT_SHARE = 0.08
# The 3PL's own limit (150 a minute) would make this run last minutes; the
# injected 429 stand for it. Its 429 counted apart if it is reached all the same.
RATE_LIMIT = 3000
TPL_FAULTS = (("throttle", 0.10, {"retry_after": 1}), ("error", 0.05, {"status": 503}))
WEBHOOK_FAULTS = {"duplicate": 0.1, "out_of_order": 0.2, "delay": 0.1, "delay_seconds": 2.0}
SHOPIFY_ENDPOINTS = ("graphql:order", "graphql:fulfillmentCreate")
SHOPIFY_FAULTS = (("throttle", 0.10, {"retry_after": 1}), ("error", 0.05, {"status": 503}))
BACKEND_SETTINGS = {"timeout": 10, "circuit_threshold": 1, "circuit_cooldown": 2}
SETTLE_TIMEOUT = 240
POLL_TIMEOUT = 60
OPEN_EVENTS = ("received", "queued", "processing", "waiting")
# Faults of the remotes are retried and logged at INFO: nothing is expected.
ALLOWED_LOG = ()


def wire(stack):
    """The 3PL simulator (a thread of this process) and the demo's 3PL wiring,
    before the server starts; the simulator stops with the stack. Made once
    a run: the chaos day ships through the same 3PL backend."""
    if getattr(stack, "tpl", None) is not None:
        return
    tpl = ThirdPartyLogisticsSimulator(
        seed=stack.seed,
        split_share=SPLIT_SHARE,
        short_share=SHORT_SHARE,
        rate_limit=RATE_LIMIT,
    ).start()
    stack.cleanups.append(tpl.stop)
    stack.tpl = tpl
    try:
        skus = demo.wire_tpl(tpl, stack.shop, stack.server.base_args(), stack.server.url, STOCK)
    except demo.WiringFailed as exc:
        raise ScenarioFailed(str(exc)) from None
    stack.tpl_skus = list(skus)
    stack.reserved_skus.update(skus)


class WarehouseClock(threading.Thread):
    """Real time drives the 3PL's warehouse while the scenario runs."""

    def __init__(self, tpl, rate):
        super().__init__(name="reliability-3pl-clock", daemon=True)
        self.tpl = tpl
        self.rate = rate
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.wait(0.5):
            self.tpl.advance(self.rate / 2)

    def stop(self):
        self.stopping.set()
        self.join()


# --- setting up ------------------------------------------------------------------------


def _backends(stack):
    """{backend id: its settings} of the Shopify backend and the 3PL one."""
    rows = stack.sql(
        "SELECT id, timeout, circuit_threshold, circuit_cooldown FROM connector_backend "
        "WHERE id = %s OR (backend_type = '3pl' AND state IN ('running', 'circuit_open'))",
        (stack.backend_id,),
    )
    return {row[0]: dict(zip(BACKEND_SETTINGS, row[1:], strict=True)) for row in rows}


def _place_orders(stack, rng):
    """ORDERS orders of the 3PL's SKUs in the simulated store, within Odoo's free stock."""
    skus = stack.tpl_skus
    free = dict(
        stack.sql(
            "SELECT pp.default_code, COALESCE(sum(q.quantity - q.reserved_quantity), 0) "
            "FROM product_product pp LEFT JOIN stock_quant q ON q.product_id = pp.id "
            "AND q.location_id IN (SELECT id FROM stock_location WHERE usage = 'internal') "
            "WHERE pp.default_code IN %s GROUP BY pp.default_code",
            (tuple(skus),),
        )
    )
    budget = {sku: int(free.get(sku) or 0) for sku in skus}
    customers = stack.customers()
    orders = []
    for number in range(ORDERS):
        candidates = [sku for sku in skus if budget[sku] >= 3]
        if not candidates:
            raise ScenarioFailed(f"no free stock left for order {number + 1} of {ORDERS}")
        lines = [
            (sku, rng.randint(1, 3))
            for sku in rng.sample(candidates, k=min(rng.randint(1, 2), len(candidates)))
        ]
        for sku, quantity in lines:
            budget[sku] -= quantity
        orders.append(stack.shop.create_order(lines, customer=rng.choice(customers)))
    return orders


def _add_faults(stack):
    for kind, rate, options in TPL_FAULTS:
        stack.tpl.faults.add(kind, rate=rate, endpoint="/2026-01/*", **options)
    for endpoint in SHOPIFY_ENDPOINTS:
        for kind, rate, options in SHOPIFY_FAULTS:
            stack.shop.faults.add(kind, rate=rate, endpoint=endpoint, **options)
    stack.tpl.webhooks.faults = WebhookFaults(**WEBHOOK_FAULTS)


def _clear_faults(stack):
    stack.tpl.faults.clear()
    stack.shop.faults.clear()
    stack.tpl.webhooks.faults = WebhookFaults()


def _last_seq(simulator):
    entries = simulator.requests.entries()
    return entries[-1]["seq"] if entries else 0


# --- what Odoo has ---------------------------------------------------------------------


def _pickings(stack, order_ids):
    """{Shopify order id: [(picking id, name, state)]} of the orders' deliveries."""
    found = collections.defaultdict(list)
    for external_id, picking_id, name, state in stack.sql(
        "SELECT b.external_id, p.id, p.name, p.state FROM shopify_order_binding b "
        "JOIN sale_order so ON so.id = b.odoo_id JOIN stock_picking p ON p.sale_id = so.id "
        "JOIN stock_picking_type t ON t.id = p.picking_type_id AND t.code = 'outgoing' "
        "WHERE b.backend_id = %s AND b.external_id IN %s ORDER BY p.id",
        (stack.backend_id, order_ids),
    ):
        found[external_id].append((picking_id, name, state))
    return found


def _events(stack, tpl_backend, since):
    """{(source, state): count} of the 3PL's messages stored since ``since``:
    webhooks and polled shipments (a duplicate keeps no payload of its own)."""
    return {
        (source, state): count
        for source, state, count in stack.sql(
            "SELECT source, state, count(*) FROM connector_event WHERE backend_id = %s "
            "AND create_date >= %s GROUP BY source, state",
            (tpl_backend, since),
        )
    }


def _outbound(stack, backend_id, topic, picking_ids):
    """{picking id: [(state, sends started, remote result, error)]} of a topic's changes."""
    found = collections.defaultdict(list)
    for key, *row in stack.sql(
        "SELECT coalescing_key, state, attempt, remote_result, error_message "
        "FROM connector_outbound WHERE backend_id = %s AND topic = %s AND coalescing_key IN %s",
        (backend_id, topic, tuple(f"picking:{pid}" for pid in picking_ids)),
    ):
        found[int(key.split(":")[1])].append(tuple(row))
    return found


def _failed(stack, tpl_backend, db_start):
    """Failed events, changes and queue jobs since the scenario started, and an example."""
    rows = stack.sql(
        "SELECT 'event', error_message FROM connector_event WHERE backend_id IN %s "
        "AND state = 'failed' AND create_date >= %s "
        "UNION ALL SELECT 'change', error_message FROM connector_outbound "
        "WHERE backend_id IN %s AND state = 'failed' AND create_date >= %s "
        "UNION ALL SELECT 'job', exc_info FROM queue_job WHERE state = 'failed' "
        "AND date_created >= %s",
        ((stack.backend_id, tpl_backend), db_start) * 2 + (db_start,),
    )
    counts = collections.Counter(kind for kind, _why in rows)
    example = next(((kind, (why or "")[-300:]) for kind, why in rows), None)
    return counts, example


# --- waiting -----------------------------------------------------------------------------


def _settle(stack, tpl_backend, order_ids, db_start, timeout):
    """Wait until every delivery of the orders is done, everything they
    shipped at the 3PL delivered, its webhooks sent and applied and the
    deliveries' fulfillments sent. Returns the seconds it took."""
    started = time.monotonic()
    tpl = stack.tpl

    def settled():
        counts, example = _failed(stack, tpl_backend, db_start)
        if counts:
            raise ScenarioFailed(f"failed: {dict(counts)}, e.g. {example[0]}: {example[1]}")
        pickings = _pickings(stack, order_ids)
        if len(pickings) < len(order_ids):
            return False
        rows = [row for rows in pickings.values() for row in rows]
        if any(state != "done" for _pid, _name, state in rows):
            return False
        references = {name for _pid, name, _state in rows}
        for order in tpl.orders():
            if order["reference_id"] in references and any(
                s["status"] != "Completed" or not s["delivery_date"] for s in order["shipments"]
            ):
                return False
        if tpl.webhooks.pending():
            return False
        events = _events(stack, tpl_backend, db_start)
        if any(state in OPEN_EVENTS for _source, state in events):
            return False
        changes = _outbound(
            stack, stack.backend_id, "fulfillment.create", [pid for pid, _n, _s in rows]
        )
        return len(changes) == len(rows) and all(
            row[0] not in ("pending", "sending") for rows in changes.values() for row in rows
        )

    wait_until(settled, timeout, interval=1, what="orders released, shipped and fulfilled")
    return time.monotonic() - started


def _poll(stack, tpl_backend):
    """Read the shipments not acknowledged, as the schedule does (the
    webhooks' safety net); wait for that job. Returns its result."""
    before = stack.sql.value("SELECT COALESCE(max(id), 0) FROM queue_job") or 0
    stack.rpc("connector.backend", "action_tpl_poll_shipments", [tpl_backend])
    identity = f"tpl.poll-{tpl_backend}"

    def done():
        row = stack.sql(
            "SELECT state, result, exc_info FROM queue_job WHERE identity_key = %s AND id > %s "
            "ORDER BY id DESC LIMIT 1",
            (identity, before),
        )
        if row and row[0][0] == "failed":
            raise ScenarioFailed(f"the poll of shipments failed: {(row[0][2] or '')[-300:]}")
        return row[0][1] if row and row[0][0] == "done" else None

    return wait_until(done, POLL_TIMEOUT, interval=1, what="shipments read")


def _leave_closed(stack, backend_ids, timeout=30):
    """Give the next scenario closed circuits (a bounded wait, not a check)."""
    with contextlib.suppress(ScenarioFailed):
        wait_until(
            lambda: (
                not stack.sql.value(
                    "SELECT count(*) FROM connector_backend WHERE id IN %s "
                    "AND state = 'circuit_open'",
                    (tuple(backend_ids),),
                )
            ),
            timeout,
            what="circuits closed",
        )


# --- the ground truth -----------------------------------------------------------------------


def _parcels(stack, picking_ids):
    """{picking id: [(3PL parcel id, tracking number)]} and the tracking references."""
    parcels = collections.defaultdict(list)
    for picking_id, package_id, number in stack.sql(
        "SELECT picking_id, package_id, tracking_number FROM tpl_parcel WHERE picking_id IN %s",
        (tuple(picking_ids),),
    ):
        parcels[picking_id].append((package_id, number))
    refs = dict(
        stack.sql(
            "SELECT id, carrier_tracking_ref FROM stock_picking WHERE id IN %s",
            (tuple(picking_ids),),
        )
    )
    return parcels, refs


def _numbers(ref):
    return sorted(n.strip() for n in (ref or "").split(",") if n.strip())


def _compare_tpl(m, facts):
    """Each delivery against the 3PL: one order under its reference, shipped
    once, its done quantities the shipped ones, each parcel recorded once
    with its tracking, every tracking number on the delivery."""
    deliveries, tpl_orders, done = facts["deliveries"], facts["tpl_orders"], facts["done"]
    parcels, refs = facts["parcels"], facts["refs"]
    by_reference = collections.defaultdict(list)
    for order in tpl_orders:
        by_reference[order["reference_id"]].append(order)
    problems = collections.defaultdict(list)
    for picking_id, (name, _order_id) in deliveries.items():
        orders = by_reference.get(name) or []
        if len(orders) != 1:
            problems["not one 3PL order"].append(f"{name}: {len(orders)} 3PL orders")
            continue
        shipments = [s for s in orders[0]["shipments"] if s["status"] == "Completed"]
        if len(shipments) != 1 or len(orders[0]["shipments"]) != 1:
            problems["not shipped once"].append(
                f"{name}: shipments {[s['status'] for s in orders[0]['shipments']]}"
            )
            continue
        packages = shipments[0]["packages"]
        m["parcels"] += len(packages)
        m["split"] += len(packages) > 1
        shipped = collections.Counter()
        for package in packages:
            for line in package["products"]:
                shipped[line["sku"]] += line["quantity"]
        ordered = collections.Counter(
            {line["sku"]: line["quantity"] for line in orders[0]["products"]}
        )
        m["short"] += shipped != ordered
        if done[picking_id] != shipped:
            problems["quantities differ"].append(
                f"{name}: done {dict(done[picking_id])}, 3PL shipped {dict(shipped)}"
            )
        expected = sorted((str(p["id"]), p["tracking_number"]) for p in packages)
        if sorted(parcels.get(picking_id) or []) != expected:
            problems["parcels differ"].append(
                f"{name}: recorded {sorted(parcels.get(picking_id) or [])}, 3PL {expected}"
            )
        if _numbers(refs.get(picking_id)) != sorted(p["tracking_number"] for p in packages):
            problems["tracking reference differs"].append(
                f"{name}: {refs.get(picking_id)!r}, parcels "
                f"{[p['tracking_number'] for p in packages]}"
            )
    names = {name for name, _order in deliveries.values()}
    extra = [
        o["reference_id"]
        for o in tpl_orders
        if o["order_number"] in m["sale_names"] and o["reference_id"] not in names
    ]
    if extra:
        problems["3PL orders of no delivery"].extend(extra)
    return problems


def _compare_shopify(stack, m, facts, orders):
    """Each delivery against the store: its change sent once, naming a
    fulfillment of its order with its SKUs, quantities and tracking numbers,
    one fulfillment per delivery, nothing left to fulfil."""
    deliveries, done, refs = facts["deliveries"], facts["done"], facts["refs"]
    changes = facts["changes"]
    problems = collections.defaultdict(list)
    shop = stack.shop
    per_order = collections.Counter(order_id for _name, order_id in deliveries.values())
    store = {}
    for order in orders:
        gid = order["admin_graphql_api_id"]
        store[str(order["id"])] = {
            f["admin_graphql_api_id"]: f
            for f in shop.fulfillments(gid)
            if f["status"] not in ("cancelled", "error", "failure")
        }
        payload = shop.order(gid)
        left = sum(line["quantity"] for line in payload["line_items"]) - sum(
            line["quantity"] for f in payload["fulfillments"] for line in f["line_items"]
        )
        m["left"] += left
        m["fulfillments"] += len(store[str(order["id"])])
        if len(store[str(order["id"])]) != per_order[str(order["id"])]:
            problems["not one fulfillment per delivery"].append(
                f"{payload['name']}: {len(store[str(order['id'])])} fulfillments, "
                f"{per_order[str(order['id'])]} deliveries"
            )
    recorded = collections.Counter()
    for picking_id, (name, order_id) in deliveries.items():
        rows = changes.get(picking_id) or []
        m["fulfillment sends"] += sum(row[1] for row in rows)
        if len(rows) != 1 or rows[0][0] != "sent":
            problems["change not sent once"].append(f"{name}: {rows}")
            continue
        gid = rows[0][2]
        recorded[gid] += 1
        fulfillment = store[order_id].get(gid)
        if fulfillment is None:
            problems["recorded fulfillment not in the store"].append(f"{name}: {gid}")
            continue
        lines = collections.Counter()
        for line in fulfillment["line_items"]:
            lines[line["sku"]] += line["quantity"]
        if lines != done[picking_id]:
            problems["fulfillment lines differ"].append(
                f"{name}: {dict(lines)}, delivered {dict(done[picking_id])}"
            )
        if sorted(fulfillment["tracking_numbers"]) != _numbers(refs.get(picking_id)):
            problems["fulfillment tracking differs"].append(
                f"{name}: {fulfillment['tracking_numbers']}, parcels {refs.get(picking_id)!r}"
            )
    shared = [gid for gid, count in recorded.items() if count > 1]
    if shared:
        problems["fulfillment recorded for two deliveries"].extend(shared)
    if m["left"]:
        problems["units left to fulfil"].append(str(m["left"]))
    return problems


# --- figures ------------------------------------------------------------------------------


def _request_figures(m, stack, tpl_since, shop_since):
    """Calls and faults, from the simulators' request logs; webhooks, from the 3PL's."""
    calls, faults = collections.Counter(), collections.Counter()
    for entry in stack.tpl.requests.entries(tpl_since):
        path = entry["path"].rsplit("/", 1)[-1]
        kind = {
            ("POST", "order"): "releases",
            ("GET", "order"): "reads",
            ("POST", "shipment:batchUpdateTrackingUpload"): "acks",
        }.get((entry["method"], path), "other")
        calls[kind] += 1
        for fault in entry.get("faults") or ():
            faults[f"3PL {'429' if fault == 'throttle' else entry['status']}"] += 1
        if entry.get("rate_limited"):
            faults["3PL 429 (its limit)"] += 1
        m["resent"] += bool(entry.get("resent"))
    for entry in stack.shop.requests.entries(shop_since):
        names = entry.get("names") or []
        if not any(name in names for name in SHOPIFY_ENDPOINTS):
            continue
        calls["Shopify fulfillment calls"] += 1
        for fault in entry.get("faults") or ():
            faults[f"Shopify {'429' if fault == 'throttle' else entry['status']}"] += 1
    m["calls"], m["faults"] = calls, faults
    log = [e for e in stack.tpl.webhooks.log() if e["number"] > m["webhook_since"]]
    m["webhooks"] = len({e["number"] for e in log})
    m["shuffled"] = len({e["number"] for e in log if {"out_of_order", "delay"} & set(e["faults"])})
    m["duplicated"] = len({e["number"] for e in log if e["duplicate"]})
    m["webhook retries"] = sum(1 for e in log if e["attempt"])
    m["gave_up"] = sum(1 for e in log if e.get("gave_up"))


def _figures(m):
    events = ", ".join(
        f"{source} {state} {count}" for (source, state), count in sorted(m["events"].items())
    )
    faults = ", ".join(f"{kind} x{count}" for kind, count in sorted(m["faults"].items()))
    calls = ", ".join(f"{kind} {count}" for kind, count in sorted(m["calls"].items()))
    return (
        f"{m['orders']} orders imported in {m['imported_in']:.0f} s; {m['deliveries']} "
        f"deliveries ({m['backorders']} backorders) released as {m['releases']} 3PL orders "
        f"(changes {dict(sorted(m['release changes'].items()))}, {m['release sends']} sends "
        f"started, {m['resent']} answered with the existing order); calls: {calls}; "
        f"faults: {faults}; {m['webhooks']} 3PL webhooks ({m['shuffled']} out of order, "
        f"{m['duplicated']} duplicated, {m['webhook retries']} retried, {m['gave_up']} given "
        f"up); events stored: {events}; the last poll: {m['poll']}; "
        f"{m['shipments']} shipments, {m['parcels']} parcels ({m['split']} shipments in two), "
        f"{m['short']} short; {m['fulfillments']} Shopify fulfillments for {m['deliveries']} "
        f"deliveries ({m['fulfillment sends']} sends started), {m['left']} units left to "
        f"fulfil; settled in {m['settled_in']:.0f} s"
    )


def _facts(stack, m, order_ids, tpl_backend, db_start):
    """What Odoo and the 3PL have of these orders, for the comparisons."""
    pickings = _pickings(stack, order_ids)
    deliveries = {
        pid: (name, order_id) for order_id, rows in pickings.items() for pid, name, _s in rows
    }
    picking_ids = list(deliveries) or [0]
    m["sale_names"] = {
        row[0]
        for row in stack.sql(
            "SELECT so.name FROM shopify_order_binding b JOIN sale_order so ON so.id = b.odoo_id "
            "WHERE b.backend_id = %s AND b.external_id IN %s",
            (stack.backend_id, order_ids),
        )
    }
    m["deliveries"] = len(deliveries)
    m["backorders"] = stack.sql.value(
        "SELECT count(*) FROM stock_picking WHERE id IN %s AND backorder_id IS NOT NULL",
        (tuple(picking_ids),),
    )
    names = {name for name, _order in deliveries.values()} or {""}
    tpl_orders = [
        o
        for o in stack.tpl.orders()
        if o["reference_id"] in names or o["order_number"] in m["sale_names"]
    ]
    m["releases"] = len(tpl_orders)
    m["shipments"] = sum(
        1 for o in tpl_orders for s in o["shipments"] if s["status"] == "Completed"
    )
    m["events"] = _events(stack, tpl_backend, db_start)
    release_changes = _outbound(stack, tpl_backend, "order.release", picking_ids)
    m["release changes"] = collections.Counter(
        row[0] for rows in release_changes.values() for row in rows
    )
    m["release sends"] = sum(row[1] for rows in release_changes.values() for row in rows)
    parcels, refs = _parcels(stack, picking_ids)
    return {
        "pickings": pickings,
        "deliveries": deliveries,
        "tpl_orders": tpl_orders,
        "done": done_quantities(stack, picking_ids),
        "parcels": parcels,
        "refs": refs,
        "changes": _outbound(stack, stack.backend_id, "fulfillment.create", picking_ids),
    }


def _send_orders(stack, orders, started, m):
    """Each order's signed orders/create webhook; wait until all are imported."""
    order_ids = tuple(str(order["id"]) for order in orders)
    deliveries = [shopify_delivery(stack.shop, "orders/create", o) for o in orders]
    statuses = collections.Counter(
        post(stack.webhook_url, d.body, d.headers)[0] for d in deliveries
    )
    if set(statuses) != {200}:
        raise ScenarioFailed(f"orders/create webhooks answered {dict(statuses)}")
    wait_until(
        lambda: len(_pickings(stack, order_ids)) == len(order_ids),
        SETTLE_TIMEOUT,
        interval=1,
        what="orders imported",
    )
    m["imported_in"] = time.monotonic() - started


def _under_faults(stack, m, orders, tpl_backend, db_start):
    """Import, release, ship and fulfil under the faults, the warehouse clock
    running; then the poll. Returns why it did not settle, or None."""
    order_ids = tuple(str(order["id"]) for order in orders)
    saved = _backends(stack)
    clock = WarehouseClock(stack.tpl, CLOCK_RATE)
    started = time.monotonic()
    for backend_id in saved:
        stack.rpc("connector.backend", "write", [backend_id], BACKEND_SETTINGS)
    _add_faults(stack)
    clock.start()
    try:
        _send_orders(stack, orders, started, m)
        _settle(stack, tpl_backend, order_ids, db_start, SETTLE_TIMEOUT)
        m["poll"] = _poll(stack, tpl_backend)
        _settle(stack, tpl_backend, order_ids, db_start, POLL_TIMEOUT)
    except ScenarioFailed as exc:
        return str(exc)
    finally:
        m["settled_in"] = time.monotonic() - started
        clock.stop()
        _clear_faults(stack)
        for backend_id, values in saved.items():
            stack.rpc("connector.backend", "write", [backend_id], values)
        _leave_closed(stack, saved)
    return None


def run(stack):
    rng = random.Random(stack.seed)
    wait_idle(stack)
    tpl_backend = next(bid for bid in _backends(stack) if bid != stack.backend_id)
    db_start = stack.sql.value("SELECT now() at time zone 'utc'")
    m = collections.Counter(poll="not run")
    tpl_since, shop_since = _last_seq(stack.tpl), _last_seq(stack.shop)
    m["webhook_since"] = max((e["number"] for e in stack.tpl.webhooks.log()), default=0)
    # The store sends nothing itself: the scenario sends the orders' webhooks,
    # and fulfillments/create is not a topic the backend declares.
    with silenced(stack.shop):
        orders = _place_orders(stack, rng)
        m["orders"] = len(orders)
        timed_out = _under_faults(stack, m, orders, tpl_backend, db_start)
    _request_figures(m, stack, tpl_since, shop_since)
    order_ids = tuple(str(order["id"]) for order in orders)
    facts = _facts(stack, m, order_ids, tpl_backend, db_start)
    problems = collections.defaultdict(list)
    if timed_out:
        problems["not settled"].append(timed_out)
    missing = [order_id for order_id in order_ids if order_id not in facts["pickings"]]
    if missing:
        problems["orders without a delivery"].extend(missing)
    problems.update(_compare_tpl(m, facts))
    problems.update(_compare_shopify(stack, m, facts, orders))
    counts, example = _failed(stack, tpl_backend, db_start)
    if counts:
        problems[f"failed {dict(counts)}"].append(f"{example[0]}: {example[1]}")
    figures = _figures(m)
    if problems:
        why = "; ".join(
            f"{what}: {len(items)} ({'; '.join(items[:3])})" for what, items in problems.items()
        )
        raise ScenarioFailed(f"{why} -- {figures}")
    return figures
