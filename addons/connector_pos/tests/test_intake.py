import json
import logging
import time
from datetime import datetime, timezone

from odoo.tests import tagged

from .common import STORE, PosCase, batch

_logger = logging.getLogger(__name__)


@tagged("post_install", "-at_install")
class TestPosIntake(PosCase):
    """The upload API: authenticated, bounded, checked, stored once."""

    def batches(self):
        return self.env["connector.pos.batch"].search([("backend_id", "=", self.backend.id)])

    def post(self, register, tickets, **kwargs):
        """One batch POSTed by the simulated store, jobs not run: what was stored."""
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            return self.pos.post_batch(STORE, register, tickets, **kwargs)

    def test_signed_batch_is_stored_one_event_per_ticket(self):
        tickets = [self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)]) for _ in range(2)]
        upload = self.post("R1", tickets, batch_id="B-1")
        self.assertEqual(upload["status"], 200, upload)
        self.assertEqual(
            upload["answer"],
            {"batch_id": "B-1", "status": "stored", "tickets": 2, "accepted": 2, "duplicates": 0},
        )
        events = self.events()
        self.assertEqual(events.mapped("idempotency_key"), [t["uuid"] for t in tickets])
        self.assertEqual(set(events.mapped("topic")), {"ticket"})
        self.assertEqual(set(events.mapped("sequence_key")), {"S01/R1"})
        self.assertEqual(set(events.mapped("source")), {"upload"})
        closed_at = datetime.fromisoformat(tickets[0]["closed_at"])
        self.assertEqual(
            events[0].occurred_at, closed_at.astimezone(timezone.utc).replace(tzinfo=None)
        )
        self.assertEqual(events[0].payload["store"], STORE)

    def test_lost_answer_resends_the_batch_and_counts_once(self):
        ticket = self.pos.sale(STORE, "R1", [("SOC-006-36-40", 2)])
        first = self.post("R1", [ticket], batch_id="B-2")
        again = self.post("R1", [ticket], batch_id="B-2")
        self.assertEqual(again["status"], 200)
        self.assertEqual(again["answer"], {**first["answer"], "status": "already_received"})
        self.assertEqual(len(self.events()), 1)
        self.assertEqual(len(self.batches()), 1)
        self.run_jobs()
        self.assertEqual(len(self.order(ticket)), 1)

    def test_ticket_in_two_batches_counts_once(self):
        ticket = self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)])
        other = self.pos.sale(STORE, "R1", [("CAP-004-OLV", 1)])
        self.post("R1", [ticket])
        answer = self.post("R1", [ticket, other, other])["answer"]
        self.assertEqual((answer["accepted"], answer["duplicates"]), (1, 2))
        self.run_jobs()
        self.assertEqual(len(self.order(ticket)), 1)
        self.assertEqual(len(self.order(other)), 1)
        self.assertEqual(
            sorted(self.events().mapped("state")), ["done", "done", "duplicate", "duplicate"]
        )

    def test_wrong_signature_is_refused_and_stores_nothing(self):
        ticket = self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)])
        upload = self.post("R1", [ticket], key="not-the-store-key")
        self.assertEqual(upload["status"], 401)
        self.assertEqual(upload["answer"]["error"]["code"], "unauthorized")
        self.assertEqual(self.post("R1", [ticket], key="")["status"], 401)
        self.assertFalse(self.events())
        self.assertFalse(self.batches())

    def test_unknown_store_or_fleet_is_refused(self):
        body = batch([self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)])], store="S99")
        self.assertEqual(self.upload(body, store="S99", key=self.keys[STORE]).status_code, 401)
        body = batch([self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)])])
        self.assertEqual(self.upload(body, fleet="other-fleet").status_code, 401)
        self.assertFalse(self.events())

    def test_rotated_key_stops_the_old_one_at_once(self):
        ticket = self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)])
        self.store.action_generate_upload_key()
        self.assertEqual(self.post("R1", [ticket])["status"], 401, "the POS has the old key")
        self.pos.set_key(STORE, self.store.sudo().upload_key)
        self.assertEqual(self.post("R1", [ticket])["status"], 200)

    def test_oversize_batch_is_refused(self):
        tickets = [self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)]) for _ in range(1001)]
        upload = self.post("R1", tickets)
        self.assertEqual(upload["status"], 413)
        self.assertEqual(upload["answer"]["error"]["code"], "batch_too_large")
        heavy = {**tickets[0], "note": "x" * 2_200_000}
        self.assertEqual(self.post("R1", [heavy])["status"], 413)
        self.assertFalse(self.events())

    def test_wrong_envelope_is_refused_with_details(self):
        body = batch([self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)])])
        del body["batch_id"]
        body["tickets"].append("not a ticket")
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            answer = self.pos.post_raw("batches", STORE, json.dumps(body).encode())
            not_json = self.pos.post_raw("batches", STORE, b"{not json")
        self.assertEqual(answer["status"], 400)
        error = answer["body"]["error"]
        self.assertEqual(error["code"], "invalid_batch")
        self.assertIn("batch_id: required, a non-empty string", error["details"])
        self.assertIn("tickets: items 1 are not JSON objects", error["details"])
        self.assertEqual(not_json["status"], 400)
        self.assertIn("not valid JSON", not_json["body"]["error"]["message"])
        self.assertFalse(self.events())

    def test_store_differing_from_its_header_is_refused(self):
        config = self.env["pos.config"].create({"name": "Store S02"})
        self.store.copy({"code": "S02", "name": "Store S02", "config_id": config.id})
        body = batch([self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)])], store="S02")
        response = self.upload(body)
        self.assertEqual(response.status_code, 400)
        self.assertIn("differs from the X-Pos-Store header", response.json()["error"]["details"][0])

    def test_paused_fleet_answers_later(self):
        self.backend.action_pause()
        upload = self.post("R1", [self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)])])
        self.assertEqual(upload["status"], 503)
        self.assertEqual(upload["attempts"][-1]["headers"]["Retry-After"], "300")
        self.assertFalse(self.events())

    def test_intake_time_of_a_batch_of_500(self):
        """Stored, not applied: the store gets its answer in well under a second."""
        tickets = [self.pos.sale(STORE, "R1") for _ in range(500)]
        self.post("R2", [self.pos.sale(STORE, "R2")])  # warm the worker
        started = time.perf_counter()
        upload = self.post("R1", tickets)
        elapsed = time.perf_counter() - started
        self.assertEqual(upload["answer"]["accepted"], 500)
        _logger.info(
            "POS intake: a batch of 500 tickets (%s bytes) stored in %.0f ms",
            upload["bytes"],
            elapsed * 1000,
        )
        self.assertLess(elapsed, 5.0)
