"""What a delivery released to the 3PL looks like: pure functions over dicts.

The release body is ShipBob's ``POST /order``: the shop's unique reference,
the recipient, the products by SKU with the quantities reserved in Odoo.
"""

# The 3PL's order and shipment statuses, as shown on a delivery.
ORDER_STATUSES = [
    ("Processing", "Processing"),
    ("Exception", "Exception"),
    ("OnHold", "On hold"),
    ("PartiallyFulfilled", "Partially fulfilled"),
    ("Fulfilled", "Fulfilled"),
    ("Cancelled", "Cancelled"),
]


def release_problems(delivery):
    """What stops a delivery from being released, in words ([] when nothing).

    ``delivery``: ``{"reference", "recipient": {...}, "lines": [{"sku", "quantity"}]}``.
    Checked before the call so that the person who can fix it (a contact
    without a city, a product without a reference) reads it in Odoo's words.
    """
    problems = []
    recipient = delivery.get("recipient") or {}
    address = recipient.get("address") or {}
    missing = [
        label
        for label, value in (
            ("name", recipient.get("name")),
            ("street", address.get("address1")),
            ("city", address.get("city")),
            ("country", address.get("country")),
        )
        if not value
    ]
    if missing:
        problems.append(f"the delivery address has no {', '.join(missing)}")
    if not delivery.get("lines"):
        problems.append("nothing is reserved on it")
    for line in delivery.get("lines") or ():
        if not line.get("sku"):
            problems.append(f"{line.get('name')} has no internal reference (the 3PL's SKU)")
        elif line["quantity"] != int(line["quantity"]):
            problems.append(f"{line['sku']}: {line['quantity']} is not a whole number of units")
    return problems


def release_body(delivery, shipping_method):
    """The ``POST /order`` body of a delivery (see :func:`release_problems`)."""
    return {
        "reference_id": delivery["reference"],
        "order_number": delivery.get("origin") or delivery["reference"],
        "shipping_method": shipping_method,
        "type": "DTC",
        "recipient": delivery["recipient"],
        "products": [
            {
                "reference_id": line["sku"],
                "name": line["name"],
                "quantity": int(line["quantity"]),
            }
            for line in delivery["lines"]
        ],
    }


def problem_reason(answer):
    """The 3PL's refusal in one sentence, from its problem details
    (``{"title", "errors": {"products[0].reference_id": ["..."]}}``)."""
    if not isinstance(answer, dict):
        return ""
    errors = answer.get("errors") or {}
    details = [
        message
        for messages in errors.values()
        for message in (messages if isinstance(messages, list) else [messages])
    ]
    title = answer.get("title") or answer.get("message") or ""
    if details:
        return f"{title} {' '.join(str(d) for d in details)}".strip()
    return str(title)


def cancel_refusals(answer):
    """The reasons the 3PL gave for shipments it did not cancel ([] when all were)."""
    return _refusals(answer, "canceled_shipment_results")


def hold_refusals(answer):
    """The reasons the 3PL gave for shipments it did not hold, or whose hold
    it did not lift ([] when it did as asked)."""
    return _refusals(answer, "hold_results")


def _refusals(answer, results):
    return [
        result.get("reason") or "refused"
        for result in (answer or {}).get(results) or ()
        if not result.get("is_success")
    ]
