"""1,000 stock changes sent to a slow Shopify while the same products' stock moves.

The store is set up for 1,000 distinct stock changes: LOCATIONS Shopify
locations mapped to Odoo locations (the simulated store's, plus one added
to it) and enough bound SKUs (the store's, and new ones created on both
sides and bound by SKU, as *Bind products* does). Shopify answers each
``inventorySetQuantities`` after LATENCY seconds. The reconciliation (*Push
stock*) queues one change per SKU and location; for as long as they are
being sent, receipts of the new products are validated through RPC, one
every PACE seconds, as users click *Validate*, each on a product whose
change is being sent at that moment when there is one.

Expected: every validation answers within 1 s, as the user sees it, and
none is done again after a serialization failure (a claim is short, a send
holds no lock a stock move waits for, and a change whose key is claimed
under a validation's feet is queued beside it, unmerged; nor may the sends
hold every worker: the time a Validate spent in Odoo, from the server's
request log, is printed beside it);
afterwards every change, and those the receipts made, sent (none left
pending, sending or failed); Shopify's available quantity of every bound SKU
at every mapped location equal to Odoo's.

The mappings, bindings and products set up here are undone at the end.
"""

import collections
import math
import random
import re
import secrets
import time
from decimal import Decimal

from .harness import (
    ScenarioFailed,
    shopify_stock_mismatches,
    silenced,
    unsent_changes,
    wait_idle,
    wait_sent,
    wait_until,
)

TOPIC = "inventory.set"
CHANGES = 1000
LOCATIONS = 4
LATENCY = 3.0
SET_QUANTITIES = "graphql:inventorySetQuantities"
# Receipts prepared per mapped location, validated one every PACE seconds
# (what a few users do) for as long as stock changes remain to send.
RECEIPTS_PER_LOCATION = 12
PACE = 0.4
MAX_VALIDATION_SECONDS = 1.0
# 1,000 changes are 4 calls of 3 s; the receipts' changes a few more.
DRAIN_TIMEOUT = 120
# What an earlier scenario left to send is sent within this.
SETTLE_TIMEOUT = 60
ADDED_LOCATION = "Reliability Depot"
# The request line Odoo logs for a Validate: its SQL time and the rest, in seconds.
VALIDATE_LINE = re.compile(
    r"POST /web/dataset/call_kw/stock\.picking/button_validate\S* HTTP/[\d.]+\" 200 - "
    r"\d+ (?P<sql>[\d.]+) (?P<rest>[\d.]+)"
)
# No WARNING or ERROR is expected in the Odoo log.
ALLOWED_LOG = ()


def _map_locations(stack, warehouse):
    """LOCATIONS Shopify locations mapped to Odoo internal locations, adding
    a location to the store and mapping unmapped ones (each to a new Odoo
    location under the warehouse) as needed. Returns the mapped
    ``(shopify.location id, GID, name, Odoo location id)`` and the ids of the
    shopify.location records mapped here."""
    shop = stack.shop
    known = stack.sql.value(
        "SELECT count(*) FROM shopify_location WHERE backend_id = %s AND active",
        (stack.backend_id,),
    )
    if known < LOCATIONS:
        with shop.lock:
            store = shop.store
            for number in range(LOCATIONS - known):
                name = f"{ADDED_LOCATION} {number + 1}"
                if any(loc["name"] == name for loc in store.locations.values()):
                    continue
                location = store.add_location(
                    {
                        "name": name,
                        "kind": "store",
                        "address": {
                            "address1": f"{number + 1} Quai du Test",
                            "city": "Lyon",
                            "zip": "69002",
                            "country_code": "FR",
                        },
                    }
                )
                for item_id in store.inventory_items:
                    store.level(item_id, location["id"])
        stack.rpc("connector.backend", "action_shopify_import_locations", [stack.backend_id])
    rows = stack.sql(
        "SELECT id, external_id, name, location_id FROM shopify_location "
        "WHERE backend_id = %s AND active ORDER BY location_id IS NULL, id",
        (stack.backend_id,),
    )[:LOCATIONS]
    mapped, newly = [], []
    for location_id, external_id, name, mapped_to in rows:
        odoo_location = mapped_to
        if not odoo_location:
            odoo_location = stack.rpc(
                "stock.location",
                "create",
                {
                    "name": f"Shopify {name}",
                    "location_id": warehouse["view"],
                    "usage": "internal",
                },
            )
            stack.rpc(
                "shopify.location",
                "write",
                [location_id],
                {"location_id": odoo_location, "warehouse_id": warehouse["id"]},
            )
            newly.append(location_id)
        mapped.append((location_id, external_id, name, odoo_location))
    return mapped, newly


def _add_products(stack, count, tag):
    """``count`` new SKUs in the store (one product each, stocked nowhere yet)
    and in Odoo, bound by SKU. Returns {Odoo product id: inventory item GID}."""
    if count <= 0:
        return {}
    skus = [f"REL-FLUSH-{tag}-{number:03d}" for number in range(1, count + 1)]
    shop = stack.shop
    with shop.lock:
        store = shop.store
        for sku in skus:
            product = store.add_product(
                {
                    "title": f"Flush test {sku}",
                    "variants": [{"sku": sku, "price": Decimal("9.90")}],
                }
            )
            for variant_id in product["_variants"]:
                for location_id in store.locations:
                    store.level(store.variants[variant_id]["_inventory_item"], location_id)
    stack.rpc(
        "product.product",
        "create",
        [{"name": f"Flush test {sku}", "default_code": sku, "is_storable": True} for sku in skus],
    )
    stack.rpc("connector.backend", "action_shopify_bind_products", [stack.backend_id])
    return dict(
        stack.sql(
            "SELECT b.odoo_id, b.inventory_item_id FROM shopify_product_binding b "
            "JOIN product_product pp ON pp.id = b.odoo_id "
            "WHERE b.backend_id = %s AND pp.default_code IN %s",
            (stack.backend_id, tuple(skus)),
        )
    )


def _prepare_receipts(stack, rng, warehouse, items, mapped):
    """Confirmed receipts, RECEIPTS_PER_LOCATION per mapped location, each of
    one new product into that location. Returns [(picking id, change key)]."""
    products = list(items)
    receipts = []
    for _location_id, external_id, _name, odoo_location in mapped:
        chosen = rng.sample(products, k=min(RECEIPTS_PER_LOCATION, len(products)))
        ids = stack.rpc(
            "stock.picking",
            "create",
            [
                {
                    "picking_type_id": warehouse["receipt_type"],
                    "location_id": warehouse["supplier"],
                    "location_dest_id": odoo_location,
                    "move_ids": [
                        [
                            0,
                            0,
                            {
                                "product_id": product_id,
                                "product_uom_qty": rng.randint(1, 6),
                                "location_id": warehouse["supplier"],
                                "location_dest_id": odoo_location,
                            },
                        ]
                    ],
                }
                for product_id in chosen
            ],
        )
        stack.rpc("stock.picking", "action_confirm", ids)
        receipts += [
            (picking_id, f"{items[product_id]}@{external_id}")
            for picking_id, product_id in zip(ids, chosen, strict=True)
        ]
    return receipts


def _validate_while_sending(stack, receipts):
    """Validate receipts while stock changes remain to send, one every PACE
    seconds, each timed; a receipt whose change key is being sent first.
    Returns [(seconds, state of its key when validated)], the receipts left,
    and the most flush jobs seen sending at once."""
    left = list(receipts)
    timings = []
    jobs_at_once = 0
    next_at = time.monotonic()
    while left and unsent_changes(stack, (TOPIC,)):
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at = time.monotonic() + PACE
        flying = {
            key: (state, job)
            for key, state, job in stack.sql(
                "SELECT coalescing_key, state, claim_job_uuid FROM connector_outbound "
                "WHERE backend_id = %s AND topic = %s AND state IN ('pending', 'sending')",
                (stack.backend_id, TOPIC),
            )
        }
        jobs_at_once = max(jobs_at_once, len({job for _state, job in flying.values() if job}))
        rank = {"sending": 0, "pending": 1}
        left.sort(key=lambda receipt: rank.get(flying.get(receipt[1], ("sent",))[0], 2))
        picking_id, key = left.pop(0)
        started = time.monotonic()
        result = stack.rpc("stock.picking", "button_validate", [picking_id])
        seconds = time.monotonic() - started
        if isinstance(result, dict) and result.get("res_model"):
            raise ScenarioFailed(f"validating receipt {picking_id} asked for {result['res_model']}")
        state = stack.sql.value("SELECT state FROM stock_picking WHERE id = %s", (picking_id,))
        if state != "done":
            raise ScenarioFailed(f"receipt {picking_id} is {state} after Validate")
        timings.append((seconds, flying.get(key, ("sent",))[0]))
    return timings, left, jobs_at_once


def _server_seconds(stack, log_mark):
    """Seconds each Validate spent in Odoo (SQL and the rest), from the
    request lines the server logged, in order."""
    return [
        float(match["sql"]) + float(match["rest"])
        for match in (VALIDATE_LINE.search(record) for record in stack.server.log.records(log_mark))
        if match
    ]


def _restore(stack, newly_mapped, new_products, receipts_left):
    """Undo the setup: receipts not validated cancelled, the new products
    unbound and archived, the locations mapped here unmapped."""
    if receipts_left:
        stack.rpc("stock.picking", "action_cancel", [picking_id for picking_id, _ in receipts_left])
    if new_products:
        bindings = [
            row[0]
            for row in stack.sql(
                "SELECT id FROM shopify_product_binding WHERE backend_id = %s AND odoo_id IN %s",
                (stack.backend_id, tuple(new_products)),
            )
        ]
        stack.rpc("shopify.product.binding", "unlink", bindings)
        stack.rpc("product.product", "write", list(new_products), {"active": False})
    if newly_mapped:
        stack.rpc(
            "shopify.location",
            "write",
            newly_mapped,
            {"location_id": False, "warehouse_id": False},
        )


def _percentile(values, share):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else 0.0


def _warehouse(stack):
    """The backend's warehouse: its id, view location, receipt type, and a supplier location."""
    warehouse_id, view, receipt_type = stack.sql(
        "SELECT w.id, w.view_location_id, t.id FROM connector_backend be "
        "JOIN stock_warehouse w ON w.id = be.shopify_warehouse_id "
        "JOIN stock_picking_type t ON t.warehouse_id = w.id AND t.code = 'incoming' "
        "WHERE be.id = %s ORDER BY t.id LIMIT 1",
        (stack.backend_id,),
    )[0]
    return {
        "id": warehouse_id,
        "view": view,
        "receipt_type": receipt_type,
        "supplier": stack.sql.value(
            "SELECT id FROM stock_location WHERE usage = 'supplier' ORDER BY id LIMIT 1"
        ),
    }


def _flush(stack, receipts):
    """Push stock with Shopify slow, validate receipts meanwhile, wait until
    everything is sent; what was measured."""
    shop = stack.shop
    measured = {
        "since_id": stack.sql.value("SELECT COALESCE(max(id), 0) FROM connector_outbound"),
        "log_mark": stack.server.log.mark(),
        "timed_out": None,
    }
    since_request = max((e["seq"] for e in shop.requests.entries()), default=0)
    shop.faults.add("latency", latency=LATENCY, endpoint=SET_QUANTITIES)
    started = time.monotonic()
    stack.rpc("connector.backend", "action_shopify_push_stock", [stack.backend_id])
    measured["queued_in"] = time.monotonic() - started
    measured["timings"], measured["left"], measured["jobs_at_once"] = _validate_while_sending(
        stack, receipts
    )
    try:
        wait_until(
            lambda: not unsent_changes(stack, (TOPIC,), measured["since_id"]),
            DRAIN_TIMEOUT,
            interval=0.5,
            what="every stock change sent",
        )
    except ScenarioFailed as exc:
        measured["timed_out"] = str(exc)
    measured["drained_in"] = time.monotonic() - started
    measured["calls"] = collections.Counter(
        entry["status"]
        for entry in shop.requests.entries(since_request)
        if SET_QUANTITIES in (entry.get("names") or ())
    )
    return measured


def run(stack):
    rng = random.Random(stack.seed)
    shop = stack.shop
    wait_idle(stack)
    wait_sent(stack, (TOPIC,), SETTLE_TIMEOUT, what="earlier stock sent")
    warehouse = _warehouse(stack)
    newly_mapped, new_products, receipts_left = [], {}, []
    # The store sends no webhook: the backend subscribes to none of the
    # inventory_levels/update webhooks 1,000 level changes would make.
    with silenced(shop):
        try:
            mapped, newly_mapped = _map_locations(stack, warehouse)
            bound = stack.sql.value(
                "SELECT count(*) FROM shopify_product_binding WHERE backend_id = %s "
                "AND inventory_item_id IS NOT NULL",
                (stack.backend_id,),
            )
            new_products = _add_products(
                stack,
                max(math.ceil(CHANGES / len(mapped)) - bound, RECEIPTS_PER_LOCATION),
                secrets.token_hex(2),
            )
            receipts = receipts_left = _prepare_receipts(
                stack, rng, warehouse, new_products, mapped
            )
            measured = _flush(stack, receipts)
            receipts_left = measured["left"]
            states = dict(
                stack.sql(
                    "SELECT state, count(*) FROM connector_outbound "
                    "WHERE backend_id = %s AND topic = %s AND id > %s GROUP BY state",
                    (stack.backend_id, TOPIC, measured["since_id"]),
                )
            )
            keys = stack.sql.value(
                "SELECT count(DISTINCT coalescing_key) FROM connector_outbound "
                "WHERE backend_id = %s AND topic = %s AND id > %s",
                (stack.backend_id, TOPIC, measured["since_id"]),
            )
            unmerged = stack.sql.value(
                "SELECT count(*) FROM connector_outbound "
                "WHERE backend_id = %s AND topic = %s AND id > %s AND unmerged",
                (stack.backend_id, TOPIC, measured["since_id"]),
            )
            compared, mismatches = shopify_stock_mismatches(stack)
        finally:
            shop.faults.clear()
            _restore(stack, newly_mapped, new_products, receipts_left)
    retries = len(stack.server.log.records(measured["log_mark"], r"tries left, try again in"))
    seconds = [s for s, _state in measured["timings"]]
    in_odoo = _server_seconds(stack, measured["log_mark"])
    overlaps = collections.Counter(state for _s, state in measured["timings"])
    calls = measured["calls"]
    slow = [s for s in seconds if s >= MAX_VALIDATION_SECONDS]
    figures = (
        f"{states.get('sent', 0)} changes sent for {keys} keys ({len(mapped)} locations, "
        f"queued in {measured['queued_in']:.1f} s) {dict(sorted(states.items()))}; "
        f"{sum(calls.values())} inventorySetQuantities calls "
        f"({', '.join(f'HTTP {s} x{n}' for s, n in sorted(calls.items(), key=str))}) "
        f"of {LATENCY:g} s, up to {measured['jobs_at_once']} flush jobs sending at once; "
        f"{len(seconds)} receipts validated meanwhile ({overlaps['sending']} on a change "
        f"being sent, {overlaps['pending']} on one pending): max {max(seconds, default=0):.2f} s, "
        f"p95 {_percentile(seconds, 0.95):.2f} s (in Odoo: max {max(in_odoo, default=0):.2f} s); "
        f"{unmerged} queued unmerged beside a change being claimed; "
        f"{retries} serialization retries; drained in {measured['drained_in']:.1f} s; "
        f"{compared - len(mismatches)}/{compared} SKU x location equal in Shopify"
    )
    why = []
    if keys < CHANGES:
        why.append(f"only {keys} distinct changes queued")
    if measured["timed_out"]:
        why.append(measured["timed_out"])
    if retries:
        why.append(f"{retries} validations clashed with a send and were done again")
    if slow:
        why.append(f"{len(slow)} validations took {MAX_VALIDATION_SECONDS:g} s or more")
    if not overlaps["sending"]:
        why.append("no receipt validated while its change was being sent: nothing proven")
    for state in ("pending", "sending", "failed"):
        if states.get(state):
            why.append(f"{states[state]} changes {state}")
    if mismatches:
        why.append(
            f"{len(mismatches)} SKU x location differ, e.g. "
            + ", ".join(f"{sku}@{loc}: Shopify {r}, Odoo {o}" for sku, loc, r, o in mismatches[:3])
        )
    if why:
        raise ScenarioFailed(f"{'; '.join(why)} -- {figures}")
    return figures
