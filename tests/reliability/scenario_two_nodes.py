"""Two Odoo nodes on one database: webhooks spread over both, jobs run on both.

The shape a retailer outgrowing one machine runs (``stack.second_node()``):
node 1 with queue_job's job runner and the cron worker, node 2 with HTTP
workers only (no runner: ``root:0``, no cron: ``--max-cron-threads=0``),
the same data directory, and a round-robin forwarder in front of both that
takes the runner's requests to run a job, so jobs run on either node.

CUSTOMERS customers of the simulated store each place ORDERS_EACH orders,
one after the other, and change the note of each order twice: an
``orders/create`` and two ``orders/updated`` per order, one second apart in
the store's time (``X-Shopify-Triggered-At``). Every ``orders/create`` is
delivered twice at the same moment, one copy to each node (the duplicate
lands on the other machine); the updates go through the forwarder, a third
of the orders' two updates in reverse order, a fifth of them twice.

Expected: never an answer but 200, both nodes answering; exactly once: per
webhook id one event, its copies stored as ``duplicate`` of it, one
``shopify.order.binding`` and one sale order per Shopify order, each
customer's orders on one partner; ordering per order (the connector's
sequence key), for every customer: each order's note is its last change,
the earlier messages applied before it or skipped as stale, none failed;
queue jobs run on both nodes (``queue_job.worker_pid`` among each node's
workers); one job runner and one cron worker in all, on node 1.
"""

import collections
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from .harness import (
    SHOPIFY_WEBHOOK_ROUTE,
    ScenarioFailed,
    post,
    shopify_delivery,
    silenced,
    wait_idle,
    wait_until,
)

CUSTOMERS = 12
ORDERS_EACH = 4
CHANGES = 2  # orders/updated per order, each a new note
REVERSED_SHARE = 3  # one order in 3 has its updates sent newest first
DOUBLED_SHARE = 5  # one update in 5 delivered twice
THREADS = 12
# About 150 events and 100 jobs, two at a time on 2 cores: a minute or two.
PROCESS_TIMEOUT = 240
PENDING_STATES = ("received", "queued", "processing", "waiting")
ALLOWED_LOG = ()


def _note(order, change):
    return f"{order['name']} change {change}"


def _messages(stack, rng):
    """Per customer, their orders and each order's changes, in the store's order.

    Returns ``(orders by customer, messages)``; a message is (topic, payload,
    order id, change number: 0 for the order's creation), in the order the
    store made them.
    """
    skus = stack.bound_skus()
    customers = rng.sample(stack.customers(), k=CUSTOMERS)
    orders, messages = collections.defaultdict(list), []
    with silenced(stack.shop) as shop:
        for customer in customers:
            for _ in range(ORDERS_EACH):
                lines = [(sku, rng.randint(1, 2)) for sku in rng.sample(skus, k=rng.randint(1, 3))]
                order = shop.create_order(lines, customer=customer)
                orders[customer].append(order)
                messages.append(("orders/create", order, order["id"], 0))
                for change in range(1, CHANGES + 1):
                    updated = shop.update_order(order["id"], note=_note(order, change))
                    messages.append(("orders/updated", updated, order["id"], change))
    return orders, messages


def _deliveries(stack, messages):
    """A signed delivery per message, triggered one second after the one before."""
    start = datetime.now(timezone.utc) - timedelta(seconds=len(messages) + 60)
    deliveries = []
    for index, (topic, payload, _order_id, _change) in enumerate(messages):
        delivery = shopify_delivery(stack.shop, topic, payload)
        moment = start + timedelta(seconds=index)
        delivery.headers["X-Shopify-Triggered-At"] = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        deliveries.append(delivery)
    return deliveries


def _plan(rng, messages, deliveries, node_urls, front_url):
    """The sends, in sending order: each a list of (label, URL, delivery) to
    send at the same moment.

    Orders follow each other as the store made them; each order's creation
    goes to every node at once, its updates through the forwarder after it,
    newest first for one order in REVERSED_SHARE, some twice.
    """
    by_order = collections.defaultdict(list)
    for message, delivery in zip(messages, deliveries, strict=True):
        by_order[message[2]].append((message[0], delivery))
    sends = []
    for position, order_messages in enumerate(by_order.values()):
        updates = [delivery for topic, delivery in order_messages if topic != "orders/create"]
        if position % REVERSED_SHARE == 0:
            updates.reverse()
        for topic, delivery in order_messages:
            if topic == "orders/create":
                sends.append([(f"node {n + 1}", url, delivery) for n, url in enumerate(node_urls)])
        for delivery in updates:
            copies = 2 if rng.randrange(DOUBLED_SHARE) == 0 else 1
            sends.append([("forwarder", front_url, delivery)] * copies)
    return sends


def _send(sends):
    """Each group's copies at the same moment, groups from THREADS threads.

    Returns {(label, HTTP status or error name): count}.
    """
    answers = collections.Counter()
    lock = threading.Lock()

    def send(group):
        barrier = threading.Barrier(len(group), timeout=60)

        def one(label, url, delivery):
            try:
                barrier.wait()
                status, _body = post(url, delivery.body, delivery.headers)
            except (OSError, threading.BrokenBarrierError) as exc:
                status = type(exc).__name__
            with lock:
                answers[label, status] += 1

        threads = [threading.Thread(target=one, args=copy) for copy in group]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(send, sends))
    return answers


def _jobs_by_node(stack, node, after_id):
    """{(node name, state): count} of the queue jobs made after ``after_id``,
    a job's node found from its ``worker_pid`` in both nodes' logs (each
    worker announces its pid there)."""
    node_of = {
        **dict.fromkeys(stack.server.log.worker_classes, "node 1"),
        **dict.fromkeys(node.log.worker_classes, "node 2"),
    }
    jobs = collections.Counter()
    for pid, state, count in stack.sql(
        "SELECT worker_pid, state, count(*) FROM queue_job WHERE id > %s GROUP BY 1, 2",
        (after_id,),
    ):
        jobs[node_of.get(pid, "no worker" if pid is None else "unknown pid"), state] += count
    return jobs


def _events(stack, sends, webhook_ids):
    """How the webhooks were stored: ids stored once with their copies as
    duplicates, copies sent, states of the events."""
    copies = collections.Counter(d.webhook_id for group in sends for _label, _url, d in group)
    stored = {
        key: (originals, duplicates)
        for key, originals, duplicates in stack.sql(
            "SELECT idempotency_key, count(*) FILTER (WHERE duplicate_of_id IS NULL), "
            "count(*) FILTER (WHERE state = 'duplicate' AND duplicate_of_id IS NOT NULL) "
            "FROM connector_event WHERE backend_id = %s AND idempotency_key IN %s "
            "GROUP BY idempotency_key",
            (stack.backend_id, webhook_ids),
        )
    }
    states = stack.sql(
        "SELECT state, count(*) FROM connector_event WHERE backend_id = %s "
        "AND idempotency_key IN %s AND duplicate_of_id IS NULL GROUP BY state",
        (stack.backend_id, webhook_ids),
    )
    return {
        "webhooks": len(webhook_ids),
        "stored_once": sum(stored.get(key) == (1, copies[key] - 1) for key in webhook_ids),
        "duplicates": sum(count - 1 for count in copies.values()),
        "event_states": dict(sorted(states)),
    }


def _orders_state(stack, orders):
    """Per Shopify order its bindings, sale orders, note and customer's e-mail:
    orders imported once, left with their last change, customers on one partner."""
    order_ids = tuple(str(order["id"]) for own in orders.values() for order in own)
    found = {
        external_id: rest
        for external_id, *rest in stack.sql(
            "SELECT b.external_id, count(*), count(DISTINCT b.odoo_id), min(so.note), "
            "min(p.email) FROM shopify_order_binding b "
            "JOIN sale_order so ON so.id = b.odoo_id JOIN res_partner p ON p.id = so.partner_id "
            "WHERE b.backend_id = %s AND b.external_id IN %s GROUP BY b.external_id",
            (stack.backend_id, order_ids),
        )
    }
    imported_once = last_change_kept = customers_on_one_partner = 0
    for customer, own in orders.items():
        emails = set()
        for order in own:
            bindings, sale_orders, note, email = found.get(str(order["id"]), (0, 0, None, None))
            imported_once += (bindings, sale_orders) == (1, 1)
            last_change_kept += _note(order, CHANGES) in (note or "")
            emails.add(email)
        customers_on_one_partner += emails == {customer}
    return {
        "orders": len(order_ids),
        "imported_once": imported_once,
        "last_change_kept": last_change_kept,
        "customers_on_one_partner": customers_on_one_partner,
    }


def _counts(counter):
    return ", ".join(f"{key}: {count}" for key, count in sorted(counter.items(), key=str))


def _figures(m):
    return (
        f"{m['webhooks']} webhooks ({m['duplicates']} duplicates) in {m['sent_in']:.1f} s, "
        f"answers {_counts(m['answers'])}; connections through the forwarder (updates, "
        f"the runner's job requests) {_counts(m['dispatched'])}; "
        f"{m['stored_once']}/{m['webhooks']} webhook ids stored once, their copies as "
        f"duplicates; events {m['event_states']} after "
        f"{m['processed_in']:.1f} s; {m['imported_once']}/{m['orders']} orders imported once, "
        f"{m['last_change_kept']}/{m['orders']} left with their last change; "
        f"{m['customers_on_one_partner']}/{CUSTOMERS} customers on one partner; "
        f"jobs {_counts(m['jobs'])}; runner/cron processes "
        + ", ".join(
            f"{name} {len(kinds['jobrunner'])}/{len(kinds['cron'])}"
            for name, kinds in m["processes"].items()
        )
    )


def _failures(m):
    why = []
    if {status for _label, status in m["answers"]} != {200}:
        why.append("answers other than 200")
    if not {"node 1", "node 2", "forwarder"} <= {label for label, _status in m["answers"]}:
        why.append("a node answered no webhook")
    if m["stored_once"] != m["webhooks"]:
        why.append(f"{m['webhooks'] - m['stored_once']} webhook ids not stored exactly once")
    if m["timed_out"]:
        why.append(m["timed_out"])
    if set(m["event_states"]) - {"done", "stale"}:
        why.append("events neither done nor stale")
    for key, what in (
        ("imported_once", "orders not imported exactly once"),
        ("last_change_kept", "orders not left with their last change"),
    ):
        if m[key] != m["orders"]:
            why.append(f"{m['orders'] - m[key]} {what}")
    if m["customers_on_one_partner"] != CUSTOMERS:
        why.append(f"{CUSTOMERS - m['customers_on_one_partner']} customers not on one partner")
    ran_on = {name for name, state in m["jobs"] if state == "done"}
    if not {"node 1", "node 2"} <= ran_on:
        why.append(f"jobs done on {sorted(ran_on)} only, not on both nodes")
    if set(m["jobs"]) - {("node 1", "done"), ("node 2", "done")}:
        why.append("jobs not done, or run by a process of neither node")
    for kind in ("jobrunner", "cron"):
        if [len(m["processes"][name][kind]) for name in ("node 1", "node 2")] != [1, 0]:
            why.append(f"not exactly one {kind} process, on node 1")
    return why


def run(stack):
    rng = random.Random(stack.seed)
    wait_idle(stack)
    orders, messages = _messages(stack, rng)
    deliveries = _deliveries(stack, messages)
    webhook_ids = tuple(d.webhook_id for d in deliveries)
    last_job = stack.sql.value("SELECT COALESCE(max(id), 0) FROM queue_job")
    m = {}
    with stack.second_node() as (node, front):
        m["processes"] = {"node 1": stack.server.workers(), "node 2": node.workers()}
        sends = _plan(
            rng,
            messages,
            deliveries,
            [f"{url}{SHOPIFY_WEBHOOK_ROUTE}" for url in (stack.server.url, node.url)],
            f"{front.url}{SHOPIFY_WEBHOOK_ROUTE}",
        )
        started = time.monotonic()
        m["answers"] = _send(sends)
        m["sent_in"] = time.monotonic() - started

        def settled():
            return not stack.sql.value(
                "SELECT count(*) FROM connector_event WHERE backend_id = %s "
                "AND idempotency_key IN %s AND duplicate_of_id IS NULL AND state IN %s",
                (stack.backend_id, webhook_ids, PENDING_STATES),
            )

        m["timed_out"] = None
        try:
            wait_until(settled, PROCESS_TIMEOUT, interval=1, what="events processed")
        except ScenarioFailed as exc:
            m["timed_out"] = str(exc)
        m["processed_in"] = time.monotonic() - started
        # A batch job that found its key space busy runs again a few seconds
        # later and finds its events applied: wait for the jobs to settle
        # (a job left pending past the timeout is still reported below).
        try:
            wait_until(
                lambda: (
                    not stack.sql.value(
                        "SELECT count(*) FROM queue_job WHERE id > %s AND state IN %s",
                        (last_job, ("pending", "enqueued", "started")),
                    )
                ),
                PROCESS_TIMEOUT,
                interval=1,
                what="the scenario's jobs settled",
            )
        except ScenarioFailed as exc:
            m["timed_out"] = m["timed_out"] or str(exc)
        stack.server.log.poll()
        node.log.poll()
        m["jobs"] = _jobs_by_node(stack, node, last_job)
        ports = {stack.server.http_port: "node 1", node.http_port: "node 2"}
        m["dispatched"] = {ports.get(p, p): n for (_host, p), n in front.connections.items()}
    m.update(_events(stack, sends, webhook_ids), **_orders_state(stack, orders))
    figures = _figures(m)
    if why := _failures(m):
        raise ScenarioFailed(f"{'; '.join(why)} -- {figures}")
    return figures
