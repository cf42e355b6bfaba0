"""The POS vendor's back-office API, as the fleet's connector calls it.

Over connector_base's :class:`HttpClient` (timeouts, Retry-After, circuit
breaker, secrets redacted): a bearer fleet token, JSON bodies. A batch the
vendor refuses (400) comes back as its error list, which names the items
refused; every other failure raises as the HTTP client classifies it.
"""

from odoo.addons.connector_base.components.http_client import answer_json

from .catalog import refusal_errors

REFUSED = (400,)


class PosApiClient:
    def __init__(self, http):
        self.http = http

    def stores(self):
        """The fleet's stores as the vendor knows them."""
        return self.http.get("stores").json()

    def upsert_products(self, store, products, key):
        """``(answer, errors)``: the vendor's answer, or its errors for a refused batch."""
        return self._write(
            f"stores/{store}/products/batch-upsert",
            {"idempotency_key": key, "products": products},
        )

    def set_counts(self, counts, key):
        """``(answer, errors)`` of setting available quantities per store and SKU."""
        return self._write("inventory/batch-set", {"idempotency_key": key, "counts": counts})

    def _write(self, path, body):
        response = self.http.post(path, json=body, accept=REFUSED)
        if response.status_code in REFUSED:
            return None, refusal_errors(response) or [
                {"detail": f"HTTP {response.status_code}: {response.text[:300]}"}
            ]
        return answer_json(response, f"POST {path}"), None
