"""A store POS ticket (upload contract v1) -> what Odoo's Point of Sale needs.

Pure functions over dicts: no database. The batch envelope is checked here
for the intake's 400 answer; each ticket's shape is a cerberus schema checked
when its event is applied, so that a malformed ticket fails alone.
"""

from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation

from odoo.addons.connector_base.components.validation import PayloadError

CONTRACT_VERSION = 1
MAX_TICKETS = 1000
MAX_BODY_BYTES = 2 * 1024 * 1024
TICKET_TYPES = ("sale", "return", "void", "no_sale")
TENDER_TYPES = ("cash", "card", "gift_card", "voucher", "store_credit")

# Decimal strings, never JSON numbers (the contract): a float has lost the
# POS's cents before Odoo sees them.
DECIMAL = {"type": "string", "regex": r"-?\d{1,12}(\.\d{1,6})?"}
TEXT = {"type": "string", "maxlength": 128}
# A register's ticket numbers, as Odoo keeps them (integer columns).
SEQUENCE = {"type": "integer", "min": 0, "max": 2**31 - 1}


def pos_time(value):
    """An ISO 8601 time of the POS (``2026-11-30T10:41:30+01:00``) as Odoo keeps
    times: naive UTC. ValueError when it is not a time with its offset."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not moment.tzinfo:
        raise ValueError(f"{value!r} has no UTC offset")
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _iso_time(field, value, error):
    try:
        pos_time(value)
    except (ValueError, OverflowError, AttributeError):
        error(field, "must be an ISO 8601 time with its offset, e.g. 2026-11-30T10:41:30+01:00")


def _iso_date(field, value, error):
    try:
        date.fromisoformat(value)
    except (ValueError, TypeError):
        error(field, "must be a date, e.g. 2026-11-30")


TIME = {"type": "string", "check_with": _iso_time}

LINE_SCHEMA = {
    "line_uuid": {**TEXT, "required": True, "empty": False},
    "sku": {**TEXT, "nullable": True},
    "barcode": {**TEXT, "nullable": True},
    "quantity": {**DECIMAL, "required": True},
    "unit_price": {**DECIMAL, "required": True},
    "discount": {**DECIMAL, "nullable": True},
    "tax_code": {**TEXT, "nullable": True},
    "return_of_line": {**TEXT, "nullable": True},
}
TENDER_SCHEMA = {
    "type": {"type": "string", "required": True, "allowed": list(TENDER_TYPES)},
    "amount": {**DECIMAL, "required": True},
    "reference": {**TEXT, "nullable": True},
}
TICKET_SCHEMA = {
    # What the intake adds from the batch envelope.
    "store": {**TEXT, "required": True},
    "register": {**TEXT, "required": True},
    "batch_id": {**TEXT, "required": True},
    "prices_include_tax": {"type": "boolean", "required": True},
    # The ticket as the POS sent it.
    "uuid": {**TEXT, "required": True, "empty": False},
    "sequence": {**SEQUENCE, "required": True},
    "type": {"type": "string", "required": True, "allowed": list(TICKET_TYPES)},
    "business_day": {"type": "string", "required": True, "check_with": _iso_date},
    "opened_at": {**TIME, "nullable": True},
    "closed_at": {**TIME, "required": True},
    "cashier": {**TEXT, "nullable": True},
    "original_uuid": {**TEXT, "nullable": True},
    "lines": {"type": "list", "schema": {"type": "dict", "schema": LINE_SCHEMA}},
    "tenders": {"type": "list", "schema": {"type": "dict", "schema": TENDER_SCHEMA}},
    "customer": {
        "type": "dict",
        "nullable": True,
        "schema": {
            "loyalty_id": {**TEXT, "nullable": True},
            "email": {**TEXT, "nullable": True},
            "phone": {**TEXT, "nullable": True},
            "name": {**TEXT, "nullable": True},
        },
    },
    "total": {**DECIMAL, "nullable": True},
    "total_tax": {**DECIMAL, "nullable": True},
}


def register_key(payload):
    """The sequence key of a ticket: its store's register, whose tickets are
    applied in order. A ticket whose store or register is missing has none
    (KeyError): it fails alone, holding no register back."""
    return f"{payload['store']}/{payload['register']}"


def store_key(payload):
    """The key space of a ticket's batch jobs when stock leaves per ticket:
    its store. Two registers selling one product would update its stock at
    the store's location from two jobs, the second one waiting for the
    first's hundred tickets and then retried; stores run side by side."""
    return str(payload["store"])


def ticket_time(ticket):
    """When the ticket happened (its ``closed_at``), or None when unreadable."""
    try:
        return pos_time(ticket["closed_at"])
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError):
        return None


def check_envelope(document, store_header):
    """The problems of a batch's envelope, for the intake's 400 answer (empty: fine).

    Only what the intake needs to store each ticket: the tickets themselves
    are checked one by one when applied.
    """
    if not isinstance(document, dict):
        return [f"body: must be a JSON object, not {type(document).__name__}"]
    problems = []
    if document.get("contract") != CONTRACT_VERSION:
        problems.append(f"contract: must be {CONTRACT_VERSION}")
    for key in ("batch_id", "store", "register"):
        value = document.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{key}: required, a non-empty string")
        elif len(value) > 128:
            problems.append(f"{key}: at most 128 characters")
    if isinstance(document.get("store"), str) and document["store"] != store_header:
        problems.append(
            f"store: {document['store']!r} differs from the X-Pos-Store header {store_header!r}"
        )
    if not isinstance(document.get("prices_include_tax"), bool):
        problems.append("prices_include_tax: required, true or false")
    tickets = document.get("tickets")
    if not isinstance(tickets, list):
        problems.append("tickets: required, a list")
    elif not tickets:
        problems.append("tickets: empty")
    else:
        bad = [str(index) for index, ticket in enumerate(tickets) if not isinstance(ticket, dict)]
        if bad:
            problems.append(f"tickets: items {', '.join(bad[:10])} are not JSON objects")
    return problems


def ticket_payloads(document):
    """Each ticket of a checked batch as the payload of its event: the ticket
    with what it needs of the envelope."""
    envelope = {
        "store": document["store"],
        "register": document["register"],
        "batch_id": document["batch_id"],
        "prices_include_tax": document["prices_include_tax"],
    }
    return [{**ticket, **envelope} for ticket in document["tickets"]]


# --- reading a valid ticket ------------------------------------------------------------


def amount(value):
    """A decimal string of the contract as Decimal (None and "" are zero)."""
    try:
        return Decimal(value or "0")
    except InvalidOperation as exc:  # the schema's regex keeps this out
        raise ValueError(f"{value!r} is not a decimal") from exc


def discount_percent(line):
    """The POS's discount (an amount off the line) as Odoo's percentage of the
    line's gross amount, unrounded: Odoo keeps a POS line's discount with all
    its digits, so the net amount is the POS's to the cent."""
    gross = amount(line["quantity"]) * amount(line["unit_price"])
    off = amount(line.get("discount"))
    if not off or not gross:
        return 0.0
    return float(off / gross * 100)


def _line_problems(kind, lines):
    """What is wrong with the lines of a sale or a return."""
    problems = []
    for index, line in enumerate(lines):
        if not (line.get("sku") or line.get("barcode")):
            problems.append(f"lines.{index}: names no product (sku or barcode)")
        quantity = amount(line["quantity"])
        if kind == "sale" and quantity <= 0:
            problems.append(f"lines.{index}.quantity: must be positive in a sale")
        if kind == "return":
            if quantity >= 0:
                problems.append(f"lines.{index}.quantity: must be negative in a return")
            if not line.get("return_of_line"):
                problems.append(f"lines.{index}.return_of_line: required in a return")
    return problems


def check_ticket(ticket):
    """Raise PayloadError naming each rule of its type a ticket breaks (what
    its schema cannot say). The ticket has the schema's shape: its event's
    payload was checked against the topic's schema when the event was taken,
    and checking it twice would cost as much as making the order's lines."""
    problems = []
    kind = ticket["type"]
    lines, tenders = ticket.get("lines") or [], ticket.get("tenders") or []
    if kind in ("return", "void") and not ticket.get("original_uuid"):
        problems.append(f"original_uuid: required for a {kind}")
    if kind in ("void", "no_sale") and (lines or tenders):
        problems.append(f"a {kind} has no lines and no tenders")
    if kind in ("sale", "return"):
        if not lines:
            problems.append(f"lines: a {kind} has at least one line")
        if ticket.get("total") is None:
            problems.append(f"total: required for a {kind}")
        problems.extend(_line_problems(kind, lines))
        if ticket.get("total") is not None and tenders:
            paid = sum(amount(tender["amount"]) for tender in tenders)
            if paid != amount(ticket["total"]):
                problems.append(
                    f"tenders: they sum to {paid}, the ticket's total is {ticket['total']}"
                )
    if problems:
        raise PayloadError(problems)
