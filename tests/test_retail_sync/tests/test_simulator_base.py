"""The simulator base: lifecycle, control API, faults and webhook delivery.

The simulators are test infrastructure: if one lies, every test built on it
lies. These tests hold the base to what it promises, with independent checks
(plain sockets and urllib where Odoo's patched ``requests`` would interfere,
an HMAC computed here rather than by the simulator).
"""

import base64
import hashlib
import hmac
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal

import requests
import simulators
from simulators.base import seeded_random
from simulators.retail_data import RetailDataGenerator, ean13, price_order
from simulators.testing import WebhookReceiver

from odoo.tests import BaseCase

TIMEOUT = 10  # Odoo's test class raises shorter request timeouts to 10 s anyway


class SimulatorCase(BaseCase):
    """Starts a POS simulator (the base and a health endpoint) for the class."""

    simulator_class = simulators.PosSimulator

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sim = cls.simulator_class(seed=42).start()
        cls.addClassCleanup(cls.sim.stop)

    def setUp(self):
        super().setUp()
        self.sim.reset(42)  # no faults, empty logs, nothing queued

    def get(self, path, **kwargs):
        return requests.get(f"{self.sim.url}{path}", timeout=TIMEOUT, **kwargs)

    def control(self, path, payload=None):
        response = requests.post(f"{self.sim.url}/_sim{path}", json=payload or {}, timeout=TIMEOUT)
        response.raise_for_status()
        return response.json()


class TestLifecycle(BaseCase):
    def test_starts_on_an_ephemeral_port_and_stops_every_thread(self):
        before = set(threading.enumerate())
        with simulators.FinanceSimulator(seed=1) as sim:
            self.assertRegex(sim.url, r"^http://127\.0\.0\.1:\d+$")
            session = requests.Session()  # a keep-alive connection left open on purpose
            self.assertEqual(session.get(f"{sim.url}/api/health", timeout=TIMEOUT).status_code, 200)
            port = int(sim.url.rsplit(":", 1)[1])
        # stop() has returned: its threads are gone, the idle keep-alive one included
        left = [
            t.name
            for t in set(threading.enumerate()) - before
            if t.name.startswith("simulator") or "process_request" in t.name
        ]
        session.close()
        self.assertEqual(left, [], "threads left behind")
        with socket.socket() as probe:  # nothing listens there any more
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))

    def test_each_simulator_answers_its_health_endpoint(self):
        for name, simulator_class in simulators.SIMULATORS.items():
            with simulator_class(seed=3) as sim:
                control = requests.get(f"{sim.url}/_sim/health", timeout=TIMEOUT).json()
                self.assertEqual(control["simulator"], name)
                self.assertTrue(control["ok"])

    def test_command_line_prints_the_url_and_serves_until_stopped(self):
        proc = subprocess.Popen(
            [sys.executable, "-m", "simulators", "pos", "--port", "0", "--seed", "5"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            line = proc.stdout.readline()
            url = line.split()[1]
            self.assertTrue(url.startswith("http://127.0.0.1:"), line)
            health = requests.get(f"{url}/api/health", timeout=TIMEOUT).json()
            self.assertEqual(health["system"], "pos")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            proc.stdout.close()
        self.assertEqual(proc.returncode, 0)


class TestControlApi(SimulatorCase):
    def test_state_faults_requests_and_reset_over_http(self):
        state = requests.get(f"{self.sim.url}/_sim/state", timeout=TIMEOUT).json()
        self.assertEqual(state["system"], "pos")
        self.assertTrue(state["skus"])
        rules = self.control(
            "/faults", {"rules": [{"kind": "error", "status": 502, "endpoint": "/api/health"}]}
        )
        self.assertEqual(rules["rules"][0]["status"], 502)
        self.assertEqual(self.get("/api/health").status_code, 502)
        log = requests.get(f"{self.sim.url}/_sim/requests", timeout=TIMEOUT).json()["requests"]
        self.assertEqual(
            [(e["path"], e["status"], e["faults"]) for e in log], [("/api/health", 502, ["error"])]
        )
        self.assertFalse(log[0]["processed"])
        requests.delete(f"{self.sim.url}/_sim/faults", timeout=TIMEOUT).raise_for_status()
        self.assertEqual(self.get("/api/health").status_code, 200)
        self.assertEqual(self.control("/reset", {"seed": 42})["seed"], 42)
        self.assertEqual(
            requests.get(f"{self.sim.url}/_sim/requests", timeout=TIMEOUT).json(), {"requests": []}
        )

    def test_bad_fault_rule_is_refused_with_a_reason(self):
        response = requests.post(
            f"{self.sim.url}/_sim/faults", json={"rules": [{"kind": "gremlins"}]}, timeout=TIMEOUT
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn("unknown fault kind", response.json()["error"])

    def test_unknown_path_is_a_json_404(self):
        response = self.get("/nowhere")
        self.assertEqual(response.status_code, 404)
        self.assertIn("errors", response.json())


class TestFaults(SimulatorCase):
    def statuses(self, count):
        return [self.get("/api/health").status_code for _ in range(count)]

    def test_error_rate_is_within_tolerance_and_replays_exactly(self):
        self.sim.faults.add("error", rate=0.3, endpoint="/api/health", status=503)
        first = self.statuses(300)
        share = first.count(503) / len(first)
        # 3 standard deviations of a binomial(300, 0.3): 0.079
        self.assertAlmostEqual(share, 0.3, delta=0.08)
        self.assertEqual(set(first), {200, 503})
        self.sim.reset(42)
        self.sim.faults.add("error", rate=0.3, endpoint="/api/health", status=503)
        self.assertEqual(self.statuses(300), first, "same seed, same requests: same faults")

    def test_another_seed_draws_other_requests(self):
        self.sim.faults.add("error", rate=0.5, endpoint="/api/health")
        first = self.statuses(40)
        self.sim.faults.reseed(43)
        self.sim.faults.add("error", rate=0.5, endpoint="/api/health")
        self.assertNotEqual(self.statuses(40), first)

    def test_throttle_answers_429_with_retry_after(self):
        self.sim.faults.add("throttle", retry_after=2, limit=1)
        response = self.get("/api/health")
        self.assertEqual(response.status_code, 429)
        self.assertEqual(response.headers["Retry-After"], "2")
        self.assertEqual(self.get("/api/health").status_code, 200, "limit=1: once only")

    def test_latency_delays_the_answer(self):
        self.sim.faults.add("latency", latency=0.3)
        started = time.monotonic()
        self.assertEqual(self.get("/api/health").status_code, 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.3)

    def test_timeout_holds_the_request_past_the_client_timeout(self):
        # urllib: Odoo's test class raises requests' timeouts below 10 s to 10 s.
        self.sim.faults.add("timeout", hold=1.5, limit=1)
        with self.assertRaises((TimeoutError, socket.timeout, urllib.error.URLError)):
            urllib.request.urlopen(f"{self.sim.url}/api/health", timeout=0.3)
        entry = self.wait_for_log_entry()
        self.assertEqual((entry["status"], entry["faults"]), (504, ["timeout"]))

    def wait_for_log_entry(self):
        deadline = time.monotonic() + 5
        while not self.sim.requests.entries() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.sim.requests.entries()[0]

    def test_drop_closes_the_connection_without_an_answer(self):
        self.sim.faults.add("drop", limit=1)
        with self.assertRaises(requests.ConnectionError):
            self.get("/api/health")
        self.assertEqual(self.get("/api/health").status_code, 200)
        self.assertEqual(self.sim.requests.entries()[0]["faults"], ["drop"])

    def test_malformed_answers_a_body_that_does_not_parse(self):
        self.sim.faults.add("malformed", limit=1)
        response = self.get("/api/health")
        self.assertEqual(response.status_code, 200)
        with self.assertRaises(ValueError):
            json.loads(response.text)
        self.assertTrue(self.sim.requests.entries()[0]["processed"])

    def test_rules_match_their_endpoint_only(self):
        self.sim.faults.add("error", endpoint="/elsewhere")
        self.assertEqual(self.statuses(5), [200] * 5)


class TestWebhookDelivery(SimulatorCase):
    def send(self, receiver, count):
        for number in range(count):
            body = json.dumps({"n": number}).encode()
            self.sim.emit_webhook(
                "test/topic", body, {"X-Topic": "test/topic"}, f"webhook-{number}", url=receiver.url
            )
        self.assertTrue(self.sim.wait_webhooks(10))

    @staticmethod
    def signature(secret, body):
        return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()

    def test_signature_verifies_with_an_independent_hmac(self):
        with WebhookReceiver() as receiver:
            self.send(receiver, 1)
            delivery = receiver.wait_for(1)[0]
        self.assertEqual(
            delivery["headers"][self.sim.signature_header],
            self.signature(self.sim.webhooks.secret, delivery["body"]),
        )

    def test_failed_delivery_is_retried_with_the_same_webhook_id(self):
        with WebhookReceiver(statuses=[500, 503]) as receiver:
            self.send(receiver, 1)
            deliveries = receiver.wait_for(3)
        self.assertEqual([d["status"] for d in deliveries], [500, 503, 200])
        self.assertEqual({d["body"] for d in deliveries}, {b'{"n": 0}'})
        log = self.sim.webhooks.log()
        self.assertEqual([e["attempt"] for e in log], [0, 1, 2])
        self.assertEqual({e["webhook_id"] for e in log}, {"webhook-0"})

    def test_delivery_gives_up_after_the_retry_schedule(self):
        with WebhookReceiver(status=500) as receiver:
            self.send(receiver, 1)
        attempts = self.sim.webhooks.log()
        self.assertEqual(len(attempts), 1 + len(self.sim.webhooks.retry_schedule))
        self.assertTrue(attempts[-1]["gave_up"])

    def test_duplicate_out_of_order_and_bad_signature_faults(self):
        self.sim.webhooks.faults = simulators.WebhookFaults(
            duplicate=0.2, out_of_order=0.2, bad_signature=0.2
        )
        with WebhookReceiver() as receiver:
            self.send(receiver, 60)
            received = receiver.wait_for(60)
        log = self.sim.webhooks.log()
        duplicated = [e["number"] for e in log if e["duplicate"]]
        ids = [json.loads(d["body"])["n"] for d in received]
        self.assertTrue(duplicated, "some deliveries duplicated")
        self.assertEqual(len(received), 60 + len(duplicated))
        self.assertEqual(sorted(set(ids)), list(range(60)), "every webhook delivered")
        self.assertNotEqual(ids, sorted(ids), "some deliveries overtaken")
        bad = [
            d
            for d in received
            if d["headers"][self.sim.signature_header]
            != self.signature(self.sim.webhooks.secret, d["body"])
        ]
        flagged = {e["webhook_id"] for e in log if "bad_signature" in e["faults"]}
        self.assertTrue(bad)
        self.assertEqual({f"webhook-{json.loads(d['body'])['n']}" for d in bad}, flagged)
        # the fault shares, for this seed, are within tolerance of the rates
        for fault in ("duplicate", "out_of_order", "bad_signature"):
            share = sum(fault in e["faults"] for e in log if not e["duplicate"]) / 60
            self.assertAlmostEqual(share, 0.2, delta=0.16, msg=fault)

    def test_delay_sends_later(self):
        self.sim.webhooks.faults = simulators.WebhookFaults(delay=1.0, delay_seconds=0.4)
        with WebhookReceiver() as receiver:
            started = time.monotonic()
            self.send(receiver, 1)
            receiver.wait_for(1)
        self.assertGreaterEqual(time.monotonic() - started, 0.4)
        self.assertEqual(self.sim.webhooks.log()[0]["faults"], ["delay"])


class TestRetailData(BaseCase):
    def generate(self, seed):
        from datetime import datetime, timezone  # noqa: PLC0415

        generator = RetailDataGenerator(
            seeded_random(seed, "test"), datetime(2026, 11, 1, tzinfo=timezone.utc)
        )
        return generator.products(12), generator.customers(5)

    def test_same_seed_same_data_other_seed_other_data(self):
        self.assertEqual(self.generate(1), self.generate(1))
        self.assertNotEqual(self.generate(1), self.generate(2))

    def test_catalogue_is_realistic(self):
        products, customers = self.generate(1)
        skus = [v["sku"] for p in products for v in p["variants"]]
        self.assertEqual(len(skus), len(set(skus)), "SKUs are unique")
        self.assertGreater(len(skus), len(products), "products have variants")
        for variant in (v for p in products for v in p["variants"]):
            barcode = variant["barcode"]
            self.assertEqual(barcode, ean13(int(barcode[:12])), "valid EAN-13 check digit")
            self.assertGreater(variant["price"], 0)
        self.assertEqual(len({c["email"] for c in customers}), len(customers))

    def test_discount_allocations_and_taxes_add_up(self):
        lines = [
            {"unit_price": Decimal("19.90"), "quantity": 3},
            {"unit_price": Decimal("7.35"), "quantity": 1},
        ]
        fixed = price_order(
            lines,
            {"kind": "fixed_amount", "value": Decimal("5.00")},
            Decimal("4.90"),
            Decimal("0.20"),
            taxes_included=True,
        )
        self.assertEqual(sum(line["discount"] for line in fixed["lines"]), Decimal("5.00"))
        self.assertEqual(fixed["total"], Decimal("59.70") + Decimal("7.35") - 5 + Decimal("4.90"))
        # 5.00 spread pro rata: 4.45 on the first line (59.70 of 67.05), the rest on the last
        self.assertEqual(
            [line["discount"] for line in fixed["lines"]], [Decimal("4.45"), Decimal("0.55")]
        )
        # tax included: net price x rate / (1 + rate), per line: 55.25 x 0.2 / 1.2
        self.assertEqual(fixed["lines"][0]["tax"], Decimal("9.21"))
        percent = price_order(
            lines,
            {"kind": "percentage", "value": Decimal("10")},
            Decimal("0"),
            Decimal("0.04"),
            taxes_included=False,
        )
        self.assertEqual(percent["total_discounts"], Decimal("5.97") + Decimal("0.74"))
        self.assertEqual(percent["total"], percent["subtotal"] + percent["total_tax"])
