"""HTTP client base of the connectors, on ``requests``.

What every connector needs from a remote API conversation, in one place:
a reused session per thread, timeouts, a correlation-id header, a per-backend
rate limit, the classification of failures (429, 5xx, timeouts and dropped
connections are transient and carry the remote's Retry-After; other 4xx are
not; 401 and 403 say the credentials were rejected), hooks for the backend's
circuit breaker, and secrets redacted from every log line.
"""

import email.utils
import logging
import re
import threading
import time
from datetime import datetime, timezone

import requests

_logger = logging.getLogger(__name__)

CORRELATION_HEADER = "X-Correlation-Id"
REDACTED = "***"
# The remote refused the credentials (unknown or revoked token, missing scope).
AUTH_REJECTED_STATUSES = (401, 403)


# The answer of a remote asking its client to slow down.
THROTTLED_STATUS = 429


class RemoteError(Exception):
    """The remote refused the request; retrying the same request will not help."""

    def __init__(self, message, status=None, body=None):
        super().__init__(message)
        self.status = status
        self.body = body


class RemoteRetryableError(RemoteError):
    """A transient fault (throttled, remote down, timeout): try again later.

    ``retry_after`` is the delay in seconds the remote asked for, or None.
    ``throttled``: the remote asked to slow down (HTTP 429, or a throttle
    said in the body, as GraphQL APIs do) rather than failed.
    """

    def __init__(self, message, status=None, body=None, retry_after=None, throttled=None):
        super().__init__(message, status=status, body=body)
        self.retry_after = retry_after
        self.throttled = status == THROTTLED_STATUS if throttled is None else throttled


class CircuitOpenError(RemoteRetryableError):
    """The backend's circuit breaker is open: the remote is not called at all."""


def answer_json(response, what):
    """The JSON body of a 2xx answer; an answer that cannot be read is a
    transient fault: cut on the way (a proxy, a dropped connection), the
    remote may have applied the request, and the resend, idempotent, gets
    its answer. ``what`` names the request in the error (``"POST order"``)."""
    try:
        return response.json()
    except ValueError as exc:
        raise RemoteRetryableError(
            f"{what}: the answer could not be read ({exc}); sent again."
        ) from exc


def parse_retry_after(value, now=None):
    """Seconds to wait from a Retry-After header (seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


class Redactor:
    """Replaces every known secret, and common credential shapes, by ***."""

    CREDENTIAL_PATTERNS = (
        # Authorization: Bearer xyz  /  "Authorization": "Basic xyz"
        (
            re.compile(
                r"(?i)\b(authorization['\"]?\s*[:=]\s*['\"]?)((?:bearer|basic|token)\s+)?"
                r"[^'\",\s}]+"
            ),
            r"\1\2***",
        ),
        # X-Shopify-Access-Token: xyz, X-Api-Key=xyz, X-...-Hmac-Sha256: xyz
        (
            re.compile(
                r"(?i)\b(x-[\w-]*(?:token|key|secret|signature|hmac)[\w-]*['\"]?\s*[:=]\s*['\"]?)"
                r"[^'\",\s}]+"
            ),
            r"\1***",
        ),
        # ?access_token=xyz&api_key=xyz
        (re.compile(r"(?i)\b((?:access_)?token|api_key|secret|password)=[^&\s'\"]+"), r"\1=***"),
    )

    def __init__(self, secrets=()):
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text):
        text = str(text)
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        for pattern, replacement in self.CREDENTIAL_PATTERNS:
            text = pattern.sub(replacement, text)
        return text


class RateLimiter:
    """Token bucket: at most ``rate`` requests per second, bursts of ``burst``.

    One bucket per backend and worker process; callers block until a token is
    free, so a connector never outruns the limit it was given.
    """

    _buckets = {}
    _lock = threading.Lock()

    def __init__(self, rate, burst=None):
        self.rate = float(rate)
        self.capacity = float(burst or max(1.0, rate))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    @classmethod
    def for_key(cls, key, rate):
        """The shared bucket of ``key`` (a backend), created or resized."""
        with cls._lock:
            bucket = cls._buckets.get(key)
            if bucket is None or bucket.rate != float(rate):
                bucket = cls._buckets[key] = cls(rate)
            return bucket

    def acquire(self):
        """Take one token; return the seconds spent waiting for it."""
        waited = 0.0
        while True:
            with self.lock:
                now = time.monotonic()
                # A clock set back (a test's frozen time let go) refills nothing
                # rather than draining the bucket for good.
                elapsed = max(0.0, now - self.updated)
                self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return waited
                pause = (1 - self.tokens) / self.rate
            time.sleep(pause)
            waited += pause


class HttpClient:
    """A conversation with one remote API on behalf of one backend.

    :param base_url: root of the API; request paths are joined to it.
    :param timeout: seconds for connect and for read.
    :param headers: sent with every request (authentication included).
    :param secrets: strings never to appear in a log line.
    :param rate_limiter: a :class:`RateLimiter`, or None for no limit.
    :param breaker: object with ``before_request()`` (raises
        :class:`CircuitOpenError` while open), ``record_success(authorized)``
        (the remote answered; ``authorized``: it accepted the credentials),
        ``record_failure(message)`` and ``record_auth_rejected(message)`` (it
        answered 401 or 403); None for no circuit breaker.
    :param correlation_id: sent as ``X-Correlation-Id``.
    """

    _local = threading.local()

    def __init__(
        self,
        base_url,
        *,
        timeout=30,
        headers=None,
        secrets=(),
        rate_limiter=None,
        breaker=None,
        correlation_id=None,
        session_key=None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.redact = Redactor(secrets)
        self.rate_limiter = rate_limiter
        self.breaker = breaker
        self.correlation_id = correlation_id
        self.session_key = session_key or self.base_url

    @property
    def session(self):
        """One ``requests.Session`` per thread and remote: connections are reused."""
        sessions = self._local.__dict__.setdefault("sessions", {})
        if self.session_key not in sessions:
            sessions[self.session_key] = requests.Session()
        return sessions[self.session_key]

    def url(self, path):
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method, path, **kwargs):
        """Send one request; return the response of a 2xx/3xx answer.

        Raises :class:`RemoteRetryableError` for transient faults and
        :class:`RemoteError` for refusals; both are recorded by the breaker.
        ``accept``: 4xx statuses returned as responses instead, for a caller
        that reads the remote's refusal itself (a batch API naming the items
        it refused in a body too long for an error message).
        """
        accept = kwargs.pop("accept", ())
        url = self.url(path)
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if self.correlation_id:
            headers.setdefault(CORRELATION_HEADER, self.correlation_id)
        if self.breaker:
            self.breaker.before_request()
        if self.rate_limiter:
            self.rate_limiter.acquire()
        started = time.monotonic()
        try:
            response = self.session.request(
                method, url, headers=headers, timeout=kwargs.pop("timeout", self.timeout), **kwargs
            )
        except requests.Timeout as exc:
            raise self._failed(f"{method} {url}: no answer within {self.timeout} s", exc) from exc
        except requests.ConnectionError as exc:
            raise self._failed(f"{method} {url}: connection failed ({exc})", exc) from exc
        elapsed = (time.monotonic() - started) * 1000
        _logger.debug(
            self.redact(
                f"{method} {url} -> {response.status_code} in {elapsed:.0f} ms "
                f"[{self.correlation_id or '-'}]"
            )
        )
        return self._classify(method, url, response, accept)

    def _failed(self, message, exc=None, status=None, body=None, retry_after=None):
        message = self.redact(message)
        _logger.info("remote call failed: %s", message)
        if self.breaker:
            self.breaker.record_failure(message)
        return RemoteRetryableError(message, status=status, body=body, retry_after=retry_after)

    def _classify(self, method, url, response, accept=()):
        status = response.status_code
        body = self.redact(response.text[:2000])
        if status == THROTTLED_STATUS or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            label = "throttled" if status == THROTTLED_STATUS else "remote error"
            raise self._failed(
                f"{method} {url}: HTTP {status} ({label}): {body[:300]}",
                status=status,
                body=body,
                retry_after=retry_after,
            )
        if self.breaker:
            # A refusal proves the remote is up: it does not count for the breaker.
            self.breaker.record_success(authorized=status < 400)
        if status >= 400 and status not in accept:
            message = f"{method} {url}: HTTP {status}: {body[:500]}"
            if status in AUTH_REJECTED_STATUSES and self.breaker:
                self.breaker.record_auth_rejected(message)
            raise RemoteError(message, status, body)
        return response

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path, **kwargs):
        return self.request("PUT", path, **kwargs)
