"""Two orders of one new person imported at the same moment by two jobs.

PAIRS pairs of ``orders/create`` webhooks of a NEW Shopify customer (a
customer id and an e-mail Odoo has never seen), and PAIRS pairs of guest
orders (no customer, one new e-mail per pair), each pair's two webhooks
sent at the same moment from two threads: their two jobs run side by side
in the two job slots, both look for the person, find nobody and create
them. Such clashes are retried on a fresh snapshot. The race must have
happened (events retried after a clash) for the run to prove anything: if a
round shows none of one kind, another round is sent (at most ROUNDS).

Expected: every event done (none failed, none left pending); per person one
``res.partner`` with that e-mail, and both orders of the pair on it; per
Shopify customer one ``shopify.partner.binding``, on that partner; per
Shopify order one binding and one sale order.
"""

import collections
import random
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .harness import ScenarioFailed, post, shopify_delivery, silenced, wait_until

PAIRS = 20  # of each kind, per round
ROUNDS = 3  # at most: another round only while one kind showed no clash
THREADS = 16
# 80 orders take 20-40 s with 2 workers, clashes retried 2 to 8 s later.
PROCESS_TIMEOUT = 120
PENDING_STATES = ("received", "queued", "processing", "waiting")
# Customer ids of this scenario: far above the store's own.
CUSTOMER_ID_BASE = 7_000_000_000_000
# Clashes are retried and logged at INFO: nothing at WARNING or above.
ALLOWED_LOG = ()


def _person(order, email, customer_id=None, number=0):
    """The store's order as if placed by a new person: a new customer with
    ``customer_id``, or a guest (no customer); ``email`` either way."""
    order = dict(order)
    first, last = ("Pair" if customer_id else "Guest"), f"Person {number}"
    for key in ("billing_address", "shipping_address"):
        if order.get(key):
            order[key] = {
                **order[key],
                "first_name": first,
                "last_name": last,
                "name": f"{first} {last}",
                "phone": None,
            }
    order.update(email=email, phone=None, customer=None)
    if customer_id:
        order["customer"] = {
            **(order.get("customer") or {}),
            "id": customer_id,
            "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
            "email": email,
            "first_name": first,
            "last_name": last,
            "phone": None,
            "default_address": order.get("billing_address"),
        }
    return order


def _round(stack, rng, tag, number):
    """One round's persons and their pairs of signed webhooks."""
    skus = stack.bound_skus()
    customers = stack.customers()
    base = CUSTOMER_ID_BASE + secrets.randbelow(10**6) * 1000
    persons, pairs = [], []
    with silenced(stack.shop) as shop:
        for index in range(2 * PAIRS):
            guest = index % 2 == 1  # interleaved: both kinds race in every stretch
            email = f"{'guest' if guest else 'new'}-{tag}-{number}-{index}@example.com"
            customer_id = None if guest else base + index
            persons.append({"email": email, "customer_id": customer_id, "orders": []})
            pair = []
            for _copy in range(2):
                order = shop.create_order(
                    [(sku, rng.randint(1, 2)) for sku in rng.sample(skus, k=rng.randint(1, 2))],
                    customer=rng.choice(customers),
                )
                persons[-1]["orders"].append(str(order["id"]))
                body = _person(order, email, customer_id, index)
                pair.append(shopify_delivery(shop, "orders/create", body))
            pairs.append(pair)
    return persons, pairs


def _send_pairs(url, pairs):
    """Both webhooks of each pair from two threads released by one barrier."""
    barriers = [threading.Barrier(2, timeout=60) for _ in pairs]
    statuses = collections.Counter()
    lock = threading.Lock()

    def send(index, which):
        delivery = pairs[index][which]
        try:
            barriers[index].wait()
            status, _body = post(url, delivery.body, delivery.headers)
        except (OSError, threading.BrokenBarrierError) as exc:
            status = type(exc).__name__
        with lock:
            statuses[status] += 1

    with ThreadPoolExecutor(THREADS) as pool:
        for index in range(len(pairs)):
            pool.submit(send, index, 0)
            pool.submit(send, index, 1)
    return statuses


def _events(stack, webhook_ids):
    """{webhook id: (state, attempts, retries, error)} of the original events;
    retries: the event's after a clash, and its job's runs beyond the first
    (queue_job postpones a job whose commit failed on a serialization error)."""
    return {
        key: rest
        for key, *rest in stack.sql(
            "SELECT e.idempotency_key, e.state, e.attempts, "
            "  e.retry_count + GREATEST(COALESCE(max(j.retry), 1) - 1, 0), e.error_message "
            "FROM connector_event e "
            "LEFT JOIN connector_event_queue_job_rel r ON r.connector_event_id = e.id "
            "LEFT JOIN queue_job j ON j.id = r.queue_job_id "
            "WHERE e.backend_id = %s AND e.idempotency_key IN %s "
            "AND e.duplicate_of_id IS NULL GROUP BY e.id",
            (stack.backend_id, tuple(webhook_ids)),
        )
    }


def _found(stack, persons):
    """What Odoo made: partners by e-mail, customer bindings by Shopify
    customer id, (sale order, partner) by Shopify order id."""
    partners = collections.defaultdict(list)
    for email, partner_id in stack.sql(
        "SELECT email_normalized, id FROM res_partner WHERE email_normalized IN %s",
        (tuple(p["email"] for p in persons),),
    ):
        partners[email].append(partner_id)
    bindings = collections.defaultdict(list)
    for external_id, partner_id in stack.sql(
        "SELECT external_id, odoo_id FROM shopify_partner_binding "
        "WHERE backend_id = %s AND external_id IN %s",
        (
            stack.backend_id,
            tuple(str(p["customer_id"]) for p in persons if p["customer_id"]) or ("",),
        ),
    ):
        bindings[external_id].append(partner_id)
    sale_orders = collections.defaultdict(list)
    for external_id, sale_order_id, partner_id in stack.sql(
        "SELECT b.external_id, so.id, so.partner_id FROM shopify_order_binding b "
        "JOIN sale_order so ON so.id = b.odoo_id WHERE b.backend_id = %s "
        "AND b.external_id IN %s",
        (stack.backend_id, tuple(o for p in persons for o in p["orders"])),
    ):
        sale_orders[external_id].append((sale_order_id, partner_id))
    return partners, bindings, sale_orders


def _check_persons(stack, persons):
    """Per person: one partner with its e-mail, one binding of its customer id
    on that partner, one sale order per Shopify order on that partner.
    Returns the counts of what is right and the first problems."""
    partners, bindings, sale_orders = _found(stack, persons)
    counts = collections.Counter()
    problems = []
    for person in persons:
        kind = "customer" if person["customer_id"] else "guest"
        found = partners.get(person["email"], [])
        counts[f"{kind} one partner"] += len(found) == 1
        if len(found) != 1:
            problems.append(f"{person['email']}: {len(found)} partners {found}")
        if person["customer_id"]:
            bound = bindings.get(str(person["customer_id"]), [])
            counts["customer one binding"] += len(bound) == 1 and bound == found
            if len(bound) != 1 or bound != found:
                problems.append(
                    f"customer {person['customer_id']}: bindings to {bound}, partners {found}"
                )
        for order_id in person["orders"]:
            made = sale_orders.get(order_id, [])
            counts["one sale order"] += len(made) == 1
            counts["order on the partner"] += len(made) == 1 and [made[0][1]] == found
            if len(made) != 1:
                problems.append(f"Shopify order {order_id}: {len(made)} sale orders")
    return counts, problems[:5]


def _rounds(stack, rng, tag):
    """Send rounds of pairs until both kinds clashed (at most ROUNDS); each
    round's events processed before the next. Returns what was sent and seen."""
    persons, pairs, statuses = [], [], collections.Counter()
    events, timed_out = {}, None
    for number in range(1, ROUNDS + 1):
        round_persons, round_pairs = _round(stack, rng, tag, number)
        persons += round_persons
        pairs += round_pairs
        statuses += _send_pairs(stack.webhook_url, round_pairs)
        webhook_ids = tuple(d.webhook_id for pair in pairs for d in pair)

        def settled(webhook_ids=webhook_ids):
            pending = stack.sql.value(
                "SELECT count(*) FROM connector_event WHERE backend_id = %s "
                "AND idempotency_key IN %s AND duplicate_of_id IS NULL AND state IN %s",
                (stack.backend_id, webhook_ids, PENDING_STATES),
            )
            return pending == 0

        try:
            wait_until(settled, PROCESS_TIMEOUT, interval=1, what="events processed")
        except ScenarioFailed as exc:
            timed_out = str(exc)
        events = _events(stack, webhook_ids)
        if timed_out or all(_clashes(persons, pairs, events).values()):
            break
    return number, persons, pairs, statuses, events, timed_out


def _failures(seen, counts):
    statuses, states, events = seen["statuses"], seen["states"], seen["events"]
    why = []
    if set(statuses) != {200}:
        why.append(f"{sum(c for s, c in statuses.items() if s != 200)} answers other than 200")
    if seen["timed_out"]:
        why.append(seen["timed_out"])
    if states.get("failed"):
        errors = {error or "" for state, *_r, error in events.values() if state == "failed"}
        why.append(f"{states['failed']} events failed ({'; '.join(sorted(errors))[:300]})")
    not_done = sum(count for state, count in states.items() if state not in ("done", "failed"))
    if not_done:
        why.append(f"{not_done} events not done")
    if counts["customer one partner"] != counts["customers"] or (
        counts["guest one partner"] != counts["guests"]
    ):
        why.append("persons without exactly one partner")
    if counts["customer one binding"] != counts["customers"]:
        why.append("customers without exactly one binding on their partner")
    if counts["one sale order"] != counts["orders"] or (
        counts["order on the partner"] != counts["orders"]
    ):
        why.append("Shopify orders without one sale order on the person's partner")
    why.extend(
        f"no {kind} pair clashed in {seen['rounds']} round(s): the race was not exercised"
        for kind, count in seen["clashed"].items()
        if not count
    )
    return why


def run(stack):
    rng = random.Random(stack.seed)
    tag = secrets.token_hex(3)
    log_mark = stack.server.log.mark()
    started = time.monotonic()
    rounds, persons, pairs, statuses, events, timed_out = _rounds(stack, rng, tag)
    elapsed = time.monotonic() - started

    states = collections.Counter(state for state, *_rest in events.values())
    states["missing"] = sum(len(pair) for pair in pairs) - len(events)
    clashed = _clashes(persons, pairs, events)
    retried = sum(1 for _state, _attempts, retries, _error in events.values() if retries)
    clash_records = len(
        stack.server.log.records(log_mark, r"clashed with a concurrent transaction")
    )
    counts, problems = _check_persons(stack, persons)
    counts["customers"] = customers = sum(1 for p in persons if p["customer_id"])
    counts["guests"] = guests = len(persons) - customers
    counts["orders"] = orders = 2 * len(persons)

    figures = (
        f"{rounds} round(s), {customers} new customers and {guests} guest e-mails, "
        f"2 orders each sent at once: HTTP "
        + ", ".join(f"{status}x{count}" for status, count in sorted(statuses.items(), key=str))
        + f"; events {dict(sorted((k, v) for k, v in states.items() if v))} after "
        f"{elapsed:.0f} s; {retried} events retried after a clash ({clash_records} clashes "
        f"logged), pairs that clashed: {clashed['customer']}/{customers} customers, "
        f"{clashed['guest']}/{guests} guests; one partner: "
        f"{counts['customer one partner']}/{customers} customers, "
        f"{counts['guest one partner']}/{guests} guests; one binding per customer: "
        f"{counts['customer one binding']}/{customers}; one sale order per Shopify order: "
        f"{counts['one sale order']}/{orders}, on the person's partner: "
        f"{counts['order on the partner']}/{orders}"
    )
    seen = {
        "statuses": statuses,
        "timed_out": timed_out,
        "states": states,
        "events": events,
        "clashed": clashed,
        "rounds": rounds,
    }
    why = _failures(seen, counts) + problems
    if why:
        raise ScenarioFailed(f"{'; '.join(why)} -- {figures}")
    return figures


def _clashes(persons, pairs, events):
    """{kind: pairs with an event retried after a clash}."""
    clashed = {"customer": 0, "guest": 0}
    for person, pair in zip(persons, pairs, strict=True):
        if any((events.get(d.webhook_id) or (None, 0, 0, None))[2] for d in pair):
            clashed["customer" if person["customer_id"] else "guest"] += 1
    return clashed
