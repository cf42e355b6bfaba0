"""The legacy POS back office, polled: records shaped like Lightspeed Retail X-Series API 2.0.

Every record carries a global ``version``, a number that grows (by more
than 1, as Lightspeed warns) each time any record changes; a client reads
``GET /api/2.0/<collection>?after=<version>&page_size=<n>`` and takes the
answer's ``version.max`` as its next cursor. A changed record comes again
with its new version (a parked sale closed, a closed sale voided).

Sales are the fleet's tickets seen the Lightspeed way: amounts are JSON
numbers, tax-exclusive prices beside the tax (``total_price`` +
``total_tax`` is what the customer paid), products, taxes, registers and
payment types referred to by id. A return is a sale with ``return_for``
and negative quantities; a void turns the voided sale's status from
``CLOSED`` to ``VOIDED`` (a new version); a no-sale is no sale at all. A
share of sales is first ``SAVED`` (parked, no payments) and ``CLOSED`` at
the register's next ticket.

Register closures: ``GET /api/2.0/registers/<id>/payments_summary`` is the
open period's running totals per payment type, as on Lightspeed;
``GET /api/2.0/register_closures`` lists the closed periods, versioned like
the rest (a simplification: Lightspeed gives the summary at closing time).
"""

import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal

from ..base import seeded_random
from .fleet import TENDERS, money

# Lightspeed's own names of the payment types the stores use.
PAYMENT_TYPES = {
    "cash": ("Cash", 1),
    "card": ("Credit Card", 3),
    "gift_card": ("Gift Card", 11),
    "voucher": ("Voucher", 7),
    "store_credit": ("Store Credit", 10),
}
COLLECTIONS = (
    "outlets",
    "registers",
    "products",
    "taxes",
    "payment_types",
    "customers",
    "sales",
    "register_closures",
)
FIVE_PLACES = Decimal("0.00001")


def number(amount, places=FIVE_PLACES):
    """A JSON number the way Lightspeed writes amounts (a float, five places at most)."""
    return float(Decimal(amount).quantize(places))


def utc(moment):
    moment = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


class RateLimiter:
    """Lightspeed's limit: 300 x registers + 50 requests per 5-minute window, then 429.

    A fixed window opens with the first request counted; past the limit,
    requests are refused until it ends, with ``Retry-After`` the seconds left.
    """

    def __init__(self, limit, window=300.0, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self.clock = clock
        self._start = None
        self._count = 0
        self._lock = threading.Lock()

    def take(self):
        """None when the request may go on, else the seconds to wait (for ``Retry-After``)."""
        with self._lock:
            now = self.clock()
            if self._start is None or now - self._start >= self.window:
                self._start, self._count = now, 0
            if self._count >= self.limit:
                return max(1, int(self._start + self.window - now + 0.999))
            self._count += 1
            return None

    def reset(self):
        with self._lock:
            self._start, self._count = None, 0

    def status(self):
        with self._lock:
            return {"limit": self.limit, "window": self.window, "used": self._count}


class LegacyBackOffice:
    """The fleet's records as the legacy API serves them, versioned."""

    def __init__(self, fleet, parked_share=0.03):
        self.fleet = fleet
        self.parked_share = parked_share
        self.rng = seeded_random(fleet.seed, "pos", "legacy")
        self.version = self.rng.randint(10**6, 9 * 10**6)
        self.records = {name: {} for name in COLLECTIONS}
        # Sales are kept as stubs (id, status, version); the Lightspeed body is
        # built when read, so a pushing fleet does not pay for it.
        self._built = {}  # (sale id, version) -> body
        self._namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"pos-simulator/{fleet.seed}")
        self.parked = {}  # register key -> sale id parked, closed at the register's next ticket
        self.closure_numbers = defaultdict(int)
        self.open_since = {}
        self._seed_reference()
        fleet.listeners.append(self.on_ticket)

    # --- ids and versions -----------------------------------------------------------
    def id_of(self, kind, key):
        """The API's id of a store, register, product: stable for the seed, whatever the order."""
        return str(uuid.uuid5(self._namespace, f"{kind}|{key}"))

    def bump(self):
        # Global and increasing, never by a known step: other records change meanwhile.
        self.version += self.rng.randint(1, 9)
        return self.version

    def put(self, collection, record):
        record["version"] = self.bump()
        self.records[collection][record["id"]] = record
        return record

    # --- reference data ---------------------------------------------------------------
    def _seed_reference(self):
        fleet = self.fleet
        opening = fleet.registers()[0].clock.isoformat()
        for store in fleet.stores.values():
            outlet_id = self.id_of("outlet", store.code)
            self.put(
                "outlets",
                {
                    "id": outlet_id,
                    "name": store.name,
                    "time_zone": str(fleet.tz),
                    "currency": "EUR",
                    "deleted_at": None,
                },
            )
            for register in store.registers.values():
                self.closure_numbers[register.key] = self.rng.randint(20, 400)
                self.open_since[register.key] = opening
                self._put_register(register, is_open=True)
        for code, rate in fleet.tax_rates.items():
            self.put(
                "taxes",
                {
                    "id": self.id_of("tax", code),
                    "name": code,
                    "rate": number(rate),
                    "deleted_at": None,
                },
            )
        for tender in TENDERS:
            name, type_id = PAYMENT_TYPES[tender]
            self.put(
                "payment_types",
                {"id": self.id_of("tender", tender), "name": name, "payment_type_id": type_id},
            )
        for product in fleet.catalogue.values():
            self.put(
                "products",
                {
                    "id": self.id_of("product", product["sku"]),
                    "name": product["name"],
                    "sku": product["sku"],
                    "barcode": product["barcode"],
                    "price_including_tax": number(product["price"]),
                    "tax_id": self.id_of("tax", product["tax_code"]),
                    "is_active": True,
                    "deleted_at": None,
                },
            )
        for customer in fleet.customers:
            self.put(
                "customers",
                {
                    "id": self.id_of("customer", customer["loyalty_id"]),
                    "customer_code": customer["loyalty_id"],
                    "email": customer["email"],
                    "phone": customer["phone"],
                    "deleted_at": None,
                },
            )

    def _put_register(self, register, is_open, closed_at=None):
        self.put(
            "registers",
            {
                "id": self.id_of("register", register.key),
                "name": register.code,
                "outlet_id": self.id_of("outlet", register.store.code),
                "is_open": is_open,
                "register_open_time": utc(self.open_since[register.key]),
                "register_close_time": utc(closed_at) if closed_at else None,
                "register_open_sequence_id": self.closure_numbers[register.key],
                "deleted_at": None,
            },
        )

    # --- sales ----------------------------------------------------------------------------
    def on_ticket(self, register, ticket):
        """The fleet rang up ``ticket``: record what the legacy back office would."""
        sales = self.records["sales"]
        parked = self.parked.pop(register.key, None)
        if parked and sales[parked]["status"] == "SAVED":
            self._set_status(parked, "CLOSED", ticket["opened_at"])
        if ticket["type"] == "void":
            original = ticket["original_uuid"]
            if sales.get(original, {}).get("status") == "SAVED":
                # Lightspeed voids closed sales only: the parked one is closed first.
                self.parked = {k: v for k, v in self.parked.items() if v != original}
                self._set_status(original, "CLOSED", ticket["opened_at"])
            if original in sales:
                self._set_status(original, "VOIDED", ticket["closed_at"])
            return
        if ticket["type"] not in ("sale", "return"):
            return  # a drawer opened is no sale on Lightspeed
        status = "CLOSED"
        if ticket["type"] == "sale" and self.rng.random() < self.parked_share:
            status = "SAVED"
            self.parked[register.key] = ticket["uuid"]
        self.put(
            "sales",
            {
                "id": ticket["uuid"],
                "register": register.key,
                "sale_date": utc(ticket["opened_at"]),
                "status": status,
                "updated_at": utc(ticket["closed_at"]),
            },
        )

    def _set_status(self, sale_id, status, at):
        stub = self.records["sales"][sale_id]
        stub.update(status=status, updated_at=utc(at))
        self.put("sales", stub)

    def sale_view(self, stub):
        """The Lightspeed body of a sale stub at its current version."""
        key = (stub["id"], stub["version"])
        if key not in self._built:
            ticket = self.fleet.tickets[stub["id"]]
            body = self.sale(self.fleet.register(*stub["register"]), ticket)
            body.update(
                status=stub["status"],
                state={"SAVED": "parked", "CLOSED": "closed", "VOIDED": "voided"}[stub["status"]],
                updated_at=stub["updated_at"],
                version=stub["version"],
            )
            if stub["status"] == "SAVED":
                body["payments"] = []
            self._built[key] = body
        return dict(self._built[key])

    def sale_by_id(self, sale_id):
        stub = self.records["sales"].get(sale_id)
        return self.sale_view(stub) if stub else None

    def sale(self, register, ticket):
        """A ticket as a Lightspeed 2.0 sale (CLOSED)."""
        fleet = self.fleet
        line_items = []
        taxes = defaultdict(Decimal)
        for position, line in enumerate(ticket["lines"]):
            rate = fleet.tax_rates[line["tax_code"]]
            quantity = Decimal(line["quantity"])
            gross = money(quantity * Decimal(line["unit_price"]))
            amount = gross - Decimal(line["discount"])
            tax = amount * rate / (1 + rate)
            # Per-line rounding: each line's tax is what the receipt shows;
            # per-ticket rounding: only the sale's total tax is rounded.
            tax = money(tax) if fleet.rounding == "line" else tax.quantize(FIVE_PLACES)
            tax_id = self.id_of("tax", line["tax_code"])
            taxes[tax_id] += tax
            line_items.append(
                {
                    "id": line["line_uuid"],
                    "product_id": self.id_of("product", line["sku"]),
                    "quantity": number(quantity),
                    "price": number(Decimal(line["unit_price"]) / (1 + rate)),
                    "discount": number(Decimal(line["discount"]) / quantity / (1 + rate)),
                    "discount_total": number(Decimal(line["discount"]) / (1 + rate)),
                    "price_total": number(amount - tax),
                    "tax": number(tax / quantity),
                    "tax_total": number(tax),
                    "tax_id": tax_id,
                    "tax_components": [{"rate_id": tax_id, "total_tax": number(tax)}],
                    "is_return": quantity < 0,
                    "sequence": position,
                    "status": "CONFIRMED",
                    "note": None,
                }
            )
        total, total_tax = Decimal(ticket["total"]), Decimal(ticket["total_tax"])
        closed_at = utc(ticket["closed_at"])
        customer = ticket.get("customer") or {}
        return {
            "id": ticket["uuid"],
            "outlet_id": self.id_of("outlet", register.store.code),
            "register_id": self.id_of("register", register.key),
            "user_id": self.id_of("user", ticket["cashier"]),
            "customer_id": self._customer_id(customer),
            "invoice_number": f"{register.store.code}{register.code}-{ticket['sequence']}",
            "invoice_sequence": ticket["sequence"],
            "receipt_number": f"{register.store.code}{register.code}-{ticket['sequence']}",
            "status": "CLOSED",
            "state": "closed",
            "note": "",
            "short_code": "".join(
                seeded_random(fleet.seed, "short-code", ticket["uuid"]).choices(
                    "abcdefghjkmnpqrstuvwxyz", k=6
                )
            ),
            "return_for": ticket.get("original_uuid"),
            "sale_date": utc(ticket["opened_at"]),
            "created_at": utc(ticket["opened_at"]),
            "updated_at": closed_at,
            "total_price": number(total - total_tax),
            "total_tax": number(total_tax),
            "total_loyalty": 0.0,
            "line_items": line_items,
            "payments": [
                {
                    "id": self.id_of("payment", (ticket["uuid"], position)),
                    "register_id": self.id_of("register", register.key),
                    "retailer_payment_type_id": self.id_of("tender", tender["type"]),
                    "payment_type_id": PAYMENT_TYPES[tender["type"]][1],
                    "name": PAYMENT_TYPES[tender["type"]][0],
                    "amount": number(tender["amount"]),
                    "payment_date": closed_at,
                    "deleted_at": None,
                }
                for position, tender in enumerate(ticket["tenders"])
            ],
            "taxes": [{"id": tax_id, "amount": number(amount)} for tax_id, amount in taxes.items()],
            "deleted_at": None,
        }

    def _customer_id(self, customer):
        loyalty = customer.get("loyalty_id")
        if loyalty is None and customer:
            match = [
                c
                for c in self.fleet.customers
                if customer.get("email") in (None, c["email"])
                and customer.get("phone") in (None, c["phone"])
            ]
            loyalty = match[0]["loyalty_id"] if match else None
        return self.id_of("customer", loyalty) if loyalty else None

    # --- register closures -------------------------------------------------------------------
    def payments_summary(self, register):
        """The open period's totals per payment type (every type, zeros included)."""
        totals = defaultdict(Decimal)
        since = self.open_since[register.key]
        for stub in self.records["sales"].values():
            if (
                stub["register"] != register.key
                or stub["status"] != "CLOSED"
                or stub["sale_date"] < utc(since)
            ):
                continue
            for tender in self.fleet.tickets[stub["id"]]["tenders"]:
                totals[tender["type"]] += Decimal(tender["amount"])
        return {
            "register_open_time": utc(since),
            "register_closure_sequence_number": self.closure_numbers[register.key],
            "payments": [
                {
                    "payment_type_id": self.id_of("tender", tender),
                    "payment_type_name": PAYMENT_TYPES[tender][0],
                    "total": f"{money(totals[tender]):.2f}",
                }
                for tender in TENDERS
            ],
        }

    def close_register(self, register, closed_at):
        """Close the register's period: a closure record, and the register opens anew."""
        summary = self.payments_summary(register)
        closure = {
            "id": self.id_of(
                "closure", (register.key, summary["register_closure_sequence_number"])
            ),
            "register_id": self.id_of("register", register.key),
            "outlet_id": self.id_of("outlet", register.store.code),
            "register_close_time": utc(closed_at),
            **summary,
        }
        self.put("register_closures", closure)
        self.closure_numbers[register.key] += 1
        self.open_since[register.key] = closed_at
        self._put_register(register, is_open=True)
        return closure

    # --- reading --------------------------------------------------------------------------------
    def page(self, collection, after=0, before=None, page_size=1000):
        """Records with ``after < version`` (``<= before``), oldest version first."""
        records = sorted(
            (
                r
                for r in self.records[collection].values()
                if r["version"] > after and (before is None or r["version"] <= before)
            ),
            key=lambda r: r["version"],
        )[:page_size]
        if collection == "sales":
            return [self.sale_view(r) for r in records]
        return [dict(r) for r in records]
