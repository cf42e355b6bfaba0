"""The accounting system's API (Xero-like), as the connector calls it.

Over connector_base's :class:`HttpClient` (timeouts, rate limit, circuit
breaker, secrets redacted): a bearer token and the organisation's tenant id
on every request, JSON bodies, Xero's JSON dates. A validation refusal (HTTP
400 ``ValidationException``) comes back as :class:`Refusal` with every
message the remote gave, so that the batch it refused can be held with the
remote's own words; every other failure raises as the HTTP client
classifies it (429 and 5xx are transient and carry the remote's
Retry-After).
"""

import re
from datetime import date, datetime, timezone

from odoo.addons.connector_base.components.http_client import (
    answer_json,
)

TENANT_HEADER = "Xero-tenant-id"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# The longest Idempotency-Key the remote takes.
MAX_IDEMPOTENCY_KEY = 128
JSON_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")
# How the remote words a refusal by a lock date, and the date it names.
LOCK_REFUSAL = re.compile(r"lock date, currently set at (\d{1,2}-\w{3}-\d{4})", re.IGNORECASE)


class Refusal(Exception):
    """The remote refused a write: HTTP ``status`` and its ``messages`` in words."""

    def __init__(self, status, messages, body=None):
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = messages
        self.body = body or {}

    @property
    def locked_until(self):
        """The lock date the remote named when it refused a date in a locked
        period, else None."""
        for message in self.messages:
            found = LOCK_REFUSAL.search(message)
            if found:
                return datetime.strptime(found.group(1), "%d-%b-%Y").date()
        return None


def parse_date(value):
    """A date of the remote's JSON (``/Date(1764460800000+0000)/`` or ISO), or None."""
    if not value:
        return None
    found = JSON_DATE.fullmatch(value)
    if found:
        return datetime.fromtimestamp(int(found.group(1)) / 1000, tz=timezone.utc).date()
    return date.fromisoformat(value[:10])


def validation_messages(body):
    """Every message of a ``ValidationException`` body, journal by journal."""
    if not isinstance(body, dict):
        return []
    messages = [
        error.get("Message")
        for element in body.get("Elements") or []
        for error in element.get("ValidationErrors") or []
        if error.get("Message")
    ]
    return messages or [body.get("Message") or body.get("Detail") or str(body)[:300]]


class FinanceClient:
    def __init__(self, http):
        self.http = http

    def _get(self, path, key, params=None):
        response = self.http.request("GET", path, params=params)
        return answer_json(response, f"GET {path}").get(key) or []

    def organisation(self):
        """The organisation: its name, base currency and lock dates."""
        found = self._get("Organisation", "Organisations")
        return found[0] if found else {}

    def accounts(self):
        """The chart of accounts, archived accounts included (they are shown as such)."""
        return self._get("Accounts", "Accounts")

    def tax_rates(self):
        return self._get("TaxRates", "TaxRates")

    def tracking_categories(self):
        return self._get("TrackingCategories", "TrackingCategories")

    def save_journal(self, journal, idempotency_key):
        """Create one manual journal; a retry with the same key creates nothing
        twice. Returns the journal as the remote saved it (with its id)."""
        if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise ValueError(f"idempotency key of 1 to {MAX_IDEMPOTENCY_KEY} characters expected")
        response = self.http.request(
            "PUT",
            "ManualJournals",
            json={"ManualJournals": [journal]},
            headers={IDEMPOTENCY_HEADER: idempotency_key},
            accept=(400,),
        )
        body = answer_json(response, "PUT ManualJournals")
        if response.status_code == 400:
            raise Refusal(400, validation_messages(body), body)
        saved = (body.get("ManualJournals") or [{}])[0]
        if saved.get("StatusAttributeString") == "ERROR" or not saved.get("ManualJournalID"):
            raise Refusal(response.status_code, validation_messages({"Elements": [saved]}), body)
        return saved

    def journal(self, journal_id):
        """One manual journal as the remote holds it."""
        found = self._get(f"ManualJournals/{journal_id}", "ManualJournals")
        return found[0] if found else None
