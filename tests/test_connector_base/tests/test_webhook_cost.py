import http.client
import json
import time

from odoo.tests import HttpCase, tagged
from odoo.tests.common import HOST, TEST_CURSOR_COOKIE_NAME

from odoo.addons.connector_base.components.signature import hmac_sha256_base64

from .common import WEBHOOK_SECRET, start_remote_and_backend

LIMIT = 4 * 1024  # the backend's max_body_kb below


@tagged("post_install", "-at_install")
class TestWebhookCost(HttpCase):
    """What an unauthenticated request can make the intake do stays small.

    A bad signature is counted without touching the backend's row; a body
    over the limit is refused without being read (declared too long, or
    chunked and read no further than one byte past the limit); a replayed
    webhook is stored as a duplicate without its payload.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.remote, cls.backend = start_remote_and_backend(cls, max_body_kb=LIMIT // 1024)
        cls.path = f"/connector_test/webhook/{cls.backend.id}"

    def headers(self, raw, delivery, secret=WEBHOOK_SECRET):
        return {
            "Content-Type": "application/json",
            "X-Test-Topic": "partner.upsert",
            "X-Test-Delivery": delivery,
            "X-Test-Signature": hmac_sha256_base64(secret, raw),
        }

    def post_raw(self, headers):
        """A POST whose body the test writes by hand on the connection (inside
        ``allow_requests``, as url_open does)."""
        conn = http.client.HTTPConnection(HOST, self.http_port(), timeout=10)
        self.addCleanup(conn.close)
        conn.putrequest("POST", self.path)
        # What url_open sends: the test server answers only this test's requests.
        conn.putheader("Cookie", f"{TEST_CURSOR_COOKIE_NAME}={self.http_request_key}")
        conn.putheader("Content-Type", "application/json")
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        return conn

    def answer(self, conn):
        """The server's answer: status and JSON body."""
        response = conn.getresponse()
        return response.status, json.loads(response.read())

    def backend_row_updates(self):
        """UPDATEs of connector_backend rows in this transaction so far (the
        server's requests share the test's transaction)."""
        self.env.cr.execute(
            "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'connector_backend'"
        )
        return self.env.cr.fetchone()[0]

    def test_bad_signature_is_counted_without_updating_the_backend_row(self):
        before = self.backend_row_updates()
        raw = json.dumps({"id": 1, "name": "Forged"}).encode()
        for number in range(3):
            response = self.url_open(
                self.path,
                data=raw,
                headers=self.headers(raw, f"forged-{number}", secret="not-the-secret"),
                timeout=20,
            )
            self.assertEqual(response.status_code, 401)
        # An UPDATE would wait for whoever holds the backend's row (a job
        # recording the remote's health) and for every other bad request.
        self.assertEqual(self.backend_row_updates(), before, "no UPDATE of the backend's row")
        self.backend.invalidate_recordset()
        self.assertEqual(self.backend.webhook_rejected_count, 3)
        self.assertTrue(self.backend.webhook_rejected_at)
        # The daily purge folds the rows into the backend's total.
        self.env["connector.event"]._cron_purge()
        self.backend.invalidate_recordset()
        self.assertFalse(
            self.env["connector.webhook.rejection"].search([("backend_id", "=", self.backend.id)])
        )
        self.assertEqual(self.backend.webhook_rejected_count, 3)
        self.assertTrue(self.backend.webhook_rejected_at)

    def test_declared_length_over_the_limit_is_refused_unread(self):
        with self.allow_requests():
            conn = self.post_raw({"Content-Length": str(100 * 1024 * 1024)})
            conn.send(b'{"id": 1')  # of the 100 MB announced: reading them would hang
            status, body = self.answer(conn)
        self.assertEqual(status, 413)
        self.assertEqual(body["status"], f"body over {LIMIT} bytes")

    def test_declared_length_over_the_limit_is_refused_once_sent(self):
        # A client (a store's POS) sends its whole body before it reads the
        # answer: closed on it while it still sent, it would never read the
        # 413 and would take it for a lost answer, sending again forever.
        body = b'{"note": "' + b"x" * (2 * LIMIT) + b'"}'
        with self.allow_requests():
            conn = self.post_raw({"Content-Length": str(len(body))})
            conn.send(body[:LIMIT])
            time.sleep(0.5)  # the server has looked at the length meanwhile
            conn.send(body[LIMIT:])
            status, answer = self.answer(conn)
        self.assertEqual(status, 413)
        self.assertEqual(answer["status"], f"body over {LIMIT} bytes")
        self.assertFalse(self.env["connector.event"].search([("backend_id", "=", self.backend.id)]))

    def test_chunked_body_is_read_no_further_than_the_limit(self):
        chunk = b"x" * (LIMIT + 10)
        with self.allow_requests():
            conn = self.post_raw({"Transfer-Encoding": "chunked"})
            # No last chunk: a server that reads the body to its end waits
            # here until the client gives up.
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            status, body = self.answer(conn)
        self.assertEqual(status, 413)
        self.assertEqual(body["status"], f"body over {LIMIT} bytes")
        self.assertFalse(self.env["connector.event"].search([("backend_id", "=", self.backend.id)]))

    def test_malformed_chunked_body_is_refused(self):
        with self.allow_requests():
            conn = self.post_raw({"Transfer-Encoding": "chunked"})
            conn.send(b"not-a-size\r\n{}\r\n0\r\n\r\n")
            status, body = self.answer(conn)
        self.assertEqual(status, 400)
        self.assertEqual(body["status"], "body not readable: Invalid chunk header")

    def test_chunked_body_within_the_limit_is_accepted(self):
        raw = json.dumps({"id": 2, "name": "Chunked"}).encode()
        # A generator body: requests sends it chunked, without Content-Length.
        response = self.url_open(
            self.path,
            data=(raw[i : i + 7] for i in range(0, len(raw), 7)),
            headers=self.headers(raw, "chunked-1"),
            timeout=20,
        )
        self.assertEqual(response.status_code, 200, response.text)
        event = self.env["connector.event"].search([("idempotency_key", "=", "chunked-1")])
        self.assertEqual(event.payload, {"id": 2, "name": "Chunked"})

    def test_replayed_webhook_is_a_duplicate_without_its_payload(self):
        raw = json.dumps({"id": 3, "name": "Captured", "note": "y" * 2000}).encode()
        for _ in range(3):
            response = self.url_open(
                self.path, data=raw, headers=self.headers(raw, "captured-1"), timeout=20
            )
            self.assertEqual(response.status_code, 200)
        self.env.cr.execute(
            "SELECT state, payload IS NULL FROM connector_event "
            "WHERE backend_id = %s AND idempotency_key = 'captured-1' ORDER BY id",
            (self.backend.id,),
        )
        self.assertEqual(
            self.env.cr.fetchall(),
            [("received", False), ("duplicate", True), ("duplicate", True)],
        )
        original = self.env["connector.event"].search(
            [("idempotency_key", "=", "captured-1"), ("duplicate_of_id", "=", False)]
        )
        self.assertEqual(original.duplicate_count, 2)
        self.assertEqual(original.payload["name"], "Captured")
