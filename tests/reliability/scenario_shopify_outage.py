"""Shopify down for a long while, time-compressed: R4.

ORDERS Shopify orders arrive by signed webhook and are imported (confirmed,
stock reserved) while Shopify is up. The backend's circuit breaker is set
to open after THRESHOLD consecutive failures and to let one probe through
every COOLDOWN seconds: OUTAGE seconds of outage are 25 cool-downs, what 25
minutes are with the default 60 s (an hour only adds more of the same
probes). Then Shopify answers every API call with HTTP 503 for OUTAGE
seconds; meanwhile a user
validates, one after the other, receipts of the ordered products and the
orders' deliveries (stock changes and fulfillments to send). Then Shopify
answers again; nobody touches Odoo.

Expected: while Shopify is down, the circuit opens, no outbound change is
marked failed, no change has spent THRESHOLD attempts (faults met while the
circuit is open do not count), no queue job failed. Once it is back,
everything drains with no manual step: the circuit closes, every change is
sent, the stock changes oldest first, one fulfillment per delivery made in
the order the deliveries were validated, and Shopify's available quantity
equal to Odoo's for every bound SKU and mapped location.
"""

import collections
import random
import time

from .harness import (
    ScenarioFailed,
    post,
    shopify_delivery,
    shopify_stock_mismatches,
    silenced,
    unsent_changes,
    wait_idle,
    wait_until,
)

TOPICS = ("inventory.set", "fulfillment.create")
ORDERS = 3
THRESHOLD = 2
COOLDOWN = 3
OUTAGE = 75
# Seconds into the outage at which a receipt, then a delivery, is validated.
RECEIPT_AT = (0, 20, 40)
DELIVERY_AT = (8, 28, 48)
IMPORT_TIMEOUT = 60
SETTLE_TIMEOUT = 60
# A probe every COOLDOWN seconds finds Shopify back; then a few calls.
RECOVERY_TIMEOUT = 60
ALLOWED_LOG = ()


def _stocked_skus(stack, minimum):
    """Bound SKUs with at least ``minimum`` free at the backend's warehouse stock."""
    return [
        row[0]
        for row in stack.sql(
            "SELECT pp.default_code FROM shopify_product_binding b "
            "JOIN product_product pp ON pp.id = b.odoo_id "
            "JOIN connector_backend be ON be.id = b.backend_id "
            "JOIN stock_warehouse w ON w.id = be.shopify_warehouse_id "
            "JOIN stock_location stock ON stock.id = w.lot_stock_id "
            "JOIN stock_quant q ON q.product_id = pp.id "
            "JOIN stock_location l ON l.id = q.location_id "
            "  AND l.parent_path LIKE stock.parent_path || '%%' "
            "WHERE b.backend_id = %s AND pp.active "
            "GROUP BY pp.default_code HAVING sum(q.quantity - q.reserved_quantity) >= %s "
            "ORDER BY 1",
            (stack.backend_id, minimum),
        )
    ]


def _import_orders(stack, rng):
    """ORDERS orders placed in the store and sent to Odoo by signed webhook;
    returns [(order webhook JSON, its delivery's id)] once each is confirmed
    with its delivery reserved."""
    skus = _stocked_skus(stack, 4)
    if len(skus) < ORDERS * 2:
        raise ScenarioFailed(f"{len(skus)} SKUs with free stock, the scenario needs {ORDERS * 2}")
    chosen = rng.sample(skus, k=ORDERS * 2)
    customers = stack.customers()
    orders = [
        stack.shop.create_order(
            [(chosen[2 * n], 1), (chosen[2 * n + 1], rng.randint(1, 2))],
            customer=rng.choice(customers),
        )
        for n in range(ORDERS)
    ]
    for order in orders:
        delivery = shopify_delivery(stack.shop, "orders/create", order)
        status, body = post(stack.webhook_url, delivery.body, delivery.headers)
        if status != 200:
            raise ScenarioFailed(f"orders/create answered {status}: {body[:200]!r}")
    order_ids = tuple(str(order["id"]) for order in orders)

    def reserved():
        rows = dict(
            stack.sql(
                "SELECT b.external_id, p.id FROM shopify_order_binding b "
                "JOIN sale_order so ON so.id = b.odoo_id AND so.state = 'sale' "
                "JOIN stock_picking p ON p.sale_id = so.id AND p.state = 'assigned' "
                "JOIN stock_picking_type t ON t.id = p.picking_type_id AND t.code = 'outgoing' "
                "WHERE b.backend_id = %s AND b.external_id IN %s",
                (stack.backend_id, order_ids),
            )
        )
        return len(rows) == ORDERS and rows

    pickings = wait_until(reserved, IMPORT_TIMEOUT, interval=1, what="orders imported")
    return [(order, pickings[str(order["id"])]) for order in orders]


def _receipts(stack, rng, skus):
    """Confirmed receipts into the warehouse's stock, one per RECEIPT_AT, of the
    ordered products. Returns their ids."""
    warehouse = stack.sql(
        "SELECT w.lot_stock_id, t.id FROM connector_backend be "
        "JOIN stock_warehouse w ON w.id = be.shopify_warehouse_id "
        "JOIN stock_picking_type t ON t.warehouse_id = w.id AND t.code = 'incoming' "
        "WHERE be.id = %s ORDER BY t.id LIMIT 1",
        (stack.backend_id,),
    )[0]
    supplier = stack.sql.value(
        "SELECT id FROM stock_location WHERE usage = 'supplier' ORDER BY id LIMIT 1"
    )
    products = dict(
        stack.sql(
            "SELECT default_code, id FROM product_product WHERE default_code IN %s",
            (tuple(skus),),
        )
    )
    ids = stack.rpc(
        "stock.picking",
        "create",
        [
            {
                "picking_type_id": warehouse[1],
                "location_id": supplier,
                "location_dest_id": warehouse[0],
                "move_ids": [
                    [
                        0,
                        0,
                        {
                            "product_id": products[sku],
                            "product_uom_qty": rng.randint(1, 5),
                            "location_id": supplier,
                            "location_dest_id": warehouse[0],
                        },
                    ]
                    for sku in rng.sample(sorted(skus), k=2)
                ],
            }
            for _ in RECEIPT_AT
        ],
    )
    stack.rpc("stock.picking", "action_confirm", ids)
    return ids


def _validate(stack, picking_id):
    """Validate a picking as a user does; to the one-time question whether
    to text delivery confirmations to customers, answer Don't send."""
    result = stack.rpc("stock.picking", "button_validate", [picking_id])
    if isinstance(result, dict) and result.get("res_model") == "confirm.stock.sms":
        result = stack.rpc(
            "confirm.stock.sms", "dont_send_sms", [result["res_id"]], context=result["context"]
        )
    if isinstance(result, dict) and result.get("res_model"):
        raise ScenarioFailed(f"validating picking {picking_id} asked for {result['res_model']}")
    state = stack.sql.value("SELECT state FROM stock_picking WHERE id = %s", (picking_id,))
    if state != "done":
        raise ScenarioFailed(f"picking {picking_id} is {state} after Validate")


class Watch:
    """What the scenario sees of Odoo every second, by SQL only."""

    def __init__(self, stack, since_id, db_start):
        self.stack = stack
        self.since_id = since_id
        self.db_start = db_start
        self.backend_states = collections.Counter()
        self.failed_changes = 0
        self.max_retry_count = 0
        self.max_attempt = 0
        self.failed_jobs = 0

    def sample(self):
        stack = self.stack
        self.backend_states[
            stack.sql.value(
                "SELECT state FROM connector_backend WHERE id = %s", (stack.backend_id,)
            )
        ] += 1
        failed, retries, attempts = stack.sql(
            "SELECT count(*) FILTER (WHERE state = 'failed'), COALESCE(max(retry_count), 0), "
            "COALESCE(max(attempt), 0) FROM connector_outbound "
            "WHERE backend_id = %s AND topic IN %s AND id > %s",
            (stack.backend_id, TOPICS, self.since_id),
        )[0]
        self.failed_changes = max(self.failed_changes, failed)
        self.max_retry_count = max(self.max_retry_count, retries)
        self.max_attempt = max(self.max_attempt, attempts)
        self.failed_jobs = max(
            self.failed_jobs,
            stack.sql.value(
                "SELECT count(*) FROM queue_job WHERE state = 'failed' AND date_created >= %s",
                (self.db_start,),
            ),
        )


def _outage(stack, receipts, deliveries, watch):
    """Validate the receipts and deliveries on their schedule while Shopify is
    down, sampling every second. Returns the deliveries in validation order."""
    plan = sorted(
        [(at, "receipt", picking) for at, picking in zip(RECEIPT_AT, receipts, strict=True)]
        + [(at, "delivery", picking) for at, picking in zip(DELIVERY_AT, deliveries, strict=True)]
    )
    delivered = []
    started = time.monotonic()
    while time.monotonic() - started < OUTAGE:
        while plan and plan[0][0] <= time.monotonic() - started:
            _at, kind, picking_id = plan.pop(0)
            _validate(stack, picking_id)
            if kind == "delivery":
                delivered.append(picking_id)
        watch.sample()
        time.sleep(1)
    return delivered


def _sent_out_of_order(stack, since_id):
    """Changes of each topic sent before an older change of that topic."""
    return stack.sql.value(
        "SELECT count(*) FROM (SELECT sent_at, max(sent_at) OVER (PARTITION BY topic "
        "  ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS older "
        "  FROM connector_outbound WHERE backend_id = %s AND topic IN %s AND id > %s "
        "  AND state = 'sent') sends WHERE sent_at < older",
        (stack.backend_id, TOPICS, since_id),
    )


def _fulfillments(stack, orders_delivered):
    """Per order (in delivery order): its fulfillments' numeric ids in the store."""
    return [
        sorted(
            int(f["admin_graphql_api_id"].rsplit("/", 1)[1])
            for f in stack.shop.fulfillments(order["admin_graphql_api_id"])
        )
        for order in orders_delivered
    ]


def _down_and_back(stack, receipts, imported, watch):
    """Shopify down OUTAGE seconds while the pickings are validated, then back;
    waits (SQL only) until everything is sent. What was measured."""
    measured = {"timed_out": None}
    stack.shop.faults.add("error", status=503)
    try:
        measured["delivered"] = _outage(stack, receipts, [p for _o, p in imported], watch)
    finally:
        stack.shop.faults.clear()
    measured["down"] = dict(watch.backend_states)
    recovered = time.monotonic()
    try:
        wait_until(
            lambda: watch.sample() or not unsent_changes(stack, TOPICS, watch.since_id),
            RECOVERY_TIMEOUT,
            interval=0.5,
            what="everything sent after the outage",
        )
    except ScenarioFailed as exc:
        measured["timed_out"] = str(exc)
    measured["drained_in"] = time.monotonic() - recovered
    measured["backend_state"] = stack.sql.value(
        "SELECT state FROM connector_backend WHERE id = %s", (stack.backend_id,)
    )
    return measured


def _verdict(measured, watch):
    """Why the scenario fails (empty: it passes)."""
    why = []
    if not measured["down"].get("circuit_open"):
        why.append("the circuit never opened")
    if watch.failed_changes:
        why.append(f"{watch.failed_changes} changes marked failed")
    if watch.max_retry_count >= THRESHOLD:
        why.append(f"a change spent {watch.max_retry_count} attempts")
    if watch.failed_jobs:
        why.append(f"{watch.failed_jobs} queue jobs failed")
    # One probe per cool-down (two when both topics' jobs find the circuit
    # half-open at once), not a retry storm.
    if measured["calls_down"] > 2 * (OUTAGE // COOLDOWN + THRESHOLD):
        why.append(f"{measured['calls_down']} calls to Shopify while it was down")
    if measured["timed_out"]:
        why.append(measured["timed_out"])
    if measured["backend_state"] != "running":
        why.append(f"backend {measured['backend_state']} after the outage")
    unsent = sum(
        count
        for state, count in measured["states"].items()
        if state.endswith(("pending", "sending", "failed"))
    )
    if unsent:
        why.append(f"{unsent} changes left unsent")
    if measured["out_of_order"]:
        why.append(f"{measured['out_of_order']} changes sent before an older one of their topic")
    made = [len(ids) for ids in measured["fulfillments"]]
    firsts = [ids[0] for ids in measured["fulfillments"] if ids]
    if made != [1] * len(measured["delivered"]):
        why.append(f"fulfillments per delivery {made}, one each expected")
    elif firsts != sorted(firsts):
        why.append("fulfillments not made in the order the deliveries were validated")
    if measured["mismatches"]:
        why.append(
            f"{len(measured['mismatches'])} SKU x location differ, e.g. "
            + ", ".join(
                f"{sku}@{loc}: Shopify {r}, Odoo {o}"
                for sku, loc, r, o in measured["mismatches"][:3]
            )
        )
    return why


def run(stack):
    rng = random.Random(stack.seed + 4)
    shop = stack.shop
    settings = dict(
        zip(
            ("circuit_threshold", "circuit_cooldown"),
            stack.sql(
                "SELECT circuit_threshold, circuit_cooldown FROM connector_backend WHERE id = %s",
                (stack.backend_id,),
            )[0],
            strict=True,
        )
    )
    wait_idle(stack)
    db_start = stack.sql.value("SELECT now() AT TIME ZONE 'utc'")
    log_mark = stack.server.log.mark()
    # The store sends no webhook itself: the scenario delivers the orders, and
    # the backend subscribes to none of the fulfillment and inventory topics.
    with silenced(shop):
        imported = _import_orders(stack, rng)
        wait_until(
            lambda: not unsent_changes(stack, TOPICS), SETTLE_TIMEOUT, interval=1, what="stock sent"
        )
        ordered = {line["sku"] for order, _ in imported for line in order["line_items"]}
        receipts = _receipts(stack, rng, ordered)
        since_id = stack.sql.value("SELECT COALESCE(max(id), 0) FROM connector_outbound")
        since_request = max((e["seq"] for e in shop.requests.entries()), default=0)
        watch = Watch(stack, since_id, db_start)
        stack.rpc(
            "connector.backend",
            "write",
            [stack.backend_id],
            {"circuit_threshold": THRESHOLD, "circuit_cooldown": COOLDOWN},
        )
        try:
            measured = _down_and_back(stack, receipts, imported, watch)
        finally:
            stack.rpc("connector.backend", "write", [stack.backend_id], settings)
        by_picking = {picking: order for order, picking in imported}
        measured["fulfillments"] = _fulfillments(
            stack, [by_picking[p] for p in measured["delivered"]]
        )
        compared, measured["mismatches"] = shopify_stock_mismatches(stack)
    measured["states"] = dict(
        stack.sql(
            "SELECT topic || ' ' || state, count(*) FROM connector_outbound "
            "WHERE backend_id = %s AND topic IN %s AND id > %s GROUP BY 1",
            (stack.backend_id, TOPICS, since_id),
        )
    )
    measured["out_of_order"] = _sent_out_of_order(stack, since_id)
    calls = collections.Counter(
        (entry["status"], entry.get("processed")) for entry in shop.requests.entries(since_request)
    )
    measured["calls_down"] = calls[503, False]
    job_retries = stack.sql.value(
        "SELECT COALESCE(max(retry), 0) FROM queue_job WHERE date_created >= %s "
        "AND method_name = '_flush_outbound'",
        (db_start,),
    )
    closed = len(
        stack.server.log.records(
            log_mark, rf"backend {stack.backend_id}: remote answered again, circuit closed"
        )
    )
    made = [len(ids) for ids in measured["fulfillments"]]
    firsts = [ids[0] for ids in measured["fulfillments"] if ids]
    figures = (
        f"{OUTAGE} s down ({OUTAGE // COOLDOWN} cool-downs of {COOLDOWN} s, threshold "
        f"{THRESHOLD}): {calls[503, False]} calls answered 503, backend "
        f"{dict(sorted(measured['down'].items()))} (samples), changes failed "
        f"{watch.failed_changes}, retry_count max {watch.max_retry_count}, sends started max "
        f"{watch.max_attempt}, flush job retries max {job_retries}, jobs failed "
        f"{watch.failed_jobs}; {len(receipts)} receipts and {len(measured['delivered'])} "
        f"deliveries validated meanwhile; back up: circuit closed x{closed}, backend "
        f"{measured['backend_state']}, drained in {measured['drained_in']:.1f} s with "
        f"{calls[200, True]} calls, changes {dict(sorted(measured['states'].items()))}, "
        f"{measured['out_of_order']} sent before an older one; fulfillments per delivery "
        f"{made}, in delivery order: {firsts == sorted(firsts)}; "
        f"{compared - len(measured['mismatches'])}/{compared} SKU x location equal in Shopify"
    )
    why = _verdict(measured, watch)
    if why:
        raise ScenarioFailed(f"{'; '.join(why)} -- {figures}")
    return figures
