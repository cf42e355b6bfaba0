"""A fleet of store POS systems: stores, registers, the tickets they ring up.

Plain Python, no HTTP: the fleet is the POS back office's memory and the
ground truth tests compare Odoo with. Tickets are written in the shape of
our upload contract (``addons/connector_pos/readme/CONTRACT.md``): decimal
strings for money and quantities, prices tax included, a sequence number per
register, a UUID per ticket and per line.

Totals are computed as the POS computes them, which is what Odoo must match
to the cent: a line's amount is ``quantity * unit_price`` rounded to the cent
(half up), less its discount; the ticket's total is the sum of its lines;
its tax is taken out of the tax-included amounts either line by line (each
line's tax rounded, then summed: ``rounding="line"``) or per tax code over
the whole ticket (``rounding="ticket"``, Odoo's "round globally").
"""

import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from ..base import seeded_random
from ..retail_data import RetailDataGenerator

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# French VAT, the rates a store in France rings up.
TAX_RATES = {"VAT20": Decimal("0.20"), "VAT10": Decimal("0.10"), "VAT5_5": Decimal("0.055")}
# The shared catalogue sells clothes only (standard rate); the simulated POS
# files these product types under the reduced rate so that tickets mix two
# rates, as a store's food or book corner would.
REDUCED_RATE_TYPES = ("Socks",)

TENDERS = ("cash", "card", "gift_card", "voucher", "store_credit")
ROUNDING_MODES = ("line", "ticket")
TICKET_TYPES = ("sale", "return", "void", "no_sale")

STORE_NAMES = [
    "Paris Flagship Store",
    "Lyon Part-Dieu Store",
    "Lille Centre Store",
    "Nantes Store",
    "Bordeaux Store",
    "Marseille Store",
    "Toulouse Store",
    "Strasbourg Store",
    "Nice Store",
]

OPENING = time(9, 30)
# The reference data's own dates are not used; a fixed one keeps the draw stable.
GENERATED_AT = datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))


def money(value):
    """``value`` rounded half up to the cent, as the POS prints it."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def text(amount):
    """A money amount as the contract writes it: a decimal string, two places."""
    return f"{money(amount):.2f}"


def tax_included(amount, rate):
    """The tax inside the tax-included ``amount``, rounded half up to the cent."""
    return money(amount * rate / (1 + rate))


def line_amount(line):
    """A contract line's amount, tax included: quantity * unit price, rounded, less the discount.

    On a return line the quantity and the discount are negative, so the
    same formula gives the amount given back.
    """
    gross = money(Decimal(line["quantity"]) * Decimal(line["unit_price"]))
    return gross - Decimal(line.get("discount") or "0")


def ticket_totals(lines, rounding="line", tax_rates=None):
    """``(total, total_tax)`` of contract lines, as the POS computes them.

    ``rounding="line"``: each line's tax is rounded, then summed.
    ``rounding="ticket"``: the amounts are summed per tax code, and each
    code's tax is rounded once.
    """
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, not {rounding!r}")
    rates = tax_rates or TAX_RATES
    amounts = [(line_amount(line), rates[line["tax_code"]]) for line in lines]
    total = sum((amount for amount, _rate in amounts), ZERO)
    if rounding == "line":
        tax = sum((tax_included(amount, rate) for amount, rate in amounts), ZERO)
    else:
        per_rate = defaultdict(Decimal)
        for amount, rate in amounts:
            per_rate[rate] += amount
        tax = sum((tax_included(amount, rate) for rate, amount in per_rate.items()), ZERO)
    return money(total), money(tax)


@dataclass
class Register:
    """One till: its ticket numbers, its clock and what it has not uploaded yet."""

    store: "Store"
    code: str
    next_sequence: int
    clock: datetime = None
    # Tickets rung up and not yet cut into a batch, in sequence order.
    outbox: list = field(default_factory=list)
    # Batches cut and not yet acknowledged: a batch keeps its id until Odoo
    # answers 200, so a retry after a lost answer is the same batch.
    pending: list = field(default_factory=list)
    # Tickets a ``gap`` fault held back, sent with the next push.
    held: list = field(default_factory=list)
    # Tickets a test holds back (``PosSimulator.hold``) until it releases them.
    kept: list = field(default_factory=list)
    # Batches Odoo refused as a whole (400, 413): no retry can fix them.
    rejected: list = field(default_factory=list)
    # Z reports waiting for the register's tickets to be uploaded first.
    closings: list = field(default_factory=list)

    @property
    def key(self):
        return (self.store.code, self.code)


@dataclass
class Store:
    """A physical store of the fleet, with its registers and its upload key."""

    code: str
    name: str
    registers: dict = field(default_factory=dict)
    key: str | None = None
    online: bool = True
    # Back online with tickets kept: the next pushes upload in bulk batches.
    catching_up: bool = False
    # What Odoo sent the store (the vendor API, ``catalog.py``): its products
    # by SKU, which it sells at their price from then on, and its available
    # quantities by SKU.
    products: dict = field(default_factory=dict)
    available: dict = field(default_factory=dict)


class Fleet:
    """The stores of one retailer, their catalogue, customers and every ticket rung up.

    ``seed`` decides everything: the catalogue (the Shopify simulator's, for
    the same seed: the stores sell the web shop's products), the first
    ticket number of each register, and every ticket drawn, so that the same
    seed and the same calls give the same tickets, UUIDs included.
    """

    def __init__(
        self,
        *,
        seed=0,
        code="FLEET1",
        stores=3,
        registers=2,
        rounding="line",
        products=24,
        customers=20,
        business_day=None,
        timezone="Europe/Paris",
        tax_rates=None,
    ):
        if rounding not in ROUNDING_MODES:
            raise ValueError(
                f"rounding must be one of {', '.join(ROUNDING_MODES)}, not {rounding!r}"
            )
        if not 1 <= stores <= len(STORE_NAMES):
            raise ValueError(f"a fleet has 1 to {len(STORE_NAMES)} stores, not {stores}")
        self.seed = seed
        self.code = code
        self.rounding = rounding
        self.tax_rates = dict(tax_rates or TAX_RATES)
        self.tz = ZoneInfo(timezone)
        self.rng = seeded_random(seed, "pos", "tickets")
        # Random UUIDs never meet across fleets: two fleets of one seed draw
        # the same tickets, not the same UUIDs.
        self.uuid_salt = seeded_random(seed, "pos", code, "uuids").getrandbits(128)
        self.business_day = business_day or datetime.now(self.tz).date()
        self.catalogue = self._catalogue(products)
        self.skus = sorted(self.catalogue)
        self.customers = self._customers(customers)
        self.stores = {}
        numbering = seeded_random(seed, "pos", "numbering")
        for index in range(stores):
            store = Store(code=f"S{index + 1:02d}", name=STORE_NAMES[index])
            for number in range(registers):
                register = Register(
                    store=store,
                    code=f"R{number + 1}",
                    next_sequence=numbering.randint(1, 90) * 100 + 1,
                )
                store.registers[register.code] = register
            self.stores[store.code] = store
        self.tickets = {}  # uuid -> ticket, in the order rung up: the ground truth
        self.meta = {}  # uuid -> store, register, and what the uploads did to it
        self.voided = set()  # uuids of tickets a void cancelled
        self.recent_sales = deque(maxlen=200)  # what random returns and voids pick from
        self.returned = defaultdict(Decimal)  # line uuid -> quantity returned so far
        self.listeners = []  # called with each new ticket (the legacy API records it)
        self.start_day(self.business_day)

    # --- reference data ------------------------------------------------------------
    def _catalogue(self, count):
        # The Shopify simulator draws locations then products from this very
        # generator: the same seed gives the same SKUs, barcodes and prices.
        generator = RetailDataGenerator(seeded_random(self.seed, "shopify", "state"), GENERATED_AT)
        generator.locations(3)
        catalogue = {}
        for product in generator.products(count):
            reduced = product["product_type"] in REDUCED_RATE_TYPES
            for variant in product["variants"]:
                options = " / ".join(variant["options"].values())
                catalogue[variant["sku"]] = {
                    "sku": variant["sku"],
                    "barcode": variant["barcode"],
                    "name": f"{product['title']} ({options})" if options else product["title"],
                    "price": variant["price"],
                    "tax_code": "VAT5_5" if reduced else "VAT20",
                }
        return catalogue

    def _customers(self, count):
        generator = RetailDataGenerator(seeded_random(self.seed, "pos", "customers"), GENERATED_AT)
        return [
            {
                "loyalty_id": f"L-{index + 1:05d}",
                "email": person["email"],
                "phone": person["phone"],
            }
            for index, person in enumerate(generator.customers(count))
        ]

    # --- navigation ----------------------------------------------------------------
    def store(self, code):
        try:
            return self.stores[code]
        except KeyError:
            raise ValueError(f"the fleet has no store {code!r}") from None

    def register(self, store, register):
        store = self.store(store) if isinstance(store, str) else store
        try:
            return store.registers[register]
        except KeyError:
            raise ValueError(f"store {store.code} has no register {register!r}") from None

    def registers(self, store=None):
        stores = [self.store(store)] if store else list(self.stores.values())
        return [register for s in stores for register in s.registers.values()]

    def start_day(self, business_day):
        """Open ``business_day`` on every register: clocks at opening time."""
        self.business_day = business_day
        opening = datetime.combine(business_day, OPENING, tzinfo=self.tz)
        for register in self.registers():
            register.clock = opening

    def next_day(self):
        """Move every register to the next business day (sequences go on)."""
        self.start_day(self.business_day + timedelta(days=1))
        return self.business_day

    def _tick(self, register, at=None):
        """``(opened_at, closed_at)`` of the next ticket: a few minutes after the last one."""
        if at is None:
            at = register.clock + timedelta(seconds=self.rng.randint(40, 420))
        opened = at.astimezone(self.tz).replace(microsecond=0)
        closed = opened + timedelta(seconds=self.rng.randint(15, 150))
        register.clock = closed
        return opened, closed

    def _uuid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128) ^ self.uuid_salt, version=4))

    # --- tickets -------------------------------------------------------------------
    def _ticket(self, register, kind, at=None, **values):
        opened, closed = self._tick(register, at)
        ticket = {
            "uuid": self._uuid(),
            "sequence": register.next_sequence,
            "type": kind,
            "business_day": self.business_day.isoformat(),
            "opened_at": opened.isoformat(),
            "closed_at": closed.isoformat(),
            "cashier": f"C{self.rng.randint(1, 12):02d}",
            **values,
        }
        register.next_sequence += 1
        return ticket

    def _record(self, register, ticket, meta=None):
        """Keep the ticket as the ground truth and queue it for upload."""
        self.tickets[ticket["uuid"]] = ticket
        ticket_meta = {"store": register.store.code, "register": register.code, **(meta or {})}
        self.meta[ticket["uuid"]] = ticket_meta
        register.outbox.append(ticket)
        for listener in self.listeners:
            listener(register, ticket)
        return ticket

    def _line(self, sku, quantity, discount, store=None):
        product = self.product(sku, store)
        quantity = Decimal(quantity)
        discount = None if discount is None else Decimal(discount)
        if discount is None:
            discount = ZERO
            if self.rng.random() < 0.2:
                gross = money(quantity * product["price"])
                discount = (
                    money(gross * self.rng.choice([10, 15, 20, 30]) / 100)
                    if self.rng.random() < 0.7
                    else min(gross, Decimal(self.rng.choice([2, 5])))
                )
        return {
            "line_uuid": self._uuid(),
            "sku": product["sku"],
            "barcode": product["barcode"],
            "quantity": str(quantity),
            "unit_price": text(product["price"]),
            "discount": text(discount),
            "tax_code": product["tax_code"],
        }

    def product(self, sku, store=None):
        """A product as ``store`` sells it: as Odoo last sent it there, else as
        the fleet was seeded with (any store's when no store is named)."""
        pushed = self.store(store).products if store else {}
        try:
            return pushed.get(sku) or self.catalogue[sku]
        except KeyError:
            raise ValueError(f"the POS catalogue has no SKU {sku!r}") from None

    def _tenders(self, total, tenders):
        """Split ``total`` over tenders: None (drawn), tender types, or (type, amount) pairs."""
        if tenders and not isinstance(tenders[0], str):
            tenders = [(kind, money(amount)) for kind, amount in tenders]
            if sum(amount for _kind, amount in tenders) != total:
                raise ValueError(f"tenders add up to {sum(a for _k, a in tenders)}, not {total}")
        else:
            if not tenders:
                tenders = self.rng.choices(
                    [
                        ["card"],
                        ["cash"],
                        ["card", "cash"],
                        ["gift_card", "card"],
                        ["voucher", "cash"],
                    ],
                    weights=[55, 25, 10, 5, 5],
                )[0]
            shares = []
            left = total
            for kind in tenders[:-1]:
                # A customer pays part with a round amount: 10, 20, 50 or the voucher's value.
                share = min(left, Decimal(self.rng.choice([5, 10, 20, 50])))
                shares.append((kind, share))
                left -= share
            shares.append((tenders[-1], left))
            tenders = [(kind, amount) for kind, amount in shares if amount or len(shares) == 1]
        result = []
        for kind, amount in tenders:
            if kind not in TENDERS:
                raise ValueError(f"unknown tender {kind!r}; one of {', '.join(TENDERS)}")
            tender = {"type": kind, "amount": text(amount)}
            if kind == "card":
                tender["reference"] = f"AUTH {self.rng.randint(100000, 999999)}"
            result.append(tender)
        return result

    def _customer(self, customer):
        if customer is False:
            return None
        if customer is None:
            if self.rng.random() >= 0.35:
                return None
            customer = self.rng.choice(self.customers)
            # Not every store captures every key: the loyalty card, or an email, or a phone.
            keys = self.rng.choice(
                [("loyalty_id",), ("loyalty_id", "email"), ("email",), ("phone",)]
            )
            return {key: customer[key] for key in keys}
        return dict(customer)

    def _totals(self, lines):
        total, tax = ticket_totals(lines, self.rounding, self.tax_rates)
        return {"total": text(total), "total_tax": text(tax)}

    def sale(self, store, register, lines=None, *, tenders=None, customer=None, at=None):
        """Ring up a sale and return the ticket.

        ``lines``: ``[(sku, quantity)]`` (no discount) or ``[(sku, quantity,
        discount)]`` (the amount off the line); None draws a basket of 1 to 4
        lines, some discounted. ``tenders``: tender types (the total split
        over them, the last one paying the rest) or ``[(type, amount)]``;
        None draws them. ``customer``: a dict of ``loyalty_id`` / ``email`` /
        ``phone``, False for none, None to draw one (about a third of sales).
        """
        register = self.register(store, register)
        if lines is None:
            count = self.rng.choices([1, 2, 3, 4], weights=[45, 30, 17, 8])[0]
            skus = self.rng.sample(self.skus, k=count)
            # A drawn basket has some discounts (None: drawn); given lines have theirs or none.
            lines = [
                (sku, self.rng.choices([1, 2, 3], weights=[80, 16, 4])[0], None) for sku in skus
            ]
        contract_lines = [
            self._line(spec[0], spec[1], spec[2] if len(spec) > 2 else ZERO, register.store.code)
            for spec in lines
        ]
        totals = self._totals(contract_lines)
        ticket = self._ticket(
            register,
            "sale",
            at,
            lines=contract_lines,
            tenders=self._tenders(Decimal(totals["total"]), tenders),
            **totals,
        )
        for tender in ticket["tenders"]:
            if tender["type"] == "card":
                # The terminal's reference of the card payment, unique in the
                # fleet (the acquirer settles it under that reference); the
                # authorisation code alone repeats.
                tender["reference"] = (
                    f"{register.store.code}-{register.code}-{ticket['sequence']}-"
                    f"{tender['reference'].removeprefix('AUTH ')}"
                )
        customer = self._customer(customer)
        if customer:
            ticket["customer"] = customer
        # Keys in the contract's order: totals last.
        ticket["total"] = ticket.pop("total")
        ticket["total_tax"] = ticket.pop("total_tax")
        self.recent_sales.append(ticket["uuid"])
        return self._record(register, ticket)

    def returnable(self, original):
        """``{line_uuid: quantity still returnable}`` of a sale."""
        original = self.ticket(original)
        return {
            line["line_uuid"]: Decimal(line["quantity"]) - self.returned[line["line_uuid"]]
            for line in original.get("lines", [])
            if Decimal(line["quantity"]) - self.returned[line["line_uuid"]] > 0
        }

    def return_of(self, store, register, original, lines=None, *, tender=None, at=None):
        """Ring up the return of an earlier sale's lines (any store, any day) and return it.

        ``lines``: ``[(line_uuid, quantity)]`` (positive quantities, as the
        customer brings them back); None returns one unit of one line.
        ``tender``: how the money goes back (default: card if paid by card
        alone, else cash; a gift card or voucher sale is refunded in store
        credit).
        The line's discount is given back pro rata.
        """
        register = self.register(store, register)
        original = self.ticket(original)
        if original["type"] != "sale":
            raise ValueError(f"ticket {original['uuid']} is a {original['type']}, not a sale")
        if original["uuid"] in self.voided:
            raise ValueError(f"sale {original['uuid']} was voided: nothing to return")
        left = self.returnable(original)
        if lines is None:
            if not left:
                raise ValueError(f"every line of sale {original['uuid']} was returned already")
            lines = [(self.rng.choice(sorted(left)), 1)]
        by_uuid = {line["line_uuid"]: line for line in original["lines"]}
        contract_lines = []
        for line_uuid, count in lines:
            quantity = Decimal(count)
            if line_uuid not in by_uuid:
                raise ValueError(f"sale {original['uuid']} has no line {line_uuid}")
            if quantity <= 0 or quantity > left.get(line_uuid, 0):
                raise ValueError(
                    f"line {line_uuid}: {left.get(line_uuid, 0)} returnable, not {quantity}"
                )
            sold = by_uuid[line_uuid]
            discount = money(Decimal(sold["discount"]) * quantity / Decimal(sold["quantity"]))
            contract_lines.append(
                {
                    "line_uuid": self._uuid(),
                    "sku": sold["sku"],
                    "barcode": sold["barcode"],
                    "quantity": str(-quantity),
                    "unit_price": sold["unit_price"],
                    "discount": text(-discount),
                    "tax_code": sold["tax_code"],
                    "return_of_line": line_uuid,
                }
            )
        totals = self._totals(contract_lines)
        if tender is None:
            paid = {t["type"] for t in original["tenders"]}
            # A card takes back no more than it paid: a sale paid partly by
            # card is refunded in cash (or store credit).
            tender = "card" if paid == {"card"} else "cash" if "cash" in paid else "store_credit"
        refund = {"type": tender, "amount": totals["total"]}
        card = next((t for t in original["tenders"] if t["type"] == "card"), None)
        if tender == "card" and card:
            # Money back to the card it was paid with: the refund names that payment.
            refund["reference"] = card["reference"]
        ticket = self._ticket(
            register,
            "return",
            at,
            original_uuid=original["uuid"],
            lines=contract_lines,
            tenders=[refund],
        )
        if original.get("customer"):
            ticket["customer"] = dict(original["customer"])
        ticket.update(totals)
        for line_uuid, quantity in lines:
            self.returned[line_uuid] += Decimal(quantity)
        return self._record(register, ticket)

    def void(self, store, register, original, at=None):
        """Void an earlier sale of the same business day (the whole ticket) and return the void."""
        register = self.register(store, register)
        original = self.ticket(original)
        if original["type"] != "sale":
            raise ValueError(f"only a sale can be voided, not a {original['type']}")
        if original["uuid"] in self.voided:
            raise ValueError(f"sale {original['uuid']} is voided already")
        if any(self.returned[line["line_uuid"]] for line in original["lines"]):
            raise ValueError(f"sale {original['uuid']} has returns: it cannot be voided")
        if original["business_day"] != self.business_day.isoformat():
            raise ValueError(
                f"sale {original['uuid']} is of {original['business_day']}: a void cancels a "
                "sale of the day, an earlier one is returned"
            )
        ticket = self._ticket(
            register,
            "void",
            at,
            original_uuid=original["uuid"],
            lines=[],
            tenders=[],
            total="0.00",
            total_tax="0.00",
        )
        self.voided.add(original["uuid"])
        return self._record(register, ticket)

    def no_sale(self, store, register, at=None):
        """Open the drawer without a sale: a ticket with no lines and no tenders."""
        register = self.register(store, register)
        ticket = self._ticket(
            register, "no_sale", at, lines=[], tenders=[], total="0.00", total_tax="0.00"
        )
        return self._record(register, ticket)

    def random_ticket(self, store, register, at=None):
        """A ticket of a realistic mix: mostly sales, some returns, voids and no-sales."""
        roll = self.rng.random()
        if roll < 0.06:
            # A customer brings back something bought lately, anywhere in the fleet.
            for _attempt in range(5 if self.recent_sales else 0):
                uuid = self.rng.choice(self.recent_sales)
                if uuid not in self.voided and self.returnable(uuid):
                    return self.return_of(store, register, uuid, at=at)
        elif roll < 0.09:
            # The cashier voids the register's last sale, if nothing of it was returned.
            own = self.register(store, register)
            last = next(
                (
                    self.tickets[uuid]
                    for uuid in reversed(self.recent_sales)
                    if self.meta[uuid]["store"] == own.store.code
                    and self.meta[uuid]["register"] == own.code
                ),
                None,
            )
            if (
                last is not None
                and last["business_day"] == self.business_day.isoformat()
                and last["uuid"] not in self.voided
                and not any(self.returned[line["line_uuid"]] for line in last["lines"])
            ):
                return self.void(store, register, last, at=at)
        if roll < 0.11:
            return self.no_sale(store, register, at=at)
        return self.sale(store, register, at=at)

    # --- ground truth ----------------------------------------------------------------
    def ticket(self, ticket):
        """A ticket by UUID (or the ticket itself)."""
        key = ticket["uuid"] if isinstance(ticket, dict) else ticket
        try:
            return self.tickets[key]
        except KeyError:
            raise ValueError(f"no ticket {key!r} was rung up") from None

    def select(self, store=None, register=None, business_day=None, kind=None):
        """Tickets rung up, in order, narrowed by store, register, business day and type."""
        day = business_day.isoformat() if isinstance(business_day, date) else business_day
        return [
            ticket
            for ticket in self.tickets.values()
            if (store is None or self.meta[ticket["uuid"]]["store"] == store)
            and (register is None or self.meta[ticket["uuid"]]["register"] == register)
            and (day is None or ticket["business_day"] == day)
            and (kind is None or ticket["type"] == kind)
        ]

    def closing(self, store, register, business_day=None, closed_at=None):
        """The register's Z report of a business day, computed from its tickets.

        ``ticket_count`` counts every ticket (voids and no-sales included);
        ``totals`` adds the tenders of the day's sales and returns, leaving
        out the sales a void cancelled.
        """
        register = self.register(store, register)
        day = business_day or self.business_day
        day = day.isoformat() if isinstance(day, date) else day
        tickets = self.select(register.store.code, register.code, day)
        if not tickets:
            raise ValueError(f"{register.store.code} {register.code} has no ticket on {day}")
        totals = defaultdict(Decimal)
        for ticket in tickets:
            if ticket["uuid"] in self.voided:
                continue
            for tender in ticket.get("tenders", []):
                totals[tender["type"]] += Decimal(tender["amount"])
        sequences = [ticket["sequence"] for ticket in tickets]
        closed_at = closed_at or max(
            register.clock, datetime.fromisoformat(tickets[-1]["closed_at"])
        ) + timedelta(minutes=5)
        return {
            "contract": 1,
            "closing_id": f"Z-{register.store.code}-{register.code}-{day}",
            "store": register.store.code,
            "register": register.code,
            "business_day": day,
            "closed_at": closed_at.astimezone(self.tz).replace(microsecond=0).isoformat(),
            "first_sequence": min(sequences),
            "last_sequence": max(sequences),
            "ticket_count": len(tickets),
            "totals": [
                {"tender": kind, "amount": text(totals[kind])} for kind in TENDERS if kind in totals
            ],
        }
