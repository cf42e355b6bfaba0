"""The stores' upload API, v1 (readme/CONTRACT.md): authenticate, check, store, answer.

Nothing is applied here: each ticket becomes an event of its own, applied by
its job, so the answer comes in milliseconds and a wrong ticket fails alone.
"""

import logging

from odoo import SUPERUSER_ID, http
from odoo.http import request

from odoo.addons.connector_base.components.payload import BodyError, parse_body
from odoo.addons.connector_base.controllers.webhook import WebhookIntake, remote_route

from ..components.ticket import MAX_BODY_BYTES, MAX_TICKETS, check_envelope
from ..models.pos_backend import UPLOAD_ROUTE

_logger = logging.getLogger(__name__)

# How long a store waits before uploading again to a paused fleet.
RETRY_AFTER_SECONDS = 300


class PosIntake(WebhookIntake):
    """What every upload of a store goes through (batches, closings): the
    body read within its limit, the store authenticated by its signature,
    the fleet's intake open; the errors answered as the contract says."""

    def _error(self, status, code, message, details=None, headers=None):
        if status != 400:
            _logger.info(
                "POS upload %s refused with %s: %s", request.httprequest.path, status, message
            )
        error = {"code": code, "message": message}
        if details:
            error["details"] = details
        return request.make_json_response({"error": error}, status=status, headers=headers)

    def _authenticated_document(self, fleet, invalid_code):
        """``(store, document, None)`` of an upload to ``fleet`` that passes,
        else ``(None, None, error answer)``; ``invalid_code`` names a 400."""
        httprequest = request.httprequest
        env = request.env(user=SUPERUSER_ID)
        backend = env["connector.backend"]._webhook_backend(
            (("backend_type", "=", "pos"), ("pos_fleet_code", "=", fleet))
        )
        try:
            raw = self._read_body(httprequest, MAX_BODY_BYTES)
        except OSError as exc:  # a malformed chunked body, or the sender gone
            return None, None, self._error(400, invalid_code, f"body not readable: {exc}")
        if raw is None:
            return (
                None,
                None,
                self._error(413, "batch_too_large", f"a batch is at most {MAX_BODY_BYTES} bytes"),
            )
        store_code = httprequest.headers.get("X-Pos-Store") or ""
        store = backend._pos_store(store_code) if backend and store_code else None
        if not store or not store._signature_ok(raw, httprequest.headers.get("X-Pos-Signature")):
            if backend:
                backend._record_rejected_webhook()
            return (
                None,
                None,
                self._error(401, "unauthorized", "unknown store or wrong signature"),
            )
        if (
            backend.state not in ("running", "circuit_open")
            or not backend._policy("tickets_in").enabled
        ):
            return (
                None,
                None,
                self._error(
                    503,
                    "unavailable",
                    "the fleet's ticket intake is paused: upload again later",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                ),
            )
        try:
            document = parse_body(raw)
        except BodyError as exc:
            return None, None, self._error(400, invalid_code, str(exc))
        return store, document, None


class PosUpload(PosIntake, http.Controller):
    """Batches of tickets uploaded by the stores of a POS fleet."""

    @remote_route(UPLOAD_ROUTE)
    def upload_pos_batch(self, fleet):
        store, document, refused = self._authenticated_document(fleet, "invalid_batch")
        if refused:
            return refused
        store_code = store.code
        env = store.env
        problems = check_envelope(document, store_code)
        if problems:
            return self._error(400, "invalid_batch", "the batch's envelope is wrong", problems)
        if len(document["tickets"]) > MAX_TICKETS:
            return self._error(
                413, "batch_too_large", f"a batch holds at most {MAX_TICKETS} tickets"
            )
        answer = env["connector.pos.batch"]._receive(store, document)
        return request.make_json_response(answer, status=200)
