"""Webhook payloads, shaped like Shopify's webhook JSON (the REST resource shape).

Webhooks do not speak GraphQL: their bodies are the REST representation of
the resource, snake_case keys, numeric ids beside ``admin_graphql_api_id``,
money as strings with ``*_set`` money bags. Only the keys a connector reads
are written, but those carry the real names and types.
"""

from decimal import Decimal

from .store import legacy_id

TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/cancelled",
    "refunds/create",
    "fulfillments/create",
    "inventory_levels/update",
    "products/create",
    "products/update",
)


def _ids(record):
    """A webhook resource names itself twice: the numeric id and the GraphQL id."""
    return {"id": legacy_id(record["id"]), "admin_graphql_api_id": record["id"]}


def _amount(value):
    return f"{value:.2f}"


def _number(value):
    """Money where Shopify's webhook JSON writes a number, not a string
    (refund line subtotals and taxes: their *_set bags carry strings)."""
    return float(f"{value:.2f}")


def _money_set(store, amount, order=None):
    bag = store.money_bag(amount, order)
    return {
        "shop_money": {
            "amount": _amount(bag["shopMoney"]["amount"]),
            "currency_code": bag["shopMoney"]["currencyCode"],
        },
        "presentment_money": {
            "amount": _amount(bag["presentmentMoney"]["amount"]),
            "currency_code": bag["presentmentMoney"]["currencyCode"],
        },
    }


def _address(address):
    if not address:
        return None
    return {
        "first_name": address["firstName"],
        "last_name": address["lastName"],
        "name": address["name"],
        "address1": address["address1"],
        "address2": address["address2"],
        "city": address["city"],
        "zip": address["zip"],
        "province_code": address["provinceCode"],
        "country_code": address["countryCodeV2"],
        "company": address["company"],
        "phone": address["phone"],
    }


def _tax_line(store, order, amount):
    return {
        "title": order["_tax_title"],
        "rate": float(order["_tax_rate"]),
        "price": _amount(amount),
        "price_set": _money_set(store, amount, order),
        "channel_liable": False,
    }


def _allocations(store, order, allocations):
    """A line's share of each discount, pointing at the order's discount application."""
    return [
        {
            "amount": _amount(amount),
            "amount_set": _money_set(store, amount, order),
            "discount_application_index": index,
        }
        for index, amount in allocations
    ]


# Where each kind of discount applies, as the order's discount_applications say it.
_TARGETS = {
    "order": ("line_item", "all", "across"),
    "line": ("line_item", "explicit", "across"),
    "shipping": ("shipping_line", "all", "each"),
}


def _discount_application(discount):
    target_type, selection, method = _TARGETS[discount.get("target", "order")]
    code = discount.get("code")
    return {
        "type": "discount_code" if code else "automatic",
        **({"code": code} if code else {"title": discount.get("title") or "Discount"}),
        "value": f"{Decimal(discount['value']):.2f}"
        if discount["kind"] == "fixed_amount"
        else f"{Decimal(discount['value']):.1f}",
        "value_type": discount["kind"],
        "allocation_method": method,
        "target_selection": selection,
        "target_type": target_type,
    }


def _discount_codes(order):
    """The codes of the order, each with the amount it took off (lines and shipping)."""
    taken = {}
    for line in order["_line_items"]:
        for index, amount in line["_priced"]["allocations"]:
            taken[index] = taken.get(index, Decimal(0)) + amount
    for shipping in order["_shipping_lines"]:
        for index, amount in shipping["_allocations"]:
            taken[index] = taken.get(index, Decimal(0)) + amount
    return [
        {
            "code": discount["code"],
            "amount": _amount(taken.get(index, Decimal(0))),
            "type": discount["kind"],
        }
        for index, discount in enumerate(order["_discounts"])
        if discount.get("code")
    ]


def customer_payload(store, customer):
    return {
        **_ids(customer),
        "email": customer["email"],
        "first_name": customer["firstName"],
        "last_name": customer["lastName"],
        "phone": customer["phone"],
        "state": customer["state"].lower(),
        "verified_email": customer["verifiedEmail"],
        "created_at": customer["createdAt"],
        "updated_at": customer["updatedAt"],
        "tags": ", ".join(customer["tags"]),
        "currency": "EUR",
        "email_marketing_consent": {
            "state": "subscribed" if customer["_accepts_marketing"] else "not_subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": customer["createdAt"],
        },
        "default_address": _address(customer["_address"]),
    }


def _line_fulfillment_status(line):
    """REST's line item status: null (nothing shipped), partial or fulfilled."""
    if not line["_fulfilled"]:
        return None
    return "fulfilled" if line["_fulfilled"] >= line["quantity"] else "partial"


def line_item_payload(store, order, line):
    priced = line["_priced"]
    variant = store.variants[line["_variant"]]
    return {
        **_ids(line),
        "variant_id": legacy_id(line["_variant"]),
        "product_id": legacy_id(line["_product"]),
        "sku": line["sku"],
        "title": line["title"],
        "variant_title": line["variantTitle"],
        "name": line["name"],
        "vendor": line["vendor"],
        "quantity": line["quantity"],
        "current_quantity": line["quantity"] - line["_refunded"],
        "fulfillable_quantity": max(line["quantity"] - line["_fulfilled"] - line["_refunded"], 0),
        "fulfillment_status": _line_fulfillment_status(line),
        "price": _amount(line["_unit_price"]),
        "price_set": _money_set(store, line["_unit_price"], order),
        # As Shopify: only set explicitly (draft orders, scripts, the API);
        # code and automatic discounts leave it at zero and are told by the
        # line's discount allocations.
        "total_discount": _amount(Decimal(0)),
        "total_discount_set": _money_set(store, Decimal(0), order),
        "discount_allocations": _allocations(store, order, priced["allocations"]),
        "tax_lines": [_tax_line(store, order, priced["tax"])],
        "taxable": line["taxable"],
        "requires_shipping": line["requiresShipping"],
        "grams": 0,
        "barcode": variant["barcode"],
    }


def order_payload(store, order):
    totals = order["_totals"]
    refunded = [store.refunds[r] for r in order["_refunds"]]
    shipping = order["_shipping_lines"]
    return {
        **_ids(order),
        "name": order["name"],
        "order_number": order["number"],
        "number": order["number"] - 1000,
        "email": order["email"],
        "phone": order["phone"],
        "created_at": order["createdAt"],
        "updated_at": order["updatedAt"],
        "processed_at": order["processedAt"],
        "cancelled_at": order["cancelledAt"],
        "cancel_reason": order["cancelReason"].lower() if order["cancelReason"] else None,
        "closed_at": order["closedAt"],
        "confirmed": order["confirmed"],
        "test": order["test"],
        "currency": order["currencyCode"],
        "presentment_currency": order["presentmentCurrencyCode"],
        "taxes_included": order["taxesIncluded"],
        "financial_status": order["displayFinancialStatus"].lower(),
        "fulfillment_status": {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}.get(
            order["displayFulfillmentStatus"]
        ),
        "source_name": order["sourceName"],
        "note": order["note"],
        "tags": ", ".join(order["tags"]),
        "subtotal_price": _amount(totals["subtotal"]),
        "subtotal_price_set": _money_set(store, totals["subtotal"], order),
        "total_discounts": _amount(totals["total_discounts"]),
        "total_discounts_set": _money_set(store, totals["total_discounts"], order),
        "total_tax": _amount(totals["total_tax"]),
        "total_tax_set": _money_set(store, totals["total_tax"], order),
        "total_price": _amount(totals["total"]),
        "total_price_set": _money_set(store, totals["total"], order),
        "total_shipping_price_set": _money_set(store, totals["total_shipping"], order),
        "current_total_price": _amount(totals["total"] - sum(r["_total"] for r in refunded)),
        "tax_lines": [_tax_line(store, order, totals["total_tax"])],
        "discount_codes": _discount_codes(order),
        "discount_applications": [_discount_application(d) for d in order["_discounts"]],
        "line_items": [line_item_payload(store, order, line) for line in order["_line_items"]],
        "shipping_lines": [
            {
                "id": legacy_id(s["id"]),
                "title": s["title"],
                "code": s["code"],
                "source": s["source"],
                "price": _amount(s["_price"]),
                "price_set": _money_set(store, s["_price"], order),
                "discounted_price": _amount(s["_discounted_price"]),
                "discounted_price_set": _money_set(store, s["_discounted_price"], order),
                "discount_allocations": _allocations(store, order, s["_allocations"]),
                "tax_lines": [_tax_line(store, order, s["_tax"])],
            }
            for s in shipping
        ],
        "customer": customer_payload(store, store.customers[order["_customer"]]),
        "billing_address": _address(order["billingAddress"]),
        "shipping_address": _address(order["shippingAddress"]),
        "fulfillments": [
            fulfillment_payload(store, store.fulfillments[f]) for f in order["_fulfillments"]
        ],
        "refunds": [refund_payload(store, r) for r in refunded],
        "payment_gateway_names": sorted({t["gateway"] for t in order["_transactions"]}),
    }


def transaction_payload(store, order, transaction):
    return {
        **_ids(transaction),
        "order_id": legacy_id(order["id"]),
        "kind": transaction["kind"].lower(),
        "status": transaction["status"].lower(),
        "gateway": transaction["gateway"],
        "amount": _amount(transaction["_amount"]),
        "currency": order["currencyCode"],
        "parent_id": legacy_id(transaction["_parent"]) if transaction["_parent"] else None,
        "created_at": transaction["createdAt"],
        "processed_at": transaction["processedAt"],
        "test": transaction["test"],
    }


def refund_payload(store, refund):
    order = store.orders[refund["_order"]]
    lines = {line["id"]: line for line in order["_line_items"]}
    return {
        **_ids(refund),
        "order_id": legacy_id(order["id"]),
        "created_at": refund["createdAt"],
        "processed_at": refund["createdAt"],
        "note": refund["note"],
        "restock": any(line["restocked"] for line in refund["_lines"]),
        "refund_line_items": [
            {
                "id": legacy_id(line["id"]),
                "line_item_id": legacy_id(line["_line_item"]),
                "quantity": line["quantity"],
                "restock_type": line["restockType"].lower(),
                "location_id": legacy_id(line["_location"]) if line["_location"] else None,
                "subtotal": _number(line["_subtotal"]),
                "subtotal_set": _money_set(store, line["_subtotal"], order),
                "total_tax": _number(line["_tax"]),
                "total_tax_set": _money_set(store, line["_tax"], order),
                "line_item": line_item_payload(store, order, lines[line["_line_item"]]),
            }
            for line in refund["_lines"]
        ],
        "transactions": [transaction_payload(store, order, t) for t in refund["_transactions"]],
        "order_adjustments": [
            {
                "kind": "shipping_refund",
                "amount": _amount(-refund["_shipping"]),
                "amount_set": _money_set(store, -refund["_shipping"], order),
            }
        ]
        if refund["_shipping"]
        else [],
    }


def fulfillment_payload(store, fulfillment):
    order = store.orders[fulfillment["_order"]]
    lines = {line["id"]: line for line in order["_line_items"]}
    tracking = fulfillment["_tracking"]
    return {
        **_ids(fulfillment),
        "order_id": legacy_id(order["id"]),
        "name": fulfillment["name"],
        "status": fulfillment["status"].lower(),
        "created_at": fulfillment["createdAt"],
        "updated_at": fulfillment["updatedAt"],
        "location_id": legacy_id(fulfillment["_location"]),
        "tracking_company": tracking[0]["company"] if tracking else None,
        "tracking_number": tracking[0]["number"] if tracking else None,
        "tracking_numbers": [t["number"] for t in tracking if t["number"]],
        "tracking_url": tracking[0]["url"] if tracking else None,
        "tracking_urls": [t["url"] for t in tracking if t["url"]],
        "shipment_status": None,
        "service": "manual",
        "line_items": [
            {**line_item_payload(store, order, lines[f["_line_item"]]), "quantity": f["quantity"]}
            for f in fulfillment["_lines"]
        ],
    }


def inventory_level_payload(store, level):
    return {
        "inventory_item_id": legacy_id(level["_item"]),
        "location_id": legacy_id(level["_location"]),
        "available": level["quantities"]["available"],
        "updated_at": level["updatedAt"],
        "admin_graphql_api_id": level["id"],
    }


def product_payload(store, product):
    variants = [store.variants[v] for v in product["_variants"]]
    return {
        **_ids(product),
        "title": product["title"],
        "handle": product["handle"],
        "body_html": product["descriptionHtml"],
        "vendor": product["vendor"],
        "product_type": product["productType"],
        "status": product["status"].lower(),
        "tags": ", ".join(product["tags"]),
        "created_at": product["createdAt"],
        "updated_at": product["updatedAt"],
        "published_at": product["publishedAt"],
        "options": [
            {"name": name, "position": i + 1, "values": values}
            for i, (name, values) in enumerate(product["_options"].items())
        ],
        "variants": [
            {
                **_ids(v),
                "product_id": legacy_id(product["id"]),
                "title": v["title"],
                "sku": v["sku"],
                "barcode": v["barcode"],
                "price": _amount(v["price"]),
                "compare_at_price": _amount(v["compareAtPrice"]) if v["compareAtPrice"] else None,
                "position": v["position"],
                "taxable": v["taxable"],
                "inventory_item_id": legacy_id(v["_inventory_item"]),
                "inventory_quantity": store.available(v["_inventory_item"]),
                "created_at": v["createdAt"],
                "updated_at": v["updatedAt"],
                **{f"option{i + 1}": o["value"] for i, o in enumerate(v["selectedOptions"])},
            }
            for v in variants
        ],
    }


PAYLOADS = {
    "orders/create": order_payload,
    "orders/updated": order_payload,
    "orders/cancelled": order_payload,
    "refunds/create": refund_payload,
    "fulfillments/create": fulfillment_payload,
    "inventory_levels/update": inventory_level_payload,
    "products/create": product_payload,
    "products/update": product_payload,
}
