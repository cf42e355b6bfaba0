"""Shopify's side of the reconciliations, and the comparisons, as plain Python.

Queries read what Shopify holds (available quantities per location, the
orders of a day), paged; the functions compare that with what Odoo holds and
return one :class:`Difference` per business key that differs.
"""

from odoo.addons.connector_base.components.reconciliation import Difference

from .mapper_order import legacy_id

# InventoryLevel.quantities(names:) takes Shopify's quantity names; "available"
# is what the stock flow sets (inventorySetQuantities, name "available").
LOCATION_LEVELS_QUERY = """
query LocationLevels($id: ID!, $after: String) {
  location(id: $id) {
    id
    inventoryLevels(first: 100, after: $after) {
      edges { node { item { id sku } quantities(names: ["available"]) { name quantity } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
# Only what tells an order apart: its id, number and creation time.
ORDERS_OF_DAY_QUERY = """
query OrdersOfDay($after: String, $query: String) {
  orders(first: 250, after: $after, query: $query, sortKey: CREATED_AT) {
    edges { node { id name createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def iso_utc(moment):
    """A naive UTC datetime in Shopify's search syntax."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def orders_created_search(start, end):
    """The ``query:`` of the orders created in ``[start, end)`` (naive UTC)."""
    return f"created_at:>='{iso_utc(start)}' created_at:<'{iso_utc(end)}'"


def available_by_item(level_nodes):
    """``{inventory item GID: available quantity}`` of InventoryLevel nodes."""
    available = {}
    for node in level_nodes:
        quantities = {q["name"]: q["quantity"] for q in node.get("quantities") or []}
        available[node["item"]["id"]] = quantities.get("available", 0)
    return available


def compare_stock(expected, remote, pending=()):
    """One difference per item and location whose available quantities differ.

    :param expected: rows of what Odoo would push: dicts with ``item`` (GID),
        ``location`` (GID), ``sku``, ``location_name``, ``quantity`` and
        ``fix_data``.
    :param remote: ``{(item GID, location GID): quantity}`` read from Shopify;
        a missing pair is an item not stocked at that location.
    :param pending: ``(item GID, location GID)`` pairs with a push of Odoo's
        quantity still to send (said in the difference: it may settle alone).
    """
    differences = []
    pending = set(pending)
    for row in expected:
        pair = (row["item"], row["location"])
        theirs = remote.get(pair)
        if theirs == row["quantity"]:
            continue
        what = (
            "Available quantity differs"
            if theirs is not None
            else "Not stocked at this Shopify location"
        )
        if pair in pending:
            what += " (a push of Odoo's quantity is waiting to be sent)"
        differences.append(
            Difference(
                key=f"{row['sku'] or row['item']} @ {row['location_name']}",
                what=what,
                odoo_value=str(row["quantity"]),
                remote_value=str(theirs) if theirs is not None else "not stocked",
                fix_data=row["fix_data"],
            )
        )
    return differences


def compare_orders(shopify_orders, imported_ids, failed=None):
    """One difference per order of Shopify that Odoo has not imported.

    :param shopify_orders: Order nodes (``id``, ``name``, ``createdAt``).
    :param imported_ids: numeric ids (str) of the orders bound in Odoo.
    :param failed: ``{numeric id (str): why its event did not apply}``.
    """
    failed = failed or {}
    differences = []
    for order in shopify_orders:
        number = str(legacy_id(order["id"]))
        if number in imported_ids:
            continue
        why = failed.get(number)
        differences.append(
            Difference(
                key=order["name"],
                what=f"Order not imported: {why}" if why else "Order not imported",
                odoo_value=None,
                remote_value=f"{order['name']} created {order['createdAt']}",
                fix_data={"order_id": order["id"]},
            )
        )
    return differences
