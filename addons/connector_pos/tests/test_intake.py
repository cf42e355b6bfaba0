import json
import logging
import time
from datetime import datetime

from odoo.tests import tagged

from .common import STORE, PosCase, batch, sale

_logger = logging.getLogger(__name__)


@tagged("post_install", "-at_install")
class TestPosIntake(PosCase):
    """The upload API: authenticated, bounded, checked, stored once."""

    def batches(self):
        return self.env["connector.pos.batch"].search([("backend_id", "=", self.backend.id)])

    def test_signed_batch_is_stored_one_event_per_ticket(self):
        tickets = [sale(n, [("TSH-BLK-M", 1, "19.90", "0", "VAT20")]) for n in (1, 2)]
        response = self.upload(batch(tickets, batch_id="B-1"))
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(
            response.json(),
            {"batch_id": "B-1", "status": "stored", "tickets": 2, "accepted": 2, "duplicates": 0},
        )
        events = self.events()
        self.assertEqual(events.mapped("idempotency_key"), [t["uuid"] for t in tickets])
        self.assertEqual(set(events.mapped("topic")), {"ticket"})
        self.assertEqual(set(events.mapped("sequence_key")), {"S01/R1"})
        self.assertEqual(set(events.mapped("source")), {"upload"})
        # closed_at 10:01:30+01:00 is 09:01:30 UTC
        self.assertEqual(events[0].occurred_at, datetime(2026, 11, 30, 9, 1, 30))
        self.assertEqual(events[0].payload["store"], STORE)

    def test_resent_batch_gets_the_same_answer_and_stores_nothing(self):
        body = batch([sale(1, [("MUG-WHT", 2, "8.50", "0", "VAT20")])])
        first = self.upload(body).json()
        again = self.upload(body)
        self.assertEqual(again.status_code, 200)
        self.assertEqual(again.json(), {**first, "status": "already_received"})
        self.assertEqual(len(self.events()), 1)
        self.assertEqual(len(self.batches()), 1)

    def test_ticket_in_two_batches_counts_once(self):
        ticket = sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20")])
        other = sale(2, [("MUG-WHT", 1, "8.50", "0", "VAT20")])
        self.apply(batch([ticket]))
        answer = self.apply(batch([ticket, other, other]))
        self.assertEqual((answer["accepted"], answer["duplicates"]), (1, 2))
        self.assertEqual(len(self.order(ticket)), 1)
        self.assertEqual(len(self.order(other)), 1)
        self.assertEqual(
            sorted(self.events().mapped("state")), ["done", "done", "duplicate", "duplicate"]
        )

    def test_wrong_signature_is_refused_and_stores_nothing(self):
        response = self.upload(batch([sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20")])]), key="k")
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error"]["code"], "unauthorized")
        self.assertFalse(self.events())
        self.assertFalse(self.batches())

    def test_unknown_store_or_fleet_is_refused(self):
        body = batch([sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20")])], store="S99")
        self.assertEqual(self.upload(body, store="S99", key=self.keys[STORE]).status_code, 401)
        body = batch([sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20")])])
        self.assertEqual(self.upload(body, fleet="other-fleet").status_code, 401)
        self.assertFalse(self.events())

    def test_rotated_key_stops_the_old_one_at_once(self):
        old = self.keys[STORE]
        self.store.action_generate_upload_key()
        body = batch([sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20")])])
        self.assertEqual(self.upload(body, key=old).status_code, 401)
        self.assertEqual(self.upload(body, key=self.store.sudo().upload_key).status_code, 200)

    def test_oversize_batch_is_refused(self):
        tickets = [sale(n, [("MUG-WHT", 1, "8.50", "0", "VAT20")]) for n in range(1001)]
        response = self.upload(batch(tickets))
        self.assertEqual(response.status_code, 413)
        self.assertEqual(response.json()["error"]["code"], "batch_too_large")
        body = batch([sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20")], note="x" * 2_200_000)])
        self.assertEqual(self.upload(body).status_code, 413)
        self.assertFalse(self.events())

    def test_wrong_envelope_is_refused_with_details(self):
        body = batch([sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20")])], store="S01")
        del body["batch_id"]
        body["tickets"].append("not a ticket")
        response = self.upload(body)
        self.assertEqual(response.status_code, 400)
        error = response.json()["error"]
        self.assertEqual(error["code"], "invalid_batch")
        self.assertIn("batch_id: required, a non-empty string", error["details"])
        self.assertIn("tickets: items 1 are not JSON objects", error["details"])
        response = self.upload(None, raw=b"{not json")
        self.assertEqual(response.status_code, 400)
        self.assertIn("not valid JSON", response.json()["error"]["message"])
        self.assertFalse(self.events())

    def test_store_differing_from_its_header_is_refused(self):
        self.store.copy({"code": "S02", "config_id": self.env["pos.config"].create({"name": "S02"}).id})
        body = batch([sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20")])], store="S02")
        response = self.upload(body)
        self.assertEqual(response.status_code, 400)
        self.assertIn("differs from the X-Pos-Store header", response.json()["error"]["details"][0])

    def test_paused_fleet_answers_later(self):
        self.backend.action_pause()
        response = self.upload(batch([sale(1, [("MUG-WHT", 1, "8.50", "0", "VAT20")])]))
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.headers["Retry-After"], "300")
        self.assertFalse(self.events())

    def test_intake_time_of_a_batch_of_500(self):
        """Stored, not applied: the store gets its answer in well under a second."""
        tickets = [
            sale(n, [("TSH-BLK-M", 2, "19.90", "2.00", "VAT20"), ("MUG-WHT", 1, "8.50", "0", "VAT55")])
            for n in range(500)
        ]
        raw = json.dumps(batch(tickets)).encode()
        self.upload(batch(tickets[:1]))  # warm the worker
        started = time.perf_counter()
        response = self.upload(None, raw=raw)
        elapsed = time.perf_counter() - started
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["accepted"], 499)
        _logger.info(
            "POS intake: a batch of 500 tickets (%s bytes) stored in %.0f ms",
            len(raw),
            elapsed * 1000,
        )
        self.assertLess(elapsed, 5.0)
