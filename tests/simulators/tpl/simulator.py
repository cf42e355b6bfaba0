"""The 3PL simulator: a ShipBob-like fulfillment REST API over a simulated warehouse.

    with ThirdPartyLogisticsSimulator(seed=42, webhook_url=odoo_url) as tpl:
        tpl.api_url                 # http://127.0.0.1:<port>/2026-01
        tpl.headers                 # Authorization: Bearer <token>, shipbob_channel_id
        ...                         # Odoo releases orders with POST /order
        tpl.advance(hours=3)        # the warehouse picks, packs and ships them
        tpl.ship("WH/OUT/00012", parcels=[{"SKU-1": 1}, {"SKU-1": 1, "SKU-2": 2}])
        tpl.complete_return("RMA-7", [("SKU-1", 1, "Restock", "SELLABLE")])

Written from ShipBob's public API documentation (orders by ``reference_id``,
``GET /order`` filtered on tracking not yet uploaded, the batch
acknowledgement, cancellation before pick only, returns with
``action_taken``, the inventory listing, the 150 requests/min sliding
limit) with ShipHero's package-level tracking and Amazon MCF's return
conditions. See ``tests/simulators/README.md`` for the whole API.
"""

import hashlib
import json
import math
import threading
import time
import urllib.parse
import uuid
from collections import deque
from datetime import datetime

from werkzeug.routing import Rule

from ..base import Simulator, iso, json_response, seeded_random, utcnow
from .warehouse import (
    CHANNEL,
    FULFILLMENT_CENTER,
    REQUESTED_ACTIONS,
    Warehouse,
    WarehouseError,
)

API_PREFIX = "/2026-01"
MAX_LIMIT = 250
DEFAULT_LIMIT = 50
MAX_BODY_BYTES = 1024 * 1024
PROBLEM_TYPE = "https://tools.ietf.org/html/rfc9110#section-15.5.1"


class ApiError(Exception):
    """A refusal with the remote's body."""

    def __init__(self, status, body):
        super().__init__(body.get("title") or body.get("message"))
        self.status = status
        self.body = body


def _found(records, record_id):
    """The record of this id; a 404 problem when there is none."""
    record = records.get(record_id)
    if record is None:
        raise ApiError(404, problem(404, "Not Found"))
    return record


def problem(status, title, errors=None):
    """The ASP.NET problem-details body ShipBob's API answers 4xx with."""
    body = {"type": PROBLEM_TYPE, "title": title, "status": status}
    if errors:
        body["errors"] = errors
    return body


class Problems:
    """Validation errors gathered over a whole body, by field path."""

    def __init__(self):
        self.errors = {}

    def add(self, field, message):
        self.errors.setdefault(field, []).append(message)

    def raise_if_any(self):
        if self.errors:
            raise ApiError(
                400, problem(400, "One or more validation errors occurred.", self.errors)
            )

    def string(self, data, key, path, required=True):
        value = data.get(key)
        if value is None:
            if required:
                self.add(path, f"The {key} field is required.")
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(path, f"The {key} field must be a non-empty string.")
            return None
        return value

    def integer(self, data, key, path, minimum=None, required=True):
        value = data.get(key)
        if value is None:
            if required:
                self.add(path, f"The {key} field is required.")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"The {key} field must be a whole number.")
            return None
        if minimum is not None and value < minimum:
            self.add(path, f"The field {key} must be between {minimum} and 2147483647.")
            return None
        return value

    def obj(self, data, key, path, required=True):
        value = data.get(key)
        if value is None:
            if required:
                self.add(path, f"The {key} field is required.")
            return None
        if not isinstance(value, dict):
            self.add(path, f"The {key} field must be an object.")
            return None
        return value

    def array(self, data, key, path, required=True):
        value = data.get(key)
        if value is None or value == []:
            if required:
                self.add(path, f"The {key} field is required and must not be empty.")
            return []
        if not isinstance(value, list):
            self.add(path, f"The {key} field must be an array.")
            return []
        return value


class SlidingWindowLimiter:
    """ShipBob's limit: ``limit`` requests per ``window`` seconds, sliding.

    Past the limit a request is refused with the seconds until the oldest
    counted request leaves the window (at least 1).
    """

    def __init__(self, limit=150, window=60.0, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self.clock = clock
        self._times = deque()
        self._lock = threading.Lock()

    def take(self):
        """``(wait, remaining)``: wait None when the request may go on."""
        with self._lock:
            now = self.clock()
            while self._times and self._times[0] <= now - self.window:
                self._times.popleft()
            if len(self._times) >= self.limit:
                return max(1, math.ceil(self._times[0] + self.window - now)), 0
            self._times.append(now)
            return None, self.limit - len(self._times)

    def reset(self):
        with self._lock:
            self._times.clear()

    def status(self):
        with self._lock:
            return {"limit": self.limit, "window": self.window, "used": len(self._times)}


class ThirdPartyLogisticsSimulator(Simulator):
    """A 3PL account (ShipBob-like) with one fulfillment center and its warehouse clock."""

    name = "3pl"
    signature_header = "X-3pl-Signature"

    def __init__(
        self,
        *,
        seed=0,
        access_token="shipbob_pat_simulator_token",
        products=24,
        split_share=0.25,
        short_share=0.05,
        rate_limit=150,
        rate_window=60.0,
        resend="existing",
        clock_rate=None,
        epoch=None,
        **options,
    ):
        if resend not in ("existing", "422"):
            raise ValueError("resend is 'existing' (the first answer again) or '422'")
        self.epoch = (epoch or utcnow()).replace(microsecond=0)
        self.access_token = access_token
        self.sizes = {"products": products, "split_share": split_share, "short_share": short_share}
        self.resend = resend
        self.clock_rate = clock_rate
        self.limiter = SlidingWindowLimiter(rate_limit, rate_window)
        self.warehouse = None
        self.messages = {}
        self._message_numbers = 0
        self._body_hashes = {}
        self._ticker = None
        self._ticker_stop = threading.Event()
        super().__init__(seed=seed, **options)

    # --- state -----------------------------------------------------------------------
    def seed_state(self, rng):
        self.warehouse = Warehouse(self.seed, self.epoch, **self.sizes)
        self.warehouse.listeners.append(self._emit)
        self.messages = {}
        self._message_numbers = 0
        self._body_hashes = {}
        self.limiter.reset()

    def start(self):
        super().start()
        if self.clock_rate:
            self._ticker_stop.clear()
            self._ticker = threading.Thread(
                target=self._tick, name="simulator-3pl-clock", daemon=True
            )
            self._ticker.start()
        return self

    def stop(self):
        if self._ticker is not None:
            self._ticker_stop.set()
            self._ticker.join()
            self._ticker = None
        super().stop()

    def _tick(self):
        """Real time drives the warehouse: ``clock_rate`` simulated hours a second."""
        while not self._ticker_stop.wait(1.0):
            self.advance(self.clock_rate)

    @property
    def api_url(self):
        """Base URL of the API: ``<url>/2026-01``."""
        return f"{self.url}{API_PREFIX}"

    @property
    def headers(self):
        """Headers an authenticated client sends (the channel header writes need)."""
        return {
            "Authorization": f"Bearer {self.access_token}",
            "shipbob_channel_id": str(CHANNEL["id"]),
            "Content-Type": "application/json",
        }

    @property
    def now(self):
        """The warehouse's clock (starts at ``epoch``; :meth:`advance` moves it)."""
        return self.warehouse.now

    # --- routes -------------------------------------------------------------------------
    def api_rules(self):
        p = API_PREFIX
        return [
            Rule("/api/health", endpoint="health", methods=["GET"]),
            Rule(f"{p}/channel", endpoint="channel_list", methods=["GET"]),
            Rule(f"{p}/order", endpoint="order_create", methods=["POST"]),
            Rule(f"{p}/order", endpoint="order_list", methods=["GET"]),
            Rule(f"{p}/order/<int:order_id>", endpoint="order_get", methods=["GET"]),
            Rule(f"{p}/order/<int:order_id>:cancel", endpoint="order_cancel", methods=["POST"]),
            Rule(f"{p}/order/<int:order_id>:hold", endpoint="order_hold", methods=["POST"]),
            Rule(
                f"{p}/order/<int:order_id>:releaseHold", endpoint="order_unhold", methods=["POST"]
            ),
            Rule(
                f"{p}/shipment:batchUpdateTrackingUpload",
                endpoint="tracking_ack",
                methods=["POST"],
            ),
            Rule(f"{p}/return", endpoint="return_create", methods=["POST"]),
            Rule(f"{p}/return", endpoint="return_list", methods=["GET"]),
            Rule(f"{p}/return/<int:return_id>", endpoint="return_get", methods=["GET"]),
            Rule(f"{p}/inventory", endpoint="inventory_list", methods=["GET"]),
        ]

    def health(self, request):
        return json_response({"status": "ok", "system": self.name, "time": iso(utcnow())})

    def _faulty_response(self, fault, response, environ):
        # A throttle fault answers as the real limit does (429, x-retry-after).
        if fault.kind == "throttle":
            wait = max(1, math.ceil(fault.retry_after))
            return self._too_many(wait)
        return super()._faulty_response(fault, response, environ)

    @staticmethod
    def _too_many(wait):
        return json_response(
            {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {wait} seconds."},
            status=429,
            headers={"x-retry-after": str(wait), "x-remaining-calls": "0"},
        )

    # --- the call wrapper ------------------------------------------------------------------
    def _call(self, request, apply, *, write=False):
        """Authenticate, count against the limit, check the channel of a write, apply."""
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            request.sim_note = {"error": "unauthorized"}
            return json_response(
                {"message": "Authorization has been denied for this request."},
                status=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        wait, remaining = self.limiter.take()
        if wait is not None:
            request.sim_note = {"rate_limited": True}
            return self._too_many(wait)
        headers = {"x-remaining-calls": str(remaining)}
        try:
            if write:
                self._check_channel(request)
            with self.lock:
                status, body, extra = apply()
        except ApiError as exc:
            request.sim_note = {**getattr(request, "sim_note", {}), "error": exc.body.get("title")}
            return json_response(exc.body, status=exc.status, headers=headers)
        return json_response(body, status=status, headers={**headers, **(extra or {})})

    @staticmethod
    def _check_channel(request):
        channel = request.headers.get("shipbob_channel_id")
        if channel is None:
            raise ApiError(
                400,
                problem(
                    400,
                    "One or more validation errors occurred.",
                    {"shipbob_channel_id": ["The shipbob_channel_id header is required."]},
                ),
            )
        if channel != str(CHANNEL["id"]):
            raise ApiError(
                403, problem(403, f"Channel {channel} has no write access for this token.")
            )

    @staticmethod
    def _body(request):
        raw = request.get_data()
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(413, problem(413, "Request body too large."))
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise ApiError(415, problem(415, "Unsupported Media Type"))
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(
                400,
                problem(
                    400, "One or more validation errors occurred.", {"$": [f"Invalid JSON: {exc}"]}
                ),
            ) from exc
        if not isinstance(body, dict):
            raise ApiError(
                400,
                problem(
                    400,
                    "One or more validation errors occurred.",
                    {"$": ["A JSON object is expected."]},
                ),
            )
        return body

    @staticmethod
    def _digest(body):
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def _resent(self, kind, body, existing):
        """The answer to a reference_id already used: the existing record, or 422."""
        if self.resend == "existing" and self._body_hashes.get(
            (kind, existing["id"])
        ) == self._digest(body):
            return True
        raise ApiError(
            422,
            problem(
                422,
                "Duplicate reference ID",
                {
                    "reference_id": [
                        f"A {kind} with reference_id '{body['reference_id']}' "
                        f"already exists (id {existing['id']})."
                    ]
                },
            ),
        )

    @staticmethod
    def _flag(request, name):
        value = request.args.get(name)
        if value is None:
            return None
        if value.lower() not in ("true", "false"):
            raise ApiError(
                400,
                problem(
                    400,
                    "One or more validation errors occurred.",
                    {name: [f"The value '{value}' is not valid for {name}."]},
                ),
            )
        return value.lower() == "true"

    @staticmethod
    def _paging(request):
        errors = {}
        values = {}
        for name, default, low, high in (
            ("Page", 1, 1, 10**9),
            ("Limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        ):
            raw = request.args.get(name)
            try:
                values[name] = default if raw is None else int(raw)
            except ValueError:
                errors[name] = [f"The value '{raw}' is not valid for {name}."]
                continue
            if not low <= values[name] <= high:
                errors[name] = [f"The field {name} must be between {low} and {high}."]
        if errors:
            raise ApiError(400, problem(400, "One or more validation errors occurred.", errors))
        return values["Page"], values["Limit"]

    @staticmethod
    def _page(request, records, page, limit):
        """One page of ``records`` and the paging headers (``next-page`` when more)."""
        total = len(records)
        pages = max(1, math.ceil(total / limit))
        chunk = records[(page - 1) * limit : page * limit]
        headers = {"total-count": str(total), "total-pages": str(pages), "page-number": str(page)}
        if page < pages:
            query = [(k, v) for k, v in request.args.items(multi=True) if k != "Page"]
            query.append(("Page", str(page + 1)))
            headers["next-page"] = f"{request.path}?{urllib.parse.urlencode(query)}"
        return chunk, headers

    # --- orders --------------------------------------------------------------------------
    def channel_list(self, request):
        scopes = [
            "orders_read",
            "orders_write",
            "returns_read",
            "returns_write",
            "inventory_read",
            "webhooks_read",
            "webhooks_write",
        ]
        return self._call(
            request,
            lambda: (
                200,
                {"items": [{**CHANNEL, "application_name": "API", "scopes": scopes}]},
                None,
            ),
        )

    def order_create(self, request):
        return self._create_by_reference(
            request,
            "order",
            validate=self._validate_order,
            find=self.warehouse.order_by_reference,
            create=self.warehouse.create_order,
            data=self.warehouse.order_data,
        )

    def _create_by_reference(self, request, kind, *, validate, find, create, data):
        """``POST`` of an order or a return, idempotent on its ``reference_id``:
        the same body again answers 200 with what it made (a request re-sent
        after a lost answer), another body under a used reference is refused."""

        def apply():
            body = self._body(request)
            validate(body)
            request.sim_note = {"reference_id": body["reference_id"]}
            existing = find(body["reference_id"])
            if existing is not None and self._resent(kind, body, existing):
                request.sim_note["resent"] = True
                return 200, data(existing), None
            record = create(body)
            self._body_hashes[(kind, record["id"])] = self._digest(body)
            return 201, data(record), None

        return self._call(request, apply, write=True)

    def _validate_order(self, body):
        check = Problems()
        check.string(body, "reference_id", "reference_id")
        check.string(body, "shipping_method", "shipping_method")
        check.string(body, "order_number", "order_number", required=False)
        if body.get("type") not in (None, "DTC", "B2B"):
            check.add("type", "The type field is one of DTC, B2B.")
        if body.get("purchase_date") is not None:
            try:
                datetime.fromisoformat(str(body["purchase_date"]).replace("Z", "+00:00"))
            except ValueError:
                check.add(
                    "purchase_date", "The purchase_date field must be an ISO 8601 date and time."
                )
        self._validate_recipient(check, body)
        for index, line in enumerate(check.array(body, "products", "products")):
            path = f"products[{index}]"
            if not isinstance(line, dict):
                check.add(path, "A product must be an object.")
                continue
            sku = check.string(line, "reference_id", f"{path}.reference_id")
            check.integer(line, "quantity", f"{path}.quantity", minimum=1)
            name = check.string(line, "name", f"{path}.name", required=False)
            price = line.get("unit_price")
            if price is not None and (
                isinstance(price, bool) or not isinstance(price, (int, float))
            ):
                check.add(f"{path}.unit_price", "The unit_price field must be a number.")
            product = self.warehouse.products.get(sku) if sku else None
            if product is not None and not product["active"]:
                check.add(
                    f"{path}.reference_id",
                    f"Product '{sku}' is inactive and cannot be fulfilled.",
                )
            if sku and name is None and product is None:
                check.add(
                    f"{path}.name",
                    f"No product with reference_id '{sku}' exists: "
                    "the product name is required to create it.",
                )
        tags = body.get("tags")
        if tags is not None and (
            not isinstance(tags, list)
            or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tags)
        ):
            check.add("tags", "The tags field is an array of {name, value}.")
        check.raise_if_any()

    @staticmethod
    def _validate_recipient(check, body):
        recipient = check.obj(body, "recipient", "recipient")
        if recipient is not None:
            check.string(recipient, "name", "recipient.name")
            check.string(recipient, "email", "recipient.email", required=False)
            check.string(recipient, "phone_number", "recipient.phone_number", required=False)
            address = check.obj(recipient, "address", "recipient.address")
            if address is not None:
                for key in ("address1", "city", "country"):
                    check.string(address, key, f"recipient.address.{key}")
                for key in ("address2", "state", "zip_code", "company_name"):
                    if address.get(key) is not None and not isinstance(address[key], str):
                        check.add(f"recipient.address.{key}", f"The {key} field must be a string.")

    def order_list(self, request):
        def apply():
            has_tracking = self._flag(request, "HasTracking")
            uploaded = self._flag(request, "IsTrackingUploaded")
            page, limit = self._paging(request)
            references = {
                ref.strip()
                for value in request.args.getlist("ReferenceIds")
                for ref in value.split(",")
                if ref.strip()
            }
            selected = []
            for order in sorted(self.warehouse.orders.values(), key=lambda o: o["id"]):
                shipments = self.warehouse.shipments_of(order)
                tracked = [s for s in shipments if s["packages"]]
                if references and order["reference_id"] not in references:
                    continue
                if has_tracking is not None and bool(tracked) != has_tracking:
                    continue
                if uploaded is not None and not any(
                    s["is_tracking_uploaded"] == uploaded for s in tracked
                ):
                    continue
                selected.append(order)
            chunk, headers = self._page(request, selected, page, limit)
            request.sim_note = {"orders": len(chunk), "page": page}
            return 200, [self.warehouse.order_data(o) for o in chunk], headers

        return self._call(request, apply)

    def order_get(self, request, order_id):
        def apply():
            order = _found(self.warehouse.orders, order_id)
            return 200, self.warehouse.order_data(order), None

        return self._call(request, apply)

    def order_cancel(self, request, order_id):
        def apply():
            order = _found(self.warehouse.orders, order_id)
            results = self.warehouse.cancel(order)
            request.sim_note = {"cancelled": all(r["is_success"] for r in results)}
            return (
                200,
                {"order": self.warehouse.order_data(order), "canceled_shipment_results": results},
                None,
            )

        return self._call(request, apply, write=True)

    def order_hold(self, request, order_id):
        return self._hold(request, order_id, hold=True)

    def order_unhold(self, request, order_id):
        return self._hold(request, order_id, hold=False)

    def _hold(self, request, order_id, hold):
        def apply():
            order = _found(self.warehouse.orders, order_id)
            results = self.warehouse.merchant_hold(order, hold=hold)
            request.sim_note = {"held" if hold else "unheld": all(r["is_success"] for r in results)}
            return 200, {"order": self.warehouse.order_data(order), "hold_results": results}, None

        return self._call(request, apply, write=True)

    def tracking_ack(self, request):
        def apply():
            body = self._body(request)
            check = Problems()
            flag = body.get("is_tracking_uploaded")
            if not isinstance(flag, bool):
                check.add(
                    "is_tracking_uploaded",
                    "The is_tracking_uploaded field is required: true or false.",
                )
            ids = body.get("shipment_ids")
            if not isinstance(ids, list) or not ids:
                check.add(
                    "shipment_ids", "The shipment_ids field is required and must not be empty."
                )
                ids = []
            for index, value in enumerate(ids):
                if isinstance(value, bool) or not isinstance(value, int):
                    check.add(f"shipment_ids[{index}]", "A shipment id is a whole number.")
            check.raise_if_any()
            results = []
            for shipment_id in ids:
                shipment = self.warehouse.shipments.get(shipment_id)
                error = None
                if shipment is None:
                    error = {
                        "code": "NotFound",
                        "message": f"Shipment {shipment_id} was not found.",
                    }
                elif not shipment["packages"]:
                    error = {
                        "code": "InvalidState",
                        "message": f"Shipment {shipment_id} has no tracking yet.",
                    }
                else:
                    shipment["is_tracking_uploaded"] = flag
                results.append(
                    {"error": error, "isSuccess": error is None, "shipmentId": shipment_id}
                )
            ok = sum(r["isSuccess"] for r in results)
            request.sim_note = {"shipments": len(ids), "failed": len(ids) - ok}
            summary = {"failed": len(ids) - ok, "successful": ok, "total": len(ids)}
            return 200, {"results": results, "summary": summary}, None

        return self._call(request, apply, write=False)

    # --- returns -------------------------------------------------------------------------
    def return_create(self, request):
        return self._create_by_reference(
            request,
            "return",
            validate=self._validate_return,
            find=self.warehouse.return_by_reference,
            create=self.warehouse.create_return,
            data=self.warehouse.return_data,
        )

    def _validate_return(self, body):
        check = Problems()
        check.string(body, "reference_id", "reference_id")
        check.string(body, "tracking_number", "tracking_number", required=False)
        center = check.obj(body, "fulfillment_center", "fulfillment_center")
        if center is not None:
            center_id = check.integer(center, "id", "fulfillment_center.id")
            if center_id is not None and center_id != FULFILLMENT_CENTER["id"]:
                check.add(
                    "fulfillment_center.id", f"No fulfillment center {center_id} for this account."
                )
        shipment_id = check.integer(
            body, "original_shipment_id", "original_shipment_id", required=False
        )
        if shipment_id is not None and shipment_id not in self.warehouse.shipments:
            check.add("original_shipment_id", f"No shipment {shipment_id} for this account.")
        seen = set()
        for index, item in enumerate(check.array(body, "inventory", "inventory")):
            path = f"inventory[{index}]"
            if not isinstance(item, dict):
                check.add(path, "An inventory item must be an object.")
                continue
            inventory_id = check.integer(item, "id", f"{path}.id")
            if inventory_id is not None:
                if self.warehouse.product_by_inventory_id(inventory_id) is None:
                    check.add(f"{path}.id", f"No inventory item {inventory_id} for this account.")
                elif inventory_id in seen:
                    check.add(
                        f"{path}.id", f"Inventory item {inventory_id} is listed more than once."
                    )
                seen.add(inventory_id)
            check.integer(item, "quantity", f"{path}.quantity", minimum=1)
            action = item.get("requested_action")
            if action is not None and action not in REQUESTED_ACTIONS:
                check.add(
                    f"{path}.requested_action",
                    f"The requested_action field is one of {', '.join(REQUESTED_ACTIONS)}.",
                )
        check.raise_if_any()

    def return_list(self, request):
        def apply():
            page, limit = self._paging(request)
            references = {
                ref.strip()
                for value in request.args.getlist("ReferenceIds")
                for ref in value.split(",")
                if ref.strip()
            }
            status = request.args.get("Status")
            selected = [
                record
                for record in sorted(self.warehouse.returns.values(), key=lambda r: r["id"])
                if (not references or record["reference_id"] in references)
                and (status is None or record["status"] == status)
            ]
            chunk, headers = self._page(request, selected, page, limit)
            return 200, [self.warehouse.return_data(r) for r in chunk], headers

        return self._call(request, apply)

    def return_get(self, request, return_id):
        def apply():
            record = _found(self.warehouse.returns, return_id)
            return 200, self.warehouse.return_data(record), None

        return self._call(request, apply)

    # --- inventory -------------------------------------------------------------------------
    def inventory_list(self, request):
        def apply():
            page, limit = self._paging(request)
            products = sorted(self.warehouse.products.values(), key=lambda p: p["inventory_id"])
            chunk, headers = self._page(request, products, page, limit)
            request.sim_note = {"items": len(chunk), "page": page}
            return 200, [self.warehouse.inventory_data(p) for p in chunk], headers

        return self._call(request, apply)

    # --- webhooks ----------------------------------------------------------------------------
    def _message_id(self):
        self._message_numbers += 1
        rng = seeded_random(self.seed, "3pl", "message", self._message_numbers)
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def _emit(self, topic, data, at):
        """Sign and queue a webhook: ``{"topic", "event_time", "data"}`` and a message id."""
        body = json.dumps(
            {"topic": topic, "event_time": iso(at), "data": data}, default=str
        ).encode()
        self._send(topic, body)

    def _send(self, topic, body, message_id=None):
        message_id = message_id or self._message_id()
        headers = {"X-3pl-Topic": topic, "X-3pl-Message-Id": message_id}
        self.messages[message_id] = {"topic": topic, "body": body}
        self.emit_webhook(topic, body, headers, message_id)
        return message_id

    def replay_webhook(self, message_id, new_id=False):
        """Send an earlier webhook again, as a retry does (same message id) or as
        a second notice of the same event (``new_id=True``). Returns its id."""
        with self.lock:
            message = self.messages.get(message_id)
            if message is None:
                raise WarehouseError(f"no webhook {message_id!r} was sent")
            return self._send(message["topic"], message["body"], None if new_id else message_id)

    def webhook_messages(self, topic=None):
        """Webhooks emitted, oldest first: ``{"message_id", "topic", "payload"}``."""
        with self.lock:
            return [
                {"message_id": key, "topic": m["topic"], "payload": json.loads(m["body"])}
                for key, m in self.messages.items()
                if topic is None or m["topic"] == topic
            ]

    # --- the warehouse's controls ------------------------------------------------------------
    def advance(self, hours=1.0):
        """Move the warehouse clock ahead: released orders are picked, packed,
        shipped, carried and delivered on the way; returns arrive and are
        processed. Returns the new time."""
        with self.lock:
            return self.warehouse.advance(hours)

    def _shipment(self, order):
        return self.warehouse.open_shipment(self.warehouse.order(order))

    def pick(self, order, quantities=None):
        """Pick the order now (it can no longer be cancelled); ``{sku: qty}`` picks those."""
        with self.lock:
            return self.warehouse.shipment_data(
                self.warehouse.pick(self._shipment(order), quantities)
            )

    def ship(self, order, parcels=None, carriers=None):
        """Ship the order now in ``parcels`` (``[{sku: qty}, ...]``; default: one
        parcel with everything ordered); fewer units than ordered ship short.
        ``carriers`` names each parcel's carrier (Colissimo, DHL, UPS, Chronopost)."""
        with self.lock:
            shipment = self._shipment(order)
            if parcels is None:
                parcels = [dict(shipment["lines"])]
            parcels = [dict(p) if isinstance(p, dict) else dict(map(tuple, p)) for p in parcels]
            return self.warehouse.shipment_data(self.warehouse.ship(shipment, parcels, carriers))

    def ship_short(self, order, quantities):
        """Ship ``{sku: qty}`` of the order in one parcel; the rest is not shipped."""
        return self.ship(order, [quantities])

    def _shipped(self, order):
        record = self.warehouse.order(order)
        shipments = [s for s in self.warehouse.shipments_of(record) if s["status"] == "Completed"]
        if not shipments:
            raise WarehouseError(f"order {record['reference_id']} is not shipped")
        return shipments

    def track(self, order, status="InTransit"):
        """A carrier scan of the shipped parcels (``InTransit``, ``OutForDelivery``...)."""
        with self.lock:
            return [
                self.warehouse.shipment_data(self.warehouse.track(s, status))
                for s in self._shipped(order)
            ]

    def deliver(self, order):
        """Every shipped parcel of the order is delivered (``order.delivered`` follows)."""
        with self.lock:
            return [
                self.warehouse.shipment_data(self.warehouse.deliver(s))
                for s in self._shipped(order)
            ]

    def hold(
        self, order, reason="InvalidAddress", description="The address could not be validated."
    ):
        with self.lock:
            record = self.warehouse.order(order)
            return self.warehouse.shipment_data(self.warehouse.hold(record, reason, description))

    def release_hold(self, order):
        with self.lock:
            return self.warehouse.shipment_data(
                self.warehouse.release_hold(self.warehouse.order(order))
            )

    def exception(
        self, order, reason="OutOfStock", description="Not enough stock to fulfil the order."
    ):
        with self.lock:
            record = self.warehouse.order(order)
            return self.warehouse.shipment_data(
                self.warehouse.exception(record, reason, description)
            )

    def cancel(self, order, reason="Cancelled by the warehouse"):
        """The warehouse cancels what it has not shipped (``order.shipment.cancelled``)."""
        with self.lock:
            return self.warehouse.cancel(self.warehouse.order(order), forced=True, reason=reason)

    def complete_return(self, rma, items):
        """Process a return: ``items`` ``[(sku or inventory id, quantity, action,
        condition)]``, action Restock / Quarantine / Dispose, condition SELLABLE,
        DEFECTIVE, CUSTOMER_DAMAGED, CARRIER_DAMAGED, WAREHOUSE_DAMAGED, EXPIRED."""
        with self.lock:
            record = self.warehouse.return_record(rma)
            items = [tuple(item) for item in items]
            return self.warehouse.return_data(self.warehouse.complete_return(record, items))

    def set_on_hand(self, sku, quantity, name=None):
        """The count of ``sku`` on the shelves (a new SKU is created; units
        picked for an order not shipped yet count on top in its on hand);
        orders waiting for it are picked at the next :meth:`advance`."""
        with self.lock:
            return self.warehouse.inventory_data(self.warehouse.set_on_hand(sku, quantity, name))

    def set_active(self, sku, active=True):
        """Deactivate (or reactivate) a product: releases naming it are refused."""
        with self.lock:
            product = self.warehouse.products[sku]
            product["active"] = bool(active)
            return self.warehouse.inventory_data(product)

    # --- ground truth ------------------------------------------------------------------------
    def orders(self):
        with self.lock:
            return [self.warehouse.order_data(o) for o in self.warehouse.orders.values()]

    def order(self, order):
        with self.lock:
            return self.warehouse.order_data(self.warehouse.order(order))

    def returns(self):
        with self.lock:
            return [self.warehouse.return_data(r) for r in self.warehouse.returns.values()]

    def return_order(self, rma):
        with self.lock:
            return self.warehouse.return_data(self.warehouse.return_record(rma))

    def inventory(self, sku=None):
        """``{sku: {onhand, committed, fulfillable, exception}}``, or one SKU's."""
        with self.lock:
            products = self.warehouse.products
            if sku is not None:
                return self.warehouse.quantities(products[sku])
            return {key: self.warehouse.quantities(p) for key, p in products.items()}

    def inventory_ids(self):
        """``{sku: inventory id}``: what returns name their items by."""
        with self.lock:
            return {sku: p["inventory_id"] for sku, p in self.warehouse.products.items()}

    def snapshot(self, parts=None):
        state = {
            "system": self.name,
            "clock": iso(self.warehouse.now),
            "skus": sorted(self.warehouse.products),
            "orders": self.orders(),
            "returns": self.returns(),
            "inventory": self.inventory(),
            "rate_limit": self.limiter.status(),
            "messages": [
                {"message_id": key, "topic": m["topic"]} for key, m in self.messages.items()
            ],
        }
        return {k: v for k, v in state.items() if parts is None or k in parts}

    def trigger(self, event, params):
        p = dict(params)
        events = {
            "clock.advance": lambda: iso(self.advance(float(p.get("hours", 1)))),
            "order.pick": lambda: self.pick(p["order"], p.get("quantities")),
            "order.ship": lambda: self.ship(p["order"], p.get("parcels"), p.get("carriers")),
            "order.ship_short": lambda: self.ship_short(p["order"], p["quantities"]),
            "order.track": lambda: self.track(p["order"], p.get("status", "InTransit")),
            "order.deliver": lambda: self.deliver(p["order"]),
            "order.hold": lambda: self.hold(p["order"], p.get("reason", "InvalidAddress")),
            "order.release_hold": lambda: self.release_hold(p["order"]),
            "order.exception": lambda: self.exception(p["order"], p.get("reason", "OutOfStock")),
            "order.cancel": lambda: self.cancel(p["order"]),
            "return.complete": lambda: self.complete_return(p["return"], p["items"]),
            "inventory.set": lambda: self.set_on_hand(p["sku"], p["on_hand"], p.get("name")),
            "product.set_active": lambda: self.set_active(p["sku"], p.get("active", True)),
            "webhook.replay": lambda: self.replay_webhook(p["message_id"], p.get("new_id", False)),
        }
        if event not in events:
            raise ValueError(f"3pl simulator knows no event {event!r}; one of {', '.join(events)}")
        return events[event]()
