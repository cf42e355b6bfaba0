"""Webhook intake base: verify, store, acknowledge; processing happens in jobs.

A connector adds a route that calls :meth:`WebhookIntake._receive_webhook`
with how to find its backend; its backend model provides the signature rule
(``_webhook_signature_ok``) and how to read topic and keys from the request
(``_webhook_message``). Everything else is here, the same for all.
"""

import logging

from odoo import SUPERUSER_ID, http
from odoo.http import request

from ..components.payload import BodyError, parse_body

_logger = logging.getLogger(__name__)

# A body over the limit is still read, a piece at a time and thrown away, up to
# this much: a client still sending when the answer comes and the connection
# closes never reads the answer (a 413 taken for a lost answer is sent again,
# forever). Beyond it, the connection is closed unread.
DRAIN_MAX_BYTES = 16 * 1024 * 1024
DRAIN_PIECE_BYTES = 64 * 1024


def remote_route(route):
    """The route of what a remote system POSTs to Odoo (webhooks, uploads).

    The remote is no user: the intake authenticates it by the request's
    signature (``auth="none"``, no CSRF token, no session saved). Not
    read-only: it stores what it receives.
    """
    return http.route(
        route,
        type="http",
        auth="none",
        readonly=False,
        methods=["POST"],
        csrf=False,
        save_session=False,
    )


def _hashable(domain):
    """A domain as a key of the backend lookup's cache."""
    return tuple(tuple(term) if isinstance(term, list) else term for term in domain)


class WebhookIntake:
    """Mixin of the connectors' webhook controllers (no route of its own).

    Not a ``Controller`` itself: Odoo merges every subclass of a controller
    into one, and two connectors' routes would then shadow each other. A
    connector writes ``class MyWebhook(WebhookIntake, http.Controller)``.
    """

    def _answer(self, status, message, **extra):
        if status >= 400:
            _logger.info(
                "webhook %s refused with %s: %s", request.httprequest.path, status, message
            )
        return request.make_json_response({"status": message, **extra}, status=status)

    def _read_body(self, httprequest, limit):
        """The request's body, or None when it is over ``limit`` bytes.

        A body with a Content-Length over the limit is refused without being
        kept: read and thrown away (up to :data:`DRAIN_MAX_BYTES`, no more
        than an accepted body's time), so that the client, done sending,
        reads the refusal. A chunked body has no
        length to check first: at most ``limit + 1`` bytes of it are kept,
        enough to know it is too long. (Reading it whole, as ``get_data()``
        does, would let anybody make the worker read and hold whatever they
        send.)
        """
        length = httprequest.content_length
        # Odoo's request wrapper does not expose the WSGI input; its own
        # websocket code reads the raw environ the same way.
        environ = httprequest._HTTPRequest__environ
        if length is not None:
            if length > limit:
                if length <= DRAIN_MAX_BYTES:
                    self._discard(environ["wsgi.input"], length)
                return None
            return httprequest.get_data()  # bounded by its Content-Length
        if not environ.get("wsgi.input_terminated"):
            return b""  # neither a length nor chunked: no body
        stream = environ["wsgi.input"]
        chunks, size = [], 0
        while size <= limit:
            chunk = stream.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        # Not read further: a chunked body that never ends would hold the worker.
        return None if size > limit else b"".join(chunks)

    @staticmethod
    def _discard(stream, at_most):
        """Read and forget up to ``at_most`` bytes of ``stream``, a piece at a time."""
        left = at_most
        while left > 0:
            piece = stream.read(min(DRAIN_PIECE_BYTES, left))
            if not piece:
                return
            left -= len(piece)

    def _receive_webhook(self, backend_domain):
        """Authenticate, bound, parse and store one webhook delivery.

        401: no such backend, or signature missing / wrong (counted on the
        backend). 413: body over the backend's limit, refused before it is
        read (a chunked one, after reading one byte more than the limit).
        400: not readable, not JSON, or the message lacks what identifies it.
        200: stored (or recognised as a duplicate) and queued.
        """
        httprequest = request.httprequest
        # The route has no user (auth="none"): the intake and the jobs it
        # queues act as the system, the remote being authenticated by the
        # signature of what it sent.
        env = request.env(user=SUPERUSER_ID)
        backend = env["connector.backend"]._webhook_backend(_hashable(backend_domain))
        if not backend:
            return self._answer(401, "unknown backend")
        limit = max(backend.max_body_kb, 1) * 1024
        try:
            raw = self._read_body(httprequest, limit)
        except OSError as exc:  # a malformed chunked body, or the sender gone
            return self._answer(400, f"body not readable: {exc}")
        if raw is None:
            return self._answer(413, f"body over {limit} bytes")
        if not backend._webhook_signature_ok(raw, httprequest.headers):
            backend._record_rejected_webhook()
            _logger.info("backend %s: webhook refused, bad signature", backend.id)
            return self._answer(401, "invalid signature")
        try:
            payload = parse_body(raw)
        except BodyError as exc:
            return self._answer(400, str(exc))
        message = backend._webhook_message(payload, httprequest.headers)
        missing = [key for key in ("topic", "idempotency_key") if not message.get(key)]
        if missing:
            return self._answer(400, f"missing {', '.join(missing)}")
        event = env["connector.event"]._receive(
            backend,
            message["topic"],
            payload,
            message["idempotency_key"],
            occurred_at=message.get("occurred_at"),
            source="webhook",
            correlation_id=message.get("correlation_id"),
            raw=raw.decode(),  # UTF-8, as parse_body checked
        )
        return self._answer(200, event.state, event=event.id)
