"""The state of one simulated Shopify shop and the business rules that change it.

Records are dicts keyed like the GraphQL fields they feed (``title``,
``updatedAt``...); keys starting with ``_`` hold what resolvers derive fields
from (references to other records, money in the shop currency). Money is
``Decimal`` in the shop currency; an order also knows its presentment
currency and rate. Timestamps are ISO 8601 strings in UTC, to the second, so
they sort and filter as strings.

Every change goes through a method here, which bumps ``updatedAt`` and tells
the simulator which webhooks the change emits. Callers hold the simulator's
lock.
"""

import itertools
from datetime import timedelta
from decimal import Decimal

from ..base import iso
from ..retail_data import CURRENCY_RATES, SHOP_CURRENCY, TAX_REGIONS, money, price_order

# ShopifyPaymentsPayoutStatus (IN_TRANSIT is deprecated but still answered).
PAYOUT_STATUSES = ("SCHEDULED", "IN_TRANSIT", "PAID", "FAILED", "CANCELED")

QUANTITY_NAMES = (
    "available",
    "committed",
    "damaged",
    "incoming",
    "on_hand",
    "quality_control",
    "reserved",
    "safety_stock",
)
# reasons inventorySetQuantities / inventoryAdjustQuantities accept
INVENTORY_REASONS = {
    "correction",
    "cycle_count_available",
    "damaged",
    "movement_created",
    "movement_updated",
    "movement_received",
    "movement_canceled",
    "other",
    "promotion",
    "quality_control",
    "received",
    "reservation_created",
    "reservation_deleted",
    "reservation_updated",
    "restock",
    "safety_stock",
    "shrinkage",
}
CANCEL_REASONS = {"CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "OTHER", "STAFF"}


def gid(kind, number):
    return f"gid://shopify/{kind}/{number}"


def legacy_id(global_id):
    """The numeric id at the end of a GID (``gid://shopify/Order/12`` -> 12)."""
    return int(str(global_id).rsplit("/", 1)[-1].split("?", 1)[0])


class StoreError(ValueError):
    """A change the shop refuses; ``field`` names the input at fault."""

    def __init__(self, message, field=None, code=None):
        super().__init__(message)
        self.field = field
        self.code = code


class ShopifyStore:
    """All records of one shop, and the rules that change them."""

    def __init__(self, *, shop_domain, shop_name, clock, emit):
        self.shop_domain = shop_domain
        self.shop_name = shop_name
        self.clock = clock  # () -> aware datetime
        self.emit = emit  # (topic, record) -> None: queues the webhook
        self._ids = itertools.count(1_000_001)
        self._order_numbers = itertools.count(1001)
        self.shop = {}
        self.locations = {}
        self.products = {}
        self.variants = {}
        self.inventory_items = {}
        self.levels = {}  # (item gid, location gid) -> level
        self.item_levels = {}  # item gid -> its levels, for per-item reads
        self.customers = {}
        self.orders = {}
        self.fulfillment_orders = {}
        self.fulfillments = {}
        self.refunds = {}
        self.payouts = {}
        self.balance_transactions = {}
        self.adjustment_groups = {}
        self.webhook_subscriptions = {}
        self.idempotency = {}
        self.line_index = {}  # line item or shipping line id -> order id
        self.require_idempotency = True

    # --- helpers ---------------------------------------------------------------
    def now(self):
        return iso(self.clock())

    def new_id(self, kind):
        number = next(self._ids)
        return gid(kind, number), number

    def find(self, table, key, kind):
        """A record by GID, numeric id or (orders) name; StoreError when unknown."""
        records = getattr(self, table)
        if key in records:
            return records[key]
        text = str(key)
        if text.isdigit() and gid(kind, text) in records:
            return records[gid(kind, text)]
        if table == "orders":
            for order in records.values():
                if order["name"] == text:
                    return order
        if table in ("variants", "inventory_items"):
            for record in records.values():
                if record.get("sku") == text:
                    return record
        if table == "locations":
            for record in records.values():
                if record["name"] == text:
                    return record
        raise StoreError(f"{kind} {key} does not exist", code="NOT_FOUND")

    def money_bag(self, amount, order=None):
        """A MoneyBag: the amount in the shop currency and in the order's presentment one."""
        amount = money(amount)
        currency = order["presentmentCurrencyCode"] if order else SHOP_CURRENCY
        rate = order["_rate"] if order else Decimal(1)
        return {
            "shopMoney": {"amount": amount, "currencyCode": SHOP_CURRENCY},
            "presentmentMoney": {"amount": money(amount * rate), "currencyCode": currency},
        }

    # --- seeding ---------------------------------------------------------------
    def seed(self, generator, *, products=24, customers=30, orders=40, locations=3):
        now = self.now()
        self.shop = {
            "__typename": "Shop",
            "id": self.new_id("Shop")[0],
            "name": self.shop_name,
            "email": f"owner@{self.shop_domain}",
            "myshopifyDomain": self.shop_domain,
            "currencyCode": SHOP_CURRENCY,
            "enabledPresentmentCurrencies": sorted(CURRENCY_RATES),
            "ianaTimezone": "Europe/Paris",
            "weightUnit": "GRAMS",
            "taxesIncluded": True,
            "createdAt": iso(self.clock() - timedelta(days=900)),
            "updatedAt": now,
            "plan": {
                "publicDisplayName": "Shopify",
                "partnerDevelopment": False,
                "shopifyPlus": False,
            },
        }
        for spec in generator.locations(locations):
            self.add_location(spec)
        for spec in generator.products(products):
            product = self.add_product(spec)
            for variant_id in product["_variants"]:
                item_id = self.variants[variant_id]["_inventory_item"]
                for location_id in self.locations:
                    self.level(item_id, location_id)["quantities"]["available"] = generator.stock()
                    level = self.level(item_id, location_id)
                    level["quantities"]["on_hand"] = level["quantities"]["available"]
        for spec in generator.customers(customers):
            self.add_customer(spec)
        customer_ids = list(self.customers)
        sellable = [v for v in self.variants.values() if v["_product_status"] == "ACTIVE"]
        specs = []
        for _ in range(orders):
            customer = self.customers[generator.rng.choice(customer_ids)]
            specs.append((generator.order(sellable, customer["_spec"]), customer))
        for spec, customer in sorted(specs, key=lambda s: s[0]["created_at"]):
            lines = [
                (sellable[line["variant_index"]]["id"], line["quantity"]) for line in spec["lines"]
            ]
            paid = generator.rng.random() < 0.9
            order = self.create_order(
                customer_id=customer["id"],
                lines=lines,
                discount=spec["discount"],
                shipping=spec["shipping"],
                currency=spec["currency"],
                paid=paid,
                created_at=iso(spec["created_at"]),
                emit=False,
            )
            roll = generator.rng.random()
            if roll < 0.35:
                self.create_fulfillment(
                    order["_fulfillment_orders"][0],
                    None,
                    {
                        "company": "DHL Express",
                        "number": f"JD{generator.rng.randint(10**9, 10**10)}",
                    },
                    emit=False,
                )
            elif roll < 0.42 and paid:
                self.create_refund(
                    order["id"], None, restock=True, note="Customer return", emit=False
                )
        self.pay_out(before=iso(self.clock() - timedelta(days=2)), emit=False)

    # --- catalogue -------------------------------------------------------------
    def add_location(self, spec):
        location_id, number = self.new_id("Location")
        address = spec["address"]
        self.locations[location_id] = {
            "__typename": "Location",
            "id": location_id,
            "legacyResourceId": str(number),
            "name": spec["name"],
            "isActive": True,
            "fulfillsOnlineOrders": spec["kind"] == "warehouse",
            "shipsInventory": spec["kind"] == "warehouse",
            "address": {
                "address1": address["address1"],
                "city": address["city"],
                "zip": address["zip"],
                "countryCode": address["country_code"],
                "provinceCode": None,
            },
            "createdAt": self.now(),
            "updatedAt": self.now(),
        }
        return self.locations[location_id]

    def add_product(self, spec):
        product_id, number = self.new_id("Product")
        created = iso(spec["created_at"]) if spec.get("created_at") else self.now()
        product = {
            "__typename": "Product",
            "id": product_id,
            "legacyResourceId": str(number),
            "title": spec["title"],
            "handle": spec.get("handle") or spec["title"].lower().replace(" ", "-"),
            "vendor": spec.get("vendor", self.shop_name),
            "productType": spec.get("product_type", ""),
            "status": spec.get("status", "ACTIVE"),
            "tags": list(spec.get("tags", [])),
            "descriptionHtml": spec.get("description_html", ""),
            "createdAt": created,
            "updatedAt": created,
            "publishedAt": created if spec.get("status", "ACTIVE") == "ACTIVE" else None,
            "_options": {name: list(values) for name, values in spec.get("options", {}).items()},
            "_variants": [],
        }
        self.products[product_id] = product
        for variant in spec.get("variants") or [{"options": {}, "price": Decimal(0)}]:
            self.add_variant(product, variant, created)
        return product

    def add_variant(self, product, spec, created=None):
        created = created or self.now()
        variant_id, number = self.new_id("ProductVariant")
        item_id, item_number = self.new_id("InventoryItem")
        options = spec.get("options") or {}
        title = " / ".join(options.values()) or "Default Title"
        variant = {
            "__typename": "ProductVariant",
            "id": variant_id,
            "legacyResourceId": str(number),
            "title": title,
            "displayName": f"{product['title']} - {title}",
            "sku": spec.get("sku"),
            "barcode": spec.get("barcode"),
            "price": money(spec.get("price") or 0),
            "compareAtPrice": money(spec["compare_at_price"])
            if spec.get("compare_at_price")
            else None,
            "taxable": spec.get("taxable", True),
            # Whether checkout sells the variant out of stock (CONTINUE) or
            # refuses (DENY, Shopify's default for a new variant). The seeded
            # catalogue sells on, as a shop taking backorders does, so that
            # orders placed at random never run dry; see set_inventory_policy.
            "inventoryPolicy": spec.get("inventory_policy", "CONTINUE"),
            "position": len(product["_variants"]) + 1,
            "selectedOptions": [{"name": k, "value": v} for k, v in options.items()],
            "createdAt": created,
            "updatedAt": created,
            "_product": product["id"],
            "_product_status": product["status"],
            "_inventory_item": item_id,
        }
        self.variants[variant_id] = variant
        product["_variants"].append(variant_id)
        self.inventory_items[item_id] = {
            "__typename": "InventoryItem",
            "id": item_id,
            "legacyResourceId": str(item_number),
            "sku": spec.get("sku"),
            "tracked": spec.get("tracked", True),
            "requiresShipping": spec.get("requires_shipping", True),
            "unitCost": {"amount": money(spec["cost"]), "currencyCode": SHOP_CURRENCY}
            if spec.get("cost") is not None
            else None,
            "measurement": self._measurement(item_id, spec),
            "createdAt": created,
            "updatedAt": created,
            "_variant": variant_id,
        }
        return variant

    @staticmethod
    def _measurement(item_id, spec):
        """The inventory item's measurement: its weight (seeded in grams)."""
        weight = spec.get("weight")
        if weight is None and spec.get("weight_grams") is not None:
            weight = {"value": float(spec["weight_grams"]), "unit": "GRAMS"}
        return {
            "__typename": "InventoryItemMeasurement",
            "id": f"gid://shopify/InventoryItemMeasurement/{legacy_id(item_id)}",
            "weight": {
                "__typename": "Weight",
                "value": float(weight["value"]),
                "unit": weight["unit"],
            }
            if weight
            else None,
        }

    def remove_variant(self, variant_id):
        """Delete a variant with its inventory item and levels."""
        variant = self.variants.pop(variant_id)
        self.products[variant["_product"]]["_variants"].remove(variant_id)
        item_id = variant["_inventory_item"]
        self.inventory_items.pop(item_id)
        for level in self.item_levels.pop(item_id, []):
            self.levels.pop((item_id, level["_location"]))

    def level(self, item_id, location_id, create=True):
        key = (item_id, location_id)
        if key not in self.levels:
            if not create:
                return None
            self.levels[key] = {
                "__typename": "InventoryLevel",
                "id": f"gid://shopify/InventoryLevel/{legacy_id(location_id)}"
                f"?inventory_item_id={legacy_id(item_id)}",
                "_item": item_id,
                "_location": location_id,
                "quantities": dict.fromkeys(QUANTITY_NAMES, 0),
                "createdAt": self.now(),
                "updatedAt": self.now(),
            }
            self.item_levels.setdefault(item_id, []).append(self.levels[key])
        return self.levels[key]

    def available(self, item_id):
        """Available quantity of an item over every location."""
        return sum(lv["quantities"]["available"] for lv in self.item_levels.get(item_id, []))

    def touch_product(self, product, emit=True):
        product["updatedAt"] = self.now()
        for variant_id in product["_variants"]:
            self.variants[variant_id]["_product_status"] = product["status"]
        if emit:
            self.emit("products/update", product)

    def update_product(self, product_id, values, emit=True):
        product = self.find("products", product_id, "Product")
        mapping = {
            "title": "title",
            "handle": "handle",
            "vendor": "vendor",
            "productType": "productType",
            "status": "status",
            "tags": "tags",
            "descriptionHtml": "descriptionHtml",
        }
        for key, value in values.items():
            if key in mapping:
                product[mapping[key]] = value
        self.touch_product(product, emit)
        return product

    def update_variant(self, variant, values):
        for key in ("price", "compareAtPrice"):
            if key in values:
                variant[key] = money(values[key]) if values[key] is not None else None
        for key in ("barcode", "taxable"):
            if key in values:
                variant[key] = values[key]
        item_values = values.get("inventoryItem") or {}
        item = self.inventory_items[variant["_inventory_item"]]
        if "sku" in values or "sku" in item_values:
            variant["sku"] = item["sku"] = item_values.get("sku", values.get("sku"))
        for key in ("tracked", "requiresShipping"):
            if key in item_values:
                item[key] = item_values[key]
        weight = (item_values.get("measurement") or {}).get("weight")
        if weight:
            item["measurement"] = self._measurement(item["id"], {"weight": weight})
        if "cost" in item_values:
            item["unitCost"] = {"amount": money(item_values["cost"]), "currencyCode": SHOP_CURRENCY}
        variant["updatedAt"] = item["updatedAt"] = self.now()

    # --- inventory -------------------------------------------------------------
    def shift(self, level, name, delta, changes):
        """Move one quantity of a level by ``delta`` and record the change."""
        if not delta:
            return
        level["quantities"][name] += delta
        changes.append((level, name, delta, level["quantities"][name]))
        level["updatedAt"] = self.now()
        self.inventory_items[level["_item"]]["updatedAt"] = level["updatedAt"]

    def change_quantity(self, level, name, delta, changes):
        """Set or adjust ``name`` the way the inventory API does.

        ``available`` and ``on_hand`` move together (on hand = available +
        committed + the other states); any other state moves alone.
        """
        self.shift(level, name, delta, changes)
        if name == "available":
            self.shift(level, "on_hand", delta, changes)
        elif name == "on_hand":
            self.shift(level, "available", delta, changes)

    def emit_levels(self, changes):
        seen = []
        for level, name, _delta, _after in changes:
            if name == "available" and level not in seen:
                seen.append(level)
        for level in seen:
            self.emit("inventory_levels/update", level)

    def set_available(self, item_id, location_id, quantity, emit=True):
        """Set the available quantity (what a merchant or another app does)."""
        item = self.find("inventory_items", item_id, "InventoryItem")
        location = self.find("locations", location_id, "Location")
        level = self.level(item["id"], location["id"])
        changes = []
        self.change_quantity(
            level, "available", quantity - level["quantities"]["available"], changes
        )
        if emit:
            self.emit_levels(changes)
        return level

    def adjustment_group(self, reason, reference, changes):
        group_id, _ = self.new_id("InventoryAdjustmentGroup")
        group = {
            "__typename": "InventoryAdjustmentGroup",
            "id": group_id,
            "createdAt": self.now(),
            "reason": reason,
            "referenceDocumentUri": reference,
            "_changes": [
                {
                    "__typename": "InventoryChange",
                    "name": name,
                    "delta": delta,
                    "quantityAfterChange": after,
                    "_item": level["_item"],
                    "_location": level["_location"],
                    "ledgerDocumentUri": None,
                }
                for level, name, delta, after in changes
            ],
        }
        self.adjustment_groups[group_id] = group
        return group

    # --- customers -------------------------------------------------------------
    def add_customer(self, spec):
        customer_id, number = self.new_id("Customer")
        created = iso(spec["created_at"]) if spec.get("created_at") else self.now()
        self.customers[customer_id] = {
            "__typename": "Customer",
            "id": customer_id,
            "legacyResourceId": str(number),
            "firstName": spec["first_name"],
            "lastName": spec["last_name"],
            "displayName": f"{spec['first_name']} {spec['last_name']}",
            "email": spec["email"],
            "phone": spec.get("phone"),
            "state": "ENABLED",
            "verifiedEmail": True,
            "tags": [],
            "note": None,
            "createdAt": created,
            "updatedAt": created,
            "_accepts_marketing": spec.get("accepts_marketing", False),
            "_address": self._address(spec["address"], spec.get("phone")),
            "_spec": spec,
        }
        return self.customers[customer_id]

    @staticmethod
    def _address(address, phone=None):
        return {
            "firstName": address["first_name"],
            "lastName": address["last_name"],
            "name": f"{address['first_name']} {address['last_name']}",
            "address1": address["address1"],
            "address2": None,
            "city": address["city"],
            "zip": address["zip"],
            "provinceCode": address.get("province_code"),
            "countryCodeV2": address["country_code"],
            "country": address["country_code"],
            "company": None,
            "phone": phone,
        }

    # --- orders ----------------------------------------------------------------
    def create_order(
        self,
        *,
        customer_id=None,
        lines,
        discount=None,
        shipping=None,
        currency=None,
        paid=True,
        created_at=None,
        location_id=None,
        note=None,
        tags=(),
        emit=True,
    ):
        """Place an order: lines of (variant id or SKU, quantity).

        ``discount``: None, one discount or a list of them (see
        :func:`~simulators.retail_data.price_order`: a code's ``code``, its
        ``kind`` and ``value``, and its ``target``: the order, a ``line`` by
        position, or the shipping). Commits stock at the fulfilling location,
        opens one fulfillment order, records the payment and its Shopify
        Payments balance transaction.
        """
        if not lines:
            raise StoreError("An order needs at least one line item", field=["lines"])
        customer = (
            self.find("customers", customer_id, "Customer")
            if customer_id
            else (next(iter(self.customers.values())))
        )
        address = customer["_spec"]["address"]
        country = address["country_code"]
        _province, tax_title, tax_rate, default_currency = TAX_REGIONS[country]
        currency = currency or default_currency
        if currency not in CURRENCY_RATES:
            raise StoreError(f"Currency {currency} is not enabled", field=["currency"])
        location = (
            self.find("locations", location_id, "Location")
            if location_id
            else next(
                (loc for loc in self.locations.values() if loc["fulfillsOnlineOrders"]),
                next(iter(self.locations.values())),
            )
        )
        variants = [(self.find("variants", ref, "ProductVariant"), int(qty)) for ref, qty in lines]
        self._check_stock(variants, location)
        shipping = shipping or {"title": "Standard", "code": "STANDARD", "price": Decimal("4.90")}
        taxes_included = self.shop["taxesIncluded"]
        # One discount, or several (line, order and shipping discounts).
        discounts = [discount] if isinstance(discount, dict) else list(discount or [])
        priced = price_order(
            [{"unit_price": v["price"], "quantity": q} for v, q in variants],
            discounts,
            money(shipping["price"]),
            tax_rate,
            taxes_included,
        )
        order_id, number = self.new_id("Order")
        created = created_at or self.now()
        order_number = next(self._order_numbers)
        order = {
            "__typename": "Order",
            "id": order_id,
            "legacyResourceId": str(number),
            "name": f"#{order_number}",
            "number": order_number,
            "email": customer["email"],
            "phone": customer["phone"],
            "createdAt": created,
            "updatedAt": created,
            "processedAt": created,
            "cancelledAt": None,
            "cancelReason": None,
            "closed": False,
            "closedAt": None,
            "test": False,
            "confirmed": True,
            "currencyCode": SHOP_CURRENCY,
            "presentmentCurrencyCode": currency,
            "taxesIncluded": taxes_included,
            "displayFinancialStatus": "PAID" if paid else "PENDING",
            "displayFulfillmentStatus": "UNFULFILLED",
            "note": note,
            "tags": list(tags),
            "sourceName": "web",
            "discountCodes": [d["code"] for d in discounts if d.get("code")],
            "billingAddress": self._address(address, customer["phone"]),
            "shippingAddress": self._address(address, customer["phone"]),
            "_rate": CURRENCY_RATES[currency],
            "_customer": customer["id"],
            "_tax_title": tax_title,
            "_tax_rate": tax_rate,
            # The first discount, as the GraphQL resolvers read it; every
            # discount, in discount application order, in ``_discounts``.
            "_discount": discounts[0] if discounts else None,
            "_discounts": discounts,
            "_totals": priced,
            "_line_items": [],
            "_shipping_lines": [],
            "_transactions": [],
            "_refunds": [],
            "_fulfillment_orders": [],
            "_fulfillments": [],
            "_location": location["id"],
        }
        for (variant, quantity), priced_line in zip(variants, priced["lines"], strict=True):
            line_id, line_number = self.new_id("LineItem")
            product = self.products[variant["_product"]]
            order["_line_items"].append(
                {
                    "__typename": "LineItem",
                    "id": line_id,
                    "legacyResourceId": str(line_number),
                    "name": variant["displayName"],
                    "title": product["title"],
                    "variantTitle": variant["title"],
                    "sku": variant["sku"],
                    "vendor": product["vendor"],
                    "quantity": quantity,
                    "requiresShipping": True,
                    "taxable": variant["taxable"],
                    "_variant": variant["id"],
                    "_product": product["id"],
                    "_unit_price": variant["price"],
                    "_priced": priced_line,
                    "_fulfilled": 0,
                    "_refunded": 0,
                }
            )
        shipping_id, _ = self.new_id("ShippingLine")
        order["_shipping_lines"].append(
            {
                "__typename": "ShippingLine",
                "id": shipping_id,
                "title": shipping["title"],
                "code": shipping["code"],
                "source": "shopify",
                "_price": money(shipping["price"]),
                # After its shipping discounts: what the customer pays for it.
                "_discounted_price": priced["shipping_net"],
                "_discount": priced["shipping_discount"],
                "_allocations": priced["shipping_allocations"],
                "_tax": priced["shipping_tax"],
            }
        )
        self.orders[order_id] = order
        for line in (*order["_line_items"], *order["_shipping_lines"]):
            self.line_index[line["id"]] = order_id
        customer["updatedAt"] = created
        changes = []
        for line in order["_line_items"]:
            item_id = self.variants[line["_variant"]]["_inventory_item"]
            level = self.level(item_id, location["id"])
            self.shift(level, "available", -line["quantity"], changes)
            self.shift(level, "committed", line["quantity"], changes)
        self._open_fulfillment_order(order, location)
        self._add_transaction(order, "SALE", priced["total"], paid)
        if emit:
            self.emit("orders/create", order)
            self.emit_levels(changes)
        return order

    def set_inventory_policy(self, ref, policy):
        """Whether checkout sells a variant (by id or SKU) when none is
        available: ``DENY`` (refuse) or ``CONTINUE`` (sell on)."""
        if policy not in ("DENY", "CONTINUE"):
            raise StoreError(f"Unknown inventory policy {policy}", field=["inventoryPolicy"])
        variant = self.find("variants", ref, "ProductVariant")
        variant["inventoryPolicy"] = policy
        variant["updatedAt"] = self.now()
        return variant

    def _check_stock(self, variants, location):
        """Refuse an order as checkout does: a tracked variant whose policy is
        DENY sells no more than is available at the location the order is
        fulfilled from (the order is refused whole, nothing is committed)."""
        wanted = {}
        for variant, quantity in variants:
            wanted[variant["id"]] = wanted.get(variant["id"], 0) + quantity
        for variant_id, quantity in wanted.items():
            variant = self.variants[variant_id]
            item = self.inventory_items[variant["_inventory_item"]]
            if variant.get("inventoryPolicy") != "DENY" or not item["tracked"]:
                continue
            level = self.levels.get((item["id"], location["id"]))
            available = level["quantities"]["available"] if level else 0
            if available < quantity:
                raise StoreError(
                    f"{variant['displayName']}: only {max(available, 0)} available at "
                    f"{location['name']}, {quantity} ordered",
                    field=["lines"],
                    code="NOT_ENOUGH_IN_STOCK",
                )

    def _open_fulfillment_order(self, order, location):
        fo_id, _ = self.new_id("FulfillmentOrder")
        lines = []
        for line in order["_line_items"]:
            fo_line_id, _ = self.new_id("FulfillmentOrderLineItem")
            lines.append(
                {
                    "__typename": "FulfillmentOrderLineItem",
                    "id": fo_line_id,
                    "sku": line["sku"],
                    "totalQuantity": line["quantity"],
                    "remainingQuantity": line["quantity"],
                    "_line_item": line["id"],
                }
            )
        self.fulfillment_orders[fo_id] = {
            "__typename": "FulfillmentOrder",
            "id": fo_id,
            "status": "OPEN",
            "requestStatus": "UNSUBMITTED",
            "createdAt": order["createdAt"],
            "updatedAt": order["createdAt"],
            "_order": order["id"],
            "_location": location["id"],
            "_lines": lines,
        }
        order["_fulfillment_orders"].append(fo_id)

    def _add_transaction(self, order, kind, amount, success, parent=None):
        transaction_id, number = self.new_id("OrderTransaction")
        gateway = "shopify_payments" if success or kind == "REFUND" else "bank_deposit"
        transaction = {
            "__typename": "OrderTransaction",
            "id": transaction_id,
            "legacyResourceId": str(number),
            "kind": kind,
            "status": "SUCCESS" if success else "PENDING",
            "gateway": gateway,
            "test": False,
            "createdAt": self.now() if kind == "REFUND" else order["createdAt"],
            "processedAt": self.now() if kind == "REFUND" else order["createdAt"],
            "_amount": money(amount),
            "_order": order["id"],
            "_parent": parent,
        }
        order["_transactions"].append(transaction)
        if success and gateway == "shopify_payments":
            self._balance_transaction(order, transaction)
        return transaction

    def _balance_transaction(self, order, transaction):
        refund = transaction["kind"] == "REFUND"
        amount = -transaction["_amount"] if refund else transaction["_amount"]
        fee = Decimal(0) if refund else money(amount * Decimal("0.015") + Decimal("0.25"))
        balance_id, number = self.new_id("ShopifyPaymentsBalanceTransaction")
        self.balance_transactions[balance_id] = {
            "__typename": "ShopifyPaymentsBalanceTransaction",
            "id": balance_id,
            "type": "REFUND" if refund else "CHARGE",
            "sourceType": "REFUND" if refund else "CHARGE",
            "sourceId": number,
            "sourceOrderTransactionId": int(transaction["legacyResourceId"]),
            "test": False,
            "adjustmentReason": None,
            "transactionDate": transaction["processedAt"],
            "_amount": amount,
            "_fee": fee,
            "_net": amount - fee,
            "_order": order["id"],
            "_payout": None,
        }

    def touch_order(self, order, topic=None, emit=True):
        order["updatedAt"] = self.now()
        if emit:
            if topic:
                self.emit(topic, order)
            self.emit("orders/updated", order)

    def update_order(self, order_id, values, emit=True):
        order = self.find("orders", order_id, "Order")
        for key in ("note", "tags", "email"):
            if key in values:
                order[key] = values[key]
        self.touch_order(order, emit=emit)
        return order

    def cancel_order(self, order_id, reason="CUSTOMER", restock=True, refund=True, emit=True):
        order = self.find("orders", order_id, "Order")
        if order["cancelledAt"]:
            raise StoreError("Order has already been cancelled", field=["orderId"])
        if reason not in CANCEL_REASONS:
            raise StoreError(f"Unknown cancel reason {reason}", field=["reason"])
        changes = []
        if restock:
            self._release_unfulfilled(order, changes)
        for fo_id in order["_fulfillment_orders"]:
            fulfillment_order = self.fulfillment_orders[fo_id]
            if fulfillment_order["status"] in ("OPEN", "IN_PROGRESS"):
                fulfillment_order["status"] = (
                    "CLOSED"
                    if any(
                        line["remainingQuantity"] < line["totalQuantity"]
                        for line in fulfillment_order["_lines"]
                    )
                    else "CANCELLED"
                )
                for line in fulfillment_order["_lines"]:
                    line["remainingQuantity"] = 0
                fulfillment_order["updatedAt"] = self.now()
        order["cancelledAt"] = order["closedAt"] = self.now()
        order["cancelReason"] = reason
        order["closed"] = True
        refund_record = None
        if refund and order["displayFinancialStatus"] in ("PAID", "PARTIALLY_REFUNDED"):
            refund_record = self.create_refund(
                order["id"], None, restock=False, note="Order cancelled", shipping=True, emit=emit
            )
        elif order["displayFinancialStatus"] == "PENDING":
            order["displayFinancialStatus"] = "VOIDED"
        self.touch_order(order, "orders/cancelled", emit)
        if emit:
            self.emit_levels(changes)
        return order, refund_record

    def mark_order_paid(self, order_id, emit=True):
        """The merchant received the money of a pending order (a bank deposit,
        cash on delivery) and marks it as paid: its pending sale succeeds."""
        order = self.find("orders", order_id, "Order")
        if order["displayFinancialStatus"] != "PENDING" or order["cancelledAt"]:
            raise StoreError("Order has no pending payment to mark as paid", field=["id"])
        for transaction in order["_transactions"]:
            if transaction["kind"] == "SALE" and transaction["status"] == "PENDING":
                transaction["status"] = "SUCCESS"
                transaction["processedAt"] = self.now()
        order["displayFinancialStatus"] = "PAID"
        self.touch_order(order, emit=emit)
        return order

    def _release_unfulfilled(self, order, changes, lines=None):
        """Put back into available what was committed and not shipped."""
        for line in order["_line_items"]:
            quantity = line["quantity"] - line["_fulfilled"] - line["_refunded"]
            if lines is not None:
                quantity = min(quantity, lines.get(line["id"], 0))
            if quantity <= 0:
                continue
            item_id = self.variants[line["_variant"]]["_inventory_item"]
            level = self.level(item_id, order["_location"])
            self.shift(level, "committed", -quantity, changes)
            self.shift(level, "available", quantity, changes)

    def create_refund(self, order_id, lines, *, restock=True, note=None, shipping=False, emit=True):
        """Refund ``lines`` ({line item id or SKU: quantity}; None: all that is left)."""
        order = self.find("orders", order_id, "Order")
        if order["displayFinancialStatus"] not in ("PAID", "PARTIALLY_REFUNDED"):
            raise StoreError("Order has no payment to refund", field=["orderId"])
        wanted = self._quantities_to_refund(order, lines)
        refund_id, number = self.new_id("Refund")
        refund_lines, total = [], Decimal(0)
        changes = []
        for line in order["_line_items"]:
            quantity = wanted.get(line["id"], 0)
            if not quantity:
                continue
            share = Decimal(quantity) / line["quantity"]
            subtotal = money(line["_priced"]["net"] * share)
            tax = money(line["_priced"]["tax"] * share)
            unshipped = line["quantity"] - line["_fulfilled"] - line["_refunded"]
            restock_type = "NO_RESTOCK"
            if restock:
                restock_type = "CANCEL" if unshipped >= quantity else "RETURN"
                self._restock(order, line, quantity, unshipped, changes)
            line["_refunded"] += quantity
            refund_line_id, _ = self.new_id("RefundLineItem")
            refund_lines.append(
                {
                    "__typename": "RefundLineItem",
                    "id": refund_line_id,
                    "quantity": quantity,
                    "restockType": restock_type,
                    "restocked": restock,
                    "_line_item": line["id"],
                    "_location": order["_location"] if restock else None,
                    "_subtotal": subtotal,
                    "_tax": tax,
                }
            )
            total += subtotal + (Decimal(0) if order["taxesIncluded"] else tax)
        shipping_amount = Decimal(0)
        shipping_lines = []
        if shipping:
            for shipping_line in order["_shipping_lines"]:
                line_id, _ = self.new_id("RefundShippingLine")
                shipping_lines.append(
                    {
                        "__typename": "RefundShippingLine",
                        "id": line_id,
                        "_order": order["id"],
                        "_shipping_line": shipping_line["id"],
                        "_subtotal": shipping_line["_discounted_price"],
                        "_tax": Decimal(0),
                    }
                )
                shipping_amount += shipping_line["_discounted_price"]
            total += shipping_amount
        if total <= 0:
            raise StoreError("Nothing to refund", field=["refundLineItems"])
        sale = next((t for t in order["_transactions"] if t["kind"] == "SALE"), None)
        transaction = self._add_transaction(
            order, "REFUND", total, True, parent=sale["id"] if sale else None
        )
        refund = {
            "__typename": "Refund",
            "id": refund_id,
            "legacyResourceId": str(number),
            "note": note,
            "createdAt": self.now(),
            "updatedAt": self.now(),
            "_order": order["id"],
            "_lines": refund_lines,
            "_shipping": shipping_amount,
            "_shipping_lines": shipping_lines,
            "_transactions": [transaction],
            "_total": total,
        }
        self.refunds[refund_id] = refund
        order["_refunds"].append(refund_id)
        refunded = sum((self.refunds[r]["_total"] for r in order["_refunds"]), Decimal(0))
        order["displayFinancialStatus"] = (
            "REFUNDED" if refunded >= order["_totals"]["total"] else "PARTIALLY_REFUNDED"
        )
        self._close_refunded_fulfillment(order)
        order["updatedAt"] = self.now()
        if emit:
            self.emit("refunds/create", refund)
            self.emit("orders/updated", order)
            self.emit_levels(changes)
        return refund

    @staticmethod
    def _quantities_to_refund(order, lines):
        """{line item id: quantity} to refund, checked against what is refundable."""
        wanted = {}
        for line in order["_line_items"]:
            left = line["quantity"] - line["_refunded"]
            if lines is None:
                wanted[line["id"]] = left
            else:
                for key, quantity in lines.items():
                    if key in (line["id"], line["sku"], line["legacyResourceId"]):
                        if quantity > left:
                            raise StoreError(
                                f"Quantity {quantity} exceeds refundable {left} for {line['sku']}",
                                field=["refundLineItems"],
                            )
                        wanted[line["id"]] = quantity
        if lines is not None and len(wanted) != len(lines):
            raise StoreError("Unknown line item in refund", field=["refundLineItems"])
        return wanted

    def _restock(self, order, line, quantity, unshipped, changes):
        item_id = self.variants[line["_variant"]]["_inventory_item"]
        level = self.level(item_id, order["_location"])
        from_unshipped = min(quantity, max(unshipped, 0))
        # Not shipped yet: the commitment goes back to available.
        self.shift(level, "committed", -from_unshipped, changes)
        self.shift(level, "available", from_unshipped, changes)
        # Shipped and returned: back on hand and available.
        self.change_quantity(level, "available", quantity - from_unshipped, changes)

    def _close_refunded_fulfillment(self, order):
        """Refunded, unshipped quantities leave the fulfillment orders."""
        refunded = {line["id"]: line["_refunded"] for line in order["_line_items"]}
        for fo_id in order["_fulfillment_orders"]:
            fulfillment_order = self.fulfillment_orders[fo_id]
            for fo_line in fulfillment_order["_lines"]:
                line = next(li for li in order["_line_items"] if li["id"] == fo_line["_line_item"])
                open_quantity = max(line["quantity"] - line["_fulfilled"] - refunded[line["id"]], 0)
                fo_line["remainingQuantity"] = min(fo_line["remainingQuantity"], open_quantity)
            if all(li["remainingQuantity"] == 0 for li in fulfillment_order["_lines"]) and (
                fulfillment_order["status"] in ("OPEN", "IN_PROGRESS")
            ):
                fulfillment_order["status"] = "CLOSED"
                fulfillment_order["updatedAt"] = self.now()

    # --- fulfillment -----------------------------------------------------------
    def create_fulfillment(
        self, fulfillment_order_id, lines, tracking=None, notify=False, emit=True
    ):
        """Ship from a fulfillment order: ``lines`` {fulfillment order line id: quantity}
        (None: everything remaining). Returns the fulfillment."""
        fulfillment_order = self.find(
            "fulfillment_orders", fulfillment_order_id, "FulfillmentOrder"
        )
        if fulfillment_order["status"] not in ("OPEN", "IN_PROGRESS"):
            raise StoreError(
                f"Fulfillment order {fulfillment_order['id']} has an unfulfillable status= "
                f"{fulfillment_order['status'].lower()}.",
                field=["fulfillment"],
            )
        order = self.orders[fulfillment_order["_order"]]
        wanted = self._quantities_to_fulfill(fulfillment_order, lines)
        fulfillment_id, number = self.new_id("Fulfillment")
        fulfillment_lines, changes = [], []
        for fo_line in fulfillment_order["_lines"]:
            quantity = wanted.get(fo_line["id"], 0)
            if not quantity:
                continue
            fo_line["remainingQuantity"] -= quantity
            line = next(li for li in order["_line_items"] if li["id"] == fo_line["_line_item"])
            line["_fulfilled"] += quantity
            item_id = self.variants[line["_variant"]]["_inventory_item"]
            level = self.level(item_id, fulfillment_order["_location"])
            self.shift(level, "committed", -quantity, changes)
            self.shift(level, "on_hand", -quantity, changes)
            line_id, _ = self.new_id("FulfillmentLineItem")
            fulfillment_lines.append(
                {
                    "__typename": "FulfillmentLineItem",
                    "id": line_id,
                    "quantity": quantity,
                    "_line_item": line["id"],
                }
            )
        remaining = sum(li["remainingQuantity"] for li in fulfillment_order["_lines"])
        fulfillment_order["status"] = "CLOSED" if remaining == 0 else "IN_PROGRESS"
        fulfillment_order["updatedAt"] = self.now()
        fulfillment = {
            "__typename": "Fulfillment",
            "id": fulfillment_id,
            "legacyResourceId": str(number),
            "name": f"{order['name']}.{len(order['_fulfillments']) + 1}",
            "status": "SUCCESS",
            "displayStatus": "FULFILLED",
            "createdAt": self.now(),
            "updatedAt": self.now(),
            "notifyCustomer": notify,
            "_order": order["id"],
            "_location": fulfillment_order["_location"],
            "_fulfillment_order": fulfillment_order["id"],
            "_tracking": self._tracking_info(tracking or {}),
            "_lines": fulfillment_lines,
        }
        self.fulfillments[fulfillment_id] = fulfillment
        order["_fulfillments"].append(fulfillment_id)
        shipped = sum(li["_fulfilled"] for li in order["_line_items"])
        to_ship = sum(li["quantity"] - li["_refunded"] for li in order["_line_items"])
        order["displayFulfillmentStatus"] = (
            "FULFILLED" if shipped >= to_ship else "PARTIALLY_FULFILLED"
        )
        self.touch_order(order, emit=False)
        if emit:
            self.emit("fulfillments/create", fulfillment)
            self.emit("orders/updated", order)
            self.emit_levels(changes)
        return fulfillment

    @staticmethod
    def _quantities_to_fulfill(fulfillment_order, lines):
        """{fulfillment order line id: quantity} to ship, checked against what remains."""
        wanted = {}
        for fo_line in fulfillment_order["_lines"]:
            if lines is None:
                wanted[fo_line["id"]] = fo_line["remainingQuantity"]
            elif fo_line["id"] in lines:
                quantity = lines[fo_line["id"]]
                if quantity > fo_line["remainingQuantity"] or quantity <= 0:
                    raise StoreError(
                        f"Invalid fulfillment order line item quantity requested: {quantity} "
                        f"(remaining {fo_line['remainingQuantity']}).",
                        field=["fulfillment"],
                    )
                wanted[fo_line["id"]] = quantity
        if lines is not None and len(wanted) != len(lines):
            raise StoreError("Fulfillment order line item does not exist.", field=["fulfillment"])
        if not any(wanted.values()):
            raise StoreError("Nothing to fulfill.", field=["fulfillment"])
        return wanted

    @staticmethod
    def _tracking_info(tracking):
        """FulfillmentTrackingInput (company, number(s), url(s)) as tracking info records."""
        numbers = tracking.get("numbers") or (
            [tracking["number"]] if tracking.get("number") else []
        )
        urls = tracking.get("urls") or ([tracking["url"]] if tracking.get("url") else [])
        company = tracking.get("company")
        if not numbers:
            return [{"company": company, "number": None, "url": None}] if company else []
        return [
            {"company": company, "number": n, "url": urls[i] if i < len(urls) else None}
            for i, n in enumerate(numbers)
        ]

    # --- payouts ---------------------------------------------------------------
    def pay_out(self, before=None, emit=True, status="PAID"):
        """Group the balance transactions not yet paid out into payouts, one per day.

        ``status`` is where the new payouts stand: ``SCHEDULED`` or
        ``IN_TRANSIT`` ones move on later with :meth:`set_payout_status`.
        """
        by_day = {}
        for balance in self.balance_transactions.values():
            if balance["_payout"] is None and (
                before is None or balance["transactionDate"] < before
            ):
                by_day.setdefault(balance["transactionDate"][:10], []).append(balance)
        payouts = []
        for day, balances in sorted(by_day.items()):
            payout_id, number = self.new_id("ShopifyPaymentsPayout")
            summary = {
                "chargesGross": sum(
                    (b["_amount"] for b in balances if b["type"] == "CHARGE"), Decimal(0)
                ),
                "chargesFee": sum(
                    (b["_fee"] for b in balances if b["type"] == "CHARGE"), Decimal(0)
                ),
                "refundsFeeGross": sum(
                    (b["_amount"] for b in balances if b["type"] == "REFUND"), Decimal(0)
                ),
                "refundsFee": Decimal(0),
                "adjustmentsGross": Decimal(0),
                "adjustmentsFee": Decimal(0),
                "reservedFundsGross": Decimal(0),
                "reservedFundsFee": Decimal(0),
                "retriedPayoutsGross": Decimal(0),
                "retriedPayoutsFee": Decimal(0),
            }
            issued = f"{day}T23:00:00Z" if before else self.now()
            payout = {
                "__typename": "ShopifyPaymentsPayout",
                "id": payout_id,
                "legacyResourceId": str(number),
                "issuedAt": issued,
                "status": status,
                "transactionType": "DEPOSIT",
                "_net": sum((b["_net"] for b in balances), Decimal(0)),
                "_summary": summary,
                "_balances": [b["id"] for b in balances],
            }
            for balance in balances:
                balance["_payout"] = payout_id
            self.payouts[payout_id] = payout
            payouts.append(payout)
        return payouts

    def set_payout_status(self, payout_id, status):
        """A payout moves on: submitted to the bank, paid, failed or canceled."""
        if status not in PAYOUT_STATUSES:
            raise StoreError(f"unknown payout status {status!r}", code="INVALID")
        payout = self.find("payouts", payout_id, "ShopifyPaymentsPayout")
        payout["status"] = status
        return payout
