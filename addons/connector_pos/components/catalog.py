"""What Odoo sends the stores' POS: products and available quantities.

Pure functions over dicts, no database: the rows of the vendor's API
(``readme/CONFIGURE.md``, "Catalog and availability out"), the hash that
tells an unchanged product from a changed one, and the reading of the
vendor's refusals, which name the items they refuse.
"""

import hashlib
import json
import re
import uuid

# The vendor API's limits: products in one upsert, counts in one call.
PRODUCTS_PER_CALL = 500
COUNTS_PER_CALL = 100
# "products[3].price" -> 3
_BLAMED = re.compile(r"^(?P<list>[a-z_]+)\[(?P<index>\d+)\]")


def product_row(sku, barcode, name, price, tax_code, *, decimals=2):
    """One product as the POS takes it: price tax included, a decimal string."""
    return {
        "sku": sku,
        "barcode": barcode or None,
        "name": (name or "").strip()[:255],
        "price": f"{price:.{decimals}f}",
        "tax_code": tax_code,
    }


def row_hash(row):
    """The hash of what is sent: the same row is not sent twice."""
    return hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()


def idempotency_key(item_ids, body):
    """The same items with the same body get the same key: a resend after a
    lost answer is answered from the vendor's memory, not applied twice; a
    changed body is another request."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps([sorted(item_ids), body], sort_keys=True)))


def errors_message(errors):
    """The vendor's error list in one sentence."""
    return (
        "; ".join(
            f"{e.get('field') + ': ' if e.get('field') else ''}{e.get('detail') or e.get('code')}"
            f"{' (' + e['code'] + ')' if e.get('code') and e.get('detail') else ''}"
            for e in errors
            if isinstance(e, dict)
        )
        or "refused without a reason"
    )


def blamed(errors, list_name):
    """``{index: message}`` of the items of ``list_name`` the errors name."""
    found = {}
    for entry in errors or []:
        if not isinstance(entry, dict):
            continue
        match = _BLAMED.match(str(entry.get("field") or ""))
        if match and match["list"] == list_name:
            index = int(match["index"])
            found[index] = "; ".join(filter(None, [found.get(index), errors_message([entry])]))
    return found


def refusal_errors(response):
    """The error list of a refusal's JSON body, or [] when it has none."""
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return errors if isinstance(errors, list) else []
