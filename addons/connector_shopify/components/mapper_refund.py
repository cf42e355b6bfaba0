"""Shopify refund JSON (refunds/create webhook, REST shape) -> what Odoo needs.

Pure functions over dicts, like :mod:`mapper_order`: each rule reads like a
line of the mapping table and is tested without a database.

- ``refund_line_items[]``: a credit note line of the order line, for the
  refunded quantity at Shopify's refunded ``subtotal``;
- ``restock_type``: ``return`` brings goods back (return picking to the
  mapped ``location_id``), ``cancel`` drops what is not shipped yet,
  ``no_restock`` moves no goods;
- ``order_adjustments[kind=shipping_refund]``: a credit note line of the
  shipping product;
- ``order_adjustments[kind=refund_discrepancy]``: money given back beyond
  (or short of) the refunded lines and shipping, a goodwill refund: a credit
  note line of the backend's refund adjustment product, so that the credit
  note is worth what went back;
- ``transactions[kind=refund, status=success]``: one outbound customer
  payment each, in the journal of its gateway.
"""

from decimal import ROUND_DOWN, Decimal, InvalidOperation

from odoo.addons.connector_base.components.validation import validate_payload

from .mapper_order import (
    AMOUNT,
    GID,
    MONEY,
    MONEY_BAG,
    QUANTITY,
    REF,
    SHOP_MONEY,
    connection,
    legacy_id,
    money,
    nullable_strings,
    shop_amount,
)


def _not_negative(field, value, error):
    try:
        negative = money(value) < 0
    except (InvalidOperation, ValueError, TypeError):
        return  # not an amount at all: AMOUNT's own check says so
    if negative:
        error(field, "must not be negative: it is money given back")


# refund_line_items[].subtotal and .total_tax are JSON numbers in Shopify's
# refunds/create webhook (their *_set bags carry strings); the backfill's
# GraphQL reading gives strings. A refunded subtotal is money given back:
# never below zero (it is split over the refunded units, see split_amount).
REFUNDED_AMOUNT = {**AMOUNT, "check_with": [AMOUNT["check_with"], _not_negative]}

# One refund, read by id when the orders backfill finds one Odoo does not have
# (reading every refund of every order in the orders page would cost too much).
# Its connections are read whole: following pages by the queries below.
_PAGE_INFO = "pageInfo { hasNextPage endCursor }"
_REFUND_LINE = (
    "id quantity restockType location { id } lineItem { id sku title variant { id } } "
    f"subtotalSet {SHOP_MONEY} totalTaxSet {SHOP_MONEY}"
)
_REFUND_SHIPPING = f"subtotalAmountSet {SHOP_MONEY}"
_REFUND_TRANSACTION = f"id kind status gateway amountSet {SHOP_MONEY}"
REFUND_QUERY = f"""
query Refund($id: ID!) {{
  refund(id: $id) {{
    id note createdAt order {{ id }}
    refundLineItems(first: 50) {{ edges {{ node {{ {_REFUND_LINE} }} }} {_PAGE_INFO} }}
    refundShippingLines(first: 5) {{ edges {{ node {{ {_REFUND_SHIPPING} }} }} {_PAGE_INFO} }}
    transactions(first: 10) {{ edges {{ node {{ {_REFUND_TRANSACTION} }} }} {_PAGE_INFO} }}
  }}
}}
"""
# The following pages of each connection of a refund: (field, its node selection).
REFUND_CONNECTIONS = {
    "refundLineItems": _REFUND_LINE,
    "refundShippingLines": _REFUND_SHIPPING,
    "transactions": _REFUND_TRANSACTION,
}


def refund_page_query(field):
    """The query reading the next page of ``field`` of a refund."""
    node = REFUND_CONNECTIONS[field]
    return f"""
query RefundPage($id: ID!, $after: String) {{
  refund(id: $id) {{
    {field}(first: 50, after: $after) {{ edges {{ node {{ {node} }} }} {_PAGE_INFO} }}
  }}
}}
"""


# Shopify's restock types, and what each means for Odoo's stock.
RESTOCK = {
    "return": "return",  # shipped, sent back: goods come back into stock
    "legacy_restock": "return",  # older refunds: restocked, timing unknown
    "cancel": "cancel",  # not shipped yet: it is not going to be
    "no_restock": "none",  # money back only
}

REFUND_SCHEMA = {
    "id": {"type": "integer", "required": True},
    "order_id": {"type": "integer", "required": True},
    "note": {"type": "string", "nullable": True},
    "created_at": {"type": "string", "nullable": True},
    "refund_line_items": {
        "type": "list",
        "schema": {
            "type": "dict",
            "schema": {
                "id": {"type": "integer"},
                "line_item_id": {"type": "integer", "required": True},
                "quantity": QUANTITY,
                "restock_type": {"type": "string", "nullable": True, "allowed": list(RESTOCK)},
                "location_id": {"type": "integer", "nullable": True},
                "subtotal": {**REFUNDED_AMOUNT, "required": True},
                "total_tax": AMOUNT,
                "line_item": {
                    "type": "dict",
                    "nullable": True,
                    "schema": {
                        **nullable_strings("sku", "title", "name"),
                        "variant_id": {"type": "integer", "nullable": True},
                    },
                },
            },
        },
    },
    "transactions": {
        "type": "list",
        "schema": {
            "type": "dict",
            "schema": {
                "id": {"type": "integer"},
                "kind": {"type": "string", "required": True},
                "status": {"type": "string", "nullable": True},
                "gateway": {"type": "string", "nullable": True},
                "amount": {**MONEY, "required": True},
            },
        },
    },
    "order_adjustments": {
        "type": "list",
        "schema": {
            "type": "dict",
            "schema": {
                "kind": {"type": "string", "nullable": True},
                "amount": {**MONEY, "required": True},
                "tax_amount": MONEY,
            },
        },
    },
}


def refund_order_key(payload):
    """A refund is about its order: it is applied after the order's own events."""
    return f"order:{payload['order_id']}"


def refund_line_values(line):
    """One refunded line: which order line, how many, for how much, and the goods' fate."""
    item = line.get("line_item") or {}
    return {
        "line_item_id": str(line["line_item_id"]),
        "sku": (item.get("sku") or "").strip() or None,
        "variant_id": str(item["variant_id"]) if item.get("variant_id") else None,
        "title": item.get("title") or item.get("name") or "",
        "quantity": line["quantity"],
        "restock": RESTOCK[line.get("restock_type") or "no_restock"],
        "location_id": str(line["location_id"]) if line.get("location_id") else None,
        # As the order's prices: tax included when the shop's prices include it.
        "subtotal": money(line["subtotal"]),
        "tax": money(line.get("total_tax")),
    }


def refund_payments(transactions):
    """The money that went back: successful refund transactions only (a pending
    or failed one moved nothing)."""
    return [
        {
            "external_id": str(transaction["id"]) if transaction.get("id") else None,
            "gateway": transaction.get("gateway") or "",
            "amount": money(transaction["amount"]),
        }
        for transaction in transactions or []
        if transaction["kind"] == "refund" and transaction.get("status") == "success"
    ]


def refund_values(refund):
    """The whole refund, as the importer applies it."""
    adjustments = refund.get("order_adjustments") or []
    shipping = [a for a in adjustments if a.get("kind") == "shipping_refund"]
    discrepancies = [a for a in adjustments if a.get("kind") == "refund_discrepancy"]
    payments = refund_payments(refund.get("transactions"))
    return {
        "external_id": str(refund["id"]),
        "order_external_id": str(refund["order_id"]),
        "note": refund.get("note") or False,
        "lines": [refund_line_values(line) for line in refund.get("refund_line_items") or []],
        # Shopify books a shipping refund as a negative adjustment of the order.
        "shipping": -sum((money(a["amount"]) for a in shipping), Decimal(0)),
        # Likewise a discrepancy: here positive when more went back than the
        # lines and shipping are worth (a goodwill refund). Its presence is
        # Shopify's word that the difference is meant, not a rounding of taxes.
        "discrepancy": -sum((money(a["amount"]) for a in discrepancies), Decimal(0)),
        "has_discrepancy": bool(discrepancies),
        "payments": payments,
        "amount": sum((p["amount"] for p in payments), Decimal(0)),
    }


def split_amount(amount, quantity, digits=2):
    """``[(quantity, unit price)]`` whose total is ``amount`` to the cent.

    A refunded subtotal does not always divide by its quantity (10.00 for 3);
    rather than a rounded unit price that misses Shopify's amount, some units
    carry one more cent: 3.33 x 2 + 3.34 x 1.
    """
    step = Decimal(1).scaleb(-digits)
    amount = Decimal(amount).quantize(step)
    unit = (amount / quantity).quantize(step, rounding=ROUND_DOWN)
    extra = int((amount - unit * quantity) / step)
    if not extra:
        return [(quantity, unit)]
    return [(quantity - extra, unit), (extra, unit + step)]


REFUND_NODE_SCHEMA = {
    "id": {**GID, "required": True},
    **nullable_strings("note", "createdAt"),
    "order": {**REF, "required": True, "nullable": False},
    "refundLineItems": connection(
        {
            "id": {**GID, "required": True},
            "quantity": {"type": "integer", "required": True},
            "restockType": {"type": "string", "nullable": True},
            "location": REF,
            "lineItem": {
                "type": "dict",
                "required": True,
                "schema": {
                    "id": {**GID, "required": True},
                    **nullable_strings("sku", "title"),
                    "variant": REF,
                },
            },
            "subtotalSet": MONEY_BAG,
            "totalTaxSet": MONEY_BAG,
        },
        required=False,
    ),
    "refundShippingLines": connection({"subtotalAmountSet": MONEY_BAG}, required=False),
    "transactions": connection(
        {
            "id": {**GID, "required": True},
            **nullable_strings("kind", "status", "gateway"),
            "amountSet": MONEY_BAG,
        },
        required=False,
    ),
}


def refund_from_graphql(node):
    """A refund read with :data:`REFUND_QUERY`, in the webhook shape the import
    takes: a refund a missed webhook dropped comes in by the backfill.

    Raises ``PayloadError`` naming each field of ``node`` it cannot read.
    """
    validate_payload(REFUND_NODE_SCHEMA, node)

    def nodes(connection):
        return [edge["node"] for edge in (connection or {}).get("edges", [])]

    return {
        "id": legacy_id(node["id"]),
        "order_id": legacy_id(node["order"]["id"]),
        "note": node.get("note"),
        "created_at": node.get("createdAt"),
        "refund_line_items": [
            {
                "id": legacy_id(line["id"]),
                "line_item_id": legacy_id(line["lineItem"]["id"]),
                "quantity": line["quantity"],
                "restock_type": (line.get("restockType") or "NO_RESTOCK").lower(),
                "location_id": legacy_id(line["location"]["id"]) if line.get("location") else None,
                "subtotal": shop_amount(line.get("subtotalSet")),
                "total_tax": shop_amount(line.get("totalTaxSet")),
                "line_item": {
                    "id": legacy_id(line["lineItem"]["id"]),
                    "sku": line["lineItem"].get("sku"),
                    "title": line["lineItem"].get("title"),
                    "variant_id": legacy_id(line["lineItem"]["variant"]["id"])
                    if line["lineItem"].get("variant")
                    else None,
                },
            }
            for line in nodes(node.get("refundLineItems"))
        ],
        "transactions": [
            {
                "id": legacy_id(transaction["id"]),
                "kind": (transaction.get("kind") or "").lower(),
                "status": (transaction.get("status") or "").lower(),
                "gateway": transaction.get("gateway"),
                "amount": shop_amount(transaction.get("amountSet")),
            }
            for transaction in nodes(node.get("transactions"))
        ],
        # As the webhook has it: a refunded shipping is a negative adjustment.
        "order_adjustments": [
            {
                "kind": "shipping_refund",
                "amount": str(-money(shop_amount(shipping.get("subtotalAmountSet")))),
            }
            for shipping in nodes(node.get("refundShippingLines"))
        ],
    }
