"""The 3PL's warehouse: its products and stock, the orders released to it, their
shipments and parcels, the returns it expects, and the clock that moves them.

Plain Python, no HTTP: the warehouse is the 3PL's memory and the ground truth
tests compare Odoo with; ``simulator.py`` serves it in the ShipBob-like shape.

An order released to the warehouse gets one shipment. The clock moves it,
one stage an hour: picked (stock leaves the shelves but stays in the 3PL's on
hand until it ships; from then on it cannot be cancelled), packed, shipped
(label bought: one parcel, or two, each with its carrier, tracking number and
lines, the "packages"; sometimes a unit short), in transit six hours later,
delivered a day after that. What happens to an order (two parcels, a unit
short, the carrier) is drawn from the seed and the order's id, so the same
releases replay the same warehouse. Nothing is picked that is not on the
shelves: an order with nothing in stock waits in ``Exception`` (out of stock)
until stock arrives.

Each change that ShipBob reports by webhook is handed to ``listeners`` as
``(topic, data, at)``; the simulator signs and sends it.
"""

import math
from datetime import timedelta

from ..base import iso, seeded_random
from ..retail_data import RetailDataGenerator

# The status detail of a hold the shop asked for (``POST /order/<id>:hold``).
MERCHANT_HOLD = "MerchantHold"
FULFILLMENT_CENTER = {"id": 7, "name": "Lyon (LYS1)"}
CHANNEL = {"id": 100102, "name": "Retail Sync API"}

# Hours a shipment waits in a stage before the next.
STAGE_HOURS = {"released": 1, "picked": 1, "packed": 1, "shipped": 6, "in_transit": 24}
NEXT_STAGE = {
    "released": "picked",
    "picked": "packed",
    "packed": "shipped",
    "shipped": "in_transit",
    "in_transit": "delivered",
}
# Returns: the parcel reaches the warehouse a day after the return is
# announced, and is processed a day later.
RETURN_HOURS = {"AwaitingArrival": 24, "Arrived": 24}

CARRIERS = (
    (
        "Colissimo",
        "Domicile",
        "6A{digits11}",
        "https://www.laposte.fr/outils/suivre-vos-envois?code={n}",
    ),
    (
        "DHL",
        "Parcel Connect",
        "{digits10}",
        "https://www.dhl.com/fr-en/home/tracking.html?tracking-id={n}",
    ),
    ("UPS", "Standard", "1Z{alnum16}", "https://www.ups.com/track?tracknum={n}"),
    (
        "Chronopost",
        "13H",
        "XY{digits9}FR",
        "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT={n}",
    ),
)

# Return dispositions: what the warehouse did (ShipBob's return actions) and
# the condition it found (Amazon MCF's dispositions of returned goods).
RETURN_ACTIONS = ("Restock", "Quarantine", "Dispose")
REQUESTED_ACTIONS = ("Default", "Restock", "Quarantine", "Dispose")
CONDITIONS = (
    "SELLABLE",
    "DEFECTIVE",
    "CUSTOMER_DAMAGED",
    "CARRIER_DAMAGED",
    "WAREHOUSE_DAMAGED",
    "EXPIRED",
)
TRACKING_STATUSES = (
    "LabelCreated",
    "InTransit",
    "OutForDelivery",
    "Delivered",
    "DeliveryException",
)


class WarehouseError(ValueError):
    """A control asked for something the warehouse cannot do (a test's mistake)."""


class Warehouse:
    """State of one 3PL account: one fulfillment center, its products, orders, returns."""

    def __init__(self, seed, epoch, *, products=24, split_share=0.25, short_share=0.05):
        self.seed = seed
        self.now = epoch
        self.split_share = split_share
        self.short_share = short_share
        self.listeners = []
        self.products = {}  # sku -> product
        self.orders = {}  # id -> order
        self.shipments = {}  # id -> shipment
        self.returns = {}  # id -> return
        self._ids = {
            "order": 41_000_000,
            "shipment": 95_000_000,
            "package": 7_000_000,
            "return": 880_000,
        }
        self._seed_products(products)

    # --- reference data ------------------------------------------------------------
    def _seed_products(self, count):
        # The Shopify simulator draws locations then products from this very
        # generator: the same seed gives the shop's SKUs.
        generator = RetailDataGenerator(seeded_random(self.seed, "shopify", "state"), self.now)
        generator.locations(3)
        stock = seeded_random(self.seed, "3pl", "stock")
        for index, product in enumerate(generator.products(count)):
            for position, variant in enumerate(product["variants"]):
                options = " / ".join(variant["options"].values())
                self._add_product(
                    variant["sku"],
                    f"{product['title']} ({options})" if options else product["title"],
                    stock.choice([0, 4, 10, 15, 25, 40, 60, 80]),
                    number=index * 100 + position,
                )

    def _add_product(self, sku, name, on_hand=0, number=None):
        number = len(self.products) + 10_000 if number is None else number
        self.products[sku] = {
            "id": 310_000 + number,
            "inventory_id": 520_000 + number,
            "sku": sku,
            "name": name,
            "on_hand": on_hand,
            "active": True,
        }
        return self.products[sku]

    def product_by_inventory_id(self, inventory_id):
        return next((p for p in self.products.values() if p["inventory_id"] == inventory_id), None)

    def new_id(self, kind):
        self._ids[kind] += 1
        return self._ids[kind]

    # --- events ----------------------------------------------------------------------
    def emit(self, topic, data, at=None):
        for listener in self.listeners:
            listener(topic, data, at or self.now)

    # --- orders ------------------------------------------------------------------------
    def create_order(self, body):
        """Record a validated release (see the simulator's checks); returns the order."""
        lines = []
        for line in body["products"]:
            product = self.products.get(line["reference_id"]) or self._add_product(
                line["reference_id"], line["name"]
            )
            lines.append(
                {
                    "id": product["id"],
                    "reference_id": product["sku"],
                    "sku": product["sku"],
                    "name": line.get("name") or product["name"],
                    "quantity": line["quantity"],
                    "unit_price": line.get("unit_price"),
                }
            )
        order = {
            "id": self.new_id("order"),
            "reference_id": body["reference_id"],
            "order_number": body.get("order_number") or body["reference_id"],
            "created_date": iso(self.now),
            "purchase_date": body.get("purchase_date") or iso(self.now),
            "type": body.get("type") or "DTC",
            "shipping_method": body["shipping_method"],
            "recipient": body["recipient"],
            "products": lines,
            "tags": body.get("tags") or [],
            "shipment_ids": [],
        }
        self.orders[order["id"]] = order
        shipment = {
            "id": self.new_id("shipment"),
            "order_id": order["id"],
            "stage": "released",
            "status": "Processing",
            "status_details": [],
            "stage_at": self.now,
            "created_date": iso(self.now),
            "last_update_at": iso(self.now),
            "last_tracking_update_at": None,
            "lines": {line["sku"]: line["quantity"] for line in lines},
            "picked": {},
            "packages": [],
            "is_tracking_uploaded": False,
            "actual_fulfillment_date": None,
            "delivery_date": None,
            "plan": self._plan(order),
        }
        self.shipments[shipment["id"]] = shipment
        order["shipment_ids"].append(shipment["id"])
        return order

    def _plan(self, order):
        """What the warehouse will do with this order: drawn from the seed and its id."""
        rng = seeded_random(self.seed, "3pl", "plan", order["id"])
        units = sum(line["quantity"] for line in order["products"])
        carrier = rng.randrange(len(CARRIERS))
        return {
            "split": units >= 2 and rng.random() < self.split_share,
            "short": rng.random() < self.short_share,
            "carriers": [carrier, (carrier + rng.randint(0, 1)) % len(CARRIERS)],
            "rng_key": order["id"],
        }

    def order(self, key):
        """An order by id (int or digits) or by reference_id; WarehouseError if unknown."""
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            found = self.orders.get(int(key))
            if found:
                return found
        for order in self.orders.values():
            if order["reference_id"] == key:
                return order
        raise WarehouseError(f"no order {key!r} at the 3PL")

    def order_by_reference(self, reference_id):
        return next((o for o in self.orders.values() if o["reference_id"] == reference_id), None)

    def shipments_of(self, order):
        return [self.shipments[i] for i in order["shipment_ids"]]

    def open_shipment(self, order):
        """The order's shipment not shipped nor cancelled; WarehouseError if none."""
        for shipment in self.shipments_of(order):
            if shipment["status"] not in ("Completed", "Cancelled"):
                return shipment
        raise WarehouseError(f"order {order['reference_id']} has nothing left to ship")

    def order_status(self, order):
        statuses = [s["status"] for s in self.shipments_of(order)]
        if all(status == "Cancelled" for status in statuses):
            return "Cancelled"
        if "Exception" in statuses:
            return "Exception"
        if "Completed" in statuses:
            shipped = sum(self.shipped_quantity(s) for s in self.shipments_of(order))
            ordered = sum(line["quantity"] for line in order["products"])
            return "Fulfilled" if shipped >= ordered else "PartiallyFulfilled"
        return "Processing"

    @staticmethod
    def shipped_quantity(shipment):
        return sum(line["quantity"] for p in shipment["packages"] for line in p["products"])

    # --- cancellation ------------------------------------------------------------------
    def cancel(self, order, *, forced=False, reason=None):
        """Cancel the order's shipments not yet picked; the per-shipment results.

        ``forced``: the warehouse itself cancels (anything not shipped yet).
        """
        results = []
        for shipment in self.shipments_of(order):
            result = {
                "action": "Cancel",
                "shipment_id": shipment["id"],
                "is_success": True,
                "reason": None,
            }
            if shipment["status"] == "Cancelled":
                result["reason"] = "The shipment was already cancelled."
            elif shipment["status"] == "Completed":
                result.update(
                    is_success=False,
                    reason="The shipment cannot be cancelled because it has already been shipped.",
                )
            elif shipment["stage"] != "released" and not forced:
                result.update(
                    is_success=False,
                    reason="The shipment cannot be cancelled because it has already been "
                    f"{shipment['stage']}.",
                )
            else:
                self._restock_picked(shipment)
                self._set_status(shipment, "Cancelled", reason or "Cancelled")
                self.emit("order.shipment.cancelled", self.shipment_data(shipment))
            results.append(result)
        return results

    def _restock_picked(self, shipment):
        for sku, quantity in shipment["picked"].items():
            self.products[sku]["on_hand"] += quantity
        shipment["picked"] = {}

    def _set_status(self, shipment, status, detail=None, description=None):
        shipment["status"] = status
        shipment["status_details"] = (
            [{"name": detail, "description": description or detail}] if detail else []
        )
        shipment["last_update_at"] = iso(self.now)

    # --- holds and exceptions ---------------------------------------------------------
    def hold(
        self, order, reason="InvalidAddress", description="The address could not be validated."
    ):
        shipment = self.open_shipment(order)
        self._set_status(shipment, "OnHold", reason, description)
        self.emit("order.shipment.on_hold", self.shipment_data(shipment))
        return shipment

    def merchant_hold(self, order, hold=True):
        """The shop holds the order's shipments not picked yet (``hold``), or
        lifts its own hold; the per-shipment results, as a cancellation's.

        A shipment picked, packed or shipped is not held (``is_success``
        false, the reason); a hold the warehouse put (an address it could not
        validate) is not the shop's to lift. Asked again after a lost answer,
        it is a success that changes nothing.
        """
        results = []
        for shipment in self.shipments_of(order):
            result = {
                "action": "Hold" if hold else "ReleaseHold",
                "shipment_id": shipment["id"],
                "is_success": True,
                "reason": None,
            }
            details = [d["name"] for d in shipment["status_details"]]
            held = shipment["status"] == "OnHold" and MERCHANT_HOLD in details
            if shipment["status"] in ("Completed", "Cancelled"):
                result.update(
                    is_success=False,
                    reason=f"The shipment is already {shipment['status'].lower()}.",
                )
            elif shipment["status"] == "OnHold" and not held:
                # The warehouse's hold stays: held already, not the shop's to lift.
                result.update(
                    is_success=hold,
                    reason="The shipment is on hold by the warehouse: "
                    + "; ".join(d["description"] for d in shipment["status_details"]),
                )
            elif held == hold:
                result["reason"] = "The shipment is already on hold." if hold else None
            elif hold and shipment["stage"] != "released":
                result.update(
                    is_success=False,
                    reason="The shipment cannot be put on hold because it has already been "
                    f"{shipment['stage']}.",
                )
            elif hold:
                self._set_status(
                    shipment, "OnHold", MERCHANT_HOLD, "Held at the merchant's request."
                )
                self.emit("order.shipment.on_hold", self.shipment_data(shipment))
            else:
                self._set_status(shipment, "Processing")
                shipment["stage_at"] = self.now
            results.append(result)
        return results

    def release_hold(self, order):
        shipment = self.open_shipment(order)
        shipment["waiting_stock"] = False
        if shipment["status"] not in ("OnHold", "Exception"):
            raise WarehouseError(f"order {order['reference_id']} is not on hold")
        self._set_status(shipment, "Processing", self._stage_detail(shipment))
        shipment["stage_at"] = self.now
        return shipment

    def exception(
        self, order, reason="OutOfStock", description="Not enough stock to fulfil the order."
    ):
        shipment = self.open_shipment(order)
        shipment["waiting_stock"] = False
        self._set_status(shipment, "Exception", reason, description)
        self.emit("order.shipment.exception", self.shipment_data(shipment))
        return shipment

    @staticmethod
    def _stage_detail(shipment):
        return {"picked": "Picked", "packed": "Packed"}.get(shipment["stage"])

    # --- the clock -----------------------------------------------------------------------
    def advance(self, hours):
        """Move the warehouse's clock ``hours`` ahead, applying every stage change
        due meanwhile in time order (events carry their own time)."""
        target = self.now + timedelta(hours=hours)
        while True:
            due = self._next_due()
            if due is None or due[0] > target:
                break
            self.now = max(self.now, due[0])
            due[1]()
        self.now = target
        return self.now

    def _next_due(self):
        """``(when, action)`` of the earliest change the clock owes, or None."""
        candidates = []
        for shipment in self.shipments.values():
            stage = shipment["stage"]
            if stage == "delivered" or shipment["status"] in ("Cancelled", "OnHold"):
                continue
            if shipment["status"] == "Exception":
                # Out of stock: picked as soon as the stock is there.
                if shipment.get("waiting_stock") and self._pickable(shipment):
                    candidates.append((self.now, shipment["id"], lambda s=shipment: self._retry(s)))
                continue
            when = shipment["stage_at"] + timedelta(hours=STAGE_HOURS[stage])
            candidates.append((when, shipment["id"], lambda s=shipment: self._step(s)))
        for record in self.returns.values():
            if record["status"] in RETURN_HOURS:
                when = record["stage_at"] + timedelta(hours=RETURN_HOURS[record["status"]])
                candidates.append((when, record["id"], lambda r=record: self._return_step(r)))
        if not candidates:
            return None
        when, _key, action = min(candidates, key=lambda c: (c[0], c[1]))
        return when, action

    def _pickable(self, shipment):
        return any(self.products[sku]["on_hand"] > 0 for sku in shipment["lines"])

    def _retry(self, shipment):
        shipment["waiting_stock"] = False
        self._set_status(shipment, "Processing")
        shipment["stage_at"] = self.now - timedelta(hours=STAGE_HOURS["released"])
        self._step(shipment)

    def _step(self, shipment):
        stage = NEXT_STAGE[shipment["stage"]]
        if stage == "picked":
            self.pick(shipment)
        elif stage == "packed":
            shipment["stage"], shipment["stage_at"] = "packed", self.now
            self._set_status(shipment, "Processing", "Packed")
        elif stage == "shipped":
            self.ship(shipment, self._planned_parcels(shipment))
        elif stage == "in_transit":
            self.track(shipment, "InTransit")
        else:
            self.deliver(shipment)

    def pick(self, shipment, quantities=None):
        """Take the shipment's units off the shelves (what is there, less a planned
        short unit); an ``Exception`` (out of stock) when nothing is there."""
        if shipment["stage"] != "released":
            return shipment
        if quantities is None:
            quantities = {
                sku: min(quantity, max(0, self.products[sku]["on_hand"]))
                for sku, quantity in shipment["lines"].items()
            }
            if shipment["plan"]["short"] and sum(quantities.values()) > 1:
                sku = max(quantities, key=lambda k: (quantities[k], k))
                quantities[sku] -= 1
        for sku, quantity in quantities.items():
            if quantity > shipment["lines"].get(sku, 0):
                raise WarehouseError(
                    f"{quantity} x {sku} is more than order {shipment['order_id']} holds"
                )
        quantities = {sku: q for sku, q in quantities.items() if q > 0}
        if not quantities:
            self._set_status(
                shipment, "Exception", "OutOfStock", "Not enough stock to fulfil the order."
            )
            shipment["waiting_stock"] = True
            self.emit("order.shipment.exception", self.shipment_data(shipment))
            return shipment
        for sku, quantity in quantities.items():
            self.products[sku]["on_hand"] -= quantity
        shipment["picked"] = quantities
        shipment["stage"], shipment["stage_at"] = "picked", self.now
        self._set_status(shipment, "Processing", "Picked")
        return shipment

    def _planned_parcels(self, shipment):
        units = [
            sku for sku, quantity in sorted(shipment["picked"].items()) for _ in range(quantity)
        ]
        if shipment["plan"]["split"] and len(units) >= 2:
            half = math.ceil(len(units) / 2)
            return [_count(units[:half]), _count(units[half:])]
        return [_count(units)]

    def ship(self, shipment, parcels, carriers=None):
        """Ship ``parcels`` (lists of ``(sku, quantity)``, or ``{sku: quantity}``) now.

        Units not picked yet are taken off the shelves (a test's explicit
        shipment); units picked and not shipped go back on them (short).
        """
        if shipment["status"] in ("Completed", "Cancelled"):
            raise WarehouseError(f"shipment {shipment['id']} is {shipment['status'].lower()}")
        parcels = [dict(parcel) for parcel in parcels]
        if not any(q for parcel in parcels for q in parcel.values()):
            raise WarehouseError("a shipment needs at least one unit in a parcel")
        totals = {}
        for parcel in parcels:
            for sku, quantity in parcel.items():
                if sku not in shipment["lines"]:
                    raise WarehouseError(f"{sku} is not in order {shipment['order_id']}")
                totals[sku] = totals.get(sku, 0) + quantity
        for sku, quantity in totals.items():
            if quantity > shipment["lines"][sku]:
                raise WarehouseError(
                    f"{quantity} x {sku} is more than the {shipment['lines'][sku]} ordered"
                )
        for sku in set(totals) | set(shipment["picked"]):
            delta = totals.get(sku, 0) - shipment["picked"].get(sku, 0)
            product = self.products[sku]
            product["on_hand"] = max(0, product["on_hand"] - delta)
        shipment["picked"] = totals
        rng = seeded_random(self.seed, "3pl", "tracking", shipment["id"])
        plan = shipment["plan"]["carriers"]
        known = {carrier[0]: carrier for carrier in CARRIERS}
        for index, parcel in enumerate(p for p in parcels if any(p.values())):
            name, service, pattern, url = CARRIERS[plan[min(index, len(plan) - 1)]]
            if carriers and index < len(carriers) and carriers[index]:
                if carriers[index] not in known:
                    raise WarehouseError(f"carrier is one of {', '.join(known)}")
                name, service, pattern, url = known[carriers[index]]
            number = _tracking_number(pattern, rng)
            shipment["packages"].append(
                {
                    "id": self.new_id("package"),
                    "carrier": name,
                    "carrier_service": service,
                    "tracking_number": number,
                    "tracking_url": url.format(n=number),
                    "tracking_status": "LabelCreated",
                    "shipping_date": iso(self.now),
                    "delivered_date": None,
                    "products": [
                        {"reference_id": sku, "sku": sku, "quantity": quantity}
                        for sku, quantity in sorted(parcel.items())
                        if quantity
                    ],
                }
            )
        shipment["stage"], shipment["stage_at"] = "shipped", self.now
        shipment["actual_fulfillment_date"] = iso(self.now)
        shipment["last_tracking_update_at"] = iso(self.now)
        self._set_status(shipment, "Completed", "LabeledCreated")
        self.emit("order.shipped", self.shipment_data(shipment))
        return shipment

    def track(self, shipment, status):
        """A carrier status for every parcel of a shipped shipment."""
        if status not in TRACKING_STATUSES:
            raise WarehouseError(f"tracking status is one of {', '.join(TRACKING_STATUSES)}")
        if status == "Delivered":
            return self.deliver(shipment)
        if shipment["status"] != "Completed":
            raise WarehouseError(f"shipment {shipment['id']} is not shipped")
        if shipment["stage"] == "delivered":
            raise WarehouseError(
                f"shipment {shipment['id']} is delivered: replay a webhook for a late update"
            )
        for package in shipment["packages"]:
            package["tracking_status"] = status
        shipment["stage"], shipment["stage_at"] = "in_transit", self.now
        shipment["last_tracking_update_at"] = shipment["last_update_at"] = iso(self.now)
        self.emit("order.shipment.tracking.updated", self.shipment_data(shipment))
        return shipment

    def deliver(self, shipment):
        if shipment["status"] != "Completed":
            raise WarehouseError(f"shipment {shipment['id']} is not shipped")
        if shipment["stage"] == "delivered":
            return shipment
        for package in shipment["packages"]:
            package["tracking_status"] = "Delivered"
            package["delivered_date"] = iso(self.now)
        shipment["stage"], shipment["stage_at"] = "delivered", self.now
        shipment["delivery_date"] = iso(self.now)
        shipment["last_tracking_update_at"] = shipment["last_update_at"] = iso(self.now)
        self._set_status(shipment, "Completed", "Delivered")
        self.emit("order.shipment.delivered", self.shipment_data(shipment))
        order = self.orders[shipment["order_id"]]
        live = [s for s in self.shipments_of(order) if s["status"] != "Cancelled"]
        if live and all(s["stage"] == "delivered" for s in live):
            self.emit("order.delivered", self.order_data(order))
        return shipment

    # --- returns ------------------------------------------------------------------------
    def create_return(self, body):
        items = []
        for item in body["inventory"]:
            product = self.product_by_inventory_id(item["id"])
            items.append(
                {
                    "id": product["inventory_id"],
                    "sku": product["sku"],
                    "name": product["name"],
                    "quantity": item["quantity"],
                    "requested_action": item.get("requested_action") or "Default",
                    "action_taken": [],
                }
            )
        record = {
            "id": self.new_id("return"),
            "reference_id": body["reference_id"],
            "status": "AwaitingArrival",
            "stage_at": self.now,
            "insert_date": iso(self.now),
            "arrived_date": None,
            "completed_date": None,
            "original_shipment_id": body.get("original_shipment_id"),
            "tracking_number": body.get("tracking_number"),
            "inventory": items,
        }
        self.returns[record["id"]] = record
        return record

    def return_record(self, key):
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            found = self.returns.get(int(key))
            if found:
                return found
        for record in self.returns.values():
            if record["reference_id"] == key:
                return record
        raise WarehouseError(f"no return {key!r} at the 3PL")

    def return_by_reference(self, reference_id):
        return next((r for r in self.returns.values() if r["reference_id"] == reference_id), None)

    def _return_step(self, record):
        if record["status"] == "AwaitingArrival":
            record["status"], record["stage_at"] = "Arrived", self.now
            record["arrived_date"] = iso(self.now)
            return
        rng = seeded_random(self.seed, "3pl", "return", record["id"])
        items = []
        for item in record["inventory"]:
            for _unit in range(item["quantity"]):
                draw = rng.random()
                if item["requested_action"] in ("Quarantine", "Dispose"):
                    outcome = (item["requested_action"], "DEFECTIVE")
                elif draw < 0.8:
                    outcome = ("Restock", "SELLABLE")
                elif draw < 0.9:
                    outcome = ("Quarantine", "CUSTOMER_DAMAGED")
                else:
                    outcome = ("Dispose", "DEFECTIVE")
                items.append((item["sku"], 1, *outcome))
        self.complete_return(record, items)

    def complete_return(self, record, items):
        """The warehouse processed the return: ``items`` are ``(sku or inventory id,
        quantity processed, action, condition)``; several per SKU for mixed
        dispositions, fewer units than expected for a partial return."""
        if record["status"] in ("Completed", "Cancelled"):
            raise WarehouseError(
                f"return {record['reference_id']} is already {record['status'].lower()}"
            )
        by_sku = {item["sku"]: item for item in record["inventory"]}
        taken = []
        for sku, quantity, action, condition in items:
            product = (
                self.product_by_inventory_id(sku)
                if isinstance(sku, int)
                else self.products.get(sku)
            )
            if product is None or product["sku"] not in by_sku:
                raise WarehouseError(f"{sku} is not in return {record['reference_id']}")
            if action not in RETURN_ACTIONS:
                raise WarehouseError(
                    f"action is one of {', '.join(RETURN_ACTIONS)}, not {action!r}"
                )
            if condition not in CONDITIONS:
                raise WarehouseError(
                    f"condition is one of {', '.join(CONDITIONS)}, not {condition!r}"
                )
            if not isinstance(quantity, int) or quantity < 1:
                raise WarehouseError(
                    f"quantity processed must be a whole number above 0: {quantity!r}"
                )
            taken.append((product["sku"], quantity, action, condition))
        for sku, quantity, action, condition in taken:
            entries = by_sku[sku]["action_taken"]
            same = next(
                (e for e in entries if (e["action"], e["action_reason"]) == (action, condition)),
                None,
            )
            if same:
                same["quantity_processed"] += quantity
            else:
                entries.append(
                    {
                        "action": action,
                        "action_reason": condition,
                        "quantity_processed": quantity,
                        "image_url": None,
                    }
                )
            if action == "Restock":
                self.products[sku]["on_hand"] += quantity
        record["status"], record["stage_at"] = "Completed", self.now
        record["arrived_date"] = record["arrived_date"] or iso(self.now)
        record["completed_date"] = iso(self.now)
        self.emit("return.completed", self.return_data(record))
        return record

    # --- stock ------------------------------------------------------------------------------
    def set_on_hand(self, sku, quantity, name=None):
        product = self.products.get(sku) or self._add_product(sku, name or sku)
        product["on_hand"] = int(quantity)
        return product

    def quantities(self, product):
        """On hand, committed, fulfillable, in exception, as ShipBob counts them.

        On hand is every unit in the building: on the shelves, and picked or
        packed for an order not shipped yet (it leaves the count when it
        ships). Committed is what orders not shipped yet hold: the lines of a
        shipment still to pick, the units picked for one. Fulfillable is on
        hand less committed. ``product["on_hand"]`` is the shelves' part.
        """
        sku = product["sku"]
        committed = in_picking = exception = 0
        for shipment in self.shipments.values():
            if shipment["status"] == "Cancelled":
                continue
            if shipment["stage"] == "released":
                quantity = shipment["lines"].get(sku, 0)
                committed += quantity
                if shipment["status"] == "Exception":
                    exception += quantity
            elif shipment["stage"] in ("picked", "packed"):
                quantity = shipment["picked"].get(sku, 0)
                committed += quantity
                in_picking += quantity
        on_hand = product["on_hand"] + in_picking
        return {
            "onhand": on_hand,
            "committed": committed,
            "fulfillable": max(0, on_hand - committed),
            "exception": exception,
        }

    # --- the remote's JSON ---------------------------------------------------------------
    def shipment_data(self, shipment):
        order = self.orders[shipment["order_id"]]
        shipped = bool(shipment["packages"])
        contents = dict(shipment["lines"])
        if shipped:
            contents = {}
            for package in shipment["packages"]:
                for line in package["products"]:
                    contents[line["sku"]] = contents.get(line["sku"], 0) + line["quantity"]
        first = shipment["packages"][0] if shipped else None
        return {
            "id": shipment["id"],
            "order_id": order["id"],
            "reference_id": order["reference_id"],
            "recipient": order["recipient"],
            "created_date": shipment["created_date"],
            "last_update_at": shipment["last_update_at"],
            "last_tracking_update_at": shipment["last_tracking_update_at"],
            "status": shipment["status"],
            "status_details": [dict(d) for d in shipment["status_details"]],
            "location": dict(FULFILLMENT_CENTER),
            "ship_option": order["shipping_method"],
            "is_tracking_uploaded": shipment["is_tracking_uploaded"],
            # ShipBob shows one tracking per shipment: the first parcel's. The
            # parcels' own tracking is in ``packages``.
            "tracking": {
                "carrier": first["carrier"],
                "carrier_service": first["carrier_service"],
                "tracking_number": first["tracking_number"],
                "tracking_url": first["tracking_url"],
                "shipping_date": first["shipping_date"],
            }
            if first
            else None,
            "packages": [
                {**package, "products": [dict(line) for line in package["products"]]}
                for package in shipment["packages"]
            ],
            "products": [
                {
                    "id": self.products[sku]["id"],
                    "reference_id": sku,
                    "sku": sku,
                    "name": self.products[sku]["name"],
                    "quantity": quantity,
                    "inventory_items": [
                        {
                            "id": self.products[sku]["inventory_id"],
                            "name": self.products[sku]["name"],
                            "quantity": quantity,
                        }
                    ],
                }
                for sku, quantity in sorted(contents.items())
            ],
            "actual_fulfillment_date": shipment["actual_fulfillment_date"],
            "delivery_date": shipment["delivery_date"],
        }

    def order_data(self, order):
        return {
            "id": order["id"],
            "reference_id": order["reference_id"],
            "order_number": order["order_number"],
            "created_date": order["created_date"],
            "purchase_date": order["purchase_date"],
            "status": self.order_status(order),
            "type": order["type"],
            "channel": dict(CHANNEL),
            "shipping_method": order["shipping_method"],
            "recipient": order["recipient"],
            "products": [dict(line) for line in order["products"]],
            "tags": order["tags"],
            "shipments": [self.shipment_data(s) for s in self.shipments_of(order)],
        }

    def return_data(self, record):
        return {
            "id": record["id"],
            "reference_id": record["reference_id"],
            "status": record["status"],
            "return_type": "Regular",
            "channel": dict(CHANNEL),
            "fulfillment_center": dict(FULFILLMENT_CENTER),
            "insert_date": record["insert_date"],
            "arrived_date": record["arrived_date"],
            "completed_date": record["completed_date"],
            "original_shipment_id": record["original_shipment_id"],
            "tracking_number": record["tracking_number"],
            "inventory": [
                {
                    "id": item["id"],
                    "name": item["name"],
                    "sku": item["sku"],
                    "quantity": item["quantity"],
                    "action_requested": {
                        "action": item["requested_action"],
                        "action_type": "ReturnAction",
                        "instructions": None,
                    },
                    "action_taken": [dict(entry) for entry in item["action_taken"]],
                }
                for item in record["inventory"]
            ],
        }

    def inventory_data(self, product):
        q = self.quantities(product)
        return {
            "id": product["inventory_id"],
            "name": product["name"],
            "sku": product["sku"],
            "is_active": product["active"],
            "total_onhand_quantity": q["onhand"],
            "total_committed_quantity": q["committed"],
            "total_fulfillable_quantity": q["fulfillable"],
            "total_exception_quantity": q["exception"],
            "fulfillable_quantity_by_fulfillment_center": [
                {
                    **FULFILLMENT_CENTER,
                    "onhand_quantity": q["onhand"],
                    "committed_quantity": q["committed"],
                    "fulfillable_quantity": q["fulfillable"],
                }
            ],
        }


def _count(units):
    counts = {}
    for sku in units:
        counts[sku] = counts.get(sku, 0) + 1
    return counts


def _tracking_number(pattern, rng):
    digits = "0123456789"
    alnum = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return pattern.format(
        digits9="".join(rng.choice(digits) for _ in range(9)),
        digits10="".join(rng.choice(digits) for _ in range(10)),
        digits11="".join(rng.choice(digits) for _ in range(11)),
        alnum16="".join(rng.choice(alnum) for _ in range(16)),
    )
