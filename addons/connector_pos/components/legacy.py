"""A legacy POS back office polled by cursor (Lightspeed Retail X-Series API
2.0-like) -> the payloads of the ``ticket`` and ``closing`` topics.

Pure functions over dicts: no database. The legacy API refers to outlets,
registers, products, taxes, payment types and customers by id; ``refs``
says what each id is in the fleet's words (store code, register code, SKU,
tax code and rate, tender), as the poller read and mapped them.

A sale becomes the ticket the push intake would have stored, its id the
ticket's UUID: a sale read again (a re-read page, a newer version) is the
same ticket, counted once. A sale turned ``VOIDED`` adds a void ticket; a
parked (``SAVED``) sale is no ticket until it is ``CLOSED``.
"""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from .ticket import CONTRACT_VERSION, pos_time

CENT = Decimal("0.01")
# Sales that are tickets: paid and done. SAVED (parked), ONACCOUNT and LAYBY
# sales are still open on the register: they come again once closed.
APPLIED_STATUSES = ("CLOSED", "VOIDED", "ONACCOUNT_CLOSED", "LAYBY_CLOSED")
VOIDED = "VOIDED"


class LegacyMappingError(ValueError):
    """A record of the legacy API names something the fleet has not mapped
    (an outlet without a store, a payment type without a tender)."""


def decimal(value):
    """A JSON number of the legacy API as Decimal, exactly as written."""
    return Decimal(str(value if value is not None else 0))


def money(value):
    return decimal(value).quantize(CENT)


def text(value):
    """A Decimal as the contract's decimal string."""
    return f"{value:f}"


def local_day(moment, time_zone):
    """The date of an ISO time in the outlet's time zone (the store's business day)."""
    when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return when.astimezone(ZoneInfo(time_zone or "UTC")).date().isoformat()


def _outlet(refs, outlet_id, what):
    outlet = refs["outlets"].get(outlet_id)
    if not outlet or not outlet.get("store"):
        name = (outlet or {}).get("name") or outlet_id
        raise LegacyMappingError(
            f"{what}: the outlet {name} ({outlet_id}) has no store: give it one "
            "(Legacy POS records)"
        )
    return outlet


def _register(refs, register_id, what):
    register = refs["registers"].get(register_id)
    if not register:
        raise LegacyMappingError(f"{what}: the register {register_id} is unknown to the fleet")
    return register


def _tender(refs, payment_type_id, what):
    payment_type = refs["payment_types"].get(payment_type_id) or {}
    if not payment_type.get("tender"):
        name = payment_type.get("name") or payment_type_id
        raise LegacyMappingError(
            f"{what}: the payment type {name} ({payment_type_id}) has no tender: give it one "
            "(Legacy POS records)"
        )
    return payment_type["tender"]


def sale_tickets(sale, refs, *, prices_include_tax, original_lines, batch_id):
    """The tickets a legacy sale read at its current version stands for.

    ``[]`` for a sale still open (parked); ``[sale]`` or ``[return]`` for a
    closed one; the sale (or return) and its void for a voided one.
    ``original_lines(sale_id)``: the lines ``[(line id, sku, quantity)]`` of
    the sale a return names, to say which line each returned line takes
    back (the legacy API does not). Raises :class:`LegacyMappingError` for
    an outlet, register or payment type the fleet has not mapped.
    """
    if sale.get("status") not in APPLIED_STATUSES or sale.get("deleted_at"):
        return []
    what = f"sale {sale.get('receipt_number') or sale['id']}"
    outlet = _outlet(refs, sale["outlet_id"], what)
    register = _register(refs, sale["register_id"], what)
    payments = [p for p in sale.get("payments") or [] if not p.get("deleted_at")]
    closed_at = max((p["payment_date"] for p in payments), default=None) or sale["updated_at"]
    envelope = {
        "store": outlet["store"],
        "register": register["code"],
        "batch_id": batch_id,
        "prices_include_tax": prices_include_tax,
    }
    kind = "return" if sale.get("return_for") else "sale"
    lines = [
        line
        for line in sale.get("line_items") or []
        if line.get("status", "CONFIRMED") == "CONFIRMED" and not line.get("deleted_at")
    ]
    ticket = {
        **envelope,
        "uuid": sale["id"],
        "sequence": int(sale["invoice_sequence"]),
        "type": kind,
        "business_day": local_day(sale["sale_date"], outlet.get("time_zone")),
        "opened_at": sale["sale_date"],
        "closed_at": closed_at,
        "cashier": sale.get("user_id"),
        "original_uuid": sale.get("return_for"),
        "lines": _lines(
            kind,
            sale,
            lines,
            refs,
            prices_include_tax=prices_include_tax,
            original_lines=original_lines,
        ),
        "tenders": [
            {
                "type": _tender(refs, payment["retailer_payment_type_id"], what),
                "amount": text(money(payment["amount"])),
            }
            for payment in payments
        ],
        "customer": _customer(refs, sale.get("customer_id")),
        "total": text(money(decimal(sale["total_price"]) + decimal(sale["total_tax"]))),
        "total_tax": text(money(sale["total_tax"])),
    }
    tickets = [ticket]
    if sale["status"] == VOIDED:
        tickets.append(
            {
                **envelope,
                "uuid": void_uuid(sale["id"]),
                # The legacy POS numbers no void: the voided sale's number.
                "sequence": ticket["sequence"],
                "type": "void",
                "business_day": local_day(sale["updated_at"], outlet.get("time_zone")),
                "closed_at": sale["updated_at"],
                "cashier": sale.get("user_id"),
                "original_uuid": sale["id"],
                "lines": [],
                "tenders": [],
            }
        )
    return tickets


def void_uuid(sale_id):
    """The UUID of the void of a legacy sale: one per sale, whatever reads it."""
    return f"{sale_id}:void"


def _lines(kind, sale, lines, refs, *, prices_include_tax, original_lines):
    """The ticket's lines: amounts as the POS printed them.

    The legacy API gives tax-exclusive prices; for a fleet whose prices
    include taxes, the unit price is turned back into the price on the
    shelf (the POS's, to the cent), and the discount is what makes the
    line's net amount the POS's: price_total + tax_total.
    """
    originals = list(original_lines(sale["return_for"])) if kind == "return" else []
    taken = {}
    result = []
    for line in lines:
        product = refs["products"].get(line["product_id"]) or {}
        tax = refs["taxes"].get(line.get("tax_id")) or {}
        quantity = decimal(line["quantity"])
        if prices_include_tax:
            rate = decimal(tax.get("rate") or 0)
            unit = money(decimal(line["price"]) * (1 + rate))
            net = money(decimal(line["price_total"]) + decimal(line["tax_total"]))
            discount = money(quantity * unit) - net
        else:
            unit = decimal(line["price"])
            discount = decimal(line.get("discount_total") or 0)
        values = {
            "line_uuid": line["id"],
            # A product the poller has not read yet: named by its id, it
            # fails alone with its reason, and is found once read.
            "sku": product.get("sku") or (None if product else line["product_id"]),
            "barcode": product.get("barcode"),
            "quantity": text(quantity),
            "unit_price": text(unit),
            "discount": text(discount),
            "tax_code": tax.get("code"),
        }
        if kind == "return":
            values["return_of_line"] = _returned_line(originals, taken, values["sku"], -quantity)
        result.append(values)
    return result


def _returned_line(originals, taken, sku, quantity):
    """The original line of ``sku`` with ``quantity`` still to take back, or
    None (the return then fails naming its line)."""
    for line_id, original_sku, sold in originals:
        if original_sku != sku:
            continue
        left = decimal(sold) - taken.get(line_id, 0)
        if left >= quantity:
            taken[line_id] = taken.get(line_id, 0) + quantity
            return line_id
    return None


def _customer(refs, customer_id):
    customer = refs["customers"].get(customer_id) if customer_id else None
    if not customer:
        return None
    return {
        "loyalty_id": customer.get("code"),
        "email": customer.get("email"),
        "phone": customer.get("phone"),
    }


def closure_payload(closure, refs, sequences):
    """A legacy register closure as the ``closing`` topic's payload (a Z report).

    ``sequences``: ``(first, last, count)`` of the register's tickets read
    for the day (the legacy closure carries its totals per payment type,
    not the ticket numbers it covers). Payment types of several ids mapped
    to one tender are summed; a type with nothing taken need no mapping.
    """
    what = f"register closure {closure['id']}"
    outlet = _outlet(refs, closure["outlet_id"], what)
    register = _register(refs, closure["register_id"], what)
    totals = {}
    for payment in closure.get("payments") or []:
        value = money(payment.get("total"))
        if not value and not (refs["payment_types"].get(payment["payment_type_id"]) or {}).get(
            "tender"
        ):
            continue
        tender = _tender(refs, payment["payment_type_id"], what)
        totals[tender] = totals.get(tender, Decimal(0)) + value
    first, last, count = sequences
    return {
        "contract": CONTRACT_VERSION,
        "closing_id": closure["id"],
        "store": outlet["store"],
        "register": register["code"],
        "business_day": closing_day(closure, outlet),
        "closed_at": closure["register_close_time"],
        "first_sequence": first,
        "last_sequence": last,
        "ticket_count": count,
        "totals": [{"tender": tender, "amount": text(value)} for tender, value in totals.items()],
    }


def closing_day(closure, outlet):
    """The business day a register closure closes: its close time's date in the outlet's zone."""
    return local_day(closure["register_close_time"], outlet.get("time_zone"))


def closure_time(closure):
    return pos_time(closure["register_close_time"])
