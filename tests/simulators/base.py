"""What every simulator shares: HTTP server, control API, faults, request log, webhooks.

A simulator is a threaded WSGI server on 127.0.0.1 with its own in-memory
state. Tests, benchmarks and the run command start it from Python (a context
manager) or from the command line (``python3 -m simulators``); another process
drives it over its control API under ``/_sim/``.

Every random decision (seed data, which request gets a fault, which webhook is
duplicated) is drawn from a generator keyed by the seed and by what is being
decided (the fault rule and how many requests it has seen, the delivery
number), so a failing run replays exactly with the same seed and the same
sequence of requests, whatever the threads did meanwhile.

Nothing here logs above INFO: the test suite fails on any WARNING in the Odoo
log, which test processes share. Faults and failures are recorded in the
request log and the delivery log instead, which are the ground truth.
"""

import base64
import contextlib
import copy
import fnmatch
import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import logging
import random
import socket
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response

_logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
CONTROL_PREFIX = "/_sim"


def seeded_random(seed, *parts):
    """A generator that depends only on ``seed`` and ``parts``.

    Keyed this way, a decision does not depend on how many other decisions
    were drawn before it, nor on thread timing: what matters is the rule and
    the request number, which a replay reproduces.
    """
    return random.Random("|".join(str(p) for p in (seed, *parts)))


def utcnow():
    return datetime.now(timezone.utc)


def iso(moment):
    """ISO 8601 in UTC with a Z, to the second, the way the remote APIs write it."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_response(data, status=200, headers=None):
    return Response(
        json.dumps(data, default=str),
        status=status,
        headers=headers,
        content_type="application/json; charset=utf-8",
    )


def hmac_sha256_base64(secret, body):
    """Base64 of the HMAC-SHA256 of ``body`` keyed with ``secret`` (Shopify's webhook scheme)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


# --- faults ------------------------------------------------------------------

FAULT_KINDS = ("latency", "throttle", "error", "timeout", "drop", "malformed")


@dataclass
class FaultRule:
    """One fault, applied to a share (``rate``) of the requests ``endpoint`` matches.

    ``endpoint`` is a glob matched against the names of a request: its path
    and whatever the simulator adds (Shopify: ``graphql:<root field>``,
    ``graphql:query``, ``graphql:mutation``).

    kinds:
      latency    wait ``latency`` seconds, then answer normally (combines with the others)
      throttle   HTTP 429 with ``Retry-After: retry_after``
      error      HTTP ``status`` (5xx), nothing processed
      timeout    hold the request ``hold`` seconds, then answer 504 (``apply``: process it
                 anyway before answering, the "timed out but applied" case)
      drop       close the connection without an answer (``apply``: after processing)
      malformed  process the request, answer 200 with a truncated, unparsable body
    """

    kind: str
    rate: float = 1.0
    endpoint: str = "*"
    latency: float = 0.5
    retry_after: float = 1.0
    status: int = 503
    hold: float = 15.0
    apply: bool = False
    limit: int | None = None
    id: int = 0
    seen: int = 0
    applied: int = 0

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if not 0 <= self.rate <= 1:
            raise ValueError(f"fault rate must be within [0, 1], not {self.rate}")

    @classmethod
    def from_dict(cls, data):
        known = {f.name for f in fields(cls)} - {"id", "seen", "applied"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault rule keys: {', '.join(sorted(unknown))}")
        return cls(**data)


class FaultInjector:
    """The fault rules of one simulator and the seeded draw that applies them."""

    def __init__(self, seed):
        self.seed = seed
        self._rules = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, kind, **options):
        """Add a rule (see :class:`FaultRule`) and return it."""
        rule = FaultRule(kind=kind, **options)
        with self._lock:
            rule.id = next(self._ids)
            self._rules.append(rule)
        return rule

    def clear(self):
        """Drop every rule; rules added next are numbered afresh, as in a new run."""
        with self._lock:
            self._rules = []
            self._ids = itertools.count(1)

    def reseed(self, seed):
        with self._lock:
            self.seed = seed
            self._rules = []
            self._ids = itertools.count(1)

    def describe(self):
        with self._lock:
            return [asdict(rule) for rule in self._rules]

    def draw(self, names):
        """Rules that hit this request: latency ones, then at most one other fault."""
        hits = []
        terminal = None
        with self._lock:
            for rule in self._rules:
                if not any(fnmatch.fnmatchcase(name, rule.endpoint) for name in names):
                    continue
                if rule.kind != "latency" and terminal is not None:
                    continue
                if rule.limit is not None and rule.applied >= rule.limit:
                    continue
                rule.seen += 1
                if seeded_random(self.seed, "fault", rule.id, rule.seen).random() >= rule.rate:
                    continue
                rule.applied += 1
                hits.append(copy.copy(rule))
                if rule.kind != "latency":
                    terminal = rule
        return hits


@dataclass
class WebhookFaults:
    """Shares of outgoing webhook deliveries that go wrong, and how."""

    duplicate: float = 0.0
    out_of_order: float = 0.0
    delay: float = 0.0
    delay_seconds: float = 2.0
    bad_signature: float = 0.0

    @classmethod
    def from_dict(cls, data):
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown webhook fault keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    def draw(self, seed, number):
        """Faults of delivery ``number`` (the n-th webhook this simulator emits)."""
        rng = seeded_random(seed, "webhook", number)
        drawn = [
            name
            for name in ("duplicate", "out_of_order", "delay", "bad_signature")
            if rng.random() < getattr(self, name)
        ]
        return drawn


# --- request log ---------------------------------------------------------------


class RequestLog:
    """Every API request a simulator answered, with the fault it got: a test's evidence."""

    def __init__(self, size=20000):
        self.size = size
        self._entries = []
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, **entry):
        with self._lock:
            entry["seq"] = next(self._seq)
            self._entries.append(entry)
            del self._entries[: -self.size]
            return entry

    def entries(self, since=0):
        with self._lock:
            return [dict(e) for e in self._entries if e["seq"] > since]

    def clear(self):
        with self._lock:
            self._entries = []


# --- webhooks ------------------------------------------------------------------

# Shopify retries a failed delivery 8 times over about 4 hours; the exact
# schedule is not published, this one adds up to that.
SHOPIFY_RETRY_SCHEDULE = (10, 30, 60, 300, 900, 1800, 3600, 7200)
# What tests use unless they say otherwise: the same shape, in milliseconds.
FAST_RETRY_SCHEDULE = (0.05, 0.1, 0.2, 0.4)


@dataclass(order=True)
class Delivery:
    """One webhook to deliver; its copies (retries, duplicates) keep its webhook id."""

    due: float
    number: int
    topic: str = field(compare=False)
    url: str = field(compare=False)
    body: bytes = field(compare=False, repr=False)
    headers: dict = field(compare=False)
    webhook_id: str = field(compare=False)
    faults: list = field(compare=False, default_factory=list)
    attempt: int = field(compare=False, default=0)
    copy_of: int | None = field(compare=False, default=None)


class WebhookSender:
    """Background delivery of signed webhooks, with retries and delivery faults.

    One worker thread delivers in due-time order, so the order of deliveries is
    the order of events unless a fault changes it. The delivery log records
    every attempt: what was sent, to where, with which faults, and the answer.
    """

    def __init__(
        self,
        seed,
        *,
        signature_header,
        sign=hmac_sha256_base64,
        retry_schedule=FAST_RETRY_SCHEDULE,
        connect_timeout=1.0,
        read_timeout=5.0,
        out_of_order_wait=0.5,
    ):
        self.seed = seed
        self.signature_header = signature_header
        self.sign = sign
        self.retry_schedule = tuple(retry_schedule)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.out_of_order_wait = out_of_order_wait
        # The delivery timings run on the machine's clock, taken now: a test
        # that sets the clock (freezegun) moves the systems' dates, not the
        # queue's waits, which the delivering thread and the callers share.
        self._clock = time.monotonic
        self.faults = WebhookFaults()
        self.secret = ""
        self._heap = []
        self._held = None  # (delivery, release_at) waiting to be overtaken
        self._numbers = itertools.count(1)
        self._tiebreak = itertools.count(1)
        self._inflight = 0
        self._log = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = None

    # lifecycle
    def start(self):
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="simulator-webhooks", daemon=True)
        self._thread.start()

    def stop(self):
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join()
            self._thread = None

    def reset(self, seed):
        with self._cond:
            self.seed = seed
            self.faults = WebhookFaults()
            self._heap = []
            self._held = None
            self._numbers = itertools.count(1)
            self._log = []

    # API
    def enqueue(self, url, topic, body, headers, webhook_id):
        """Sign and queue one delivery, applying the delivery faults drawn for it."""
        if not url:
            return None
        number = next(self._numbers)
        faults = self.faults.draw(self.seed, number)
        now = self._clock()
        delivery = Delivery(
            due=now + (self.faults.delay_seconds if "delay" in faults else 0.0),
            number=number,
            topic=topic,
            url=url,
            body=body,
            headers=dict(headers),
            webhook_id=webhook_id,
            faults=faults,
        )
        with self._cond:
            held, self._held = self._held, None
            if "out_of_order" in faults and held is None:
                self._held = (delivery, now + self.out_of_order_wait)
            else:
                self._push(delivery)
            if held is not None:
                # Overtaken by the delivery just queued: send the held one after it.
                held_delivery = held[0]
                held_delivery.due = max(held_delivery.due, delivery.due) + 0.001
                self._push(held_delivery)
            if "duplicate" in faults:
                twin = copy.copy(delivery)
                twin.headers = dict(delivery.headers)
                twin.due = delivery.due + 0.01
                twin.copy_of = number
                self._push(twin)
            self._cond.notify_all()
        return delivery

    def wait_idle(self, timeout=10.0):
        """Wait until nothing is queued, held or in flight; True when idle."""
        deadline = self._clock() + timeout
        with self._cond:
            while self._heap or self._held or self._inflight:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
            return True

    def log(self):
        with self._cond:
            return [dict(entry) for entry in self._log]

    def pending(self):
        with self._cond:
            return len(self._heap) + bool(self._held) + self._inflight

    # internals
    def _push(self, delivery):
        # The tiebreak keeps heap order stable for equal due times.
        heapq.heappush(self._heap, (delivery.due, next(self._tiebreak), delivery))

    def _next_delivery(self):
        """Block until a delivery is due; None when stopping."""
        with self._cond:
            while not self._stopping:
                now = self._clock()
                if self._held and self._held[1] <= now:
                    self._push(self._held[0])
                    self._held = None
                if self._heap and self._heap[0][0] <= now:
                    self._inflight += 1
                    return heapq.heappop(self._heap)[2]
                waits = [self._heap[0][0] - now] if self._heap else []
                if self._held:
                    waits.append(self._held[1] - now)
                self._cond.wait(min([*waits, 0.5]))
            return None

    def _run(self):
        while (delivery := self._next_delivery()) is not None:
            try:
                outcome = self._attempt(delivery)
            finally:
                with self._cond:
                    self._inflight -= 1
                    self._schedule_retry(delivery, outcome)
                    self._cond.notify_all()

    def _schedule_retry(self, delivery, outcome):
        if outcome["ok"] or self._stopping:
            return
        if delivery.attempt >= len(self.retry_schedule):
            outcome["gave_up"] = True
            return
        retry = copy.copy(delivery)
        retry.due = self._clock() + self.retry_schedule[delivery.attempt]
        retry.attempt = delivery.attempt + 1
        self._push(retry)

    def _attempt(self, delivery):
        secret = self.secret
        if "bad_signature" in delivery.faults:
            secret = f"{secret}-not-the-secret"
        headers = {
            # JSON unless the simulator says otherwise (Lightspeed posts forms).
            "Content-Type": "application/json",
            **delivery.headers,
            self.signature_header: self.sign(secret, delivery.body),
        }
        entry = {
            "number": delivery.number,
            "webhook_id": delivery.webhook_id,
            "topic": delivery.topic,
            "url": delivery.url,
            "attempt": delivery.attempt,
            "duplicate": delivery.copy_of is not None,
            "faults": list(delivery.faults),
            "at": iso(utcnow()),
        }
        try:
            status = self._post(delivery.url, delivery.body, headers)
            entry.update(status=status, ok=200 <= status < 300)
        except (OSError, http.client.HTTPException) as exc:
            entry.update(status=None, ok=False, error=f"{type(exc).__name__}: {exc}")
        _logger.debug(
            "webhook %s #%s attempt %s: %s",
            delivery.topic,
            delivery.number,
            delivery.attempt,
            entry.get("status") or entry.get("error"),
        )
        with self._cond:
            self._log.append(entry)
        return entry

    def _post(self, url, body, headers):
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(
            parts.hostname, parts.port or 80, timeout=self.connect_timeout
        )
        try:
            connection.connect()
            connection.sock.settimeout(self.read_timeout)
            path = parts.path or "/"
            if parts.query:
                path = f"{path}?{parts.query}"
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()


# --- server --------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler, logging at DEBUG only (see the module docstring)."""

    def log_request(self, code="-", size="-"):
        _logger.debug("%s %s %s", self.command, self.path, code)

    def log_error(self, format, *args):
        _logger.debug(format, *args)

    def log_message(self, format, *args):
        _logger.debug(format, *args)

    def log(self, type, message, *args):
        _logger.debug(message, *args)


class _Server(ThreadedWSGIServer):
    """Threaded server whose request threads are joined on close.

    It keeps the open connections so that stopping can close idle keep-alive
    ones, which would otherwise keep their threads waiting for a next request.
    """

    daemon_threads = False
    block_on_close = True

    def __init__(self, *args, **kwargs):
        self.open_connections = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self.open_connections.add(request)
        return super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self.open_connections.discard(request)
        return super().shutdown_request(request)

    def close_open_connections(self):
        with self._connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def log(self, type, message, *args):
        _logger.debug(message, *args)

    def handle_error(self, request, client_address):
        _logger.debug("simulator connection error from %s", client_address, exc_info=True)


class Simulator:
    """Base of the simulators: lifecycle, control API, faults, request log, webhooks.

    A subclass sets ``name``, adds its API with :meth:`api_rules` (endpoints
    are method names), builds its state in :meth:`seed_state`, describes it in
    :meth:`snapshot` and answers :meth:`trigger` for ``/_sim/events/trigger``.
    """

    name = "simulator"
    signature_header = "X-Signature"

    def __init__(
        self,
        *,
        seed=0,
        host=HOST,
        port=0,
        webhook_url=None,
        webhook_secret="simulator-webhook-secret",
        retry_schedule=FAST_RETRY_SCHEDULE,
    ):
        self.seed = seed
        self.host = host
        self.port = port
        self.lock = threading.RLock()  # guards the simulated state
        self.faults = FaultInjector(seed)
        self.requests = RequestLog()
        self.webhooks = WebhookSender(
            seed, signature_header=self.signature_header, retry_schedule=retry_schedule
        )
        self.webhooks.secret = webhook_secret
        self.webhook_url = webhook_url
        self._server = None
        self._thread = None
        self._stopping = threading.Event()
        self.url_map = Map([*self._control_rules(), *self.api_rules()])
        self.reset(seed)

    # --- lifecycle ---------------------------------------------------------------
    @property
    def url(self):
        if self._server is None:
            raise RuntimeError(f"{self.name} simulator is not started")
        return f"http://{self.host}:{self._server.port}"

    def start(self):
        """Serve in a background thread; returns self."""
        self._stopping.clear()
        self._server = _Server(self.host, self.port, self.wsgi_app, handler=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"simulator-{self.name}",
            daemon=True,
        )
        self._thread.start()
        self.webhooks.start()
        _logger.info("%s simulator serving on %s", self.name, self.url)
        return self

    def stop(self):
        """Stop serving and delivering; every thread started is joined."""
        if self._server is None:
            return
        self._stopping.set()  # releases requests held by latency or timeout faults
        self._server.shutdown()
        self._server.close_open_connections()
        self._thread.join()
        self._server.server_close()  # joins the request threads
        self.webhooks.stop()
        self._server = None
        self._thread = None
        _logger.info("%s simulator stopped", self.name)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def reset(self, seed=None):
        """Forget everything (state, faults, logs, queued webhooks) and seed afresh."""
        if seed is not None:
            self.seed = seed
        with self.lock:
            self.faults.reseed(self.seed)
            self.requests.clear()
            self.webhooks.reset(self.seed)
            self.seed_state(seeded_random(self.seed, self.name, "state"))

    # --- hooks for subclasses ------------------------------------------------------
    def api_rules(self):
        return []

    def seed_state(self, rng):
        """Build the initial state from ``rng`` (a seeded ``random.Random``)."""

    def snapshot(self, parts=None):
        """The state as plain JSON-able data (only ``parts`` when given): the ground truth."""
        return {}

    def trigger(self, event, params):
        """Apply a named event (``/_sim/events/trigger``); return what it produced."""
        raise ValueError(f"{self.name} simulator knows no event {event!r}")

    def request_names(self, request, endpoint):
        """Names fault rules match against; subclasses add finer ones."""
        return [request.path, endpoint]

    # --- helpers for subclasses ----------------------------------------------------
    def emit_webhook(self, topic, body, headers, webhook_id, url=None):
        """Queue a signed delivery to ``url`` (default: the configured webhook URL)."""
        return self.webhooks.enqueue(url or self.webhook_url, topic, body, headers, webhook_id)

    def wait_webhooks(self, timeout=10.0):
        """Wait until every queued webhook was delivered or given up; True when idle."""
        return self.webhooks.wait_idle(timeout)

    def sleep(self, seconds):
        """Sleep that ends early when the simulator stops (held requests, latency)."""
        self._stopping.wait(seconds)

    # --- WSGI ----------------------------------------------------------------------
    def wsgi_app(self, environ, start_response):
        request = Request(environ)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match()
        except HTTPException as exc:
            response = json_response({"errors": exc.description}, status=exc.code)
            return response(environ, start_response)
        handler = getattr(self, endpoint)
        if endpoint.startswith("control_"):
            try:
                response = handler(request, **args)
            except (ValueError, KeyError, TypeError) as exc:
                response = json_response({"error": str(exc)}, status=400)
            return response(environ, start_response)
        return self._serve_api(request, start_response, endpoint, args)

    def _serve_api(self, request, start_response, endpoint, args):
        started = time.monotonic()
        environ = request.environ
        handler = getattr(self, endpoint)
        names = self.request_names(request, endpoint)
        faults = self.faults.draw(names)
        fault = next((f for f in faults if f.kind != "latency"), None)
        for latency in (f for f in faults if f.kind == "latency"):
            self.sleep(latency.latency)
        entry = {
            "at": iso(utcnow()),
            "method": request.method,
            "path": request.path,
            "names": names,
            "faults": [f.kind for f in faults],
        }
        response = None
        processed = False
        if fault is None or fault.kind == "malformed" or fault.apply:
            response = handler(request, **args)
            processed = True
        if fault is not None and fault.kind == "drop":
            # Logged before the connection is cut: the client may send its
            # next request the moment it sees the cut, and the log keeps
            # the order of arrival.
            self._log_request(entry, None, processed, started, request)
        if fault is not None:
            response = self._faulty_response(fault, response, environ)
        if fault is None or fault.kind != "drop":
            self._log_request(entry, response, processed, started, request)
        if response is None:
            # Dropped: writing to the closed socket fails and werkzeug lets it go.
            response = Response(b"")
        return response(environ, start_response)

    def _log_request(self, entry, response, processed, started, request):
        entry.update(
            status=response.status_code if response is not None else None,
            processed=processed,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            **getattr(request, "sim_note", {}),
        )
        self.requests.add(**entry)

    def _faulty_response(self, fault, response, environ):
        if fault.kind == "throttle":
            return json_response(
                {"errors": "Exceeded call limit. Reduce request rates to resume."},
                status=429,
                headers={"Retry-After": f"{fault.retry_after:g}"},
            )
        if fault.kind == "error":
            return json_response({"errors": "Internal error"}, status=fault.status)
        if fault.kind == "timeout":
            self.sleep(fault.hold)
            return json_response({"errors": "Timeout"}, status=504)
        if fault.kind == "drop":
            connection = environ.get("werkzeug.socket")
            if connection is not None:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            return None
        # malformed: what a proxy cut mid-body looks like
        body = response.get_data()
        return Response(body[: max(1, len(body) // 2)], status=200, content_type="application/json")

    # --- control API -------------------------------------------------------------
    def _control_rules(self):
        rule = CONTROL_PREFIX
        return [
            Rule(f"{rule}/health", endpoint="control_health", methods=["GET"]),
            Rule(f"{rule}/state", endpoint="control_state", methods=["GET"]),
            Rule(f"{rule}/requests", endpoint="control_requests", methods=["GET", "DELETE"]),
            Rule(f"{rule}/faults", endpoint="control_faults", methods=["GET", "POST", "DELETE"]),
            Rule(f"{rule}/events/trigger", endpoint="control_trigger", methods=["POST"]),
            Rule(f"{rule}/webhooks", endpoint="control_webhooks", methods=["GET", "POST"]),
            Rule(f"{rule}/webhooks/wait", endpoint="control_webhooks_wait", methods=["POST"]),
            Rule(f"{rule}/reset", endpoint="control_reset", methods=["POST"]),
        ]

    @staticmethod
    def _json_body(request):
        data = request.get_json(force=True, silent=True)
        if data is None and request.get_data():
            raise ValueError("the body is not JSON")
        return data or {}

    def control_health(self, request):
        return json_response({"simulator": self.name, "ok": True, "seed": self.seed})

    def control_state(self, request):
        with self.lock:
            return json_response(self.snapshot(request.args.getlist("part") or None))

    def control_requests(self, request):
        if request.method == "DELETE":
            self.requests.clear()
            return json_response({"cleared": True})
        since = int(request.args.get("since", 0))
        return json_response({"requests": self.requests.entries(since)})

    def control_faults(self, request):
        if request.method == "DELETE":
            self.faults.clear()
            self.webhooks.faults = WebhookFaults()
            return json_response({"cleared": True})
        if request.method == "POST":
            data = self._json_body(request)
            if data.get("replace"):
                self.faults.clear()
            rules = data.get("rules", [])
            for rule in rules:
                FaultRule.from_dict(rule)  # validates every rule before adding any
            for rule in rules:
                self.faults.add(**rule)
            if "webhooks" in data:
                self.webhooks.faults = WebhookFaults.from_dict(data["webhooks"])
        return json_response(
            {"rules": self.faults.describe(), "webhooks": asdict(self.webhooks.faults)}
        )

    def control_trigger(self, request):
        data = self._json_body(request)
        event = data.pop("event")
        with self.lock:
            result = self.trigger(event, data)
        return json_response({"event": event, "result": result})

    def control_webhooks(self, request):
        if request.method == "POST":
            data = self._json_body(request)
            if "url" in data:
                self.webhook_url = data["url"] or None
            if "secret" in data:
                self.webhooks.secret = data["secret"]
        return json_response(
            {
                "url": self.webhook_url,
                "pending": self.webhooks.pending(),
                "deliveries": self.webhooks.log(),
            }
        )

    def control_webhooks_wait(self, request):
        data = self._json_body(request)
        idle = self.wait_webhooks(float(data.get("timeout", 10)))
        return json_response({"idle": idle, "deliveries": self.webhooks.log()})

    def control_reset(self, request):
        data = self._json_body(request)
        self.reset(data.get("seed"))
        return json_response({"seed": self.seed})
