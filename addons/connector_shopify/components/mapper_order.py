"""Shopify order JSON (webhook shape) -> what Odoo needs, field by field.

Pure functions over dicts: no database, so each rule reads like a line of a
mapping table and is tested on its own.
"""

import math
import re
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

from odoo.addons.connector_base.components.validation import PayloadError, validate_payload

# Bounded so that every amount converts to a finite float: a price of more
# than fifteen digits, or with more than ten decimals, is not one Shopify sends.
MONEY = {"type": "string", "regex": r"-?\d{1,15}(\.\d{1,10})?"}
# Shopify's quantities are GraphQL Int: 32-bit.
QUANTITY = {"type": "integer", "required": True, "min": 1, "max": 2**31 - 1}


def _finite(field, value, error):
    """Python's json reads NaN and Infinity: they pass cerberus' number type and bounds."""
    if isinstance(value, float) and not math.isfinite(value):
        error(field, "must be a finite number")


def nullable_strings(*names):
    return {name: {"type": "string", "nullable": True} for name in names}


def shopify_time(value):
    """Shopify's ISO 8601 time (``2026-11-23T10:00:00-05:00``) as Odoo keeps
    times: naive UTC. None when empty; ValueError when not a time."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _iso_time(field, value, error):
    try:
        shopify_time(value)
    except (ValueError, OverflowError):
        error(field, "must be an ISO 8601 time, e.g. 2026-11-23T10:00:00-05:00")


TIME = {"type": "string", "nullable": True, "check_with": _iso_time}


ADDRESS = {
    "type": "dict",
    "nullable": True,
    "schema": nullable_strings(
        "name",
        "first_name",
        "last_name",
        "company",
        "address1",
        "address2",
        "city",
        "zip",
        "phone",
        "country_code",
        "province_code",
    ),
}
CUSTOMER = {
    "type": "dict",
    "nullable": True,
    "schema": {
        "id": {"type": "integer", "nullable": True},
        **nullable_strings("first_name", "last_name", "email", "phone"),
        "email_marketing_consent": {
            "type": "dict",
            "nullable": True,
            "schema": nullable_strings("state"),
        },
        "default_address": ADDRESS,
    },
}
TAX_LINES = {
    "type": "list",
    "schema": {
        "type": "dict",
        "schema": {
            # What the shop calls it ("VAT", "NY State Tax"): with the rate, the
            # key of the backend's tax mapping.
            "title": {"type": "string", "nullable": True},
            # A fraction (0.2 is 20 %); bounded so that the percentage stays a number.
            "rate": {
                "type": "number",
                "required": True,
                "min": 0,
                "max": 10,
                "check_with": _finite,
            },
            "price": MONEY,
        },
    },
}

# A line's or shipping line's share of each discount of the order: Shopify's
# documented source of discount amounts (storefront codes, automatic and POS
# discounts leave a line's total_discount at zero).
DISCOUNT_ALLOCATIONS = {
    "type": "list",
    "nullable": True,
    "schema": {
        "type": "dict",
        "schema": {
            "amount": {**MONEY, "required": True},
            "discount_application_index": {"type": "integer", "nullable": True},
        },
    },
}

# Fulfillments that ship nothing; any other status (success, or open and
# pending with a fulfillment service) has the units out of Shopify's hands.
GONE_FULFILLMENTS = ("cancelled", "error", "failure")
FULFILLMENTS = {
    "type": "list",
    "nullable": True,
    "schema": {
        "type": "dict",
        "schema": {
            "id": {"type": "integer", "nullable": True},
            "status": {"type": "string", "nullable": True},
            "line_items": {
                "type": "list",
                "nullable": True,
                "schema": {
                    "type": "dict",
                    "schema": {
                        "id": {"type": "integer", "required": True},
                        "quantity": {**QUANTITY, "min": 0},
                    },
                },
            },
        },
    },
}

ORDER_SCHEMA = {
    "id": {"type": "integer", "required": True},
    "name": {"type": "string", "required": True},
    "currency": {"type": "string", "required": True, "regex": "[A-Z]{3}"},
    "taxes_included": {"type": "boolean", "required": True},
    "email": {"type": "string", "nullable": True},
    "phone": {"type": "string", "nullable": True},
    "note": {"type": "string", "nullable": True},
    "financial_status": {"type": "string", "nullable": True},
    # The gateways the order was paid through, in the order they were used.
    "payment_gateway_names": {"type": "list", "nullable": True, "schema": {"type": "string"}},
    # null, partial, fulfilled or restocked: told for the whole order; what
    # each line shipped is read from ``fulfillments``.
    "fulfillment_status": {"type": "string", "nullable": True},
    "fulfillments": FULFILLMENTS,
    "cancelled_at": {"type": "string", "nullable": True},
    "created_at": TIME,
    "processed_at": TIME,
    "updated_at": TIME,
    "total_price": MONEY,
    "total_tax": MONEY,
    "customer": CUSTOMER,
    "billing_address": ADDRESS,
    "shipping_address": ADDRESS,
    "line_items": {
        "type": "list",
        "required": True,
        "minlength": 1,
        "schema": {
            "type": "dict",
            "schema": {
                "id": {"type": "integer", "required": True},
                "sku": {"type": "string", "nullable": True},
                "variant_id": {"type": "integer", "nullable": True},
                "title": {"type": "string"},
                "name": {"type": "string", "nullable": True},
                "quantity": QUANTITY,
                "fulfillable_quantity": {"type": "integer", "nullable": True, "min": 0},
                "fulfillment_status": {"type": "string", "nullable": True},
                "price": {**MONEY, "required": True},
                "total_discount": MONEY,
                "discount_allocations": DISCOUNT_ALLOCATIONS,
                "tax_lines": TAX_LINES,
            },
        },
    },
    "shipping_lines": {
        "type": "list",
        "schema": {
            "type": "dict",
            "schema": {
                "title": {"type": "string"},
                "price": {**MONEY, "required": True},
                "discounted_price": MONEY,
                "discount_allocations": DISCOUNT_ALLOCATIONS,
                "tax_lines": TAX_LINES,
            },
        },
    },
}

CANCEL_SCHEMA = {
    "id": {"type": "integer", "required": True},
    "name": {"type": "string"},
    "cancelled_at": {"type": "string", "nullable": True},
    "cancel_reason": {"type": "string", "nullable": True},
}


def money(value):
    """An amount as Decimal, from Shopify's decimal string or JSON number (its
    shortest decimal form, not the binary float's digits)."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    return Decimal(value or "0")


def _amount(field, value, error):
    # Cerberus runs check_with even on a null or a value of the wrong type:
    # its nullable and type rules report those, this one only judges amounts.
    if value is None or not isinstance(value, str | int | float):
        return
    if isinstance(value, str):
        if not AMOUNT_TEXT.fullmatch(value):
            error(field, "must be an amount such as 12.50")
    elif isinstance(value, bool) or not math.isfinite(value) or abs(value) >= 10**15:
        error(field, "must be a finite amount under 10^15")


# Money where Shopify writes it as a JSON number in one place and a string in
# another (refund line amounts are numbers, their *_set bags strings).
AMOUNT_TEXT = re.compile(MONEY["regex"])
AMOUNT = {"type": ["string", "number"], "check_with": _amount}


# Digits of the discount percentage, which the module sets on the 'Discount'
# decimal precision (ShopifyOrderImporter._ensure_discount_digits): the
# percentage that gives Shopify's net line amount to the cent for any line
# under a million.
DISCOUNT_DIGITS = 6
_DISCOUNT_STEP = Decimal(1).scaleb(-DISCOUNT_DIGITS)


def taxes(tax_lines):
    """A line's taxes: title and rate as a percentage (0.2 -> 20.0), zero rates left out."""
    found = {}
    for tax in tax_lines or []:
        if tax.get("rate"):
            rate = round(float(tax["rate"]) * 100, 4)
            found.setdefault(rate, (tax.get("title") or "").strip())
    return [{"title": title, "rate": rate} for rate, title in sorted(found.items())]


def tax_rates(tax_lines):
    """Rates of a line's taxes, as percentages (0.2 -> 20.0), zero rates left out."""
    return [tax["rate"] for tax in taxes(tax_lines)]


def allocated(allocations):
    """What a line's discount allocations take off it, in the shop currency."""
    return sum((money(allocation.get("amount")) for allocation in allocations or []), Decimal(0))


def discount_percent(gross, discount):
    """The percentage that takes ``discount`` off ``gross``, to DISCOUNT_DIGITS.

    Odoo keeps a line's discount as a percentage; rounded to six digits, the
    net it gives (gross x (1 - percent / 100), rounded to the cent as Odoo
    does per line) is Shopify's for any gross under a million.
    """
    if not gross or not discount:
        return 0.0
    percent = (discount / gross * 100).quantize(_DISCOUNT_STEP, rounding=ROUND_HALF_UP)
    return float(percent)


def line_values(line):
    """One order line: what it sells, how many, at what unit price and discount.

    The discount is the sum of the line's ``discount_allocations``: storefront
    codes, automatic, POS and order-level discounts are only there (the line's
    ``total_discount`` stays at zero for them). ``total_discount`` is read
    only for a line that has no allocation at all, as draft orders and the API
    may set it alone.
    """
    quantity = line["quantity"]
    unit_price = money(line["price"])
    gross = unit_price * quantity
    allocations = line.get("discount_allocations") or []
    discount = allocated(allocations) if allocations else money(line.get("total_discount"))
    return {
        "external_id": str(line["id"]),
        "sku": (line.get("sku") or "").strip() or None,
        "variant_id": str(line["variant_id"]) if line.get("variant_id") else None,
        "title": line.get("title") or line.get("name") or "",
        "quantity": quantity,
        "price_unit": float(unit_price),
        # Shopify gives the discount as an amount; Odoo as a percentage.
        "discount": discount_percent(gross, discount),
        "net": gross - discount,
        "taxes": taxes(line.get("tax_lines")),
        "tax_rates": tax_rates(line.get("tax_lines")),
    }


def shipping_values(shipping):
    """One shipping line: its price and discount (allocations, else discounted_price)."""
    price = money(shipping["price"])
    allocations = shipping.get("discount_allocations") or []
    if allocations:
        discount = allocated(allocations)
    else:
        discount = price - money(shipping.get("discounted_price") or shipping["price"])
    return {
        "title": shipping.get("title") or "Shipping",
        "price_unit": float(price),
        "discount": discount_percent(price, discount),
        "net": price - discount,
        "taxes": taxes(shipping.get("tax_lines")),
        "tax_rates": tax_rates(shipping.get("tax_lines")),
    }


def address_values(address):
    """A Shopify address as res.partner values; country/state as codes."""
    if not address:
        return None
    name = address.get("name") or " ".join(
        filter(None, [address.get("first_name"), address.get("last_name")])
    )
    return {
        "name": name or address.get("company") or "",
        "street": address.get("address1") or False,
        "street2": address.get("address2") or False,
        "city": address.get("city") or False,
        "zip": address.get("zip") or False,
        "phone": address.get("phone") or False,
        "country_code": address.get("country_code"),
        "state_code": address.get("province_code"),
    }


def customer_values(order):
    """The person who ordered: external id, name, email, phone, consent."""
    customer = order.get("customer") or {}
    default_address = customer.get("default_address") or order.get("billing_address") or {}
    name = " ".join(filter(None, [customer.get("first_name"), customer.get("last_name")]))
    consent = (customer.get("email_marketing_consent") or {}).get("state")
    return {
        "external_id": str(customer["id"]) if customer.get("id") else None,
        "name": name
        or (address_values(default_address) or {}).get("name")
        or order.get("email")
        or order["name"],
        "email": (customer.get("email") or order.get("email") or "").strip().lower() or None,
        "phone": customer.get("phone") or order.get("phone") or None,
        "accepts_marketing": consent == "subscribed",
        "address": address_values(default_address),
    }


def fulfilled_quantities(order):
    """``{line item id: units}`` Shopify has fulfilled, from the order's fulfillments.

    The fulfillments say what shipped, line by line, the same way in the
    webhook and in GraphQL; a line's ``fulfillable_quantity`` (or
    ``unfulfilledQuantity``) also drops for refunded units, so it cannot
    tell. A fulfillment line naming no line item of the order, or more units
    fulfilled than ordered, is refused: Odoo would deliver what it cannot
    place.
    """
    ordered = {str(line["id"]): line["quantity"] for line in order["line_items"]}
    fulfilled, problems = {}, []
    for index, fulfillment in enumerate(order.get("fulfillments") or []):
        if (fulfillment.get("status") or "").lower() in GONE_FULFILLMENTS:
            continue
        for position, line in enumerate(fulfillment.get("line_items") or []):
            line_id = str(line["id"])
            if line_id not in ordered:
                problems.append(
                    f"fulfillments.{index}.line_items.{position}.id: line item {line_id} "
                    f"is not one of order {order['name']}'s"
                )
                continue
            fulfilled[line_id] = fulfilled.get(line_id, 0) + line["quantity"]
    for line_id, units in fulfilled.items():
        if units > ordered[line_id]:
            problems.append(
                f"fulfillments: line item {line_id} of order {order['name']} is fulfilled "
                f"{units} times but ordered {ordered[line_id]} times"
            )
    if problems:
        raise PayloadError(problems)
    return {line_id: units for line_id, units in fulfilled.items() if units}


# Financial statuses of an order whose money was captured: paid, then
# perhaps refunded (refunds bring their own payments back). Pending,
# authorized, partially paid and voided orders have not paid the order.
CAPTURED_STATUSES = ("paid", "partially_refunded", "refunded")


def payment_values(values):
    """What the customer paid for the order, once Shopify captured it: the
    order's total in the shop currency, through the first gateway the order
    names (an order paid through several, a gift card and a card, is one
    payment of its total). None while the money is not captured, or when
    there is none to capture."""
    if values["financial_status"] not in CAPTURED_STATUSES or values["total"] <= 0:
        return None
    # Shopify names an order marked as paid by hand, with no gateway, "manual".
    return {"amount": values["total"], "gateway": (values["gateways"] or ["manual"])[0]}


def order_values(order):
    """The whole order, as the handler applies it."""
    return {
        "external_id": str(order["id"]),
        "name": order["name"],
        "currency": order["currency"],
        "taxes_included": order["taxes_included"],
        "note": order.get("note") or False,
        "financial_status": order.get("financial_status") or False,
        "gateways": [name for name in order.get("payment_gateway_names") or [] if name],
        "cancelled": bool(order.get("cancelled_at")),
        # When the order was placed (processed_at: an imported or POS order's
        # own date), as naive UTC.
        "date": shopify_time(order.get("processed_at") or order.get("created_at")),
        # When Shopify last changed the order (a payment captured after the
        # order was placed is dated then).
        "updated": shopify_time(order.get("updated_at")),
        "total": float(money(order.get("total_price"))),
        # None when the payload does not tell (an old or partial payload).
        "total_tax": float(money(order["total_tax"])) if order.get("total_tax") else None,
        "customer": customer_values(order),
        "billing": address_values(order.get("billing_address")),
        "shipping_address": address_values(order.get("shipping_address")),
        "lines": [line_values(line) for line in order["line_items"]],
        "shipping": [shipping_values(s) for s in order.get("shipping_lines") or []],
        "fulfilled": fulfilled_quantities(order),
    }


def legacy_id(gid):
    """``gid://shopify/Order/123`` -> 123 (the id webhooks carry)."""
    return int(str(gid).rsplit("/", 1)[-1])


def shop_amount(bag):
    return (bag or {}).get("shopMoney", {}).get("amount") or "0"


# What the GraphQL mappers read of a node, typed as Shopify's schema types it:
# a node they could not read is refused field by field, not with a KeyError.
GID = {"type": "string", "regex": r"gid://shopify/[A-Za-z]+/\d+"}
REF = {"type": "dict", "nullable": True, "schema": {"id": {**GID, "required": True}}}
MONEY_BAG = {
    "type": "dict",
    "nullable": True,
    "schema": {
        "shopMoney": {
            "type": "dict",
            "required": True,
            "schema": {"amount": {**MONEY, "required": True}},
        }
    },
}
GRAPHQL_TAX_LINES = {
    "type": "list",
    "nullable": True,
    "schema": {
        "type": "dict",
        "schema": {
            "title": {"type": "string", "nullable": True},
            "rate": {"type": "number", "required": True, "nullable": True, "check_with": _finite},
            "priceSet": MONEY_BAG,
        },
    },
}
GRAPHQL_ADDRESS = {
    "type": "dict",
    "nullable": True,
    "schema": nullable_strings(
        "firstName",
        "lastName",
        "name",
        "address1",
        "address2",
        "city",
        "zip",
        "provinceCode",
        "countryCodeV2",
        "company",
        "phone",
    ),
}


GRAPHQL_ALLOCATIONS = {
    "type": "list",
    "nullable": True,
    "schema": {"type": "dict", "schema": {"allocatedAmountSet": MONEY_BAG}},
}


def connection(node_schema, required=True):
    """A GraphQL connection read as ``edges { node { ... } }``."""
    return {
        "type": "dict",
        "required": required,
        "nullable": not required,
        "schema": {
            "edges": {
                "type": "list",
                "required": True,
                "schema": {
                    "type": "dict",
                    "schema": {"node": {"type": "dict", "required": True, "schema": node_schema}},
                },
            }
        },
    }


ORDER_NODE_SCHEMA = {
    "id": {**GID, "required": True},
    "name": {"type": "string", "required": True},
    **nullable_strings(
        "email",
        "phone",
        "note",
        "createdAt",
        "processedAt",
        "updatedAt",
        "cancelledAt",
        "displayFinancialStatus",
        "displayFulfillmentStatus",
    ),
    "paymentGatewayNames": {"type": "list", "nullable": True, "schema": {"type": "string"}},
    "currencyCode": {"type": "string", "required": True, "regex": "[A-Z]{3}"},
    "taxesIncluded": {"type": "boolean", "required": True},
    "totalPriceSet": MONEY_BAG,
    "totalTaxSet": MONEY_BAG,
    "customer": {
        "type": "dict",
        "nullable": True,
        "schema": {
            "id": {**GID, "required": True},
            **nullable_strings("firstName", "lastName", "email", "phone"),
        },
    },
    "billingAddress": GRAPHQL_ADDRESS,
    "shippingAddress": GRAPHQL_ADDRESS,
    "lineItems": connection(
        {
            "id": {**GID, "required": True},
            **nullable_strings("sku", "title"),
            "quantity": {"type": "integer", "required": True},
            "variant": REF,
            "originalUnitPriceSet": MONEY_BAG,
            "totalDiscountSet": MONEY_BAG,
            "discountAllocations": GRAPHQL_ALLOCATIONS,
            "taxLines": GRAPHQL_TAX_LINES,
        }
    ),
    "fulfillments": {
        "type": "list",
        "nullable": True,
        "schema": {
            "type": "dict",
            "schema": {
                "id": {**GID, "required": True},
                "status": {"type": "string", "required": True},
                "fulfillmentLineItems": connection(
                    {
                        "quantity": {"type": "integer", "nullable": True, "min": 0},
                        "lineItem": {**REF, "nullable": False, "required": True},
                    }
                ),
            },
        },
    },
    "shippingLines": connection(
        {
            "title": {"type": "string", "nullable": True},
            "originalPriceSet": MONEY_BAG,
            "discountedPriceSet": MONEY_BAG,
            "taxLines": GRAPHQL_TAX_LINES,
        }
    ),
}


def _graphql_address(address):
    if not address:
        return None
    return {
        "first_name": address.get("firstName"),
        "last_name": address.get("lastName"),
        "name": address.get("name"),
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "zip": address.get("zip"),
        "province_code": address.get("provinceCode"),
        "country_code": address.get("countryCodeV2"),
        "company": address.get("company"),
        "phone": address.get("phone"),
    }


def _graphql_taxes(tax_lines):
    return [
        {"title": t.get("title"), "rate": t["rate"], "price": shop_amount(t.get("priceSet"))}
        for t in tax_lines or []
    ]


def _graphql_allocations(allocations):
    """GraphQL discountAllocations in the webhook's discount_allocations shape."""
    return [
        {"amount": shop_amount(allocation.get("allocatedAmountSet"))}
        for allocation in allocations or []
    ]


# GraphQL's displayFulfillmentStatus as the webhook's fulfillment_status.
DISPLAY_FULFILLMENT = {
    "FULFILLED": "fulfilled",
    "PARTIALLY_FULFILLED": "partial",
    "RESTOCKED": "restocked",
}


def order_from_graphql(node):
    """An order read with :data:`ORDERS_QUERY`, in the webhook shape the import takes.

    Raises ``PayloadError`` naming each field of ``node`` it cannot read.
    """
    validate_payload(ORDER_NODE_SCHEMA, node)
    customer = node.get("customer")
    return {
        "id": legacy_id(node["id"]),
        "admin_graphql_api_id": node["id"],
        "name": node["name"],
        "email": node.get("email"),
        "phone": node.get("phone"),
        "note": node.get("note"),
        "created_at": node.get("createdAt"),
        "processed_at": node.get("processedAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "currency": node["currencyCode"],
        "taxes_included": node["taxesIncluded"],
        "financial_status": (node.get("displayFinancialStatus") or "").lower() or None,
        "payment_gateway_names": node.get("paymentGatewayNames") or [],
        "fulfillment_status": DISPLAY_FULFILLMENT.get(node.get("displayFulfillmentStatus")),
        "fulfillments": [
            {
                "id": legacy_id(fulfillment["id"]),
                "status": fulfillment["status"].lower(),
                "line_items": [
                    {"id": legacy_id(line["lineItem"]["id"]), "quantity": line.get("quantity") or 0}
                    for line in (e["node"] for e in fulfillment["fulfillmentLineItems"]["edges"])
                ],
            }
            for fulfillment in node.get("fulfillments") or []
        ],
        "total_price": shop_amount(node.get("totalPriceSet")),
        "total_tax": shop_amount(node.get("totalTaxSet")) if node.get("totalTaxSet") else None,
        "customer": {
            "id": legacy_id(customer["id"]),
            "first_name": customer.get("firstName"),
            "last_name": customer.get("lastName"),
            "email": customer.get("email"),
            "phone": customer.get("phone"),
        }
        if customer
        else None,
        "billing_address": _graphql_address(node.get("billingAddress")),
        "shipping_address": _graphql_address(node.get("shippingAddress")),
        "line_items": [
            {
                "id": legacy_id(line["id"]),
                "sku": line.get("sku"),
                "variant_id": legacy_id(line["variant"]["id"]) if line.get("variant") else None,
                "title": line.get("title"),
                "quantity": line["quantity"],
                "price": shop_amount(line.get("originalUnitPriceSet")),
                "total_discount": shop_amount(line.get("totalDiscountSet")),
                "discount_allocations": _graphql_allocations(line.get("discountAllocations")),
                "tax_lines": _graphql_taxes(line.get("taxLines")),
            }
            for line in (edge["node"] for edge in node["lineItems"]["edges"])
        ],
        "shipping_lines": [
            {
                "title": shipping.get("title"),
                "price": shop_amount(shipping.get("originalPriceSet")),
                "discounted_price": shop_amount(shipping.get("discountedPriceSet")),
                "tax_lines": _graphql_taxes(shipping.get("taxLines")),
            }
            for shipping in (edge["node"] for edge in node["shippingLines"]["edges"])
        ],
    }


# The shop-currency amount of a MoneyBag, as the order and refund queries read it.
SHOP_MONEY = "{ shopMoney { amount } }"
_ADDRESS = (
    "{ firstName lastName name address1 address2 city zip provinceCode countryCodeV2 "
    "company phone }"
)
_TAXES = f"taxLines {{ title rate priceSet {SHOP_MONEY} }}"
_PAGE_INFO = "pageInfo { hasNextPage endCursor }"
_LINE_ITEM = (
    "id sku title quantity variant { id } "
    f"originalUnitPriceSet {SHOP_MONEY} totalDiscountSet {SHOP_MONEY} "
    f"discountAllocations {{ allocatedAmountSet {SHOP_MONEY} }} {_TAXES}"
)
# discountedPriceSet has included the shipping discounts since 2024-07.
_SHIPPING_LINE = f"title originalPriceSet {SHOP_MONEY} discountedPriceSet {SHOP_MONEY} {_TAXES}"
# What each fulfillment shipped, line by line: the quantities Odoo delivers at
# import. Its lines beyond ``first`` are read by ORDER_FULFILLMENT_LINES_QUERY.
_FULFILLMENT = (
    "id status fulfillmentLineItems(first: 10) { "
    f"edges {{ node {{ quantity lineItem {{ id }} }} }} {_PAGE_INFO} }}"
)
# An order's fulfillments and refunds are lists Shopify truncates at ``first``,
# not connections: a list that came back full is read again whole.
ORDER_FULFILLMENTS = 5
ORDER_FULFILLMENTS_MAX = 250
ORDER_REFUNDS = 20
ORDER_REFUNDS_MAX = 250
# Pages of a few orders keep the requested cost (902) under Shopify's 1000 per
# query; an order with more lines than a page holds has them read by the
# queries below (see ShopifyClient.complete), never cut short.
ORDERS_QUERY = f"""
query Orders($after: String, $query: String) {{
  orders(first: 5, after: $after, query: $query, sortKey: UPDATED_AT) {{
    edges {{ node {{
      id name email phone note createdAt processedAt updatedAt cancelledAt currencyCode
      taxesIncluded
      displayFinancialStatus displayFulfillmentStatus paymentGatewayNames
      totalPriceSet {SHOP_MONEY}
      totalTaxSet {SHOP_MONEY}
      customer {{ id firstName lastName email phone }}
      billingAddress {_ADDRESS}
      shippingAddress {_ADDRESS}
      lineItems(first: 10) {{ edges {{ node {{ {_LINE_ITEM} }} }} {_PAGE_INFO} }}
      shippingLines(first: 3) {{ edges {{ node {{ {_SHIPPING_LINE} }} }} {_PAGE_INFO} }}
      refunds(first: {ORDER_REFUNDS}) {{ id }}
      fulfillments(first: {ORDER_FULFILLMENTS}) {{ {_FULFILLMENT} }}
    }} }}
    {_PAGE_INFO}
  }}
}}
"""
ORDER_LINE_ITEMS_QUERY = f"""
query OrderLineItems($id: ID!, $after: String) {{
  order(id: $id) {{
    lineItems(first: 50, after: $after) {{ edges {{ node {{ {_LINE_ITEM} }} }} {_PAGE_INFO} }}
  }}
}}
"""
ORDER_SHIPPING_LINES_QUERY = f"""
query OrderShippingLines($id: ID!, $after: String) {{
  order(id: $id) {{
    shippingLines(first: 50, after: $after) {{
      edges {{ node {{ {_SHIPPING_LINE} }} }} {_PAGE_INFO}
    }}
  }}
}}
"""
ORDER_REFUNDS_QUERY = f"""
query OrderRefunds($id: ID!) {{ order(id: $id) {{ refunds(first: {ORDER_REFUNDS_MAX}) {{ id }} }} }}
"""
ORDER_FULFILLMENTS_QUERY = f"""
query OrderFulfillments($id: ID!) {{
  order(id: $id) {{ fulfillments(first: {ORDER_FULFILLMENTS_MAX}) {{ {_FULFILLMENT} }} }}
}}
"""
ORDER_FULFILLMENT_LINES_QUERY = f"""
query OrderFulfillmentLines($id: ID!, $after: String) {{
  fulfillment(id: $id) {{
    fulfillmentLineItems(first: 100, after: $after) {{
      edges {{ node {{ quantity lineItem {{ id }} }} }} {_PAGE_INFO}
    }}
  }}
}}
"""
