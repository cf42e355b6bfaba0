"""The 3PL's REST API (ShipBob-like), as the connector calls it.

Over connector_base's :class:`HttpClient` (timeouts, circuit breaker,
secrets redacted): a bearer token, the API channel on every request (the
3PL requires it on writes), JSON bodies. Refusals the connector reads itself
(400 validation problems, 422 duplicate reference) come back as
:class:`Refusal`; every other failure raises as the HTTP client classifies
it. The 3PL's 429 names its wait in ``x-retry-after`` and in its message,
not in ``Retry-After``: it is read from there, so that a throttled job
waits what the 3PL asked.
"""

import re
from urllib.parse import quote

from odoo.addons.connector_base.components.http_client import (
    RemoteRetryableError,
    answer_json,
)

from .release import problem_reason

REFUSED = (400, 422)
TRY_AGAIN = re.compile(r"Try again in (\d+) seconds")


class Refusal(Exception):
    """The 3PL refused a write: ``status`` (400, 422) and its reason in words."""

    def __init__(self, status, reason, body=None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.body = body or {}


class TplClient:
    def __init__(self, http):
        self.http = http

    def _request(self, method, path, **kwargs):
        try:
            return self.http.request(method, path, **kwargs)
        except RemoteRetryableError as exc:
            if exc.status == 429 and exc.retry_after is None:
                found = TRY_AGAIN.search(exc.body or "")
                if found:
                    exc.retry_after = float(found.group(1))
            raise

    def _write(self, path, body):
        response = self._request("POST", path, json=body, accept=REFUSED)
        if response.status_code in REFUSED:
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            raise Refusal(
                response.status_code,
                problem_reason(answer) or f"HTTP {response.status_code}: {response.text[:300]}",
                answer,
            )
        return answer_json(response, f"POST {path}")

    def channels(self):
        """The API channels the token may use."""
        return answer_json(self._request("GET", "channel"), "GET channel").get("items") or []

    def release(self, body):
        """Create the order ``body`` (idempotent on its ``reference_id``): the order."""
        return self._write("order", body)

    def orders_by_reference(self, references):
        """The 3PL's orders of these shop references (a list)."""
        response = self._request(
            "GET",
            "order",
            params={"ReferenceIds": ",".join(references), "Limit": 250},
        )
        return answer_json(response, "GET order")

    def cancel(self, order_id):
        """Ask to cancel an order: the 3PL's answer, with its per-shipment results."""
        return self._write(f"order/{quote(str(order_id))}:cancel", {})

    def hold(self, order_id, hold=True):
        """Ask to hold an order's shipments not picked yet (or to lift the
        shop's hold): the 3PL's answer, with its per-shipment results."""
        action = "hold" if hold else "releaseHold"
        return self._write(f"order/{quote(str(order_id))}:{action}", {})

    def unacknowledged_shipments(self, limit=250):
        """The first page of orders with shipments whose tracking Odoo has not
        acknowledged yet (the list shrinks as they are acknowledged)."""
        response = self._request(
            "GET",
            "order",
            params={"HasTracking": "true", "IsTrackingUploaded": "false", "Limit": limit},
        )
        return answer_json(response, "GET order")

    def acknowledge(self, shipment_ids):
        """Mark shipments' tracking as received: ``{shipment id: error or None}``."""
        answer = self._write(
            "shipment:batchUpdateTrackingUpload",
            {"is_tracking_uploaded": True, "shipment_ids": list(shipment_ids)},
        )
        return {
            result.get("shipmentId"): result.get("error") for result in answer.get("results") or ()
        }

    def inventory(self, limit=250):
        """Every SKU of the account, page after page (``limit`` a page, the
        3PL's most): the inventory items as the 3PL lists them. A throttled
        page raises as any call: the job reads the listing again whole, a
        snapshot being only right if read at once."""
        page = 1
        while True:
            response = self._request("GET", "inventory", params={"Limit": limit, "Page": page})
            items = answer_json(response, "GET inventory")
            yield from items or ()
            if not items or not response.headers.get("next-page"):
                return
            page += 1
