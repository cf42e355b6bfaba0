import logging
import time
from datetime import datetime, timedelta, timezone

from freezegun import freeze_time

from odoo import fields

from odoo.addons.connector_base.components.http_client import (
    CircuitOpenError,
    RateLimiter,
    RemoteError,
    RemoteRetryableError,
    parse_retry_after,
)

from .common import API_TOKEN, ConnectorCase, trap_jobs


class TestHttpClient(ConnectorCase):
    """The client classifies faults, paces itself, trips the breaker, keeps secrets."""

    def client(self, **kwargs):
        return self.backend._test_client(**kwargs)

    def test_connection_test_reads_the_remote(self):
        action = self.backend.action_test_connection()
        self.assertEqual(action["params"]["type"], "success")
        self.assertIn("test remote", action["params"]["message"])

    def test_connections_are_reused_across_calls(self):
        self.remote.client_ports.clear()
        for _ in range(3):
            self.client().get("/ping")  # a new client object each time, as jobs do
        self.assertEqual(len(set(self.remote.client_ports)), 1, "one TCP connection")

    def test_faults_are_classified(self):
        self.remote.script(
            "/partners/1",
            (429, {"Retry-After": "12"}, {}),
            (502, {}, {}),
            (400, {}, {"error": "bad request"}),
        )
        with self.assertRaises(RemoteRetryableError) as throttled:
            self.client().get("/partners/1")
        self.assertEqual((throttled.exception.status, throttled.exception.retry_after), (429, 12))
        with self.assertRaises(RemoteRetryableError) as down:
            self.client().get("/partners/1")
        self.assertEqual((down.exception.status, down.exception.retry_after), (502, None))
        with self.assertRaises(RemoteError) as refused:
            self.client().get("/partners/1")
        self.assertNotIsInstance(refused.exception, RemoteRetryableError)
        self.assertIn("bad request", str(refused.exception))

    def test_a_caller_may_read_a_refusal_itself(self):
        # A batch API names the items it refuses in a body longer than an
        # error message keeps: the caller asks for the answer instead.
        errors = [{"field": f"items[{n}].price", "detail": "x" * 40} for n in range(80)]
        self.remote.script("/batch", (400, {}, {"errors": errors}), (429, {}, {}))
        response = self.client().post("/batch", json={}, accept=(400,))
        self.assertEqual((response.status_code, response.json()["errors"]), (400, errors))
        with self.assertRaises(RemoteRetryableError):
            self.client().post("/batch", json={}, accept=(400,))

    def test_connection_refused_is_transient(self):
        self.backend.base_url = "http://127.0.0.1:9"  # discard port: nothing listens
        with self.assertRaises(RemoteRetryableError) as refused:
            self.client().get("/ping")
        self.assertIn("connection failed", str(refused.exception))

    def test_no_answer_in_time_is_transient(self):
        # Odoo's test base raises client timeouts below 10 s to 10 s: hold longer.
        self.remote.script("/slow", ("hold", 10.5))
        self.backend.timeout = 1
        error = self.expect_error(lambda: self.client().get("/slow"), RemoteRetryableError)
        self.assertIn("no answer within", str(error))

    def test_retry_after_in_seconds_or_as_http_date(self):
        now = datetime(2015, 10, 21, 7, 27, 30, tzinfo=timezone.utc)
        self.assertEqual(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now), 30)
        self.assertEqual(parse_retry_after("2.5"), 2.5)
        self.assertIsNone(parse_retry_after("soon"))

    def test_correlation_id_goes_with_the_call(self):
        with trap_jobs() as trap:
            event = self.receive(
                "partner.upsert", {"id": 3, "name": "C", "fetch_details": True}, "c"
            )
            self.run_jobs(trap)
        headers = self.remote.calls("/partners/3")[0][2]
        self.assertEqual(headers["X-Correlation-Id"], event.correlation_id)

    def test_rate_limit_paces_requests(self):
        self.backend.rate_limit = 20  # tokens refill at 20/s, bursts of 20
        client = self.client()
        started = time.monotonic()
        for _ in range(30):
            client.get("/ping")
        self.assertGreaterEqual(time.monotonic() - started, 0.45, "10 requests over the burst")
        RateLimiter._buckets.clear()

    def test_rate_limit_survives_a_clock_set_back(self):
        """A bucket last used under a frozen clock (a test's) still paces, and
        does not wait for that clock to come round again."""
        self.backend.rate_limit = 20
        with freeze_time("2026-12-01 23:30:00"):
            self.client().get("/ping")
        started = time.monotonic()
        for _ in range(5):
            self.client().get("/ping")
        self.assertLess(time.monotonic() - started, 5, "no wait for the frozen clock")
        RateLimiter._buckets.clear()

    def test_secrets_never_reach_the_log(self):
        self.remote.script("/partners/9", (500, {}, {"echo": f"token was {API_TOKEN}"}))
        with self.assertLogs("odoo.addons.connector_base", level=logging.DEBUG) as logs:
            client = self.client()
            client.get("/ping")
            failure = self.expect_error(
                lambda: client.get(f"/partners/9?access_token={API_TOKEN}"), RemoteRetryableError
            )
        text = "\n".join(logs.output) + str(failure) + (self.backend.last_failure or "")
        self.assertNotIn(API_TOKEN, text)
        self.assertIn("***", text)

    def test_circuit_opens_after_repeated_failures_and_closes_on_recovery(self):
        ping = self.ping
        start = fields.Datetime.now()
        with freeze_time(start):
            self.open_circuit()
            self.assertEqual(self.backend.state, "circuit_open")
            self.assertEqual(self.backend.consecutive_failures, 3)
            self.assertIn("HTTP 503", self.backend.last_failure)
            calls = len(self.remote.requests)
            held = self.expect_error(ping, CircuitOpenError)
            self.assertEqual(len(self.remote.requests), calls, "no call while the circuit is open")
            self.assertAlmostEqual(held.retry_after, 60, delta=1)
        self.remote.down = False
        with freeze_time(start + timedelta(seconds=61)):
            ping()  # the half-open probe succeeds
        self.assertEqual(self.backend.state, "running")
        self.assertEqual(self.backend.consecutive_failures, 0)

    def test_failed_probe_opens_the_circuit_again(self):
        ping = self.ping
        start = fields.Datetime.now()
        with freeze_time(start):
            self.open_circuit()
        with freeze_time(start + timedelta(seconds=61)):
            error = self.expect_error(ping, RemoteRetryableError)
            self.assertNotIsInstance(error, CircuitOpenError, "the probe went through")
            self.expect_error(ping, CircuitOpenError)
        self.assertEqual(self.backend.state, "circuit_open")

    def test_open_circuit_postpones_outbound_jobs(self):
        self.remote.down = True
        flush = lambda: self.backend._flush_outbound("partner.score")  # noqa: E731
        with trap_jobs() as trap:
            item = self.backend._send_later("partner.score", "k", {"score": 1})
            self.expect_retry(flush)
            # In a test, the job's savepoint also undoes the breaker's own
            # transaction; open the circuit with direct calls instead.
            self.open_circuit()
            self.assertEqual(self.backend.state, "circuit_open")
            calls = len(self.remote.requests)
            retry = self.expect_retry(flush)
            trap.enqueued_jobs.clear()
        self.assertEqual(len(self.remote.requests), calls)
        self.assertGreater(retry.seconds, 50)
        self.assertTrue(retry.ignore_retry, "waiting for the remote spends no attempt")
        self.assertEqual(item.state, "pending", "nothing lost while the remote is down")
        self.assertEqual(item.retry_count, 1, "only the failure before the circuit opened")
