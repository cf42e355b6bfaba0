"""Seedable generator of realistic retail data, shared by every simulator.

Plain dicts and ``Decimal`` money, no API shape: each simulator turns them
into its own records (Shopify GIDs, POS tickets, 3PL items). The same seed
gives the same catalogue, customers, stores and orders; timestamps are
offsets from a ``now`` the caller gives, so a demo looks current while a
replay that pins ``now`` is identical to the byte.
"""

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")

SHOP_CURRENCY = "EUR"
# Presentment currencies a customer may pay in, with the rate from the shop currency.
CURRENCY_RATES = {"EUR": Decimal("1"), "USD": Decimal("1.08"), "GBP": Decimal("0.86")}

# country: (province code or None, tax title, rate, currency the customer pays in)
TAX_REGIONS = {
    "FR": (None, "FR TVA", Decimal("0.20"), "EUR"),
    "DE": (None, "DE MwSt", Decimal("0.19"), "EUR"),
    "NL": (None, "NL BTW", Decimal("0.21"), "EUR"),
    "BE": (None, "BE TVA", Decimal("0.21"), "EUR"),
    "IT": (None, "IT IVA", Decimal("0.22"), "EUR"),
    "GB": (None, "GB VAT", Decimal("0.20"), "GBP"),
    "US": ("NY", "NY State Tax", Decimal("0.04"), "USD"),
}

CITIES = {
    "FR": [("Paris", "75011"), ("Lyon", "69002"), ("Lille", "59000"), ("Nantes", "44000")],
    "DE": [("Berlin", "10115"), ("Hamburg", "20095"), ("Köln", "50667")],
    "NL": [("Amsterdam", "1012 AB"), ("Utrecht", "3511 AA")],
    "BE": [("Bruxelles", "1000"), ("Gent", "9000")],
    "IT": [("Milano", "20121"), ("Torino", "10121")],
    "GB": [("London", "SW1A 1AA"), ("Manchester", "M1 1AE")],
    "US": [("New York", "10001"), ("Brooklyn", "11201")],
}
STREETS = ["Rue de la Paix", "Hauptstraße", "Keizersgracht", "Via Roma", "High Street", "Main St"]
FIRST_NAMES = [
    "Camille",
    "Lucas",
    "Emma",
    "Noah",
    "Léa",
    "Hugo",
    "Mila",
    "Jonas",
    "Sofia",
    "Liam",
    "Chloé",
    "Luca",
    "Anna",
    "Finn",
    "Olivia",
    "Mateo",
    "Inès",
    "Elias",
    "Zoé",
    "Amir",
]
LAST_NAMES = [
    "Martin",
    "Bernard",
    "Müller",
    "Schmidt",
    "de Vries",
    "Janssens",
    "Rossi",
    "Smith",
    "Dubois",
    "Moreau",
    "Weber",
    "Bakker",
    "Peeters",
    "Russo",
    "Taylor",
    "Garcia",
]

# product type: (SKU prefix, names, options, price range in the shop currency)
CATALOGUE = {
    "T-Shirt": (
        "TSH",
        ["Organic Tee", "Pocket Tee", "Striped Tee", "Heavy Tee"],
        {"Size": ["S", "M", "L", "XL"], "Color": ["Black", "White", "Navy"]},
        (19, 39),
    ),
    "Hoodie": (
        "HOD",
        ["Zip Hoodie", "Fleece Hoodie", "Oversized Hoodie"],
        {"Size": ["S", "M", "L", "XL"], "Color": ["Grey", "Black"]},
        (49, 89),
    ),
    "Sneakers": (
        "SNK",
        ["Court Sneaker", "Runner", "Canvas Low"],
        {"Size": ["38", "39", "40", "41", "42", "43", "44"]},
        (69, 139),
    ),
    "Cap": (
        "CAP",
        ["Baseball Cap", "Wool Beanie", "Bucket Hat"],
        {"Color": ["Black", "Olive", "Sand"]},
        (15, 35),
    ),
    "Bag": ("BAG", ["Tote Bag", "Day Pack", "Weekender"], {}, (25, 149)),
    "Socks": (
        "SOC",
        ["Crew Socks 3-pack", "Ankle Socks 5-pack"],
        {"Size": ["36-40", "41-46"]},
        (9, 19),
    ),
}
VENDORS = ["Northwind Apparel", "Atelier Lumière", "Harbor & Co", "Studio Verde"]
COLOR_CODES = {
    "Black": "BLK",
    "White": "WHT",
    "Navy": "NVY",
    "Grey": "GRY",
    "Olive": "OLV",
    "Sand": "SND",
}

LOCATIONS = [
    ("Main Warehouse", "warehouse", "FR", "Lyon", "69007"),
    ("Paris Flagship Store", "store", "FR", "Paris", "75003"),
    ("Berlin Store", "store", "DE", "Berlin", "10178"),
    ("Amsterdam Store", "store", "NL", "Amsterdam", "1016 DX"),
]

DISCOUNT_CODES = [
    ("WELCOME10", "percentage", Decimal("10")),
    ("SUMMER15", "percentage", Decimal("15")),
    ("FIVEOFF", "fixed_amount", Decimal("5.00")),
]
SHIPPING_RATES = [
    ("Standard", "STANDARD", Decimal("4.90")),
    ("Express", "EXPRESS", Decimal("9.90")),
    ("Free shipping", "FREE", Decimal("0.00")),
]


def money(value):
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def ean13(number):
    """A valid EAN-13 barcode (check digit included) from a 12-digit number."""
    digits = f"{number:012d}"[-12:]
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return digits + str((10 - total % 10) % 10)


class RetailDataGenerator:
    """Realistic retail data from a seeded ``random.Random``."""

    def __init__(self, rng, now):
        self.rng = rng
        self.now = now
        self._sku_numbers = {}

    # --- catalogue -------------------------------------------------------------
    def locations(self, count=3):
        return [
            {
                "name": name,
                "kind": kind,
                "address": {
                    "address1": f"{self.rng.randint(1, 120)} {self.rng.choice(STREETS)}",
                    "city": city,
                    "zip": zip_code,
                    "country_code": country,
                },
            }
            for name, kind, country, city, zip_code in LOCATIONS[:count]
        ]

    def products(self, count):
        """``count`` products, each with its variants, SKUs, barcodes and prices."""
        products = []
        types = list(CATALOGUE)
        for index in range(count):
            product_type = types[index % len(types)]
            prefix, names, options, (low, high) = CATALOGUE[product_type]
            name = names[(index // len(types)) % len(names)]
            vendor = self.rng.choice(VENDORS)
            series = index // (len(types) * len(names))
            title = f"{name}" if series == 0 else f"{name} {('II', 'III', 'IV', 'V')[series % 4]}"
            price = money(self.rng.randint(low, high) - Decimal("0.10"))
            chosen = {
                option: sorted(
                    self.rng.sample(values, k=max(1, len(values) - self.rng.randint(0, 1))),
                    key=values.index,
                )
                for option, values in options.items()
            }
            combos = [{}]
            for option, values in chosen.items():
                combos = [{**combo, option: value} for combo in combos for value in values]
            variants = []
            for combo in combos:
                variants.append(
                    {
                        "sku": self._sku(prefix, index, combo),
                        "barcode": ean13(self.rng.randint(10**11, 10**12 - 1)),
                        "price": price,
                        "compare_at_price": money(price * Decimal("1.2"))
                        if self.rng.random() < 0.2
                        else None,
                        "options": combo,
                        "weight_grams": self.rng.choice([150, 250, 400, 800, 1200]),
                        "cost": money(price * Decimal("0.4")),
                    }
                )
            products.append(
                {
                    "title": title,
                    "handle": title.lower().replace(" ", "-").replace("&", "and") + f"-{index + 1}",
                    "vendor": vendor,
                    "product_type": product_type,
                    "tags": sorted(
                        self.rng.sample(
                            ["new", "bestseller", "eco", "sale", "basics"], k=self.rng.randint(0, 2)
                        )
                    ),
                    "status": "ACTIVE" if self.rng.random() < 0.9 else "DRAFT",
                    "options": chosen,
                    "variants": variants,
                    "created_at": self.past(days=400, not_after_days=120),
                    "description_html": f"<p>{title} by {vendor}.</p>",
                }
            )
        return products

    def _sku(self, prefix, index, combo):
        parts = [prefix, f"{index + 1:03d}"]
        for option, value in combo.items():
            parts.append(COLOR_CODES.get(value, value) if option == "Color" else value)
        return "-".join(parts)

    def stock(self):
        return self.rng.choice([0, 2, 5, 8, 12, 20, 35, 60])

    # --- people ----------------------------------------------------------------
    def customers(self, count):
        customers = []
        used = set()
        for _ in range(count):
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            email = (
                f"{first}.{last}".lower()
                .replace(" ", "")
                .replace("é", "e")
                .replace("è", "e")
                .replace("ü", "u")
                .replace("ç", "c")
            )
            while email in used:
                email = f"{email}{self.rng.randint(1, 99)}"
            used.add(email)
            country = self.rng.choice(list(TAX_REGIONS))
            customers.append(
                {
                    "first_name": first,
                    "last_name": last,
                    "email": f"{email}@example.com",
                    "phone": f"+{self.rng.choice([33, 49, 31, 32, 39, 44, 1])}"
                    f"{self.rng.randint(600000000, 799999999)}",
                    "accepts_marketing": self.rng.random() < 0.4,
                    "address": self.address(first, last, country),
                    "created_at": self.past(days=500, not_after_days=30),
                }
            )
        return customers

    def address(self, first, last, country):
        city, zip_code = self.rng.choice(CITIES[country])
        province = TAX_REGIONS[country][0]
        return {
            "first_name": first,
            "last_name": last,
            "address1": f"{self.rng.randint(1, 200)} {self.rng.choice(STREETS)}",
            "city": city,
            "zip": zip_code,
            "province_code": province,
            "country_code": country,
        }

    # --- orders ----------------------------------------------------------------
    def order(self, variants, customer):
        """A basket: lines, an optional discount code and a shipping rate.

        ``variants`` are dicts with at least ``price``; the basket refers to
        them by position in that list.
        """
        count = self.rng.choices([1, 2, 3, 4], weights=[45, 30, 17, 8])[0]
        picks = self.rng.sample(range(len(variants)), k=min(count, len(variants)))
        lines = [
            {"variant_index": i, "quantity": self.rng.choices([1, 2, 3], weights=[75, 20, 5])[0]}
            for i in picks
        ]
        discount = None
        if self.rng.random() < 0.3:
            code, kind, value = self.rng.choice(DISCOUNT_CODES)
            discount = {"code": code, "kind": kind, "value": value}
        shipping = self.rng.choice(SHIPPING_RATES)
        country = customer["address"]["country_code"]
        return {
            "lines": lines,
            "discount": discount,
            "shipping": {"title": shipping[0], "code": shipping[1], "price": shipping[2]},
            "currency": TAX_REGIONS[country][3],
            "created_at": self.past(days=30),
        }

    def past(self, days, not_after_days=0):
        """A moment between ``days`` and ``not_after_days`` days before now, to the second."""
        seconds = self.rng.randint(not_after_days * 86400, days * 86400)
        return (self.now - timedelta(seconds=seconds)).replace(microsecond=0)


def _spread(amount, bases):
    """``amount`` over ``bases`` pro rata, rounded to the cent, the remainder on
    the last base: the allocations always add up to ``amount``."""
    total = sum(bases, Decimal(0))
    if not total:
        return [Decimal(0)] * len(bases)
    shares = [money(amount * base / total) for base in bases]
    shares[-1] += amount - sum(shares, Decimal(0))
    return shares


def _discounts(discount):
    """The discounts of an order as a list (``None``, one dict or a list of dicts)."""
    if not discount:
        return []
    return [discount] if isinstance(discount, dict) else list(discount)


def price_order(lines, discount, shipping_price, tax_rate, taxes_included):
    """Allocate the discounts over the lines and shipping, compute taxes and totals.

    ``lines``: dicts with ``unit_price`` and ``quantity``. ``discount``: None,
    one discount or a list of them, each ``{"kind": "percentage" |
    "fixed_amount", "value", "target": "order" | "line" | "shipping",
    "line": index}`` (``target`` defaults to the order). As Shopify applies
    them: line discounts first, on their line; then order discounts over the
    lines left to pay, a percentage on each line, a fixed amount spread pro
    rata with the rounding remainder on the last line, so that the
    allocations add up to the discount; shipping discounts on the shipping
    price. Tax is computed per line on its discounted amount and rounded half
    up, then summed (Shopify never recomputes it from the order total).

    Returns per line ``gross``, ``discount``, ``allocations`` (discount index,
    amount), ``net`` and ``tax``; the shipping's ``shipping_discount``,
    ``shipping_allocations``, ``shipping_net`` and ``shipping_tax``; and the
    order totals, all in the currency of the prices given.
    """
    discounts = _discounts(discount)
    gross = [money(line["unit_price"] * line["quantity"]) for line in lines]
    net = list(gross)
    allocations = [[] for _line in lines]

    def allocate(index, position, amount):
        amount = min(amount, net[position])
        if amount:
            net[position] -= amount
            allocations[position].append((index, amount))

    ordered = sorted(
        enumerate(discounts), key=lambda item: item[1].get("target", "order") != "line"
    )
    shipping_price = money(shipping_price)
    shipping_net = shipping_price
    shipping_allocations = []
    for index, spec in ordered:
        target = spec.get("target", "order")
        value = Decimal(spec["value"])
        if target == "line":
            position = spec["line"]
            base = net[position]
            amount = money(base * value / 100) if spec["kind"] == "percentage" else money(value)
            allocate(index, position, amount)
        elif target == "shipping":
            if spec["kind"] == "percentage":
                amount = money(shipping_net * value / 100)
            else:
                amount = min(money(value), shipping_net)
            if amount:
                shipping_net -= amount
                shipping_allocations.append((index, amount))
        elif spec["kind"] == "percentage":
            for position, base in enumerate(list(net)):
                allocate(index, position, money(base * value / 100))
        else:
            total = min(money(value), sum(net, Decimal(0)))
            for position, share in enumerate(_spread(total, list(net))):
                allocate(index, position, share)

    def tax_of(amount):
        if taxes_included:
            return money(amount * tax_rate / (1 + tax_rate))
        return money(amount * tax_rate)

    line_taxes = [tax_of(n) for n in net]
    shipping_tax = tax_of(shipping_net)
    line_discounts = [sum((a for _i, a in alloc), Decimal(0)) for alloc in allocations]
    shipping_discount = sum((a for _i, a in shipping_allocations), Decimal(0))
    subtotal = sum(net, Decimal(0))
    total_tax = sum(line_taxes, Decimal(0)) + shipping_tax
    total = subtotal + shipping_net + (Decimal(0) if taxes_included else total_tax)
    return {
        "lines": [
            {"gross": g, "discount": d, "allocations": alloc, "net": n, "tax": t}
            for g, d, alloc, n, t in zip(
                gross, line_discounts, allocations, net, line_taxes, strict=True
            )
        ],
        "shipping_discount": shipping_discount,
        "shipping_allocations": shipping_allocations,
        "shipping_net": shipping_net,
        "shipping_tax": shipping_tax,
        "subtotal": subtotal,
        "total_discounts": sum(line_discounts, Decimal(0)) + shipping_discount,
        "total_tax": total_tax,
        "total_shipping": shipping_price,
        "total": money(total),
    }
