"""Helpers for tests that talk to the simulators: a local webhook receiver,
a JSON request as a connector makes it."""

import contextlib
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .base import HOST


class WebhookReceiver:
    """A tiny HTTP server that records every POST it gets, answering ``status``.

        with WebhookReceiver() as receiver:
            shop.webhook_url = receiver.url
            ...
            deliveries = receiver.wait_for(3)

    ``statuses`` (a list) answers the first requests with those codes, then
    ``status``: a receiver that fails twice then accepts tests retries.
    """

    def __init__(self, status=200, statuses=()):
        self.status = status
        self.statuses = list(statuses)
        self.received = []
        self._cond = threading.Condition()
        self._server = None
        self._thread = None

    @property
    def url(self):
        return f"http://{HOST}:{self._server.server_port}/webhooks"

    def __enter__(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._cond:
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                    receiver.received.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                            "status": status,
                        }
                    )
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def wait_for(self, count, timeout=10.0):
        """The first ``count`` requests received, waiting up to ``timeout`` seconds for them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return list(self.received)

    def clear(self):
        with self._cond:
            self.received.clear()


@contextlib.contextmanager
def running(simulator):
    """Start a simulator for the duration of a block (same as ``with simulator:``)."""
    with simulator:
        yield simulator


def json_call(url, method, body=None, *, headers=None, query=None, raw=None, timeout=10):
    """``(status, JSON answer, headers)`` of one request, as a connector makes
    it: ``body`` sent as JSON (or ``raw`` bytes as they are), an HTTP error
    answered like any other answer."""
    if query:
        url = f"{url}?{urllib.parse.urlencode(query)}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if method == "POST" and data is None:
        data = b""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null"), response.headers
    except urllib.error.HTTPError as error:
        payload = error.read()
        return error.code, json.loads(payload) if payload else None, error.headers
