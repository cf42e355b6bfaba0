"""Shopify Admin GraphQL API over the connector HTTP client.

Shopify limits each app and store by a bucket of query cost points that
refills at a restore rate. Every answer reports the bucket in
``extensions.cost.throttleStatus``; an empty bucket answers ``THROTTLED``.
This client remembers the last reported bucket per shop and waits before a
query rather than being refused, retries a ``THROTTLED`` answer after the
time the bucket needs, and turns other GraphQL errors into clear messages.
"""

import logging
import threading
import time

from odoo.addons.connector_base.components.http_client import RemoteError, RemoteRetryableError

_logger = logging.getLogger(__name__)

# Waiting longer than this inside a job holds a worker for nothing: hand the
# wait to queue_job instead (RetryableJobError with the delay).
MAX_INLINE_WAIT = 5.0
# Following pages of one nested connection: far beyond any real order's lines.
MAX_FOLLOWING_PAGES = 50


class ShopifyGraphQLError(RemoteError):
    """Shopify answered with GraphQL errors other than throttling."""


class Bucket:
    """What we last knew of a shop's cost bucket, refilled by the clock."""

    _shops = {}
    _lock = threading.Lock()

    def __init__(self):
        self.available = None
        self.maximum = None
        self.restore_rate = None
        self.updated = time.monotonic()

    @classmethod
    def of(cls, key):
        with cls._lock:
            return cls._shops.setdefault(key, cls())

    def update(self, status):
        self.available = float(status["currentlyAvailable"])
        self.maximum = float(status["maximumAvailable"])
        self.restore_rate = float(status["restoreRate"])
        self.updated = time.monotonic()

    def wait_for(self, cost):
        """Seconds until ``cost`` points are available (0 when unknown or enough)."""
        if self.available is None or not self.restore_rate:
            return 0.0
        now_available = min(
            self.maximum, self.available + (time.monotonic() - self.updated) * self.restore_rate
        )
        return max(0.0, (min(cost, self.maximum) - now_available) / self.restore_rate)


class ShopifyClient:
    """Runs GraphQL documents against one shop.

    :param http: the backend's connector ``HttpClient`` (auth header, timeouts,
        rate limit, circuit breaker, redaction).
    :param api_version: e.g. ``2026-10``.
    :param shop_key: identifies the shop's bucket (database and backend).
    """

    def __init__(self, http, api_version, shop_key, expected_cost=50):
        self.http = http
        self.path = f"/admin/api/{api_version}/graphql.json"
        self.bucket = Bucket.of(shop_key)
        self.expected_cost = expected_cost
        self.last_cost = None

    def execute(self, query, variables=None, cost=None):
        """Return the ``data`` of the answer; raise on errors.

        Throttling is retried here while the wait is short; a longer wait
        raises :class:`RemoteRetryableError` with the delay for queue_job.
        """
        for _attempt in range(3):
            self._pace(cost or self.expected_cost)
            response = self.http.post(
                self.path, json={"query": query, "variables": variables or {}}
            )
            try:
                body = response.json()
            except ValueError as exc:
                raise RemoteRetryableError(
                    f"Shopify answered something that is not JSON: {response.text[:200]!r}"
                ) from exc
            extensions = (body.get("extensions") or {}).get("cost") or {}
            if extensions.get("throttleStatus"):
                self.bucket.update(extensions["throttleStatus"])
                self.last_cost = extensions
            errors = body.get("errors") or []
            if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
                wait = self.bucket.wait_for(extensions.get("requestedQueryCost") or cost or 50)
                if wait > MAX_INLINE_WAIT:
                    raise RemoteRetryableError(
                        "Shopify throttled the request", retry_after=wait, throttled=True
                    )
                _logger.info("Shopify throttled: waiting %.1f s", wait)
                time.sleep(wait)
                continue
            if errors:
                raise ShopifyGraphQLError(
                    "Shopify refused the request: "
                    + "; ".join(e.get("message", str(e)) for e in errors)
                )
            return body.get("data") or {}
        raise RemoteRetryableError(
            "Shopify kept throttling the request", retry_after=10, throttled=True
        )

    def _pace(self, cost):
        wait = self.bucket.wait_for(cost)
        if wait > MAX_INLINE_WAIT:
            raise RemoteRetryableError(
                "Shopify cost bucket is empty", retry_after=wait, throttled=True
            )
        if wait:
            time.sleep(wait)

    def paginate(self, query, variables, connection_path):
        """Yield the nodes of a connection, page after page (cursor pagination)."""
        after = None
        while True:
            data = self.execute(query, {**variables, "after": after})
            connection = data
            for key in connection_path:
                connection = connection[key]
            yield from (edge["node"] for edge in connection["edges"])
            page = connection["pageInfo"]
            if not page["hasNextPage"]:
                return
            after = page["endCursor"]

    def complete(self, connection, query, variables, path, what):
        """Append to ``connection`` (``edges`` and ``pageInfo``, read inside a
        larger query) its following pages, read with ``query`` (``variables``
        and ``$after``) whose data at ``path`` is that connection again.

        An order's line items, a refund's lines: what a query reads inside
        another is cut at its ``first``; the rest is read here, never left out.
        """
        pages = 0
        while connection.get("pageInfo", {}).get("hasNextPage"):
            pages += 1
            if pages > MAX_FOLLOWING_PAGES:
                raise RemoteError(
                    f"Shopify has more {what} than {MAX_FOLLOWING_PAGES} pages: not read whole"
                )
            data = self.execute(query, {**variables, "after": connection["pageInfo"]["endCursor"]})
            for key in path:
                data = data[key]
            connection["edges"].extend(data["edges"])
            connection["pageInfo"] = data["pageInfo"]
        return connection


def user_errors_message(user_errors):
    """Shopify ``userErrors`` in plain words: "field: message; ..."."""
    return "; ".join(
        f"{'.'.join(str(p) for p in (error.get('field') or [])) or 'input'}: {error['message']}"
        for error in user_errors
    )
