"""What the 3PL says about a shipment: pure functions over its dicts.

A shipment (``data`` of the webhooks ``order.shipped`` and
``order.shipment.*``, or a shipment of a polled order) carries its parcels in
``packages``, each with its own carrier, tracking number and lines: the
truth. The shipment's ``tracking`` is only its first parcel's and is never
read (copying it to every parcel is odoo/odoo#80636).
"""

from datetime import datetime, timezone

SHIPPED_TOPIC = "order.shipped"
# Shipment webhooks that only change the status shown on the delivery.
STATUS_TOPICS = (
    "order.shipment.tracking.updated",
    "order.shipment.delivered",
    "order.shipment.exception",
    "order.shipment.on_hold",
    "order.shipment.cancelled",
)
ORDER_TOPICS = ("order.delivered",)

_PACKAGE = {
    "type": "dict",
    "schema": {
        "id": {"type": "integer", "required": True},
        "carrier": {"type": "string", "nullable": True},
        "carrier_service": {"type": "string", "nullable": True},
        "tracking_number": {"type": "string", "nullable": True},
        "tracking_url": {"type": "string", "nullable": True},
        "tracking_status": {"type": "string", "nullable": True},
        "products": {
            "type": "list",
            "required": True,
            "schema": {
                "type": "dict",
                "schema": {
                    "sku": {"type": "string", "required": True},
                    "quantity": {"type": "integer", "required": True, "min": 0},
                },
            },
        },
    },
}


def webhook_schema(**fields):
    """The schema of a 3PL webhook: its topic and time, and its ``data`` (a
    shipment, an order, a return: an id, the shop's reference, a status)
    with ``fields`` besides."""
    return {
        "topic": {"type": "string", "required": True},
        "event_time": {"type": "string", "nullable": True},
        "data": {
            "type": "dict",
            "required": True,
            "schema": {
                "id": {"type": "integer", "required": True},
                "reference_id": {"type": "string", "required": True, "empty": False},
                "status": {"type": "string", "nullable": True},
                **fields,
            },
        },
    }


SHIPMENT_SCHEMA = webhook_schema(
    order_id={"type": "integer", "required": True},
    packages={"type": "list", "schema": _PACKAGE},
)
ORDER_SCHEMA = webhook_schema()


def reference_of(payload):
    """The shop reference (the delivery's) a shipment or order message is about."""
    return payload["data"]["reference_id"]


def order_key(payload):
    """Messages about one delivery are applied in the order they happened."""
    return f"delivery:{reference_of(payload)}"


def release_key(reference):
    """What a shipment of ``reference`` waits on: its release being recorded."""
    return f"release:{reference}"


def shipped_key(shipment_id):
    """One shipment's "shipped", whether it came by webhook or by polling."""
    return f"shipped:{shipment_id}"


def shipped_quantities(shipment):
    """``{sku: quantity}`` in the shipment's parcels."""
    quantities = {}
    for package in shipment.get("packages") or ():
        for line in package.get("products") or ():
            quantities[line["sku"]] = quantities.get(line["sku"], 0) + line["quantity"]
    return quantities


def parcels(shipment):
    """Each parcel with its own carrier, service, tracking and contents."""
    return [
        {
            "package_id": str(package["id"]),
            "carrier": package.get("carrier") or "",
            "service": package.get("carrier_service") or "",
            "tracking_number": package.get("tracking_number") or "",
            "tracking_url": package.get("tracking_url") or "",
            "tracking_status": package.get("tracking_status") or "",
            "contents": ", ".join(
                f"{line['sku']} x {line['quantity']}" for line in package.get("products") or ()
            ),
        }
        for package in shipment.get("packages") or ()
    ]


def event_time(value):
    """The 3PL's ISO time as a naive UTC datetime, or None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def shipped_message(shipment, now_iso=None):
    """A polled shipment as the ``order.shipped`` webhook carries it, less the
    recipient: the delivery has the address, the stored event needs no
    personal data."""
    return {
        "topic": SHIPPED_TOPIC,
        "event_time": shipment.get("actual_fulfillment_date")
        or shipment.get("last_update_at")
        or now_iso,
        "data": {key: value for key, value in shipment.items() if key != "recipient"},
    }
