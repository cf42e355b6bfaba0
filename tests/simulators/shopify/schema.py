"""The resolvers of the Shopify Admin GraphQL API the simulator serves.

Types, fields, arguments and their types are those of the SDL excerpt
``admin_2026_10.graphql`` (API version ``API_VERSION``); what it lacks answers
"Field ... doesn't exist", as an unknown field would. This module gives the
fields that do not simply read their parent's key of the same name a
resolver, ``resolve(parent, args, info)``, reading and changing the
:class:`ShopifyStore` given as the execution context. The type each
declaration names is checked against the SDL when the schema is built.
"""

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import graphql as gql

from .graphql import GraphQLError, build_schema, paginate
from .store import INVENTORY_REASONS, StoreError, legacy_id

API_VERSION = "2026-10"
MAX_INPUT_ARRAY = 250
MAX_QUANTITY = 1_000_000_000

# --- search syntax (the ``query:`` argument) -----------------------------------------

SEARCH_TERM = re.compile(
    r"""(?P<neg>-)?(?:(?P<field>[a-z_]+):(?P<op><=|>=|<|>|=)?)?"""
    r"""(?P<value>'[^']*'|"[^"]*"|[^\s()]+)"""
)


def _moment(text):
    """A date or datetime of the search syntax, as the stored ISO form (UTC, Z)."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        return f"{text}T00:00:00Z"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_search(query):
    """Terms of a search string: (negated, field or None, operator, value)."""
    terms = []
    for match in SEARCH_TERM.finditer(query or ""):
        value = match["value"].strip("'\"")
        if match["field"] is None and value.upper() in ("AND", "OR", "NOT"):
            continue
        terms.append((bool(match["neg"]), match["field"], match["op"] or "=", value))
    return terms


def _compare(actual, op, wanted):
    if actual is None:
        return False
    if isinstance(actual, list):
        return any(_compare(a, op, wanted) for a in actual)
    if isinstance(actual, int | float | Decimal):
        try:
            wanted = type(actual)(wanted)
        except (ValueError, ArithmeticError):
            return False
    elif isinstance(actual, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", actual):
        wanted = _moment(wanted)
    else:
        actual, wanted = str(actual).lower(), str(wanted).lower()
        if op == "=" and wanted.endswith("*"):
            return actual.startswith(wanted[:-1])
    return {
        "=": actual == wanted,
        "<": actual < wanted,
        "<=": actual <= wanted,
        ">": actual > wanted,
        ">=": actual >= wanted,
    }[op]


def search(records, query, getters, default="title"):
    """Records matching a Shopify search string; unknown fields are ignored, as Shopify does."""
    terms = parse_search(query)
    result = []
    for record in records:
        keep = True
        for negated, field_name, op, value in terms:
            getter = getters.get(field_name or default)
            if getter is None:
                continue
            hit = _compare(getter(record), op, value)
            if field_name is None and not hit:
                hit = value.lower() in str(getter(record) or "").lower()
            if hit == negated:
                keep = False
                break
        if keep:
            result.append(record)
    return result


def _by_id(record):
    return legacy_id(record["id"])


def _payout_number(record):
    """The numeric id of a balance transaction's payout (None while pending)."""
    return legacy_id(record["_payout"]) if record["_payout"] else None


def _base_getters():
    return {
        "id": _by_id,
        "updated_at": lambda r: r.get("updatedAt"),
        "created_at": lambda r: r.get("createdAt"),
    }


# --- resolver helpers ----------------------------------------------------------------


def ref(table, key):
    """Resolve to the record of ``table`` whose id the parent holds under ``key``."""

    def resolve(parent, args, info):
        target = parent.get(key)
        return getattr(info.context, table).get(target) if target else None

    return resolve


def refs(table, key):
    def resolve(parent, args, info):
        records = getattr(info.context, table)
        return [records[i] for i in parent.get(key, [])]

    return resolve


def page_of(table, key, sort="id"):
    """A connection over the records the parent lists under ``key``."""

    def resolve(parent, args, info):
        records = getattr(info.context, table) if table else None
        items = [records[i] for i in parent[key]] if records is not None else parent[key]
        return paginate(items, args, _sort_key(sort))

    return resolve


def _sort_key(sort):
    if sort == "id":
        return lambda r: (legacy_id(r["id"]),)
    return lambda r: (r.get(sort) or "", legacy_id(r["id"]))


def root_connection(table, getters, sort_keys, default_search="title"):
    """A root connection (``orders``, ``products``...) with query, sortKey and reverse."""

    def resolve(parent, args, info):
        records = list(getattr(info.context, table).values())
        if args.get("query"):
            records = search(records, args["query"], getters, default_search)
        # The SDL has already refused a sort key Shopify does not know; RELEVANCE
        # without a search ranks nothing, so it is the id order.
        sort_key = args.get("sortKey") or "ID"
        known = {"RELEVANCE": "id", **sort_keys}
        if sort_key not in known:
            raise GraphQLError(
                f"The simulator does not sort {info.node.name} by {sort_key}; it sorts by "
                f"{', '.join(sorted(known))}.",
                code="BAD_REQUEST",
            )
        return paginate(records, args, _sort_key(known[sort_key]))

    return resolve


def by_id(table, kind, argument="id"):
    def resolve(parent, args, info):
        try:
            return info.context.find(table, args[argument], kind)
        except StoreError:
            return None

    return resolve


def bag(key, order_key="_order"):
    """A MoneyBag of the amount the parent holds under ``key``."""

    def resolve(parent, args, info):
        store = info.context
        order = (
            parent
            if parent.get("__typename") == "Order"
            else store.orders.get(parent.get(order_key))
        )
        amount = key(parent, store) if callable(key) else parent[key]
        return store.money_bag(amount, order)

    return resolve


def money_v2(key, currency="EUR"):
    def resolve(parent, args, info):
        amount = key(parent) if callable(key) else parent.get(key)
        return None if amount is None else {"amount": amount, "currencyCode": currency}

    return resolve


def user_error(field_path, message, code=None):
    error = {"field": field_path, "message": message}
    if code is not None:
        error["code"] = code
    return error


def _line(store, order_id, line_id):
    order = store.orders[order_id]
    return next(line for line in order["_line_items"] if line["id"] == line_id)


def _line_of(parent, args, info):
    store = info.context
    order_id = store.line_index.get(parent["_line_item"])
    return _line(store, order_id, parent["_line_item"]) if order_id else None


def _order_of_line(store, line):
    """The order of a line item or shipping line."""
    order_id = store.line_index.get(line["id"])
    return store.orders.get(order_id) if order_id else None


def _line_bag(amount_of):
    def resolve(parent, args, info):
        store = info.context
        order = _order_of_line(store, parent)
        return store.money_bag(amount_of(parent), order)

    return resolve


def _tax_lines(amount_of):
    def resolve(parent, args, info):
        store = info.context
        order = parent if parent["__typename"] == "Order" else _order_of_line(store, parent)
        amount = amount_of(parent)
        return [
            {
                "__typename": "TaxLine",
                "title": order["_tax_title"],
                "rate": float(order["_tax_rate"]),
                "ratePercentage": float(order["_tax_rate"] * 100),
                "channelLiable": False,
                "priceSet": store.money_bag(amount, order),
            }
        ]

    return resolve


def _discount_applications(order):
    """The order's discount applications, in the order its discounts were given."""
    discounts = order.get("_discounts")
    if discounts is None:
        discounts = [order["_discount"]] if order.get("_discount") else []
    return [_application(order, index, d) for index, d in enumerate(discounts)]


def _application(order, index, discount):
    if discount["kind"] == "percentage":
        value = {"__typename": "PricingPercentageValue", "percentage": float(discount["value"])}
    else:
        value = {"__typename": "MoneyV2", "amount": discount["value"], "currencyCode": "EUR"}
    target = discount.get("target", "order")
    application = {
        "id": f"{order['id']}/DiscountApplication/{index}",
        "index": index,
        # A line's own discount applies to each unit of that line; an order
        # or shipping discount is spread across what it targets.
        "allocationMethod": "EACH" if target == "line" else "ACROSS",
        "targetSelection": "EXPLICIT" if target == "line" else "ALL",
        "targetType": "SHIPPING_LINE" if target == "shipping" else "LINE_ITEM",
        "value": value,
    }
    if discount.get("code"):
        return {**application, "__typename": "DiscountCodeApplication", "code": discount["code"]}
    return {
        **application,
        "__typename": "ManualDiscountApplication",
        "title": discount.get("title") or "Discount",
    }


def _allocations(allocations_of):
    """``discountAllocations`` of a line item or shipping line: (discount index, amount)
    pairs the store allocated, each with its discount application."""

    def resolve(parent, args, info):
        order = _order_of_line(info.context, parent)
        applications = _discount_applications(order)
        pairs = allocations_of(parent)
        if pairs is None:  # a line priced before allocations were recorded
            discount = parent["_priced"]["discount"]
            pairs = [(0, discount)] if discount and applications else []
        return [
            {"_amount": amount, "_order": order, "_application": applications[index]}
            for index, amount in pairs
        ]

    return resolve


def _quantities(parent, args, info):
    names = args.get("names") or []
    return [
        {
            "__typename": "InventoryQuantity",
            "id": f"{parent['id']}&name={name}",
            "name": name,
            "quantity": parent["quantities"].get(name, 0),
            "updatedAt": parent["updatedAt"],
        }
        for name in names
        if name in parent["quantities"]
    ]


def _levels_of_item(parent, args, info):
    store = info.context
    levels = store.item_levels.get(parent["id"], [])
    return paginate(levels, args, lambda lv: (legacy_id(lv["_location"]),))


def _levels_at_location(parent, args, info):
    store = info.context
    levels = [lv for (_item, loc), lv in store.levels.items() if loc == parent["id"]]
    return paginate(levels, args, lambda lv: (legacy_id(lv["_item"]),))


def _level_of_item(parent, args, info):
    return info.context.levels.get((parent["id"], args["locationId"]))


def _available_of_variant(parent, args, info):
    return info.context.available(parent["_inventory_item"])


def _total_inventory(parent, args, info):
    store = info.context
    return sum(store.available(store.variants[v]["_inventory_item"]) for v in parent["_variants"])


def _product_by_identifier(parent, args, info):
    """``productByIdentifier(identifier: {id | handle})``: the product, or null."""
    store = info.context
    identifier = args.get("identifier") or {}
    if identifier.get("id"):
        return store.products.get(identifier["id"])
    handle = identifier.get("handle")
    return next((p for p in store.products.values() if handle and p["handle"] == handle), None)


def _product_options(parent, args, info):
    return [
        {
            "__typename": "ProductOption",
            "id": f"{parent['id']}/Option/{i + 1}",
            "name": name,
            "position": i + 1,
            "values": values,
            "optionValues": [{"__typename": "ProductOptionValue", "name": v} for v in values],
        }
        for i, (name, values) in enumerate(parent["_options"].items())
    ]


def _order_fulfillments(parent, args, info):
    """``Order.fulfillments``: a plain list (no cursor), narrowed by ``query`` on
    ``created_at`` / ``updated_at`` (API 2025-07) and cut to ``first``."""
    records = refs("fulfillments", "_fulfillments")(parent, args, info)
    if args.get("query"):
        records = search(records, args["query"], _base_getters(), default=None)
    return records[: args.get("first") or None]


def _customer_orders(parent, args, info):
    return [o for o in info.context.orders.values() if o["_customer"] == parent["id"]]


def _changes(parent, args, info):
    names = args.get("quantityNames")
    return [c for c in parent["_changes"] if not names or c["name"] in names]


# --- mutations -----------------------------------------------------------------------


def _input_array(values, path):
    if values is not None and len(values) > MAX_INPUT_ARRAY:
        raise GraphQLError(
            f"The input array size of {len(values)} is greater than the maximum allowed of "
            f"{MAX_INPUT_ARRAY}.",
            path=path,
            code="MAX_INPUT_SIZE_EXCEEDED",
        )


def idempotent(result_keys):
    """Wrap a mutation that Shopify runs once per ``@idempotent(key:)`` (required from 2026-04).

    The same key with the same arguments answers the first result without
    running again; with other arguments it is an IDEMPOTENCY_KEY_PARAMETER_MISMATCH;
    after a failed attempt, IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED.
    """

    def wrap(mutation):
        def resolve(parent, args, info):
            store = info.context
            key = (info.directives.get("idempotent") or {}).get("key")
            if not key:
                if store.require_idempotency:
                    raise GraphQLError(
                        f"The @idempotent directive is required for {info.node.name} "
                        f"from API version 2026-04.",
                        code="BAD_REQUEST",
                    )
                return mutation(parent, args, info)
            fingerprint = json.dumps(args, sort_keys=True, default=str)
            remembered = store.idempotency.get((info.node.name, key))
            if remembered is not None:
                previous_fingerprint, previous = remembered
                if previous_fingerprint != fingerprint:
                    return _failed(
                        result_keys,
                        "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                        "The same idempotency key cannot be used with different "
                        "operation parameters.",
                    )
                if previous["userErrors"]:
                    return _failed(
                        result_keys,
                        "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED",
                        "A previous request with this idempotency key failed. Retry "
                        "with a new idempotency key.",
                    )
                return previous
            result = mutation(parent, args, info)
            store.idempotency[(info.node.name, key)] = (fingerprint, result)
            return result

        return resolve

    return wrap


def _failed(result_keys, code, message):
    return {**dict.fromkeys(result_keys), "userErrors": [user_error(None, message, code)]}


@idempotent(["inventoryAdjustmentGroup"])
def inventory_set_quantities(parent, args, info):
    store = info.context
    data = args["input"]
    quantities = data.get("quantities") or []
    _input_array(quantities, [info.node.key, "input", "quantities"])
    errors = _input_errors(
        data,
        ("available", "on_hand"),
        "INVALID_NAME",
        "The quantity name must be either 'available' or 'on_hand'.",
    )
    name = data.get("name") if data.get("name") in ("available", "on_hand") else "available"
    targets, seen = [], set()
    for index, quantity in enumerate(quantities):
        at = ["input", "quantities", str(index)]
        level, problem = _target_level(store, quantity, at, seen)
        if problem:
            errors.append(problem)
            continue
        current = level["quantities"][name]
        value = quantity.get("quantity")
        problems = [
            _change_from_error(
                quantity,
                at,
                current,
                "The changeFromQuantity value does not match persisted value.",
            ),
            _quantity_error(value, [*at, "quantity"]),
        ]
        errors += [problem for problem in problems if problem]
        if not any(problems):
            targets.append((level, name, value - current))
    return _apply(store, data, targets, errors)


@idempotent(["inventoryAdjustmentGroup"])
def inventory_adjust_quantities(parent, args, info):
    store = info.context
    data = args["input"]
    changes_in = data.get("changes") or []
    _input_array(changes_in, [info.node.key, "input", "changes"])
    names = ("available", "damaged", "incoming", "quality_control", "reserved", "safety_stock")
    errors = _input_errors(data, names, "INVALID_QUANTITY_NAME", "The quantity name is not valid.")
    name = data.get("name")
    targets, seen = [], set()
    for index, change in enumerate(changes_in):
        at = ["input", "changes", str(index)]
        level, problem = _target_level(store, change, at, seen)
        if problem:
            errors.append(problem)
            continue
        problem = _change_from_error(
            change,
            at,
            level["quantities"].get(name),
            "The quantity has changed since you last retrieved it.",
        )
        if problem:
            errors.append(problem)
        targets.append((level, name, int(change.get("delta") or 0)))
    return _apply(store, data, targets, errors)


def _input_errors(data, names, name_code, name_message):
    """User errors of the name, reason and reference document of an inventory input."""
    errors = []
    if data.get("name") not in names:
        errors.append(user_error(["input", "name"], name_message, name_code))
    if data.get("reason") not in INVENTORY_REASONS:
        errors.append(
            user_error(["input", "reason"], "The specified reason is invalid.", "INVALID_REASON")
        )
    reference = data.get("referenceDocumentUri")
    if reference is not None and not re.match(r"^[a-zA-Z][\w+.-]*:.+", reference):
        errors.append(
            user_error(
                ["input", "referenceDocumentUri"],
                "The specified reference document is invalid.",
                "INVALID_REFERENCE_DOCUMENT",
            )
        )
    return errors


def _change_from_error(entry, at, current, stale_message):
    """Compare-and-swap, as from 2026-04: changeFromQuantity present, null or current."""
    if "changeFromQuantity" not in entry:
        return user_error(
            [*at, "changeFromQuantity"],
            "changeFromQuantity is required from API version 2026-04: pass the quantity "
            "you expect, or null to skip the check.",
            "COMPARE_QUANTITY_REQUIRED",
        )
    expected = entry["changeFromQuantity"]
    if expected is not None and expected != current:
        return user_error([*at, "changeFromQuantity"], stale_message, "CHANGE_FROM_QUANTITY_STALE")
    return None


def _quantity_error(value, at):
    if not isinstance(value, int) or value < 0:
        return user_error(at, "The quantity can't be negative.", "INVALID_QUANTITY_NEGATIVE")
    if value > MAX_QUANTITY:
        return user_error(
            at,
            "The total quantity can't be higher than 1,000,000,000.",
            "INVALID_QUANTITY_TOO_HIGH",
        )
    return None


def _apply(store, data, targets, errors):
    """All the changes or, when anything is wrong, none: (level, name, delta) targets."""
    if errors:
        return {"inventoryAdjustmentGroup": None, "userErrors": errors}
    changes = []
    for level, name, delta in targets:
        store.change_quantity(level, name, delta, changes)
    store.emit_levels(changes)
    group = store.adjustment_group(data["reason"], data.get("referenceDocumentUri"), changes)
    return {"inventoryAdjustmentGroup": group, "userErrors": []}


def _target_level(store, quantity, at, seen):
    """The level a quantity input names, or the user error that says why not."""
    item = store.inventory_items.get(quantity.get("inventoryItemId"))
    if item is None:
        return None, user_error(
            [*at, "inventoryItemId"],
            "The specified inventory item could not be found.",
            "INVALID_INVENTORY_ITEM",
        )
    location = store.locations.get(quantity.get("locationId"))
    if location is None:
        return None, user_error(
            [*at, "locationId"], "The specified location could not be found.", "INVALID_LOCATION"
        )
    key = (item["id"], location["id"])
    if key in seen:
        return None, user_error(
            at,
            "The combination of inventoryItemId and locationId must be unique.",
            "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
        )
    seen.add(key)
    level = store.levels.get(key)
    if level is None:
        return None, user_error(
            [*at, "locationId"],
            "The specified inventory item is not stocked at the location.",
            "ITEM_NOT_STOCKED_AT_LOCATION",
        )
    return level, None


def fulfillment_create(parent, args, info):
    store = info.context
    data = args.get("fulfillment") or {}
    groups = data.get("lineItemsByFulfillmentOrder") or []
    _input_array(groups, [info.node.key, "fulfillment", "lineItemsByFulfillmentOrder"])
    if len(groups) != 1:
        return {
            "fulfillment": None,
            "userErrors": [
                user_error(
                    ["fulfillment", "lineItemsByFulfillmentOrder"],
                    "The simulator fulfills exactly one fulfillment order per call.",
                )
            ],
        }
    group = groups[0]
    lines = group.get("fulfillmentOrderLineItems")
    wanted = {line["id"]: int(line["quantity"]) for line in lines} if lines else None
    try:
        fulfillment = store.create_fulfillment(
            group.get("fulfillmentOrderId"),
            wanted,
            data.get("trackingInfo"),
            bool(data.get("notifyCustomer")),
        )
    except StoreError as exc:
        return {"fulfillment": None, "userErrors": [user_error(exc.field, str(exc))]}
    return {"fulfillment": fulfillment, "userErrors": []}


def product_create(parent, args, info):
    store = info.context
    data = args.get("product") or args.get("input") or {}
    if not (data.get("title") or "").strip():
        return {"product": None, "userErrors": [user_error(["title"], "Title can't be blank")]}
    options = {
        option["name"]: [value["name"] for value in option.get("values") or []]
        for option in data.get("productOptions") or []
    }
    handle = data.get("handle") or re.sub(r"[^a-z0-9]+", "-", data["title"].lower()).strip("-")
    taken = {p["handle"] for p in store.products.values()}
    base, suffix = handle, 1
    while handle in taken:
        handle, suffix = f"{base}-{suffix}", suffix + 1
    product = store.add_product(
        {
            "title": data["title"],
            "handle": handle,
            "vendor": data.get("vendor") or store.shop_name,
            "product_type": data.get("productType") or "",
            "status": data.get("status") or "ACTIVE",
            "tags": data.get("tags") or [],
            "description_html": data.get("descriptionHtml") or "",
            "options": options,
            "variants": [
                {"options": {k: v[0] for k, v in options.items() if v}, "price": Decimal(0)}
            ],
        }
    )
    _stock_everywhere(store, product)
    store.emit("products/create", product)
    return {"product": product, "userErrors": []}


def _stock_everywhere(store, product):
    for variant_id in product["_variants"]:
        for location_id in store.locations:
            store.level(store.variants[variant_id]["_inventory_item"], location_id)


def product_update(parent, args, info):
    store = info.context
    data = args.get("product") or args.get("input") or {}
    try:
        product = store.update_product(data.get("id"), data)
    except StoreError:
        return {"product": None, "userErrors": [user_error(["id"], "Product does not exist")]}
    return {"product": product, "userErrors": []}


def _variants_target(args, info):
    """The product and variants input of a bulk variants mutation, or the refusal payload."""
    variants_in = args.get("variants") or []
    _input_array(variants_in, [info.node.key, "variants"])
    product = info.context.products.get(args.get("productId"))
    refusal = None
    if product is None:
        refusal = {
            "product": None,
            "productVariants": None,
            "userErrors": [
                user_error(["productId"], "Product does not exist", "PRODUCT_DOES_NOT_EXIST")
            ],
        }
    return product, variants_in, refusal


def _price_error(data, index):
    """Shopify refuses a negative variant price."""
    if "price" in data and data["price"] is not None and Decimal(str(data["price"])) < 0:
        return user_error(
            ["variants", str(index), "price"],
            "Variant price must be greater than or equal to zero.",
            "GREATER_THAN_OR_EQUAL_TO",
        )
    return None


def _standalone_to_remove(store, product, strategy):
    """The product's standalone variant the strategy deletes, if any.

    A product with a single variant has a standalone variant: "Default Title"
    when the product has no options, or the one ``productCreate`` made from
    the first value of each option. DEFAULT deletes only the former,
    REMOVE_STANDALONE_VARIANT both, PRESERVE_STANDALONE_VARIANT neither.
    """
    if len(product["_variants"]) != 1:
        return []
    variant_id = product["_variants"][0]
    is_default = store.variants[variant_id]["title"] == "Default Title"
    if strategy == "REMOVE_STANDALONE_VARIANT" or (strategy in (None, "DEFAULT") and is_default):
        return [variant_id]
    return []


def variants_bulk_create(parent, args, info):
    store = info.context
    product, variants_in, refusal = _variants_target(args, info)
    if refusal:
        return refusal
    standalone = _standalone_to_remove(store, product, args.get("strategy"))
    existing = {
        tuple(sorted((o["name"], o["value"]) for o in store.variants[v]["selectedOptions"]))
        for v in product["_variants"]
        if v not in standalone
    }
    errors, specs = [], []
    for index, data in enumerate(variants_in):
        options = {o["optionName"]: o["name"] for o in data.get("optionValues") or []}
        signature = tuple(sorted(options.items()))
        price_error = _price_error(data, index)
        if price_error:
            errors.append(price_error)
            continue
        if signature in existing:
            errors.append(
                user_error(
                    ["variants", str(index)],
                    f"The variant '{' / '.join(options.values())}' already exists.",
                    "VARIANT_ALREADY_EXISTS",
                )
            )
            continue
        existing.add(signature)
        item = data.get("inventoryItem") or {}
        specs.append(
            (
                options,
                data,
                {
                    "options": options,
                    "sku": item.get("sku"),
                    "barcode": data.get("barcode"),
                    "price": Decimal(str(data.get("price") or 0)),
                    "compare_at_price": data.get("compareAtPrice"),
                    "taxable": data.get("taxable", True),
                    "tracked": item.get("tracked", True),
                    "requires_shipping": item.get("requiresShipping", True),
                    "cost": item.get("cost"),
                    "weight": (item.get("measurement") or {}).get("weight"),
                },
            )
        )
    if errors:
        return {"product": None, "productVariants": None, "userErrors": errors}
    created = []
    for variant_id in standalone:
        store.remove_variant(variant_id)
    for options, data, spec in specs:
        for name, value in options.items():
            values = product["_options"].setdefault(name, [])
            if value not in values:
                values.append(value)
        variant = store.add_variant(product, spec)
        created.append(variant)
        for stock in data.get("inventoryQuantities") or []:
            if stock.get("locationId") in store.locations:
                store.set_available(
                    variant["_inventory_item"],
                    stock["locationId"],
                    int(stock.get("availableQuantity") or 0),
                    emit=False,
                )
    _stock_everywhere(store, product)
    store.touch_product(product)
    return {"product": product, "productVariants": created, "userErrors": []}


def variants_bulk_update(parent, args, info):
    store = info.context
    product, variants_in, refusal = _variants_target(args, info)
    if refusal:
        return refusal
    errors, updates = [], []
    for index, data in enumerate(variants_in):
        variant_id = data.get("id")
        price_error = _price_error(data, index)
        if price_error:
            errors.append(price_error)
            continue
        if variant_id not in product["_variants"]:
            errors.append(
                user_error(
                    ["variants", str(index), "id"],
                    "Product variant does not exist",
                    "PRODUCT_VARIANT_DOES_NOT_EXIST",
                )
            )
            continue
        updates.append((store.variants[variant_id], data))
    if errors and not args.get("allowPartialUpdates"):
        return {"product": None, "productVariants": None, "userErrors": errors}
    for variant, data in updates:
        store.update_variant(variant, data)
    store.touch_product(product)
    return {"product": product, "productVariants": [v for v, _d in updates], "userErrors": errors}


def _topic(enum_value):
    head, _sep, tail = str(enum_value).lower().rpartition("_")
    return f"{head}/{tail}"


def webhook_subscription_create(parent, args, info):
    store = info.context
    data = args.get("webhookSubscription") or {}
    uri = data.get("uri") or data.get("callbackUrl")
    if not uri:
        return {
            "webhookSubscription": None,
            "userErrors": [user_error(["webhookSubscription", "uri"], "Address can't be blank")],
        }
    topic = _topic(args.get("topic"))
    subscription_id, number = store.new_id("WebhookSubscription")
    subscription = {
        "__typename": "WebhookSubscription",
        "id": subscription_id,
        "legacyResourceId": str(number),
        "topic": args.get("topic"),
        "uri": uri,
        "format": data.get("format") or "JSON",
        "createdAt": store.now(),
        "updatedAt": store.now(),
        "_topic": topic,
    }
    store.webhook_subscriptions[subscription_id] = subscription
    return {"webhookSubscription": subscription, "userErrors": []}


def webhook_subscription_delete(parent, args, info):
    store = info.context
    if store.webhook_subscriptions.pop(args.get("id"), None) is None:
        return {
            "deletedWebhookSubscriptionId": None,
            "userErrors": [user_error(["id"], "Webhook subscription does not exist")],
        }
    return {"deletedWebhookSubscriptionId": args["id"], "userErrors": []}


# --- types -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A field's declaration: the named type the SDL gives it (checked when the
    schema is built; None for a scalar or enum) and its resolver, if any."""

    type: str | None = None
    resolve: object = None


def scalar(resolve=None):
    return Field(None, resolve)


def obj(type_name, resolve=None):
    """An object, a list of objects or, for a connection, the type of its nodes."""
    return Field(type_name, resolve)


objects = connection = obj


def _t(type_name, /, **fields):
    return type_name, fields


def _scalars(*names):
    return {name: scalar() for name in names}


MONEY = _t("MoneyV2", **_scalars("amount", "currencyCode"))
MONEY_BAG = _t("MoneyBag", shopMoney=obj("MoneyV2"), presentmentMoney=obj("MoneyV2"))
ORDER_GETTERS = {
    **_base_getters(),
    "processed_at": lambda r: r["processedAt"],
    "name": lambda r: r["name"],
    "email": lambda r: r["email"],
    "financial_status": lambda r: r["displayFinancialStatus"],
    "fulfillment_status": lambda r: {
        "UNFULFILLED": "unshipped",
        "FULFILLED": "shipped",
        "PARTIALLY_FULFILLED": "partial",
    }[r["displayFulfillmentStatus"]],
    "status": lambda r: "cancelled" if r["cancelledAt"] else ("closed" if r["closed"] else "open"),
    "tag": lambda r: r["tags"],
    "sku": lambda r: [line["sku"] for line in r["_line_items"]],
}
PRODUCT_GETTERS = {
    **_base_getters(),
    "title": lambda r: r["title"],
    "handle": lambda r: r["handle"],
    "vendor": lambda r: r["vendor"],
    "product_type": lambda r: r["productType"],
    "status": lambda r: r["status"],
    "tag": lambda r: r["tags"],
}
TRIMMED = {"ID": "id", "UPDATED_AT": "updatedAt", "CREATED_AT": "createdAt"}

TYPES = [
    MONEY,
    MONEY_BAG,
    _t(
        "QueryRoot",
        shop=obj("Shop", lambda p, a, i: i.context.shop),
        locations=connection(
            "Location",
            root_connection(
                "locations",
                {
                    **_base_getters(),
                    "name": lambda r: r["name"],
                    "active": lambda r: str(r["isActive"]).lower(),
                },
                {**TRIMMED, "NAME": "name"},
                "name",
            ),
        ),
        location=obj("Location", by_id("locations", "Location")),
        products=connection(
            "Product", root_connection("products", PRODUCT_GETTERS, {**TRIMMED, "TITLE": "title"})
        ),
        product=obj("Product", by_id("products", "Product")),
        productByIdentifier=obj("Product", _product_by_identifier),
        productVariants=connection(
            "ProductVariant",
            root_connection(
                "variants",
                {
                    **_base_getters(),
                    "sku": lambda r: r["sku"],
                    "barcode": lambda r: r["barcode"],
                    "title": lambda r: r["title"],
                    "product_id": lambda r: legacy_id(r["_product"]),
                },
                {**TRIMMED, "SKU": "sku"},
                "sku",
            ),
        ),
        productVariant=obj("ProductVariant", by_id("variants", "ProductVariant")),
        inventoryItems=connection(
            "InventoryItem",
            root_connection(
                "inventory_items", {**_base_getters(), "sku": lambda r: r["sku"]}, TRIMMED, "sku"
            ),
        ),
        inventoryItem=obj("InventoryItem", by_id("inventory_items", "InventoryItem")),
        orders=connection(
            "Order",
            root_connection(
                "orders",
                ORDER_GETTERS,
                {**TRIMMED, "PROCESSED_AT": "processedAt", "ORDER_NUMBER": "number"},
                "name",
            ),
        ),
        order=obj("Order", by_id("orders", "Order")),
        customers=connection(
            "Customer",
            root_connection(
                "customers",
                {
                    **_base_getters(),
                    "email": lambda r: r["email"],
                    "first_name": lambda r: r["firstName"],
                    "last_name": lambda r: r["lastName"],
                },
                TRIMMED,
                "email",
            ),
        ),
        customer=obj("Customer", by_id("customers", "Customer")),
        fulfillmentOrder=obj("FulfillmentOrder", by_id("fulfillment_orders", "FulfillmentOrder")),
        fulfillment=obj("Fulfillment", by_id("fulfillments", "Fulfillment")),
        refund=obj("Refund", by_id("refunds", "Refund")),
        shopifyPaymentsAccount=obj(
            "ShopifyPaymentsAccount",
            lambda p, a, i: {"id": "gid://shopify/ShopifyPaymentsAccount/1"},
        ),
        webhookSubscriptions=connection(
            "WebhookSubscription",
            lambda p, a, i: paginate(
                [
                    s
                    for s in i.context.webhook_subscriptions.values()
                    if not a.get("topics") or s["topic"] in a["topics"]
                ],
                a,
                lambda s: (legacy_id(s["id"]),),
            ),
        ),
        node=obj("Node", lambda p, a, i: _node(i.context, a["id"])),
        nodes=objects(
            "Node", lambda p, a, i: [_node(i.context, x) for x in _checked_ids(a["ids"], i)]
        ),
    ),
    _t(
        "Shop",
        **_scalars(
            "id",
            "name",
            "email",
            "myshopifyDomain",
            "currencyCode",
            "enabledPresentmentCurrencies",
            "ianaTimezone",
            "weightUnit",
            "taxesIncluded",
            "createdAt",
            "updatedAt",
        ),
        plan=obj("ShopPlan"),
    ),
    _t("ShopPlan", **_scalars("publicDisplayName", "partnerDevelopment", "shopifyPlus")),
    _t(
        "Location",
        **_scalars(
            "id",
            "legacyResourceId",
            "name",
            "isActive",
            "fulfillsOnlineOrders",
            "shipsInventory",
            "createdAt",
            "updatedAt",
        ),
        address=obj("LocationAddress"),
        inventoryLevels=connection("InventoryLevel", _levels_at_location),
    ),
    _t("LocationAddress", **_scalars("address1", "city", "zip", "countryCode", "provinceCode")),
    _t(
        "Product",
        **_scalars(
            "id",
            "legacyResourceId",
            "title",
            "handle",
            "vendor",
            "productType",
            "status",
            "tags",
            "descriptionHtml",
            "createdAt",
            "updatedAt",
            "publishedAt",
        ),
        totalInventory=scalar(_total_inventory),
        options=objects("ProductOption", _product_options),
        variants=connection("ProductVariant", page_of("variants", "_variants", "position")),
        variantsCount=obj(
            "Count", lambda p, a, i: {"count": len(p["_variants"]), "precision": "EXACT"}
        ),
    ),
    _t("Count", **_scalars("count", "precision")),
    _t(
        "ProductOption",
        **_scalars("id", "name", "position", "values"),
        optionValues=objects("ProductOptionValue"),
    ),
    _t("ProductOptionValue", **_scalars("name")),
    _t(
        "ProductVariant",
        **_scalars(
            "id",
            "legacyResourceId",
            "title",
            "displayName",
            "sku",
            "barcode",
            "price",
            "compareAtPrice",
            "taxable",
            "inventoryPolicy",
            "position",
            "createdAt",
            "updatedAt",
        ),
        inventoryQuantity=scalar(_available_of_variant),
        selectedOptions=objects("SelectedOption"),
        product=obj("Product", ref("products", "_product")),
        inventoryItem=obj("InventoryItem", ref("inventory_items", "_inventory_item")),
    ),
    _t("SelectedOption", **_scalars("name", "value")),
    _t(
        "InventoryItem",
        **_scalars(
            "id", "legacyResourceId", "sku", "tracked", "requiresShipping", "createdAt", "updatedAt"
        ),
        unitCost=obj("MoneyV2"),
        measurement=obj("InventoryItemMeasurement"),
        variant=obj("ProductVariant", ref("variants", "_variant")),
        inventoryLevels=connection("InventoryLevel", _levels_of_item),
        inventoryLevel=obj("InventoryLevel", _level_of_item),
    ),
    _t("InventoryItemMeasurement", **_scalars("id"), weight=obj("Weight")),
    _t("Weight", **_scalars("unit", "value")),
    _t(
        "InventoryLevel",
        **_scalars("id", "createdAt", "updatedAt"),
        location=obj("Location", ref("locations", "_location")),
        item=obj("InventoryItem", ref("inventory_items", "_item")),
        quantities=objects("InventoryQuantity", _quantities),
    ),
    _t("InventoryQuantity", **_scalars("id", "name", "quantity", "updatedAt")),
    _t(
        "InventoryAdjustmentGroup",
        **_scalars("id", "createdAt", "reason", "referenceDocumentUri"),
        changes=objects("InventoryChange", _changes),
    ),
    _t(
        "InventoryChange",
        **_scalars("name", "delta", "quantityAfterChange", "ledgerDocumentUri"),
        item=obj("InventoryItem", ref("inventory_items", "_item")),
        location=obj("Location", ref("locations", "_location")),
    ),
    _t(
        "Customer",
        **_scalars(
            "id",
            "legacyResourceId",
            "firstName",
            "lastName",
            "displayName",
            "email",
            "phone",
            "state",
            "verifiedEmail",
            "tags",
            "note",
            "createdAt",
            "updatedAt",
        ),
        numberOfOrders=scalar(lambda p, a, i: str(len(_customer_orders(p, a, i)))),
        amountSpent=obj(
            "MoneyV2",
            lambda p, a, i: {
                "amount": sum(
                    (o["_totals"]["total"] for o in _customer_orders(p, a, i)), Decimal(0)
                ),
                "currencyCode": "EUR",
            },
        ),
        defaultEmailAddress=obj(
            "CustomerEmailAddress",
            lambda p, a, i: {
                "emailAddress": p["email"],
                "marketingState": "SUBSCRIBED" if p["_accepts_marketing"] else "NOT_SUBSCRIBED",
            },
        ),
        defaultPhoneNumber=obj(
            "CustomerPhoneNumber",
            lambda p, a, i: {"phoneNumber": p["phone"]} if p["phone"] else None,
        ),
        defaultAddress=obj("MailingAddress", lambda p, a, i: p["_address"]),
        emailMarketingConsent=obj(
            "CustomerEmailMarketingConsentState",
            lambda p, a, i: {
                "marketingState": "SUBSCRIBED" if p["_accepts_marketing"] else "NOT_SUBSCRIBED",
                "marketingOptInLevel": "SINGLE_OPT_IN",
                "consentUpdatedAt": p["createdAt"],
            },
        ),
    ),
    _t("CustomerEmailAddress", **_scalars("emailAddress", "marketingState")),
    _t("CustomerPhoneNumber", **_scalars("phoneNumber")),
    _t(
        "CustomerEmailMarketingConsentState",
        **_scalars("marketingState", "marketingOptInLevel", "consentUpdatedAt"),
    ),
    _t(
        "MailingAddress",
        **_scalars(
            "firstName",
            "lastName",
            "name",
            "address1",
            "address2",
            "city",
            "zip",
            "provinceCode",
            "countryCodeV2",
            "country",
            "company",
            "phone",
        ),
    ),
    _t(
        "Order",
        **_scalars(
            "id",
            "legacyResourceId",
            "name",
            "email",
            "phone",
            "createdAt",
            "updatedAt",
            "processedAt",
            "cancelledAt",
            "cancelReason",
            "closed",
            "closedAt",
            "test",
            "confirmed",
            "currencyCode",
            "presentmentCurrencyCode",
            "taxesIncluded",
            "displayFinancialStatus",
            "displayFulfillmentStatus",
            "note",
            "tags",
            "sourceName",
            "discountCodes",
        ),
        fullyPaid=scalar(lambda p, a, i: p["displayFinancialStatus"] == "PAID"),
        paymentGatewayNames=scalar(
            lambda p, a, i: sorted({t["gateway"] for t in p["_transactions"]})
        ),
        customer=obj("Customer", ref("customers", "_customer")),
        billingAddress=obj("MailingAddress"),
        shippingAddress=obj("MailingAddress"),
        lineItems=connection("LineItem", page_of(None, "_line_items")),
        shippingLines=connection("ShippingLine", page_of(None, "_shipping_lines")),
        shippingLine=obj("ShippingLine", lambda p, a, i: (p["_shipping_lines"] or [None])[0]),
        taxLines=objects("TaxLine", _tax_lines(lambda p: p["_totals"]["total_tax"])),
        discountApplications=connection(
            "DiscountApplication",
            lambda p, a, i: paginate(_discount_applications(p), a, lambda d: (d["index"],)),
        ),
        subtotalPriceSet=obj("MoneyBag", bag(lambda p, s: p["_totals"]["subtotal"])),
        currentSubtotalPriceSet=obj("MoneyBag", bag(lambda p, s: p["_totals"]["subtotal"])),
        totalPriceSet=obj("MoneyBag", bag(lambda p, s: p["_totals"]["total"])),
        totalTaxSet=obj("MoneyBag", bag(lambda p, s: p["_totals"]["total_tax"])),
        totalDiscountsSet=obj("MoneyBag", bag(lambda p, s: p["_totals"]["total_discounts"])),
        totalShippingPriceSet=obj("MoneyBag", bag(lambda p, s: p["_totals"]["total_shipping"])),
        totalRefundedSet=obj(
            "MoneyBag",
            bag(lambda p, s: sum((s.refunds[r]["_total"] for r in p["_refunds"]), Decimal(0))),
        ),
        currentTotalPriceSet=obj(
            "MoneyBag",
            bag(
                lambda p, s: (
                    p["_totals"]["total"]
                    - sum((s.refunds[r]["_total"] for r in p["_refunds"]), Decimal(0))
                )
            ),
        ),
        transactions=objects("OrderTransaction", lambda p, a, i: p["_transactions"]),
        refunds=objects("Refund", refs("refunds", "_refunds")),
        fulfillments=objects("Fulfillment", _order_fulfillments),
        fulfillmentOrders=connection(
            "FulfillmentOrder", page_of("fulfillment_orders", "_fulfillment_orders")
        ),
    ),
    _t(
        "LineItem",
        **_scalars(
            "id",
            "name",
            "title",
            "variantTitle",
            "sku",
            "vendor",
            "quantity",
            "requiresShipping",
            "taxable",
        ),
        currentQuantity=scalar(lambda p, a, i: p["quantity"] - p["_refunded"]),
        refundableQuantity=scalar(lambda p, a, i: p["quantity"] - p["_refunded"]),
        unfulfilledQuantity=scalar(
            lambda p, a, i: max(p["quantity"] - p["_fulfilled"] - p["_refunded"], 0)
        ),
        variant=obj("ProductVariant", ref("variants", "_variant")),
        product=obj("Product", ref("products", "_product")),
        originalUnitPriceSet=obj("MoneyBag", _line_bag(lambda p: p["_unit_price"])),
        discountedUnitPriceSet=obj(
            "MoneyBag", _line_bag(lambda p: p["_priced"]["net"] / p["quantity"])
        ),
        originalTotalSet=obj("MoneyBag", _line_bag(lambda p: p["_priced"]["gross"])),
        discountedTotalSet=obj("MoneyBag", _line_bag(lambda p: p["_priced"]["net"])),
        totalDiscountSet=obj("MoneyBag", _line_bag(lambda p: p["_priced"]["discount"])),
        taxLines=objects("TaxLine", _tax_lines(lambda p: p["_priced"]["tax"])),
        discountAllocations=objects(
            "DiscountAllocation", _allocations(lambda p: p["_priced"].get("allocations"))
        ),
    ),
    _t(
        "DiscountAllocation",
        allocatedAmountSet=obj(
            "MoneyBag", lambda p, a, i: i.context.money_bag(p["_amount"], p["_order"])
        ),
        discountApplication=obj("DiscountApplication", lambda p, a, i: p["_application"]),
    ),
    *[
        _t(
            name,
            **_scalars("allocationMethod", "targetSelection", "targetType", "index", extra),
            value=obj("PricingValue"),
        )
        for name, extra in (
            ("DiscountCodeApplication", "code"),
            ("ManualDiscountApplication", "title"),
            ("AutomaticDiscountApplication", "title"),
        )
    ],
    _t("PricingPercentageValue", **_scalars("percentage")),
    _t(
        "TaxLine",
        **_scalars("title", "rate", "ratePercentage", "channelLiable"),
        priceSet=obj("MoneyBag"),
    ),
    _t(
        "ShippingLine",
        **_scalars("id", "title", "code", "source"),
        originalPriceSet=obj("MoneyBag", _line_bag(lambda p: p["_price"])),
        discountedPriceSet=obj(
            "MoneyBag", _line_bag(lambda p: p.get("_discounted_price", p["_price"]))
        ),
        taxLines=objects("TaxLine", _tax_lines(lambda p: p["_tax"])),
        discountAllocations=objects(
            "DiscountAllocation", _allocations(lambda p: p.get("_allocations", []))
        ),
    ),
    _t(
        "OrderTransaction",
        **_scalars("id", "kind", "status", "gateway", "test", "createdAt", "processedAt"),
        amountSet=obj("MoneyBag", bag("_amount")),
        parentTransaction=obj(
            "OrderTransaction",
            lambda p, a, i: next(
                (
                    t
                    for t in i.context.orders[p["_order"]]["_transactions"]
                    if t["id"] == p["_parent"]
                ),
                None,
            ),
        ),
        order=obj("Order", ref("orders", "_order")),
    ),
    _t(
        "Refund",
        **_scalars("id", "legacyResourceId", "note", "createdAt", "updatedAt"),
        order=obj("Order", ref("orders", "_order")),
        totalRefundedSet=obj("MoneyBag", bag("_total")),
        refundLineItems=connection(
            "RefundLineItem",
            lambda p, a, i: paginate(
                [{**line, "_order": p["_order"]} for line in p["_lines"]],
                a,
                lambda r: (legacy_id(r["id"]),),
            ),
        ),
        transactions=connection("OrderTransaction", page_of(None, "_transactions")),
        refundShippingLines=connection("RefundShippingLine", page_of(None, "_shipping_lines")),
    ),
    _t(
        "RefundShippingLine",
        **_scalars("id"),
        shippingLine=obj(
            "ShippingLine",
            lambda p, a, i: next(
                s
                for s in i.context.orders[p["_order"]]["_shipping_lines"]
                if s["id"] == p["_shipping_line"]
            ),
        ),
        subtotalAmountSet=obj("MoneyBag", bag("_subtotal")),
        taxAmountSet=obj("MoneyBag", bag("_tax")),
    ),
    _t(
        "RefundLineItem",
        **_scalars("id", "quantity", "restockType", "restocked"),
        lineItem=obj("LineItem", lambda p, a, i: _line(i.context, p["_order"], p["_line_item"])),
        location=obj("Location", ref("locations", "_location")),
        subtotalSet=obj("MoneyBag", bag("_subtotal")),
        totalTaxSet=obj("MoneyBag", bag("_tax")),
    ),
    _t(
        "FulfillmentOrder",
        **_scalars("id", "status", "requestStatus", "createdAt", "updatedAt"),
        order=obj("Order", ref("orders", "_order")),
        assignedLocation=obj(
            "FulfillmentOrderAssignedLocation",
            lambda p, a, i: {
                "name": i.context.locations[p["_location"]]["name"],
                "_location": p["_location"],
            },
        ),
        lineItems=connection("FulfillmentOrderLineItem", page_of(None, "_lines")),
    ),
    _t(
        "FulfillmentOrderAssignedLocation",
        **_scalars("name"),
        location=obj("Location", ref("locations", "_location")),
    ),
    _t(
        "FulfillmentOrderLineItem",
        **_scalars("id", "sku", "totalQuantity", "remainingQuantity"),
        lineItem=obj("LineItem", _line_of),
        variant=obj(
            "ProductVariant",
            lambda p, a, i: i.context.variants.get((_line_of(p, a, i) or {}).get("_variant")),
        ),
    ),
    _t(
        "Fulfillment",
        **_scalars(
            "id", "legacyResourceId", "name", "status", "displayStatus", "createdAt", "updatedAt"
        ),
        order=obj("Order", ref("orders", "_order")),
        location=obj("Location", ref("locations", "_location")),
        trackingInfo=objects(
            "FulfillmentTrackingInfo", lambda p, a, i: p["_tracking"][: a.get("first") or None]
        ),
        fulfillmentLineItems=connection("FulfillmentLineItem", page_of(None, "_lines")),
    ),
    _t("FulfillmentTrackingInfo", **_scalars("company", "number", "url")),
    _t("FulfillmentLineItem", **_scalars("id", "quantity"), lineItem=obj("LineItem", _line_of)),
    _t(
        "ShopifyPaymentsAccount",
        **_scalars("id"),
        balance=objects(
            "MoneyV2",
            lambda p, a, i: [
                {
                    "amount": sum(
                        (
                            b["_net"]
                            for b in i.context.balance_transactions.values()
                            if not b["_payout"]
                        ),
                        Decimal(0),
                    ),
                    "currencyCode": "EUR",
                }
            ],
        ),
        payouts=connection(
            "ShopifyPaymentsPayout",
            root_connection(
                "payouts",
                {
                    **_base_getters(),
                    "status": lambda r: r["status"],
                    "issued_at": lambda r: r["issuedAt"],
                },
                {"ID": "id", "ISSUED_AT": "issuedAt"},
                "status",
            ),
        ),
        balanceTransactions=connection(
            "ShopifyPaymentsBalanceTransaction",
            root_connection(
                "balance_transactions",
                {
                    **_base_getters(),
                    "type": lambda r: r["type"],
                    "processed_at": lambda r: r["transactionDate"],
                    "transaction_date": lambda r: r["transactionDate"],
                    # Shopify's filter by payout; payout_id is kept for older callers.
                    "payments_transfer_id": _payout_number,
                    "payout_id": _payout_number,
                    "payout_status": lambda r: "paid" if r["_payout"] else "pending",
                },
                {"ID": "id", "PROCESSED_AT": "transactionDate"},
                "type",
            ),
        ),
    ),
    _t(
        "ShopifyPaymentsPayout",
        **_scalars("id", "legacyResourceId", "issuedAt", "status", "transactionType"),
        net=obj("MoneyV2", money_v2("_net")),
        summary=obj("ShopifyPaymentsPayoutSummary", lambda p, a, i: p["_summary"]),
    ),
    _t(
        "ShopifyPaymentsPayoutSummary",
        **{
            name: obj("MoneyV2", money_v2(name))
            for name in (
                "chargesGross",
                "chargesFee",
                "refundsFeeGross",
                "refundsFee",
                "adjustmentsGross",
                "adjustmentsFee",
                "reservedFundsGross",
                "reservedFundsFee",
                "retriedPayoutsGross",
                "retriedPayoutsFee",
            )
        },
    ),
    _t(
        "ShopifyPaymentsBalanceTransaction",
        **_scalars(
            "id",
            "type",
            "sourceType",
            "sourceId",
            "sourceOrderTransactionId",
            "test",
            "transactionDate",
            "adjustmentReason",
        ),
        amount=obj("MoneyV2", money_v2("_amount")),
        fee=obj("MoneyV2", money_v2("_fee")),
        net=obj("MoneyV2", money_v2("_net")),
        associatedOrder=obj(
            "ShopifyPaymentsAssociatedOrder",
            lambda p, a, i: (
                {"id": p["_order"], "name": i.context.orders[p["_order"]]["name"]}
                if p["_order"]
                else None
            ),
        ),
        associatedPayout=obj(
            "ShopifyPaymentsBalanceTransactionAssociatedPayout",
            lambda p, a, i: (
                {"id": p["_payout"], "status": i.context.payouts[p["_payout"]]["status"]}
                if p["_payout"]
                else {"id": None, "status": None}
            ),
        ),
    ),
    _t("ShopifyPaymentsAssociatedOrder", **_scalars("id", "name")),
    _t("ShopifyPaymentsBalanceTransactionAssociatedPayout", **_scalars("id", "status")),
    _t(
        "WebhookSubscription",
        **_scalars("id", "legacyResourceId", "topic", "uri", "format", "createdAt", "updatedAt"),
        callbackUrl=scalar(lambda p, a, i: p["uri"]),
    ),
    # Shopify's plain UserError has no code; the payloads that name their
    # errors have an error type of their own, with a code enum.
    _t("UserError", **_scalars("field", "message")),
    *[
        _t(f"{name}UserError", **_scalars("field", "message", "code"))
        for name in (
            "ProductVariantsBulkCreate",
            "ProductVariantsBulkUpdate",
            "InventorySetQuantities",
            "InventoryAdjustQuantities",
        )
    ],
    _t(
        "Mutation",
        productCreate=obj("ProductCreatePayload", product_create),
        productUpdate=obj("ProductUpdatePayload", product_update),
        productVariantsBulkCreate=obj("ProductVariantsBulkCreatePayload", variants_bulk_create),
        productVariantsBulkUpdate=obj("ProductVariantsBulkUpdatePayload", variants_bulk_update),
        inventorySetQuantities=obj("InventorySetQuantitiesPayload", inventory_set_quantities),
        inventoryAdjustQuantities=obj(
            "InventoryAdjustQuantitiesPayload", inventory_adjust_quantities
        ),
        fulfillmentCreate=obj("FulfillmentCreatePayload", fulfillment_create),
        webhookSubscriptionCreate=obj(
            "WebhookSubscriptionCreatePayload", webhook_subscription_create
        ),
        webhookSubscriptionDelete=obj(
            "WebhookSubscriptionDeletePayload", webhook_subscription_delete
        ),
    ),
    _t("ProductCreatePayload", product=obj("Product"), userErrors=objects("UserError")),
    _t("ProductUpdatePayload", product=obj("Product"), userErrors=objects("UserError")),
    _t(
        "ProductVariantsBulkCreatePayload",
        product=obj("Product"),
        productVariants=objects("ProductVariant"),
        userErrors=objects("ProductVariantsBulkCreateUserError"),
    ),
    _t(
        "ProductVariantsBulkUpdatePayload",
        product=obj("Product"),
        productVariants=objects("ProductVariant"),
        userErrors=objects("ProductVariantsBulkUpdateUserError"),
    ),
    _t(
        "InventorySetQuantitiesPayload",
        inventoryAdjustmentGroup=obj("InventoryAdjustmentGroup"),
        userErrors=objects("InventorySetQuantitiesUserError"),
    ),
    _t(
        "InventoryAdjustQuantitiesPayload",
        inventoryAdjustmentGroup=obj("InventoryAdjustmentGroup"),
        userErrors=objects("InventoryAdjustQuantitiesUserError"),
    ),
    _t("FulfillmentCreatePayload", fulfillment=obj("Fulfillment"), userErrors=objects("UserError")),
    _t(
        "WebhookSubscriptionCreatePayload",
        webhookSubscription=obj("WebhookSubscription"),
        userErrors=objects("UserError"),
    ),
    _t(
        "WebhookSubscriptionDeletePayload",
        **_scalars("deletedWebhookSubscriptionId"),
        userErrors=objects("UserError"),
    ),
]

NODE_TABLES = {
    "Product": "products",
    "ProductVariant": "variants",
    "InventoryItem": "inventory_items",
    "Location": "locations",
    "Order": "orders",
    "Customer": "customers",
    "FulfillmentOrder": "fulfillment_orders",
    "Fulfillment": "fulfillments",
    "Refund": "refunds",
    "ShopifyPaymentsPayout": "payouts",
}


def _checked_ids(ids, info):
    _input_array(ids, [info.node.key, "ids"])
    return ids


def _node(store, node_id):
    kind = str(node_id).removeprefix("gid://shopify/").split("/", 1)[0]
    table = NODE_TABLES.get(kind)
    return getattr(store, table).get(node_id) if table else None


def _declared():
    """The declarations of TYPES by type, checked against the SDL."""
    declared = {}
    for type_name, fields in TYPES:
        declared.setdefault(type_name, {}).update(fields)
    return declared


def _check(schema, declared):
    """Each declared field is in the SDL, with the type its declaration names."""
    for type_name, fields in declared.items():
        type_ = schema.get_type(type_name)
        for name, declaration in fields.items():
            if type_ is None or name not in type_.fields:
                raise KeyError(f"{type_name}.{name} is not in the SDL")
            named = gql.get_named_type(type_.fields[name].type).name
            if declaration.type and named not in (
                declaration.type,
                f"{declaration.type}Connection",
            ):
                raise TypeError(f"{type_name}.{name} is a {named} in the SDL")


DECLARED = _declared()
SCHEMA = build_schema(
    {
        type_name: {name: f.resolve for name, f in fields.items() if f.resolve}
        for type_name, fields in DECLARED.items()
    }
)
_check(SCHEMA, DECLARED)


def field_names(type_name):
    """Field names of a type: for documentation and tests."""
    return sorted(SCHEMA.get_type(type_name).fields)


__all__ = ["API_VERSION", "SCHEMA", "field_names"]
