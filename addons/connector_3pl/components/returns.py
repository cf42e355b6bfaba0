"""Returns (RMA) as the 3PL knows them: pure functions over its dicts, and
the few calls of its returns API.

A return is announced with ``POST /return`` under a unique ``reference_id``
(the RMA: the return receipt's reference), its items by the 3PL's inventory
id. Once processed, each item carries ``action_taken``: what the warehouse
did (``Restock``, ``Quarantine``, ``Dispose``), the condition it found in
Amazon MCF's words (``action_reason``) and the quantity processed.
"""

from odoo.addons.connector_base.components.http_client import answer_json

from .client import Refusal
from .shipment import webhook_schema

COMPLETED_TOPIC = "return.completed"
RETURN_ACTIONS = ("Restock", "Quarantine", "Dispose")
CONDITIONS = [
    ("SELLABLE", "Sellable"),
    ("DEFECTIVE", "Defective"),
    ("CUSTOMER_DAMAGED", "Customer damaged"),
    ("CARRIER_DAMAGED", "Carrier damaged"),
    ("WAREHOUSE_DAMAGED", "Warehouse damaged"),
    ("EXPIRED", "Expired"),
]
CONDITION_LABELS = dict(CONDITIONS)
# Where a condition sends the goods when the backend says nothing else:
# sellable back to stock, damaged goods looked at before anyone decides
# (a claim with the carrier or the 3PL, a repair), expired goods scrapped.
DEFAULT_DISPOSITIONS = {
    "SELLABLE": "restock",
    "DEFECTIVE": "inspect",
    "CUSTOMER_DAMAGED": "inspect",
    "CARRIER_DAMAGED": "inspect",
    "WAREHOUSE_DAMAGED": "inspect",
    "EXPIRED": "scrap",
}
INVENTORY_PAGE = 250
INVENTORY_PAGES = 40

RETURN_SCHEMA = webhook_schema(inventory={"type": "list", "required": True})


def return_key(payload):
    """Messages about one RMA are applied in the order they happened."""
    return f"return:{payload['data']['reference_id']}"


def completed_key(return_id):
    """One return's completion, whether it came by webhook or by reading it."""
    return f"return.completed:{return_id}"


def return_body(reference, center_id, items, original_shipment_id=None):
    """The ``POST /return`` body: ``items`` ``[(inventory id, quantity)]``;
    the same return always gives the same body (a resend is recognised)."""
    body = {
        "reference_id": reference,
        "fulfillment_center": {"id": center_id},
        "inventory": [
            {"id": inventory_id, "quantity": int(quantity), "requested_action": "Default"}
            for inventory_id, quantity in sorted(items)
        ],
    }
    if original_shipment_id:
        body["original_shipment_id"] = original_shipment_id
    return body


def processed(data):
    """What the 3PL processed: ``([(sku, action, condition, quantity)],
    [problems in words])``; an item named by inventory id only is a problem
    (Odoo knows its products by SKU)."""
    rows, problems = [], []
    for item in data.get("inventory") or ():
        sku = item.get("sku") if isinstance(item, dict) else None
        if not sku:
            problems.append(
                f"item {item.get('id') if isinstance(item, dict) else item!r} has no SKU"
            )
            continue
        for taken in item.get("action_taken") or ():
            action = taken.get("action")
            condition = taken.get("action_reason")
            quantity = taken.get("quantity_processed")
            if action not in RETURN_ACTIONS:
                problems.append(f"{sku}: unknown action {action!r}")
            elif condition not in CONDITION_LABELS:
                problems.append(f"{sku}: unknown condition {condition!r}")
            elif not isinstance(quantity, int) or quantity < 0:
                problems.append(f"{sku}: quantity processed {quantity!r} is not a whole number")
            elif quantity:
                rows.append((sku, action, condition, quantity))
    return rows, problems


# --- calls ----------------------------------------------------------------------------


def inventory_ids(client, skus):
    """``{sku: inventory id}`` of the SKUs asked (the 3PL's returns name items
    by inventory id), read page by page until all are found."""
    wanted, found = set(skus), {}
    for page in range(1, INVENTORY_PAGES + 1):
        response = client._request(
            "GET", "inventory", params={"Limit": INVENTORY_PAGE, "Page": page}
        )
        rows = answer_json(response, "GET inventory")
        for row in rows:
            if row.get("sku") in wanted:
                found[row["sku"]] = row["id"]
        if len(found) == len(wanted) or len(rows) < INVENTORY_PAGE:
            break
    return found


def order(client, order_id):
    """The 3PL's order ``order_id`` (its shipments say where it left from)."""
    return answer_json(client._request("GET", f"order/{order_id}"), "GET order")


def announce(client, body):
    """Announce the return ``body`` (idempotent on its reference): the return.
    Raises :class:`Refusal` when the 3PL refuses it."""
    return client._write("return", body)


def return_by_reference(client, reference):
    """The 3PL's return of this RMA, or None."""
    response = client._request("GET", "return", params={"ReferenceIds": reference, "Limit": 50})
    rows = answer_json(response, "GET return")
    return next((r for r in rows if r.get("reference_id") == reference), None)


def read_return(client, return_id):
    return answer_json(client._request("GET", f"return/{return_id}"), "GET return")


__all__ = ["Refusal"]
