"""Deliveries validated in Odoo while Shopify's fulfillment API misbehaves.

ORDERS Shopify orders arrive by signed webhook and are imported (confirmed,
stock reserved). Then the simulator answers the sender's lookup query
(``graphql:order``) and ``fulfillmentCreate`` with 20 % HTTP 429 and 10 %
HTTP 503, and ``fulfillmentCreate`` also with timeouts that applied (the
backend's timeout lowered to 3 s, the answer held 5 s) and connections
dropped after applying: answers lost while Shopify made the fulfillment.
The backend's circuit breaker is set to open at the first failure, for 2 s:
each fault postpones the send by about 2 s without spending an attempt
(with the default breaker, each 503 or lost answer waits 10 s and more,
doubling: minutes for this run). Every delivery is validated through RPC as
a user would; every fourth order is delivered in two parts (a backorder,
validated next), every third delivery has a tracking number.

Expected: every fulfillment change sent, none failed, no queue job failed;
in the simulator exactly one fulfillment per delivery, the one recorded on
that delivery's change, shipping the delivery's SKUs and quantities, and
nothing left to fulfil on the orders.
"""

import collections
import contextlib
import random
import secrets
import time

from .harness import (
    ScenarioFailed,
    done_quantities,
    post,
    shopify_delivery,
    silenced,
    wait_until,
)

ORDERS = 24  # 30 deliveries with the backorders
PARTIAL_EVERY = 4
TRACKING_EVERY = 3
LOOKUP = "graphql:order"
CREATE = "graphql:fulfillmentCreate"
# Lowered for the run: a timeout fault holds its answer longer than this.
BACKEND_SETTINGS = {"timeout": 3, "circuit_threshold": 1, "circuit_cooldown": 2}
TIMEOUT_HOLD = 5
LOST_ANSWERS = 3  # of each kind: timeouts that applied, connections dropped after applying
# Importing 24 orders takes about 5 s with 2 workers; sending their 30
# deliveries under faults about 80 s (each fault postpones the send ~2 s).
IMPORT_TIMEOUT = 90
SEND_TIMEOUT = 150
# Margin left on each SKU's free stock, for what else the store sells meanwhile.
STOCK_MARGIN = 4
PENDING_STATES = ("pending", "sending")
# No WARNING or ERROR is expected in the Odoo log: faults of the remote are
# retried and logged at INFO.
ALLOWED_LOG = ()


def _free_stock(stack, skus):
    """Free quantity (on hand less reserved) of each SKU in internal locations."""
    return dict(
        stack.sql(
            "SELECT pp.default_code, COALESCE(sum(q.quantity - q.reserved_quantity), 0) "
            "FROM product_product pp LEFT JOIN stock_quant q ON q.product_id = pp.id "
            "AND q.location_id IN (SELECT id FROM stock_location WHERE usage = 'internal') "
            "WHERE pp.default_code IN %s GROUP BY pp.default_code",
            (tuple(skus),),
        )
    )


def _place_orders(stack, rng):
    """ORDERS orders in the simulated store, within Odoo's free stock; every
    PARTIAL_EVERY-th one has 2 or 3 units on its first line (to split)."""
    skus = stack.bound_skus()
    free = _free_stock(stack, skus)
    budget = {sku: int(free.get(sku) or 0) - STOCK_MARGIN for sku in skus}
    customers = stack.customers()
    orders = []
    with silenced(stack.shop) as shop:
        for number in range(ORDERS):
            partial = number % PARTIAL_EVERY == 0
            candidates = [sku for sku in skus if budget[sku] >= 3]
            count = min(rng.randint(1, 3), len(candidates))
            if not count:
                raise ScenarioFailed(f"no free stock left for order {number + 1} of {ORDERS}")
            lines = [
                (sku, rng.randint(2 if partial and index == 0 else 1, 3))
                for index, sku in enumerate(rng.sample(candidates, k=count))
            ]
            for sku, quantity in lines:
                budget[sku] -= quantity
            orders.append(shop.create_order(lines, customer=rng.choice(customers)))
    return orders


def _import(stack, orders):
    """Send each order's orders/create webhook; wait until each is confirmed
    with its delivery reserved. Returns {Shopify order id: picking id}."""
    deliveries = [shopify_delivery(stack.shop, "orders/create", order) for order in orders]
    statuses = collections.Counter(
        post(stack.webhook_url, d.body, d.headers)[0] for d in deliveries
    )
    if set(statuses) != {200}:
        raise ScenarioFailed(f"webhooks answered {dict(statuses)}")
    webhook_ids = tuple(d.webhook_id for d in deliveries)
    order_ids = tuple(str(order["id"]) for order in orders)

    def ready():
        failed = stack.sql(
            "SELECT idempotency_key, error_message FROM connector_event "
            "WHERE backend_id = %s AND idempotency_key IN %s AND state = 'failed'",
            (stack.backend_id, webhook_ids),
        )
        if failed:
            raise ScenarioFailed(f"{len(failed)} order imports failed, e.g. {failed[0][1]}")
        rows = stack.sql(
            "SELECT b.external_id, so.state, p.id, p.state FROM shopify_order_binding b "
            "JOIN sale_order so ON so.id = b.odoo_id "
            "JOIN stock_picking p ON p.sale_id = so.id "
            "JOIN stock_picking_type t ON t.id = p.picking_type_id AND t.code = 'outgoing' "
            "WHERE b.backend_id = %s AND b.external_id IN %s",
            (stack.backend_id, order_ids),
        )
        pickings = collections.defaultdict(list)
        for external_id, order_state, picking_id, picking_state in rows:
            if order_state == "sale" and picking_state == "assigned":
                pickings[external_id].append(picking_id)
        if all(len(pickings[order_id]) == 1 for order_id in order_ids):
            return {order_id: pickings[order_id][0] for order_id in order_ids}
        return None

    return wait_until(ready, IMPORT_TIMEOUT, interval=1, what="orders imported and reserved")


def _validate(stack, picking_id, tracking=None, partial=False):
    """Validate a delivery as a user does: its tracking number, one unit less
    on its first line when ``partial``, Validate, then Create Backorder and
    no SMS when Odoo asks. Returns the backorder's id (or None)."""
    if tracking:
        stack.rpc("stock.picking", "write", [picking_id], {"carrier_tracking_ref": tracking})
    if partial:
        move_id, demand = stack.sql(
            "SELECT id, product_uom_qty FROM stock_move WHERE picking_id = %s "
            "AND product_uom_qty >= 2 ORDER BY id LIMIT 1",
            (picking_id,),
        )[0]
        stack.rpc("stock.move", "write", [move_id], {"quantity": float(demand) - 1})
    result = stack.rpc("stock.picking", "button_validate", [picking_id])
    for _question in range(3):
        model = result.get("res_model") if isinstance(result, dict) else None
        if not model:
            break
        context = result.get("context") or {}
        if model == "stock.backorder.confirmation":
            wizard = stack.rpc(model, "create", {}, context=context)
            result = stack.rpc(model, "process", [wizard], context=context)
        elif model == "confirm.stock.sms":
            # Asked once per company: no SMS (nothing to send them with here).
            result = stack.rpc(model, "dont_send_sms", [result["res_id"]], context=context)
        else:
            raise ScenarioFailed(f"validating picking {picking_id} asked for {model}")
    state = stack.sql.value("SELECT state FROM stock_picking WHERE id = %s", (picking_id,))
    if state != "done":
        raise ScenarioFailed(f"picking {picking_id} is {state} after Validate")
    return stack.sql.value(
        "SELECT id FROM stock_picking WHERE backorder_id = %s AND state != 'cancel'",
        (picking_id,),
    )


def _add_faults(shop):
    # A rule that fires takes the request: the rules after it do not see it.
    # Lost answers first, so that a few of them happen whatever the draw.
    shop.faults.add(
        "timeout", rate=0.1, endpoint=CREATE, hold=TIMEOUT_HOLD, apply=True, limit=LOST_ANSWERS
    )
    shop.faults.add("drop", rate=0.1, endpoint=CREATE, apply=True, limit=LOST_ANSWERS)
    for endpoint in (LOOKUP, CREATE):
        shop.faults.add("throttle", rate=0.2, endpoint=endpoint, retry_after=1)
        shop.faults.add("error", rate=0.1, endpoint=endpoint, status=503)


def _last_request(shop):
    entries = shop.requests.entries()
    return entries[-1]["seq"] if entries else 0


def _fault_figures(shop, since):
    """Requests the sender made and the faults they met, from the simulator's log."""
    made = collections.Counter()
    faults = collections.Counter()
    applied = 0
    for entry in shop.requests.entries(since):
        names = entry.get("names") or []
        endpoint = "lookup" if LOOKUP in names else "create" if CREATE in names else None
        if endpoint is None:
            continue
        made[endpoint] += 1
        for kind in entry.get("faults") or ():
            faults[kind] += 1
            if kind in ("timeout", "drop") and entry.get("processed"):
                applied += 1
    return made, faults, applied


def _deliver(stack, orders, pickings, tag):
    """Validate every order's delivery, and the backorder of a partial one.

    Returns ({picking id: Shopify order id}, partial deliveries, tracked ones)."""
    deliveries = {}
    partials = tracked = 0
    for number, order in enumerate(orders):
        todo = [(pickings[str(order["id"])], number % PARTIAL_EVERY == 0)]
        while todo:
            picking_id, partial = todo.pop()
            tracking = None
            if len(deliveries) % TRACKING_EVERY == 1:
                tracking = f"TRK-{tag}-{len(deliveries)}"
                tracked += 1
            backorder = _validate(stack, picking_id, tracking, partial)
            deliveries[picking_id] = str(order["id"])
            if partial:
                partials += 1
                if not backorder:
                    raise ScenarioFailed(f"no backorder for the partial picking {picking_id}")
                todo.append((backorder, False))
    return deliveries, partials, tracked


def _wait_sent(stack, keys):
    """Wait until no fulfillment change of ``keys`` is pending or being sent.

    Returns (why it timed out or None, how often the circuit was seen open
    and closed while waiting)."""
    circuit = collections.Counter()

    def settled():
        circuit[
            stack.sql.value(
                "SELECT state FROM connector_backend WHERE id = %s", (stack.backend_id,)
            )
        ] += 1
        states = dict(
            stack.sql(
                "SELECT state, count(*) FROM connector_outbound WHERE backend_id = %s "
                "AND topic = 'fulfillment.create' AND coalescing_key IN %s GROUP BY state",
                (stack.backend_id, keys),
            )
        )
        return sum(states.values()) >= len(keys) and not any(
            states.get(state) for state in PENDING_STATES
        )

    try:
        wait_until(settled, SEND_TIMEOUT, interval=1, what="fulfillments sent")
    except ScenarioFailed as exc:
        return str(exc), circuit
    return None, circuit


def _leave_closed(stack, timeout=30):
    """Give the next scenario a closed circuit: the first call that succeeds
    after the faults are gone closes it (bounded wait, not a check)."""
    with contextlib.suppress(ScenarioFailed):
        wait_until(
            lambda: (
                stack.sql.value(
                    "SELECT state FROM connector_backend WHERE id = %s", (stack.backend_id,)
                )
                != "circuit_open"
            ),
            timeout,
            what="circuit closed",
        )


def _outbound(stack, keys):
    """{picking id: [(state, sends started, retries, remote result, error)]}."""
    outbound = collections.defaultdict(list)
    for key, *row in stack.sql(
        "SELECT coalescing_key, state, attempt, retry_count, remote_result, error_message "
        "FROM connector_outbound WHERE backend_id = %s AND topic = 'fulfillment.create' "
        "AND coalescing_key IN %s",
        (stack.backend_id, keys),
    ):
        outbound[int(key.split(":")[1])].append(row)
    return outbound


def _store(shop, orders):
    """The ground truth: {order id: {fulfillment GID: {SKU: quantity}}} of the
    fulfillments that ship, and the units left to fulfil on these orders."""
    store, left = {}, 0
    for order in orders:
        gid = order["admin_graphql_api_id"]
        store[str(order["id"])] = {
            f["admin_graphql_api_id"]: collections.Counter(
                {line["sku"]: line["quantity"] for line in f["line_items"]}
            )
            for f in shop.fulfillments(gid)
            if f["status"] not in ("cancelled", "error", "failure")
        }
        payload = shop.order(gid)
        left += sum(line["quantity"] for line in payload["line_items"]) - sum(
            line["quantity"] for f in payload["fulfillments"] for line in f["line_items"]
        )
    return store, left


def _compare(deliveries, shipped, outbound, store):
    """Each delivery against the store: its change sent once with a fulfillment
    of its order shipping its SKUs and quantities, never shared, and per order
    as many fulfillments as deliveries."""
    found = collections.Counter()
    recorded = collections.Counter()
    problems = []
    for picking_id, order_id in deliveries.items():
        rows = outbound.get(picking_id) or []
        result = rows[0][3] if len(rows) == 1 and rows[0][0] == "sent" else None
        recorded[result] += 1
        lines = store[order_id].get(result)
        if lines is not None and lines == shipped[picking_id]:
            found["matched"] += 1
        elif len(problems) < 3:
            problems.append(
                f"picking {picking_id} shipped {dict(shipped[picking_id])}, its change "
                f"{rows} names {dict(lines) if lines is not None else 'no fulfillment of it'}"
            )
    found["shared"] = sum(1 for result, count in recorded.items() if result and count > 1)
    per_order = collections.Counter(deliveries.values())
    for order_id, fulfillments in store.items():
        found["fulfillments"] += len(fulfillments)
        found["one each"] += len(fulfillments) == per_order[order_id]
        found["surplus"] += max(0, len(fulfillments) - per_order[order_id])
    return found, problems


def _figures(m):
    return (
        f"{m['orders']} orders imported in {m['imported_in']:.0f} s; {m['deliveries']} "
        f"deliveries validated in {m['validated_in']:.0f} s ({m['partials']} partial + their "
        f"backorders, {m['tracked']} with tracking); sender requests: lookup "
        f"x{m['made']['lookup']}, create x{m['made']['create']}; faults injected: "
        + ", ".join(f"{kind} x{count}" for kind, count in sorted(m["faults"].items()))
        + f" ({m['applied']} answers lost after applying); {m['failures_seen']} transient "
        f"failures seen by Odoo, circuit open at {m['circuit']['circuit_open']} of "
        f"{m['circuit'].total()} checks; changes {dict(sorted(m['states'].items()))} after "
        f"{m['sent_in']:.0f} s, {m['sends']} sends started, {m['adopted']} fulfillments found "
        f"again after a lost answer; store: {m['found']['fulfillments']} fulfillments for "
        f"{m['deliveries']} deliveries, {m['found']['one each']}/{m['orders']} orders with one "
        f"per delivery, {m['found']['matched']}/{m['deliveries']} deliveries' SKUs and "
        f"quantities matched, {m['left']} units left to fulfil; {m['failed_jobs']} jobs failed"
    )


def _failures(m):
    found, states, deliveries = m["found"], m["states"], m["deliveries"]
    why = [m["timed_out"]] if m["timed_out"] else []
    if states.get("failed"):
        why.append(f"{states['failed']} changes failed ({'; '.join(m['reasons'])[:300]})")
    if states.get("sent", 0) != deliveries:
        why.append(f"{deliveries - states.get('sent', 0)} deliveries not sent once")
    if found["surplus"]:
        why.append(f"{found['surplus']} fulfillments more than deliveries in the store")
    if found["one each"] != m["orders"]:
        why.append(f"{m['orders'] - found['one each']} orders without one fulfillment per delivery")
    if found["shared"]:
        why.append(f"{found['shared']} fulfillments recorded for two deliveries")
    if found["matched"] != deliveries:
        why.append(f"{deliveries - found['matched']} deliveries not matched")
        why.extend(m["problems"])
    if m["left"]:
        why.append(f"{m['left']} units left to fulfil in the store")
    if m["failed_jobs"]:
        why.append(f"{m['failed_jobs']} queue jobs failed")
    if not m["applied"]:
        why.append("no answer was lost after applying: the claim was not exercised")
    return why


def run(stack):
    rng = random.Random(stack.seed)
    tag = secrets.token_hex(3)
    shop = stack.shop
    saved = dict(
        zip(
            BACKEND_SETTINGS,
            stack.sql(
                "SELECT timeout, circuit_threshold, circuit_cooldown FROM connector_backend "
                "WHERE id = %s",
                (stack.backend_id,),
            )[0],
            strict=True,
        )
    )
    log_mark = stack.server.log.mark()
    db_start = stack.sql.value("SELECT now() at time zone 'utc'")
    m = {}
    started = time.monotonic()
    # The store sends nothing itself: Odoo's fulfillments would come back as
    # fulfillments/create webhooks, a topic the backend does not declare.
    with silenced(shop):
        orders = _place_orders(stack, rng)
        pickings = _import(stack, orders)
        m["imported_in"] = time.monotonic() - started
        stack.rpc("connector.backend", "write", [stack.backend_id], BACKEND_SETTINGS)
        since = _last_request(shop)
        _add_faults(shop)
        started = time.monotonic()
        try:
            deliveries, m["partials"], m["tracked"] = _deliver(stack, orders, pickings, tag)
            m["validated_in"] = time.monotonic() - started
            keys = tuple(f"picking:{picking_id}" for picking_id in deliveries)
            m["timed_out"], m["circuit"] = _wait_sent(stack, keys)
            m["sent_in"] = time.monotonic() - started
        finally:
            shop.faults.clear()
            stack.rpc("connector.backend", "write", [stack.backend_id], saved)
            _leave_closed(stack)
        m["made"], m["faults"], m["applied"] = _fault_figures(shop, since)
        store, m["left"] = _store(shop, orders)
    outbound = _outbound(stack, keys)
    m["found"], m["problems"] = _compare(
        deliveries, done_quantities(stack, deliveries), outbound, store
    )
    m["states"] = collections.Counter(
        rows[0][0] if len(rows) == 1 else f"{len(rows)} changes" for rows in outbound.values()
    )
    if len(outbound) != len(deliveries):
        m["states"]["no change"] = len(deliveries) - len(outbound)
    m["reasons"] = sorted(
        {row[4] or "" for rows in outbound.values() for row in rows if row[0] == "failed"}
    )
    m["sends"] = sum(row[1] for rows in outbound.values() for row in rows)
    records = stack.server.log.records
    m["adopted"] = len(records(log_mark, r"Shopify already has its fulfillment .* not sent again"))
    m["failures_seen"] = len(records(log_mark, r"remote call failed: POST .*/graphql\.json"))
    m["failed_jobs"] = stack.sql.value(
        "SELECT count(*) FROM queue_job WHERE state = 'failed' AND date_created >= %s",
        (db_start,),
    )
    m["orders"], m["deliveries"] = len(orders), len(deliveries)
    figures = _figures(m)
    why = _failures(m)
    if why:
        raise ScenarioFailed(f"{'; '.join(why)} -- {figures}")
    return figures
