"""The POS vendor's back-office API that Odoo calls: products and availability in.

Push-mode stores upload their tickets to Odoo; what they sell comes the other
way: Odoo sends each store its products (SKU, barcode, name, price tax
included, tax code: the store's price list) and its available quantities.
This is the vendor's side of that, modelled on the batch APIs of cloud POS
vendors (Square's ``catalog/batch-upsert`` and inventory batch changes):

- ``Authorization: Bearer <fleet API token>``; 401 without it.
- ``idempotency_key`` in every write: the same key with the same body answers
  the first answer again without applying anything (a client retrying after
  a lost answer); the same key with another body is refused (422).
- A batch is validated whole and applied whole: one bad item refuses the
  batch (400) with an error per bad item naming it (``products[3].price``),
  nothing applied; the client sends the others again without it.
- Strict types: money as a decimal string with two places, quantities as
  integers, unknown fields refused, limits on sizes.

Plain Python, no HTTP: :class:`VendorApi` validates and applies, the
simulator wraps it in routes and faults.
"""

import hashlib
import json
import re
from decimal import Decimal

from ..base import iso, utcnow

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 1024 * 1024
PRODUCTS_PER_CALL = 500
COUNTS_PER_CALL = 100
MAX_AVAILABLE = 1_000_000
PRODUCT_FIELDS = ("sku", "barcode", "name", "price", "tax_code")
COUNT_FIELDS = ("store", "sku", "available")
PRICE_RE = re.compile(r"^\d{1,7}\.\d{2}$")
BARCODE_RE = re.compile(r"^(\d{8}|\d{12}|\d{13}|\d{14})$")
SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")


class ApiError(Exception):
    """A refusal: HTTP ``status`` with the vendor's error list."""

    def __init__(self, status, errors):
        super().__init__(errors[0]["detail"] if errors else str(status))
        self.status = status
        self.errors = errors

    def body(self):
        return {"errors": self.errors}


def error(code, detail, field=None, category="INVALID_REQUEST_ERROR"):
    """One entry of the vendor's error list."""
    entry = {"category": category, "code": code, "detail": detail}
    if field is not None:
        entry["field"] = field
    return entry


class VendorApi:
    """What the vendor keeps of Odoo's writes: per store, products and counts."""

    def __init__(self, fleet):
        self.fleet = fleet
        # idempotency key -> (hash of the body, the answer given)
        self.answers = {}

    # --- shared checks ----------------------------------------------------------------
    def parse(self, raw, content_type):
        """The JSON object of a write, or an :class:`ApiError` (413, 415, 400)."""
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(
                413,
                [
                    error(
                        "REQUEST_ENTITY_TOO_LARGE",
                        f"The body is {len(raw)} bytes; at most {MAX_BODY_BYTES} are accepted.",
                    )
                ],
            )
        if (content_type or "").split(";")[0].strip().lower() != "application/json":
            raise ApiError(
                415,
                [
                    error(
                        "UNSUPPORTED_MEDIA_TYPE",
                        f"Content-Type must be application/json, not {content_type!r}.",
                    )
                ],
            )
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, [error("INVALID_JSON", f"The body is not JSON: {exc}.")]) from exc
        if not isinstance(body, dict):
            raise ApiError(400, [error("EXPECTED_OBJECT", "The body must be a JSON object.")])
        return body

    def replayed(self, body):
        """The first answer to this body's idempotency key, or None for a new key.

        Raises 422 when the key was used with another body."""
        key = body.get("idempotency_key")
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            raise ApiError(
                400,
                [
                    error(
                        "MISSING_REQUIRED_PARAMETER" if key is None else "INVALID_VALUE",
                        "idempotency_key is required: a string of 1 to 128 characters.",
                        "idempotency_key",
                    )
                ],
            )
        known = self.answers.get(key)
        if known is None:
            return None
        if known[0] != self._hash(body):
            raise ApiError(
                422,
                [
                    error(
                        "IDEMPOTENCY_KEY_REUSED",
                        f"The idempotency key {key} was used with another request body.",
                        "idempotency_key",
                    )
                ],
            )
        return known[1]

    def remember(self, body, answer):
        self.answers[body["idempotency_key"]] = (self._hash(body), answer)
        return answer

    @staticmethod
    def _hash(body):
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    @staticmethod
    def _items(body, name, limit, errors):
        items = body.get(name)
        if items is None:
            errors.append(error("MISSING_REQUIRED_PARAMETER", f"{name} is required.", name))
            return []
        if not isinstance(items, list):
            errors.append(error("EXPECTED_ARRAY", f"{name} must be an array.", name))
            return []
        if not 1 <= len(items) <= limit:
            errors.append(
                error(
                    "TOO_MANY_ITEMS" if items else "INVALID_VALUE",
                    f"{name} holds 1 to {limit} items, not {len(items)}.",
                    name,
                )
            )
            return []
        return items

    @staticmethod
    def _unexpected(body, allowed, errors, prefix=""):
        for name in sorted(set(body) - set(allowed)):
            errors.append(error("UNEXPECTED_FIELD", f"Unknown field {name!r}.", f"{prefix}{name}"))

    # --- products ---------------------------------------------------------------------
    def upsert_products(self, store_code, body):
        """Create or update products of one store; the answer, or an :class:`ApiError`."""
        store = self.fleet.stores.get(store_code)
        if store is None:
            raise ApiError(
                404,
                [error("NOT_FOUND", f"The fleet has no store {store_code!r}.", "store")],
            )
        replay = self.replayed(body)
        if replay is not None:
            return replay
        errors = []
        self._unexpected(body, ("idempotency_key", "products"), errors)
        items = self._items(body, "products", PRODUCTS_PER_CALL, errors)
        seen_skus, seen_barcodes = {}, {}
        clean = []
        for index, item in enumerate(items):
            where = f"products[{index}]"
            if not isinstance(item, dict):
                errors.append(error("EXPECTED_OBJECT", f"{where} must be an object.", where))
                continue
            problems = self._product_problems(item, where)
            self._unexpected(item, PRODUCT_FIELDS, problems, f"{where}.")
            if not problems:
                problems = self._clashes(store, item, where, seen_skus, seen_barcodes)
            seen_skus.setdefault(item.get("sku"), index)
            if item.get("barcode"):
                seen_barcodes.setdefault(item["barcode"], index)
            errors.extend(problems)
            clean.append(item)
        if errors:
            raise ApiError(400, errors)
        now = iso(utcnow())
        results = []
        for item in clean:
            record = {
                "sku": item["sku"],
                "barcode": item.get("barcode"),
                "name": item["name"],
                "price": Decimal(item["price"]),
                "tax_code": item["tax_code"],
            }
            previous = store.products.get(item["sku"])
            if previous and all(previous[k] == record[k] for k in record):
                result = "unchanged"
                record = previous
            else:
                result = "updated" if previous else "created"
                record["version"] = (previous["version"] + 1) if previous else 1
                record["updated_at"] = now
                store.products[item["sku"]] = record
            results.append(
                {
                    "sku": record["sku"],
                    "version": record["version"],
                    "updated_at": record["updated_at"],
                    "result": result,
                }
            )
        return self.remember(body, {"store": store.code, "products": results})

    def _product_problems(self, item, where):
        problems = []
        for name in ("sku", "name", "price", "tax_code"):
            if item.get(name) is None:
                problems.append(
                    error("MISSING_REQUIRED_PARAMETER", f"{name} is required.", f"{where}.{name}")
                )
        sku, name, price = item.get("sku"), item.get("name"), item.get("price")
        barcode, tax_code = item.get("barcode"), item.get("tax_code")
        if sku is not None and (not isinstance(sku, str) or not SKU_RE.match(sku)):
            problems.append(
                error(
                    "INVALID_VALUE",
                    f"sku {sku!r}: 1 to 64 letters, digits, '.', '_', '/' or '-'.",
                    f"{where}.sku",
                )
            )
        if name is not None and (not isinstance(name, str) or not 1 <= len(name.strip()) <= 255):
            problems.append(
                error("INVALID_VALUE", "name: a string of 1 to 255 characters.", f"{where}.name")
            )
        if price is not None and (not isinstance(price, str) or not PRICE_RE.match(price)):
            problems.append(
                error(
                    "INVALID_VALUE",
                    f"price {price!r}: a decimal string with two places, tax included "
                    '(e.g. "12.90"), not negative.',
                    f"{where}.price",
                )
            )
        if barcode is not None and (not isinstance(barcode, str) or not BARCODE_RE.match(barcode)):
            problems.append(
                error(
                    "INVALID_VALUE",
                    f"barcode {barcode!r}: 8, 12, 13 or 14 digits (EAN/UPC/GTIN), or null.",
                    f"{where}.barcode",
                )
            )
        if tax_code is not None and tax_code not in self.fleet.tax_rates:
            problems.append(
                error(
                    "INVALID_VALUE",
                    f"tax_code {tax_code!r} is not one of the fleet's: "
                    f"{', '.join(sorted(self.fleet.tax_rates))}.",
                    f"{where}.tax_code",
                )
            )
        return problems

    def _clashes(self, store, item, where, seen_skus, seen_barcodes):
        """A SKU twice in the batch, a barcode of another product: the errors."""
        sku, barcode = item["sku"], item.get("barcode")
        problems = []
        if sku in seen_skus:
            problems.append(
                error(
                    "DUPLICATE_ITEM",
                    f"SKU {sku} is already in products[{seen_skus[sku]}].",
                    f"{where}.sku",
                )
            )
        if not barcode:
            return problems
        owner = self._barcode_owner(store, barcode)
        if barcode in seen_barcodes:
            problems.append(
                error(
                    "BARCODE_TAKEN",
                    f"Barcode {barcode} is already in products[{seen_barcodes[barcode]}].",
                    f"{where}.barcode",
                )
            )
        elif owner and owner != sku:
            problems.append(
                error(
                    "BARCODE_TAKEN",
                    f"Barcode {barcode} belongs to SKU {owner} in store {store.code}.",
                    f"{where}.barcode",
                )
            )
        return problems

    def _barcode_owner(self, store, barcode):
        """The SKU the store sells under ``barcode``, or None."""
        for sku in {*self.fleet.catalogue, *store.products}:
            product = self.fleet.product(sku, store.code)
            if product.get("barcode") == barcode:
                return sku
        return None

    # --- availability -----------------------------------------------------------------
    def set_counts(self, body):
        """Set available quantities per store and SKU; the answer, or an :class:`ApiError`."""
        replay = self.replayed(body)
        if replay is not None:
            return replay
        errors = []
        self._unexpected(body, ("idempotency_key", "counts"), errors)
        items = self._items(body, "counts", COUNTS_PER_CALL, errors)
        seen = {}
        for index, item in enumerate(items):
            where = f"counts[{index}]"
            if not isinstance(item, dict):
                errors.append(error("EXPECTED_OBJECT", f"{where} must be an object.", where))
                continue
            problems = self._count_problems(item, where)
            store_code, sku = item.get("store"), item.get("sku")
            if not problems:
                if (store_code, sku) in seen:
                    problems.append(
                        error(
                            "DUPLICATE_ITEM",
                            f"{store_code}/{sku} is already in counts[{seen[store_code, sku]}].",
                            where,
                        )
                    )
                seen.setdefault((store_code, sku), index)
            errors.extend(problems)
        if errors:
            raise ApiError(400, errors)
        now = iso(utcnow())
        answer = []
        for item in items:
            store = self.fleet.stores[item["store"]]
            store.available[item["sku"]] = {"available": item["available"], "updated_at": now}
            answer.append({**item, "updated_at": now})
        return self.remember(body, {"counts": answer})

    def _count_problems(self, item, where):
        problems = []
        self._unexpected(item, COUNT_FIELDS, problems, f"{where}.")
        for name in COUNT_FIELDS:
            if item.get(name) is None:
                problems.append(
                    error("MISSING_REQUIRED_PARAMETER", f"{name} is required.", f"{where}.{name}")
                )
        store_code, sku, available = item.get("store"), item.get("sku"), item.get("available")
        store = self.fleet.stores.get(store_code) if isinstance(store_code, str) else None
        if store_code is not None and store is None:
            problems.append(
                error("NOT_FOUND", f"The fleet has no store {store_code!r}.", f"{where}.store")
            )
        known = store is None or (
            isinstance(sku, str) and (sku in self.fleet.catalogue or sku in store.products)
        )
        if sku is not None and not known:
            problems.append(
                error(
                    "NOT_FOUND",
                    f"Store {store.code} has no product with SKU {sku!r}: send the product first.",
                    f"{where}.sku",
                )
            )
        if available is not None and (
            isinstance(available, bool)
            or not isinstance(available, int)
            or not 0 <= available <= MAX_AVAILABLE
        ):
            problems.append(
                error(
                    "INVALID_VALUE",
                    f"available {available!r}: a whole number from 0 to {MAX_AVAILABLE}.",
                    f"{where}.available",
                )
            )
        return problems
