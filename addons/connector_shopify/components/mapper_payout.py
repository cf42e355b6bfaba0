"""Shopify Payments payouts and balance transactions -> plain values.

Amounts stay as Shopify gives them (``MoneyV2`` decimal strings, read as
``Decimal``): nothing is recomputed here. A payout's balance transactions
are read per payout with the ``payments_transfer_id`` search field.
"""

from decimal import Decimal, InvalidOperation

from odoo.addons.connector_base.components.validation import validate_payload

from .mapper_order import GID, MONEY, REF, legacy_id, nullable_strings

# Shopify's limit on query cost is 1000 points: a payout costs about 13
# (its summary holds ten MoneyV2), a balance transaction about 6.
PAYOUTS_PAGE_SIZE = 50
TRANSACTIONS_PAGE_SIZE = 100

_MONEY = "{ amount currencyCode }"
SUMMARY_FIELDS = {
    # Shopify's ShopifyPaymentsPayoutSummary field -> our payout field
    "chargesGross": "charges_gross",
    "chargesFee": "charges_fee",
    "refundsFeeGross": "refunds_gross",
    "refundsFee": "refunds_fee",
    "adjustmentsGross": "adjustments_gross",
    "adjustmentsFee": "adjustments_fee",
    "reservedFundsGross": "reserved_funds_gross",
    "reservedFundsFee": "reserved_funds_fee",
    "retriedPayoutsGross": "retried_payouts_gross",
    "retriedPayoutsFee": "retried_payouts_fee",
}

PAYOUTS_QUERY = f"""
query Payouts($first: Int!, $after: String, $query: String) {{
  shopifyPaymentsAccount {{
    payouts(first: $first, after: $after, query: $query, sortKey: ISSUED_AT) {{
      edges {{ node {{
        id legacyResourceId issuedAt status transactionType
        net {_MONEY}
        summary {{ {" ".join(f"{name} {_MONEY}" for name in SUMMARY_FIELDS)} }}
      }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""
PAYOUTS_QUERY_COST = 3 + PAYOUTS_PAGE_SIZE * (3 + len(SUMMARY_FIELDS))

TRANSACTIONS_QUERY = f"""
query PayoutTransactions($first: Int!, $after: String, $query: String) {{
  shopifyPaymentsAccount {{
    balanceTransactions(first: $first, after: $after, query: $query, sortKey: ID) {{
      edges {{ node {{
        id type sourceType adjustmentReason transactionDate test
        amount {_MONEY} fee {_MONEY} net {_MONEY}
        associatedOrder {{ id name }}
        associatedPayout {{ id status }}
      }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""
TRANSACTIONS_QUERY_COST = 3 + TRANSACTIONS_PAGE_SIZE * 6

# What the mappers read of a node, typed as Shopify's schema types it: a node
# they could not read is refused field by field.
MONEY_V2 = {
    "type": "dict",
    "nullable": True,
    "schema": {
        "amount": {**MONEY, "required": True},
        "currencyCode": {"type": "string", "nullable": True},
    },
}
PAYOUT_NODE_SCHEMA = {
    "id": {**GID, "required": True},
    # UnsignedInt64: a string in JSON, read as text anyway.
    "legacyResourceId": {"type": ["string", "integer"], "nullable": True},
    **nullable_strings("issuedAt", "status", "transactionType"),
    "net": MONEY_V2,
    "summary": {
        "type": "dict",
        "nullable": True,
        "schema": dict.fromkeys(SUMMARY_FIELDS, MONEY_V2),
    },
}
TRANSACTION_NODE_SCHEMA = {
    "id": {"type": "string", "required": True},
    **nullable_strings("type", "sourceType", "adjustmentReason", "transactionDate"),
    "test": {"type": "boolean", "nullable": True},
    "amount": MONEY_V2,
    "fee": MONEY_V2,
    "net": MONEY_V2,
    "associatedOrder": {**REF, "schema": {**REF["schema"], **nullable_strings("name")}},
    "associatedPayout": {
        "type": "dict",
        "nullable": True,
        "schema": nullable_strings("id", "status"),
    },
}

# ShopifyPaymentsPayoutStatus -> payout status
PAYOUT_STATUSES = {
    "SCHEDULED": "scheduled",
    "IN_TRANSIT": "in_transit",
    "PAID": "paid",
    "FAILED": "failed",
    "CANCELED": "canceled",
}
# Statuses a payout may still leave: read again on the next imports.
OPEN_STATUSES = ("scheduled", "in_transit")


def payouts_search(since):
    """Shopify's search string for the payouts issued since ``since`` (ISO time)."""
    return f"issued_at:>='{since}'"


def transactions_search(payout_number):
    """Shopify's search string for the balance transactions of one payout."""
    return f"payments_transfer_id:{payout_number}"


def amount(money):
    """A ``MoneyV2`` as ``(Decimal amount, currency code)``; ``(0, None)`` when absent."""
    if not money:
        return Decimal(0), None
    try:
        return Decimal(str(money["amount"])), money.get("currencyCode")
    except (InvalidOperation, KeyError) as exc:
        raise ValueError(f"Shopify sent an amount that is not a number: {money!r}") from exc


def transaction_category(shopify_type):
    """What a balance transaction is, in an accountant's words.

    Shopify's ShopifyPaymentsTransactionType has many values (and gains
    some): they fall into a few kinds; the raw type is kept beside it.
    """
    kind = (shopify_type or "").upper()
    if kind == "CHARGE":
        return "charge"
    if kind.startswith("REFUND"):
        return "refund"
    if kind.startswith(("DISPUTE", "CHARGEBACK")):
        return "dispute"
    if kind.startswith("RESERVED_FUNDS"):
        return "reserved_funds"
    if "ADJUSTMENT" in kind:
        return "adjustment"
    return "other"


def payout_values(node):
    """A payout node of :data:`PAYOUTS_QUERY` as plain values (Decimal amounts).

    Raises ``PayloadError`` naming each field of ``node`` it cannot read.
    """
    validate_payload(PAYOUT_NODE_SCHEMA, node)
    net, currency = amount(node.get("net"))
    summary = node.get("summary") or {}
    return {
        "external_id": node["id"],
        "shopify_payout_id": str(node.get("legacyResourceId") or legacy_id(node["id"])),
        "issued_at": node.get("issuedAt"),
        # A status newer than this code is kept as Shopify names it, unmapped.
        "status": PAYOUT_STATUSES.get(node.get("status"), False),
        "shopify_status": node.get("status"),
        "transaction_type": (node.get("transactionType") or "DEPOSIT").lower(),
        "currency_code": currency,
        "net_amount": net,
        **{ours: amount(summary.get(theirs))[0] for theirs, ours in SUMMARY_FIELDS.items()},
    }


def transaction_values(node):
    """A balance transaction node of :data:`TRANSACTIONS_QUERY` as plain values.

    Raises ``PayloadError`` naming each field of ``node`` it cannot read.
    """
    validate_payload(TRANSACTION_NODE_SCHEMA, node)
    gross, currency = amount(node.get("amount"))
    order = node.get("associatedOrder") or {}
    payout = node.get("associatedPayout") or {}
    return {
        "external_id": node["id"],
        "shopify_type": node.get("type"),
        "category": transaction_category(node.get("type")),
        "source_type": node.get("sourceType"),
        "adjustment_reason": node.get("adjustmentReason"),
        "processed_at": node.get("transactionDate"),
        "test": bool(node.get("test")),
        "currency_code": currency,
        "amount": gross,
        "fee": amount(node.get("fee"))[0],
        "net_amount": amount(node.get("net"))[0],
        # Order ids are kept numeric, as the order bindings hold them.
        "shopify_order_id": str(legacy_id(order["id"])) if order.get("id") else False,
        "shopify_order_name": order.get("name") or False,
        "payout_external_id": payout.get("id"),
    }
