"""Odoo catalog data -> Shopify product and variant inputs (Admin GraphQL API).

Plain functions over dicts, no Odoo import. The Odoo side describes a product
template as::

    {"id": 12, "name": "Linen Shirt",
     "options": [("Size", ["S", "M", "L"])],
     "variants": [{"id": 40, "sku": "LIN-S", "barcode": "4006381333931",
                   "price": "49.90", "weight": 0.25, "weight_unit": "KILOGRAMS",
                   "tracked": True, "requires_shipping": True,
                   "options": [("Size", "S")]}, ...]}

and these functions give what Shopify's mutations take, plus the hash of
what would be sent: an unchanged hash means nothing to send.
"""

import hashlib
import json
import re
import unicodedata

# Shopify allows at most three options (Size, Color...) per product.
MAX_OPTIONS = 3
# Odoo's weight units as Shopify's WeightUnit enum.
WEIGHT_UNITS = {"kg": "KILOGRAMS", "g": "GRAMS", "lb": "POUNDS", "lbs": "POUNDS", "oz": "OUNCES"}


def payload_hash(data):
    """A stable hash of a JSON-able value (keys sorted)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def handle_for(template):
    """The handle a product created from Odoo gets: its name, made unique by
    the Odoo id, so that a create whose answer was lost is found again."""
    text = unicodedata.normalize("NFKD", template["name"]).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:200]
    return f"{slug or 'product'}-{template['id']}"


def product_fields(template):
    """The product-level fields Odoo owns (sent on create and when changed)."""
    return {"title": template["name"]}


def product_create_input(template):
    """``ProductCreateInput``: title, handle and the options with their values."""
    values = {**product_fields(template), "handle": handle_for(template), "status": "ACTIVE"}
    if template["options"]:
        values["productOptions"] = [
            {"name": name, "values": [{"name": value} for value in option_values]}
            for name, option_values in template["options"]
        ]
    return values


def variant_fields(variant):
    """``ProductVariantsBulkInput`` without id and options: what an update sends."""
    item = {
        "sku": variant["sku"],
        "tracked": variant["tracked"],
        "requiresShipping": variant["requires_shipping"],
    }
    if variant.get("weight_unit"):
        item["measurement"] = {
            "weight": {"value": variant["weight"] or 0.0, "unit": variant["weight_unit"]}
        }
    return {"price": variant["price"], "barcode": variant["barcode"] or None, "inventoryItem": item}


def variant_create_input(variant):
    """``ProductVariantsBulkInput`` of a new variant: its fields and option values."""
    return {
        **variant_fields(variant),
        "optionValues": [{"optionName": name, "name": value} for name, value in variant["options"]],
    }


def variant_update_input(variant, variant_gid):
    return {"id": variant_gid, **variant_fields(variant)}


def problems(template):
    """Why Shopify would refuse this product as it is, in plain words (or [])."""
    found = []
    if len(template["options"]) > MAX_OPTIONS:
        found.append(
            f"Shopify allows {MAX_OPTIONS} options per product; this one varies by "
            f"{len(template['options'])} attributes ("
            + ", ".join(name for name, _values in template["options"])
            + ")."
        )
    skus = [variant["sku"] for variant in template["variants"]]
    missing = [variant["name"] for variant in template["variants"] if not variant["sku"]]
    if missing:
        found.append(
            "Every variant needs an internal reference (the SKU that identifies it in "
            "Shopify); missing on: " + ", ".join(missing) + "."
        )
    duplicates = sorted({sku for sku in skus if sku and skus.count(sku) > 1})
    if duplicates:
        found.append("Several variants share the SKU " + ", ".join(duplicates) + ".")
    return found


def blamed_index(error):
    """The index of the input variant a ``userErrors`` entry names, or None.

    Shopify names it with ``field: ["variants", "<index>", ...]``.
    """
    field = error.get("field") if isinstance(error, dict) else None
    if (
        isinstance(field, list)
        and len(field) > 1
        and field[0] == "variants"
        and str(field[1]).isdecimal()
    ):
        return int(field[1])
    return None
