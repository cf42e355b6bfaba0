"""The Shopify simulator: Admin GraphQL API, cost-based throttle, signed webhooks.

    with ShopifySimulator(seed=42, webhook_url="http://127.0.0.1:8069/...") as shop:
        requests.post(f"{shop.graphql_url}", json={"query": "{ shop { name } }"},
                      headers={"X-Shopify-Access-Token": shop.access_token})
        order = shop.create_order(lines=[("TSH-001-S-BLK", 2)])   # -> orders/create
        shop.wait_webhooks()

See ``tests/simulators/README.md`` for the API, the control endpoints and the
faults.
"""

import contextlib
import json
import threading
import time

from werkzeug.routing import Rule

from ..base import Simulator, json_response, seeded_random, utcnow
from ..retail_data import RetailDataGenerator
from .graphql import Executor, GraphQLErrors, operation_names
from .schema import API_VERSION, SCHEMA
from .store import ShopifyStore, StoreError
from .webhooks import PAYLOADS, inventory_level_payload, order_payload

INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
MAX_QUERY_COST = 1000


class ThrottleBucket:
    """Shopify's leaky bucket of query cost points, per app and shop.

    A query needs its requested cost available to start; once run, the
    difference between requested and actual cost is given back. The bucket
    refills at ``restore_rate`` points per second up to ``size``.
    """

    def __init__(self, size, restore_rate, clock=time.monotonic):
        self.size = float(size)
        self.restore_rate = float(restore_rate)
        self.clock = clock
        self._available = float(size)
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self):
        now = self.clock()
        self._available = min(self.size, self._available + (now - self._at) * self.restore_rate)
        self._at = now

    def take(self, cost):
        """Take ``cost`` points if available; False (nothing taken) when throttled."""
        with self._lock:
            self._refill()
            if cost > self._available:
                return False
            self._available -= cost
            return True

    def refund(self, points):
        with self._lock:
            self._refill()
            self._available = min(self.size, self._available + max(points, 0))

    def set_available(self, points):
        """Empty or fill the bucket (tests: reach the throttle without spending time)."""
        with self._lock:
            self._refill()
            self._available = max(0.0, min(self.size, float(points)))

    def status(self):
        with self._lock:
            self._refill()
            return {
                "maximumAvailable": self.size,
                "currentlyAvailable": round(self._available, 1),
                "restoreRate": self.restore_rate,
            }


class ShopifySimulator(Simulator):
    """A Shopify shop on 127.0.0.1 speaking the Admin GraphQL API ``API_VERSION``."""

    name = "shopify"
    signature_header = "X-Shopify-Hmac-Sha256"
    api_version = API_VERSION

    def __init__(
        self,
        *,
        seed=0,
        access_token="shpat_simulator_token",
        webhook_secret="shopify-simulator-secret",
        shop_domain="retail-sync-demo.myshopify.com",
        shop_name="Retail Sync Demo",
        restore_rate=100.0,
        bucket_size=2000.0,
        max_query_cost=MAX_QUERY_COST,
        products=24,
        customers=30,
        orders=40,
        locations=3,
        require_idempotency=True,
        epoch=None,
        webhook_topics=None,
        **options,
    ):
        self.access_token = access_token
        self.shop_domain = shop_domain
        self.shop_name = shop_name
        self.max_query_cost = max_query_cost
        self.require_idempotency = require_idempotency
        self.webhook_topics = set(webhook_topics) if webhook_topics else None
        self.sizes = {
            "products": products,
            "customers": customers,
            "orders": orders,
            "locations": locations,
        }
        self.epoch = (epoch or utcnow()).replace(microsecond=0)
        self.bucket = ThrottleBucket(bucket_size, restore_rate)
        self.executor = Executor(SCHEMA)
        self.store = None
        self._webhook_numbers = None
        self._generated = 0
        self._seeding = False
        # Called with each payout (as the ground truth shows it) once it is
        # paid: the retailer's bank sees the money then.
        self.payout_listeners = []
        # Called with each inventory level an ``inventorySetQuantities`` call
        # set (as ``inventory()`` shows it), once the call applied it and
        # before it is answered: when the store shows the quantity, which a
        # benchmark times from the Odoo commit that changed it.
        self.inventory_listeners = []
        self._levels_set = None  # the levels the running API call changed
        super().__init__(seed=seed, webhook_secret=webhook_secret, **options)

    # --- URLs ----------------------------------------------------------------------
    @property
    def graphql_url(self):
        return f"{self.url}/admin/api/{self.api_version}/graphql.json"

    @property
    def headers(self):
        """Headers an authenticated client sends."""
        return {"X-Shopify-Access-Token": self.access_token, "Content-Type": "application/json"}

    # --- seeding -------------------------------------------------------------------
    def seed_state(self, rng):
        self._webhook_numbers = iter(range(1, 1 << 62))
        self._generated = 0
        self.bucket.set_available(self.bucket.size)
        # Seeded records are stamped at the epoch, so a pinned epoch replays exactly.
        self._seeding = True
        self.store = ShopifyStore(
            shop_domain=self.shop_domain,
            shop_name=self.shop_name,
            clock=lambda: self.epoch if self._seeding else utcnow(),
            emit=self._emit,
        )
        self.store.require_idempotency = self.require_idempotency
        self.store.seed(RetailDataGenerator(rng, self.epoch), **self.sizes)
        self._seeding = False

    # --- API -----------------------------------------------------------------------
    def api_rules(self):
        return [
            Rule("/admin/api/<version>/graphql.json", endpoint="graphql", methods=["POST"]),
        ]

    def request_names(self, request, endpoint):
        names = [request.path, endpoint]
        # A body that does not parse gets no finer names; the handler will say why.
        with contextlib.suppress(ValueError):
            names.extend(operation_names(self._payload(request).get("query") or ""))
        return names

    @staticmethod
    def _payload(request):
        if request.mimetype == "application/graphql":
            return {"query": request.get_data(as_text=True)}
        data = json.loads(request.get_data(as_text=True) or "null")
        if not isinstance(data, dict):
            raise ValueError("body is not a JSON object")
        return data

    def _respond(self, body, status=200):
        return json_response(
            body, status=status, headers={"X-Shopify-API-Version": self.api_version}
        )

    def graphql(self, request, version):
        if request.headers.get("X-Shopify-Access-Token") != self.access_token:
            request.sim_note = {"error": "invalid token"}
            return self._respond({"errors": INVALID_TOKEN}, 401)
        try:
            payload = self._payload(request)
        except ValueError:
            return self._respond(
                {"errors": {"query": "Required parameter missing or invalid"}}, 400
            )
        try:
            prepared = self.executor.prepare(
                payload.get("query"), payload.get("variables"), payload.get("operationName")
            )
        except GraphQLErrors as exc:
            request.sim_note = {"error": exc.errors[0]["message"]}
            return self._respond({"errors": exc.errors})
        requested = prepared.requested_cost
        note = {
            "operation": prepared.kind,
            "fields": prepared.root_fields,
            "requested_cost": requested,
        }
        request.sim_note = note
        if requested > self.max_query_cost:
            note["error"] = "MAX_COST_EXCEEDED"
            return self._respond(
                {
                    "errors": [
                        {
                            "message": f"Query cost is {requested}, which exceeds the single "
                            f"query max cost limit ({self.max_query_cost}).",
                            "extensions": {
                                "code": "MAX_COST_EXCEEDED",
                                "cost": requested,
                                "maxCost": self.max_query_cost,
                            },
                        }
                    ],
                    "extensions": self._cost(requested, None),
                }
            )
        if not self.bucket.take(requested):
            note["throttled"] = True
            return self._respond(
                {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {
                                "code": "THROTTLED",
                                "documentation": "https://shopify.dev/api/usage/rate-limits",
                            },
                        }
                    ],
                    "extensions": self._cost(requested, None),
                }
            )
        setting = self.inventory_listeners and "inventorySetQuantities" in prepared.root_fields
        with self.lock:
            self._levels_set = [] if setting else None
            try:
                data, errors, actual = self.executor.execute(prepared, self.store)
                levels = [level_row(self.store, level) for level in self._levels_set or ()]
            finally:
                self._levels_set = None
        for row in levels:
            for listener in list(self.inventory_listeners):
                listener(row)
        self.bucket.refund(requested - actual)
        note["actual_cost"] = actual
        body = {"data": data}
        if errors:
            body["errors"] = errors
        body["extensions"] = self._cost(requested, actual)
        return self._respond(body)

    def _cost(self, requested, actual):
        return {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": self.bucket.status(),
            }
        }

    # --- webhooks ------------------------------------------------------------------
    def _emit(self, topic, record):
        """Queue ``topic`` about ``record`` to the configured URL and the subscriptions."""
        if topic == "inventory_levels/update" and self._levels_set is not None:
            self._levels_set.append(record)
        number = next(self._webhook_numbers)
        rng = seeded_random(self.seed, "webhook-ids", number)
        event_id = _uuid(rng)
        body = json.dumps(PAYLOADS[topic](self.store, record), default=str).encode()
        triggered = utcnow()
        targets = []
        if self.webhook_url and (self.webhook_topics is None or topic in self.webhook_topics):
            targets.append(self.webhook_url)
        targets += [
            s["uri"] for s in self.store.webhook_subscriptions.values() if s["_topic"] == topic
        ]
        for url in targets:
            webhook_id = _uuid(rng)
            headers = {
                "X-Shopify-Topic": topic,
                "X-Shopify-Shop-Domain": self.shop_domain,
                "X-Shopify-Webhook-Id": webhook_id,
                "X-Shopify-Event-Id": event_id,
                "X-Shopify-Triggered-At": triggered.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "X-Shopify-API-Version": self.api_version,
            }
            self.emit_webhook(topic, body, headers, webhook_id, url=url)

    # --- driving the shop from tests (each emits the webhooks Shopify would) ----------
    def create_order(
        self,
        lines=None,
        *,
        customer=None,
        discount_code=None,
        currency=None,
        paid=True,
        shipping=None,
        location=None,
        note=None,
        tags=(),
    ):
        """Place an order: ``lines`` of (SKU or variant GID, quantity); orders/create.

        Without lines, one unit of the first active variant in stock. Returns
        the order as its webhook JSON.
        """
        with self.lock:
            store = self.store
            if not lines:
                variant = next(
                    v for v in store.variants.values() if v["_product_status"] == "ACTIVE"
                )
                lines = [(variant["id"], 1)]
            customer_id = None
            if customer:
                customer_id = next(
                    (
                        c["id"]
                        for c in store.customers.values()
                        if customer in (c["id"], c["email"])
                    ),
                    customer,
                )
            discount = None
            if discount_code:
                from ..retail_data import DISCOUNT_CODES  # noqa: PLC0415

                code = next(d for d in DISCOUNT_CODES if d[0] == discount_code)
                discount = {"code": code[0], "kind": code[1], "value": code[2]}
            order = store.create_order(
                customer_id=customer_id,
                lines=lines,
                discount=discount,
                currency=currency,
                paid=paid,
                shipping=shipping,
                location_id=location,
                note=note,
                tags=tags,
            )
            return order_payload(store, order)

    def generate_orders(self, count):
        """``count`` more random orders (seeded), as a trading day brings them."""
        with self.lock:
            self._generated += 1
            rng = seeded_random(self.seed, "generated-orders", self._generated)
            generator = RetailDataGenerator(rng, utcnow())
            sellable = [v for v in self.store.variants.values() if v["_product_status"] == "ACTIVE"]
            customers = list(self.store.customers.values())
            created = []
            for _ in range(count):
                customer = rng.choice(customers)
                spec = generator.order(sellable, customer["_spec"])
                order = self.store.create_order(
                    customer_id=customer["id"],
                    lines=[
                        (sellable[line["variant_index"]]["id"], line["quantity"])
                        for line in spec["lines"]
                    ],
                    discount=spec["discount"],
                    shipping=spec["shipping"],
                    currency=spec["currency"],
                )
                created.append(order["id"])
            return created

    def update_order(self, order, **values):
        """Change an order's note, tags or email; orders/updated."""
        with self.lock:
            return order_payload(self.store, self.store.update_order(order, values))

    def cancel_order(self, order, reason="CUSTOMER", restock=True, refund=True):
        """Cancel (and by default refund and restock); refunds/create, orders/cancelled."""
        with self.lock:
            record, _refund = self.store.cancel_order(order, reason, restock, refund)
            return order_payload(self.store, record)

    def mark_order_paid(self, order):
        """The money of a pending order arrived, marked as paid in Shopify; orders/updated."""
        with self.lock:
            return order_payload(self.store, self.store.mark_order_paid(order))

    def refund_order(self, order, lines=None, *, restock=True, shipping=False, note=None):
        """Refund ``lines`` ({SKU or line item GID: quantity}, None: all); refunds/create."""
        with self.lock:
            refund = self.store.create_refund(
                order, lines, restock=restock, note=note, shipping=shipping
            )
            return PAYLOADS["refunds/create"](self.store, refund)

    def fulfill_order(self, order, tracking_number=None, company="DHL Express", lines=None):
        """Ship what remains, as another app or the merchant would; fulfillments/create.

        ``lines``: {SKU: quantity} to ship only part of it (None: everything remaining).
        """
        with self.lock:
            record = self.store.find("orders", order, "Order")
            open_orders = [
                fo
                for fo in record["_fulfillment_orders"]
                if self.store.fulfillment_orders[fo]["status"] in ("OPEN", "IN_PROGRESS")
            ]
            if not open_orders:
                raise StoreError(f"Order {record['name']} has nothing left to fulfill")
            wanted = None
            if lines is not None:
                by_sku = {
                    line["sku"]: line["id"]
                    for line in self.store.fulfillment_orders[open_orders[0]]["_lines"]
                }
                unknown = set(lines) - set(by_sku)
                if unknown:
                    raise StoreError(f"Order {record['name']} has no line {sorted(unknown)}")
                wanted = {by_sku[sku]: quantity for sku, quantity in lines.items()}
            fulfillment = self.store.create_fulfillment(
                open_orders[0], wanted, {"company": company, "number": tracking_number}
            )
            return PAYLOADS["fulfillments/create"](self.store, fulfillment)

    def set_inventory(self, item, location, available):
        """Set the available quantity of an item (SKU or GID) at a location (name or GID)."""
        with self.lock:
            level = self.store.set_available(item, location, available)
            return inventory_level_payload(self.store, level)

    def set_inventory_policy(self, item, policy):
        """Whether checkout sells a variant (SKU or GID) none of which is
        available: ``"DENY"`` refuses the order (``create_order`` raises
        StoreError, code NOT_ENOUGH_IN_STOCK), ``"CONTINUE"`` sells on."""
        with self.lock:
            return self.store.set_inventory_policy(item, policy)["inventoryPolicy"]

    def update_product(self, product, **values):
        """Change a product (GID, or a variant's SKU) or its price; products/update."""
        with self.lock:
            store = self.store
            if product not in store.products:
                product = store.find("variants", product, "ProductVariant")["_product"]
            price = values.pop("price", None)
            if price is not None:
                for variant_id in store.products[product]["_variants"]:
                    store.update_variant(store.variants[variant_id], {"price": price})
            return PAYLOADS["products/update"](store, store.update_product(product, values))

    def create_payout(self, status="PAID"):
        """Pay out every balance transaction not yet paid out (one payout a day),
        the new payouts in ``status`` (``SCHEDULED``, ``IN_TRANSIT``, ``PAID``...)."""
        with self.lock:
            payouts = [payout_payload(p) for p in self.store.pay_out(status=status)]
        self._paid([p for p in payouts if p["status"] == "PAID"])
        return [p["id"] for p in payouts]

    def set_payout_status(self, payout, status):
        """A payout moves on (GID or numeric id): e.g. ``IN_TRANSIT`` to ``PAID``."""
        with self.lock:
            record = self.store.find("payouts", payout, "ShopifyPaymentsPayout")
            paid_now = status == "PAID" and record["status"] != "PAID"
            payload = payout_payload(self.store.set_payout_status(payout, status))
        self._paid([payload] if paid_now else [])
        return payload["id"]

    def _paid(self, payouts):
        """Tell the payout listeners of ``payouts`` just paid (outside the
        store's lock: a listener may call Odoo, which may call the store)."""
        for payout in payouts:
            for listener in self.payout_listeners:
                listener(payout)

    # --- ground truth ----------------------------------------------------------------
    def order(self, order):
        """An order as its webhook JSON (lines, refunds, fulfillments, totals)."""
        with self.lock:
            return order_payload(self.store, self.store.find("orders", order, "Order"))

    def orders(self):
        with self.lock:
            return [order_payload(self.store, o) for o in self.store.orders.values()]

    def inventory(self, sku=None):
        """Quantities per (item, location): the stock Odoo must agree with."""
        with self.lock:
            store = self.store
            rows = [
                level_row(store, level)
                for level in store.levels.values()
                if not sku or store.inventory_items[level["_item"]]["sku"] == sku
            ]
            return sorted(rows, key=lambda r: (r["sku"] or "", r["location"]))

    def catalog(self, sku=None):
        """Variants as the store sells them: product, options, SKU, barcode, price, weight."""
        with self.lock:
            store = self.store
            rows = []
            for variant in store.variants.values():
                if sku and variant["sku"] != sku:
                    continue
                product = store.products[variant["_product"]]
                item = store.inventory_items[variant["_inventory_item"]]
                weight = (item.get("measurement") or {}).get("weight") or {}
                rows.append(
                    {
                        "product_id": product["id"],
                        "title": product["title"],
                        "handle": product["handle"],
                        "variant_id": variant["id"],
                        "inventory_item_id": item["id"],
                        "options": {o["name"]: o["value"] for o in variant["selectedOptions"]},
                        "sku": variant["sku"],
                        "barcode": variant["barcode"],
                        "price": str(variant["price"]),
                        "weight": weight.get("value"),
                        "weight_unit": weight.get("unit"),
                    }
                )
            return sorted(rows, key=lambda r: (r["sku"] or "", r["variant_id"]))

    def fulfillments(self, order=None):
        with self.lock:
            store = self.store
            wanted = store.find("orders", order, "Order")["id"] if order else None
            return [
                PAYLOADS["fulfillments/create"](store, f)
                for f in store.fulfillments.values()
                if wanted is None or f["_order"] == wanted
            ]

    def snapshot(self, parts=None):
        store = self.store
        everything = {
            "shop": lambda: {k: v for k, v in store.shop.items() if not k.startswith("_")},
            "locations": lambda: [
                {
                    "id": loc["id"],
                    "name": loc["name"],
                    "fulfills_online_orders": loc["fulfillsOnlineOrders"],
                }
                for loc in store.locations.values()
            ],
            "products": lambda: [
                PAYLOADS["products/update"](store, p) for p in store.products.values()
            ],
            "orders": lambda: [order_payload(store, o) for o in store.orders.values()],
            "inventory": self.inventory,
            "payouts": lambda: [payout_payload(p) for p in store.payouts.values()],
            "balance_transactions": lambda: [
                {
                    "id": b["id"],
                    "type": b["type"],
                    "amount": str(b["_amount"]),
                    "fee": str(b["_fee"]),
                    "net": str(b["_net"]),
                    "order_id": b["_order"],
                    "payout_id": b["_payout"],
                    "transaction_date": b["transactionDate"],
                }
                for b in store.balance_transactions.values()
            ],
            "webhook_subscriptions": lambda: [
                {"id": s["id"], "topic": s["_topic"], "uri": s["uri"]}
                for s in store.webhook_subscriptions.values()
            ],
            "throttle": self.bucket.status,
        }
        return {
            name: build() for name, build in everything.items() if parts is None or name in parts
        }

    # --- control API events ------------------------------------------------------------
    def trigger(self, event, params):
        events = {
            "order.create": lambda p: self.create_order(
                [tuple(line) for line in p.get("lines") or []] or None,
                customer=p.get("customer"),
                discount_code=p.get("discount_code"),
                currency=p.get("currency"),
                paid=p.get("paid", True),
            ),
            "orders.generate": lambda p: self.generate_orders(int(p.get("count", 1))),
            "order.update": lambda p: self.update_order(
                p["order"], **{k: v for k, v in p.items() if k in ("note", "tags", "email")}
            ),
            "order.cancel": lambda p: self.cancel_order(
                p["order"],
                p.get("reason", "CUSTOMER"),
                p.get("restock", True),
                p.get("refund", True),
            ),
            "order.refund": lambda p: self.refund_order(
                p["order"],
                p.get("lines"),
                restock=p.get("restock", True),
                shipping=p.get("shipping", False),
                note=p.get("note"),
            ),
            "order.fulfill": lambda p: self.fulfill_order(
                p["order"], p.get("tracking_number"), p.get("company", "DHL Express")
            ),
            "inventory.set": lambda p: self.set_inventory(
                p["item"], p["location"], int(p["available"])
            ),
            "product.update": lambda p: self.update_product(
                p.pop("product"), **{k: v for k, v in p.items() if k != "product"}
            ),
            "payout.create": lambda p: self.create_payout(p.get("status", "PAID")),
            "payout.update": lambda p: self.set_payout_status(p["payout"], p["status"]),
            "throttle.set": lambda p: (
                self.bucket.set_available(p["available"]) or self.bucket.status()
            ),
        }
        if event not in events:
            raise ValueError(f"unknown event {event!r}; known: {', '.join(sorted(events))}")
        return events[event](dict(params))


def level_row(store, level):
    """An inventory level as the ground truth shows it (and the inventory listeners get it)."""
    return {
        "sku": store.inventory_items[level["_item"]]["sku"],
        "inventory_item_id": level["_item"],
        "location_id": level["_location"],
        "location": store.locations[level["_location"]]["name"],
        **{name: level["quantities"][name] for name in ("available", "on_hand", "committed")},
        "updated_at": level["updatedAt"],
    }


def payout_payload(payout):
    """A payout as the ground truth shows it (and the payout listeners get it)."""
    return {
        "id": payout["id"],
        "legacy_id": payout["legacyResourceId"],
        "issued_at": payout["issuedAt"],
        "status": payout["status"],
        "transaction_type": payout["transactionType"],
        "net": str(payout["_net"]),
        "balance_transactions": list(payout["_balances"]),
    }


def _uuid(rng):
    """A version-4 UUID string drawn from ``rng`` (seeded: replayable)."""
    value = rng.getrandbits(128)
    value = (value & ~(0xF000 << 64)) | (0x4000 << 64)
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


__all__ = ["API_VERSION", "ShopifySimulator", "ThrottleBucket"]
