"""100 pairs of identical webhook deliveries sent at the same moment.

Shopify delivers a webhook again when it does not hear back in time, and a
copy may arrive while the first is still being stored: two workers then
store the same ``X-Shopify-Webhook-Id`` at once. Expected: never an HTTP 500;
for each webhook id one event (``duplicate_of_id IS NULL``) and the other
copy stored as ``duplicate`` of it; each order imported once (one
``shopify.order.binding`` per Shopify order).
"""

import collections
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .harness import ScenarioFailed, post, shopify_delivery, silenced, wait_until

PAIRS = 100
THREADS = 16
# Processing 100 orders takes 20-40 s with 2 workers; far more means stuck events.
PROCESS_TIMEOUT = 75
# States in which an event is still to be applied (connector.event OPEN_STATES
# but ``failed``, which is an end state for this check).
PENDING_STATES = ("received", "queued", "processing", "waiting")
# No WARNING or ERROR is expected in the Odoo log.
ALLOWED_LOG = ()


def _orders(stack, rng):
    """PAIRS distinct orders placed in the simulated store, as webhook bodies."""
    skus = stack.bound_skus()
    customers = stack.customers()
    if len(skus) < 3:
        raise ScenarioFailed(f"the store has {len(skus)} bound SKUs, the scenario needs 3")
    with silenced(stack.shop) as shop:
        return [
            shop.create_order(
                [(sku, rng.randint(1, 2)) for sku in rng.sample(skus, k=rng.randint(1, 3))],
                customer=rng.choice(customers),
            )
            for _ in range(PAIRS)
        ]


def _send_pairs(url, deliveries):
    """Both copies of each delivery from two threads released by one barrier."""
    barriers = [threading.Barrier(2, timeout=60) for _ in deliveries]
    answers = {}

    def send(index, copy):
        delivery = deliveries[index]
        try:
            barriers[index].wait()
            status, body = post(url, delivery.body, delivery.headers)
        except (OSError, threading.BrokenBarrierError) as exc:
            status, body = type(exc).__name__, b""
        answers[index, copy] = (status, body)

    # Copies of one pair are queued one after the other, so the pool never
    # holds a copy whose twin cannot be picked up.
    with ThreadPoolExecutor(THREADS) as pool:
        for index in range(len(deliveries)):
            pool.submit(send, index, 0)
            pool.submit(send, index, 1)
    return answers


def _event_state(answer):
    try:
        return json.loads(answer[1]).get("status")
    except (ValueError, AttributeError):
        return None


def run(stack):
    rng = random.Random(stack.seed)
    orders = _orders(stack, rng)
    deliveries = [shopify_delivery(stack.shop, "orders/create", order) for order in orders]
    webhook_ids = [d.webhook_id for d in deliveries]
    started = time.monotonic()
    answers = _send_pairs(stack.webhook_url, deliveries)
    sent_in = time.monotonic() - started
    statuses = collections.Counter(status for status, _body in answers.values())
    answered = collections.Counter(_event_state(a) for a in answers.values() if a[0] == 200)

    rows = stack.sql(
        "SELECT idempotency_key, "
        "  count(*) FILTER (WHERE duplicate_of_id IS NULL), "
        "  count(*) FILTER (WHERE state = 'duplicate' AND duplicate_of_id IS NOT NULL), "
        "  count(*) "
        "FROM connector_event WHERE backend_id = %s AND idempotency_key IN %s "
        "GROUP BY idempotency_key",
        (stack.backend_id, tuple(webhook_ids)),
    )
    stored = {key: (originals, duplicates, total) for key, originals, duplicates, total in rows}
    shapes = collections.Counter(stored.get(key, (0, 0, 0)) for key in webhook_ids)
    good_pairs = shapes[1, 1, 2]
    # A duplicate must name the event of its own webhook id.
    misdirected = stack.sql.value(
        "SELECT count(*) FROM connector_event d JOIN connector_event o "
        "ON o.id = d.duplicate_of_id WHERE d.backend_id = %s AND d.idempotency_key IN %s "
        "AND o.idempotency_key != d.idempotency_key",
        (stack.backend_id, tuple(webhook_ids)),
    )

    def settled():
        pending = stack.sql.value(
            "SELECT count(*) FROM connector_event WHERE backend_id = %s "
            "AND idempotency_key IN %s AND duplicate_of_id IS NULL AND state IN %s",
            (stack.backend_id, tuple(webhook_ids), PENDING_STATES),
        )
        return pending == 0

    started = time.monotonic()
    timed_out = None
    try:
        wait_until(settled, PROCESS_TIMEOUT, interval=1, what="events processed")
    except ScenarioFailed as exc:
        timed_out = str(exc)
    processed_in = time.monotonic() - started
    event_states = dict(
        stack.sql(
            "SELECT state, count(*) FROM connector_event WHERE backend_id = %s "
            "AND idempotency_key IN %s AND duplicate_of_id IS NULL GROUP BY state",
            (stack.backend_id, tuple(webhook_ids)),
        )
    )
    order_ids = tuple(str(order["id"]) for order in orders)
    bindings = dict(
        stack.sql(
            "SELECT external_id, count(*) FROM shopify_order_binding "
            "WHERE backend_id = %s AND external_id IN %s GROUP BY external_id",
            (stack.backend_id, order_ids),
        )
    )
    sale_orders = stack.sql.value(
        "SELECT count(DISTINCT odoo_id) FROM shopify_order_binding "
        "WHERE backend_id = %s AND external_id IN %s",
        (stack.backend_id, order_ids),
    )
    imported_once = sum(1 for order_id in order_ids if bindings.get(order_id) == 1)

    figures = (
        f"{len(answers)} deliveries in {sent_in:.1f} s, HTTP "
        + ", ".join(f"{status}x{count}" for status, count in sorted(statuses.items(), key=str))
        + f" (answered {dict(sorted(answered.items(), key=str))}); "
        f"{good_pairs}/{PAIRS} ids with 1 event + 1 duplicate"
        + (
            " ("
            + ", ".join(
                f"{count} with {o} event/{d} duplicate/{t} rows"
                for (o, d, t), count in sorted(shapes.items())
                if (o, d, t) != (1, 1, 2)
            )
            + ")"
            if good_pairs != PAIRS
            else ""
        )
        + f"; events {dict(sorted(event_states.items()))} after {processed_in:.1f} s; "
        f"{imported_once}/{PAIRS} orders imported once, {sale_orders} sale orders"
    )
    why = []
    if statuses.get(500):
        why.append(f"{statuses[500]} HTTP 500")
    if set(statuses) - {200}:
        others = sum(count for status, count in statuses.items() if status not in (200, 500))
        if others:
            why.append(f"{others} answers other than 200")
    if good_pairs != PAIRS:
        why.append(f"{PAIRS - good_pairs} webhook ids not stored as 1 event + 1 duplicate")
    if misdirected:
        why.append(f"{misdirected} duplicates pointing at another webhook's event")
    if timed_out:
        why.append(timed_out)
    if event_states.get("failed"):
        why.append(f"{event_states['failed']} events failed")
    if imported_once != PAIRS or sale_orders != PAIRS:
        why.append(f"{imported_once} of {PAIRS} orders imported once")
    if why:
        raise ScenarioFailed(f"{'; '.join(why)} -- {figures}")
    return figures
