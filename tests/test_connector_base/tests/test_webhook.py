import json
from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.tests import HttpCase, tagged

from odoo.addons.connector_base.components.signature import hmac_sha256_base64

from .common import WEBHOOK_SECRET, start_remote_and_backend


@tagged("post_install", "-at_install")
class TestWebhook(HttpCase):
    """The webhook endpoint verifies, bounds, stores and acknowledges."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.remote, cls.backend = start_remote_and_backend(cls, max_body_kb=4)
        cls.Event = cls.env["connector.event"]

    def post(
        self,
        body,
        delivery="d-1",
        *,
        topic="partner.upsert",
        secret=WEBHOOK_SECRET,
        signature=None,
        backend=None,
    ):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Test-Topic": topic,
            "X-Test-Delivery": delivery,
            "X-Correlation-Id": f"corr-{delivery}",
        }
        if signature is not False:
            headers["X-Test-Signature"] = signature or hmac_sha256_base64(secret, raw)
        url = f"/connector_test/webhook/{(backend or self.backend).id}"
        return self.url_open(url, data=raw, headers=headers, timeout=20)

    def events(self):
        return self.Event.search([("backend_id", "=", self.backend.id)])

    def test_signed_webhook_is_stored_acknowledged_then_queued(self):
        response = self.post({"id": 1, "name": "Signed"})
        self.assertEqual(response.status_code, 200)
        event = self.events()
        self.assertEqual(len(event), 1)
        self.assertEqual(response.json(), {"status": "received", "event": event.id})
        self.assertEqual((event.topic, event.idempotency_key), ("partner.upsert", "d-1"))
        self.assertEqual(event.correlation_id, "corr-d-1")
        self.assertEqual(event.payload, {"id": 1, "name": "Signed"})
        # Its job comes from the backend's dispatcher, due a second later.
        dispatcher = self.env["queue.job"].search(
            [("identity_key", "=", f"connector.dispatch-{self.backend.id}")]
        )
        self.assertEqual(dispatcher.state, "pending")
        self.Event._dispatch_received(self.backend.id)
        self.assertEqual((event.state, len(event.job_ids)), ("queued", 1))

    def test_redelivery_is_acknowledged_as_duplicate(self):
        self.post({"id": 2, "name": "Once"}, delivery="same")
        response = self.post({"id": 2, "name": "Once"}, delivery="same")
        self.assertEqual(response.json()["status"], "duplicate")
        self.assertEqual(sorted(self.events().mapped("state")), ["duplicate", "received"])

    def test_wrong_or_missing_signature_is_refused_and_counted(self):
        wrong = self.post({"id": 3, "name": "Forged"}, secret="not-the-secret")
        missing = self.post({"id": 3, "name": "Unsigned"}, delivery="d-2", signature=False)
        self.assertEqual((wrong.status_code, missing.status_code), (401, 401))
        self.assertFalse(self.events(), "nothing stored, nothing processed")
        self.assertEqual(self.backend.webhook_rejected_count, 2)
        self.assertTrue(self.backend.webhook_rejected_at)

    def test_replayed_signature_of_another_body_is_refused(self):
        signature = hmac_sha256_base64(WEBHOOK_SECRET, b'{"id": 4, "name": "Original"}')
        response = self.post({"id": 4, "name": "Tampered"}, signature=signature)
        self.assertEqual(response.status_code, 401)
        self.assertFalse(self.events())

    def test_oversized_body_is_refused_before_reading(self):
        response = self.post({"id": 5, "name": "x" * 5000})
        self.assertEqual(response.status_code, 413)
        self.assertFalse(self.events())

    def test_malformed_json_is_refused(self):
        response = self.post(b'{"id": 6, "name": ')
        self.assertEqual(response.status_code, 400)
        self.assertIn("not valid JSON", response.json()["status"])
        self.assertFalse(self.events())

    def test_body_the_database_cannot_store_is_refused_with_why(self):
        # Found by fuzzing the endpoint: each was an HTTP 500 after signing.
        bodies = {
            b'{"id": 8, "name": NaN}': "NaN is not a JSON number",
            b'{"id": 8, "name": "\\u0000"}': "NUL character",
            b'{"id": 8, "name": "\\ud800"}': "unpaired surrogate",
            b'{"id": 8, "name": "\xed\xa0\x80"}': "not UTF-8",
            b"[" * 100 + b"]" * 100: "nests deeper than 64 levels",
        }
        for number, (body, why) in enumerate(bodies.items()):
            with self.subTest(why=why):
                response = self.post(body, delivery=f"bad-{number}")
                self.assertEqual(response.status_code, 400)
                self.assertIn(why, response.json()["status"])
        self.assertFalse(self.events(), "nothing half-stored")

    def test_delivery_without_its_identity_is_refused(self):
        response = self.post({"id": 7, "name": "No id"}, delivery="")
        self.assertEqual(response.status_code, 400)
        self.assertFalse(self.events())

    def test_unknown_backend_is_refused(self):
        ghost = self.backend.copy({"name": "Ghost"})
        ghost_id = ghost.id
        ghost.unlink()
        response = self.url_open(f"/connector_test/webhook/{ghost_id}", data=b"{}", timeout=20)
        self.assertEqual(response.status_code, 401)

    def test_previous_secret_is_accepted_during_the_rotation_grace_only(self):
        self.backend.webhook_secret = "whsec-rotated-new"
        self.assertEqual(self.post({"id": 8, "name": "Old"}, "r-1").status_code, 200)
        self.assertEqual(
            self.post({"id": 8, "name": "New"}, "r-2", secret="whsec-rotated-new").status_code, 200
        )
        with freeze_time(fields.Datetime.now() + timedelta(minutes=61)):
            self.assertEqual(self.post({"id": 8, "name": "Late"}, "r-3").status_code, 401)
