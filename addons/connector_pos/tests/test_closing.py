import json
from decimal import Decimal

from odoo.tests import tagged

from odoo.addons.connector_base.components.signature import hmac_sha256_base64
from odoo.addons.queue_job.job import Job as QueueJob

from .common import FLEET, STORE, PosCase


@tagged("post_install", "-at_install")
class TestPosClosing(PosCase):
    """A register's Z report closes the store's day when it agrees with the
    tickets received; otherwise its differences keep the day open."""

    def closings(self, register=None):
        self.env.invalidate_all()
        domain = [("backend_id", "=", self.backend.id)]
        if register:
            domain.append(("register", "=", register))
        return self.env["connector.pos.closing"].search(domain, order="register")

    def post_closing(self, closing, key=None):
        """POST one Z report as the store's POS does; then the jobs run."""
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            upload = self.pos.post_closing(closing, key=key)
        self.run_jobs()
        return upload

    def closing_errors(self):
        """What the closing events say, when a test fails."""
        return (
            self.events()
            .filtered(lambda e: e.topic == "closing")
            .mapped(lambda e: (e.state, e.error_message))
        )

    def day_session(self, ticket):
        return self.order(ticket).session_id

    def cash_of(self, closings):
        return sum(
            Decimal(total["amount"])
            for closing in closings
            for total in closing["totals"]
            if total["tender"] == "cash"
        )

    def test_z_report_that_agrees_closes_and_posts_the_store_day(self):
        tickets = self.pos.ring(STORE, count=8)
        self.push()
        session = self.day_session(next(t for t in tickets if t["type"] == "sale"))
        self.assertEqual(session.state, "opened")
        reports = self.pos.close(STORE)
        uploads = self.push()
        self.assertEqual(
            [(u["kind"], u["status"], u["answer"]["status"]) for u in uploads],
            [("closings", 200, "stored")] * 2,
        )
        closings = self.closings()
        self.assertEqual(closings.mapped("register"), ["R1", "R2"])
        self.assertEqual(closings.mapped("state"), ["closed", "closed"])
        self.assertFalse(closings.mismatch_ids)
        self.assertEqual(closings.session_id, session)
        self.assertEqual(session.state, "closed")
        self.assertEqual(session.move_id.state, "posted", "the day's accounting is posted")
        self.assertEqual(
            Decimal(str(session.cash_register_balance_end_real)).quantize(Decimal("0.01")),
            Decimal(str(session.cash_register_balance_start)).quantize(Decimal("0.01"))
            + self.cash_of(reports),
            "the drawer is counted as the Z reports say",
        )
        self.assertFalse(session.currency_id.compare_amounts(session.cash_register_difference, 0))
        run = self.env["connector.reconciliation.run"].search(
            [("backend_id", "=", self.backend.id), ("kind", "=", "closings")], limit=1
        )
        self.assertEqual(run.state, "done")

    def test_store_day_waits_for_every_register_that_sold(self):
        first = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)], tenders=["cash"])
        self.pos.sale(STORE, "R2", [("SOC-006-36-40", 1)], tenders=["card"])
        self.push()
        self.pos.close(STORE, "R1")
        self.push()
        self.assertEqual(self.closings().state, "agreed")
        self.assertEqual(self.day_session(first).state, "opened")
        self.pos.close(STORE, "R2")
        self.push()
        self.assertEqual(self.closings().mapped("state"), ["closed", "closed"])
        self.assertEqual(self.day_session(first).state, "closed")

    def test_missing_ticket_opens_a_mismatch_then_closes_when_it_arrives(self):
        first = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)], tenders=["cash"])
        late = self.pos.sale(STORE, "R1", [("SOC-006-36-40", 2)], tenders=["card"])
        self.pos.sale(STORE, "R1", [("CAP-004-OLV", 1)], tenders=["cash"])
        self.pos.hold(late)  # the store's upload of it is lost for now
        self.pos.close(STORE, "R1")
        self.push()
        closing = self.closings("R1")
        self.assertEqual(closing.state, "mismatch", self.closing_errors())
        session = self.day_session(first)
        self.assertEqual(session.state, "opened", "the day stays open")
        missing = closing.mismatch_ids.filtered(lambda m: "missing" in m.business_key)
        self.assertEqual(
            missing.what, f"1 ticket(s) of the Z report not received: {late['sequence']}"
        )
        card = closing.mismatch_ids.filtered(lambda m: m.business_key.endswith("POS card"))
        self.assertEqual(card.what, f"POS card: Odoo has {late['total']} less than the Z report")
        self.assertEqual((card.odoo_value, card.remote_value), ("0.00", late["total"]))
        self.assertEqual(set(closing.mismatch_ids.mapped("state")), {"open"})
        self.assertEqual(self.backend.pos_closing_open_count, 1, "the fleet's Open closes button")
        self.assertEqual(
            self.env["connector.pos.closing"].search(
                self.backend.action_pos_view_closings()["domain"]
            ),
            closing,
        )
        self.pos.release(late)
        self.push()
        self.assertTrue(self.order(late))
        self.assertEqual(closing.state, "closed")
        self.assertEqual(session.state, "closed")
        self.assertEqual(set(closing.mismatch_ids.mapped("state")), {"resolved"})
        self.backend.invalidate_recordset(["pos_closing_open_count"])
        self.assertEqual(self.backend.pos_closing_open_count, 0)

    def test_missing_batch_sent_again_is_compared_once(self):
        tickets = [self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)]) for _ in range(6)]
        for ticket in tickets[1:5]:
            self.pos.hold(ticket)
        self.pos.close(STORE, "R1")
        self.push()
        closing = self.closings("R1")
        self.assertIn(
            f"4 ticket(s) of the Z report not received: "
            f"{tickets[1]['sequence']}-{tickets[4]['sequence']}",
            closing.mismatch_ids.mapped("what"),
        )
        Run = self.env["connector.reconciliation.run"]
        runs = Run.search_count([("backend_id", "=", self.backend.id)])
        self.pos.release()
        self.push()
        self.assertEqual(self.closings("R1").state, "closed")
        self.assertEqual(Run.search_count([("backend_id", "=", self.backend.id)]), runs + 1)

    def test_nightly_reconciliation_compares_the_open_closes_again(self):
        """The framework's scheduled (or on-demand) run of the day finds the
        same differences, without a second mismatch of each."""
        self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)], tenders=["cash"])
        lost = self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)], tenders=["card"])
        self.pos.hold(lost)
        self.pos.close(STORE, "R1")
        self.push()
        closing = self.closings("R1")
        mismatches = closing.mismatch_ids
        self.assertEqual(len(mismatches), 2)
        # The stores' day may already be tomorrow in UTC: asked in their time zone.
        run = self.backend.with_context(tz=self.pos.fleet.tz.key)._reconcile_later(
            "closings", closing.business_day
        )
        run._execute()
        self.assertEqual((run.state, run.compared_count, run.mismatched_count), ("done", 1, 2))
        self.assertEqual(self.closings("R1").mismatch_ids, mismatches)
        self.assertEqual(set(mismatches.mapped("last_run_id")), {run})
        self.assertEqual(self.closings("R1").state, "mismatch")

    def test_ticket_the_z_report_does_not_count_is_a_difference(self):
        self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)], tenders=["card"])
        extra = self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)], tenders=["card"])
        self.push()
        report = self.pos.fleet.closing(STORE, "R1")
        card = Decimal(report["totals"][0]["amount"]) - Decimal(extra["total"])
        report.update(
            last_sequence=report["last_sequence"] - 1,
            ticket_count=report["ticket_count"] - 1,
            totals=[{"tender": "card", "amount": str(card)}],
        )
        self.post_closing(report)
        closing = self.closings("R1")
        self.assertEqual(closing.state, "mismatch", self.closing_errors())
        self.assertEqual(
            sorted(closing.mismatch_ids.mapped("what")),
            [
                f"POS card: Odoo has {extra['total']} more than the Z report",
                f"Tickets received of this day that the Z report "
                f"({report['first_sequence']}-{report['last_sequence']}) does not count: "
                f"{extra['sequence']}",
            ],
        )

    def test_failed_ticket_requeued_closes_the_day(self):
        product = self.products.filtered(lambda p: p.default_code == "CAP-004-OLV")
        product.write({"default_code": "CAP-004-OLV-OLD", "barcode": False})
        first = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)], tenders=["cash"])
        failing = self.pos.sale(STORE, "R1", [("CAP-004-OLV", 1)], tenders=["cash"])
        self.pos.close(STORE, "R1")
        self.push()
        event = self.event(failing)
        self.assertEqual(event.state, "failed")
        closing = self.closings("R1")
        self.assertEqual(closing.state, "mismatch", self.closing_errors())
        self.assertEqual(
            closing.mismatch_ids.mapped("what"),
            [f"POS cash: Odoo has {failing['total']} less than the Z report"],
            "received, so not missing; not in Odoo, so the cash differs",
        )
        product.default_code = "CAP-004-OLV"
        event.action_requeue()
        self.run_jobs()
        self.assertEqual(self.closings("R1").state, "closed")
        self.assertEqual(self.day_session(first).state, "closed")

    def test_manager_accepts_the_difference_and_the_day_closes(self):
        first = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)], tenders=["cash"])
        lost = self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)], tenders=["cash"])
        self.pos.hold(lost)
        self.pos.close(STORE, "R1")
        self.push()
        closing = self.closings("R1")
        self.assertEqual(closing.state, "mismatch", self.closing_errors())
        support = self.env["res.users"].create(
            {
                "name": "Support",
                "login": "pos_support",
                "group_ids": [(6, 0, [self.env.ref("connector_base.group_connector_user").id])],
            }
        )
        with self.assertRaisesRegex(Exception, "Only connector managers"):
            closing.with_user(support).action_accept_difference()
        closing.action_accept_difference()
        self.assertEqual(closing.state, "closed")
        self.assertEqual(closing.accepted_by_id, self.env.user)
        self.assertEqual(
            closing.audit_ids.mapped(lambda a: (a.action, a.user_id)), [("accept", self.env.user)]
        )
        self.assertIn(f"not received: {lost['sequence']}", closing.audit_ids.note)
        self.assertEqual(set(closing.mismatch_ids.mapped("state")), {"accepted"})
        self.assertTrue(
            all(
                any(
                    f"Difference accepted by {self.env.user.name}" in (body or "")
                    for body in mismatch.message_ids.mapped("body")
                )
                for mismatch in closing.mismatch_ids
            ),
            "each difference records who accepted it",
        )
        session = self.day_session(first)
        self.assertEqual(session.state, "closed")
        # The drawer held the lost ticket's cash: Odoo posts it as a difference.
        self.assertEqual(
            session.currency_id.compare_amounts(
                session.cash_register_difference, float(lost["total"])
            ),
            0,
        )

    def test_z_report_behind_another_then_behind_a_late_ticket_is_applied_when_it_comes(self):
        self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)], tenders=["cash"])
        self.pos.sale(STORE, "R2", [("SOC-006-36-40", 1)], tenders=["card"])
        self.push()
        late = {
            register: self.pos.sale(STORE, register, [("CAP-004-OLV", 1)], tenders=["cash"])
            for register in ("R1", "R2")
        }
        for ticket in late.values():
            self.pos.hold(ticket)
        self.pos.close(STORE)
        # The Z reports, then the late tickets, reach Odoo before any job runs.
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            self.pos.push()
            self.pos.release()
            self.pos.push()
        dispatcher = self.env["queue.job"].search(
            [("method_name", "=", "_dispatch_received"), ("state", "=", "pending")]
        )
        QueueJob.load(self.env, dispatcher.uuid).perform()
        dispatcher.state = "done"
        first, second = (
            self.events()
            .filtered(lambda e: e.topic == "closing")
            .sorted(lambda e: (e.occurred_at, e.id))
        )
        register = second.payload["register"]
        other = "R2" if register == "R1" else "R1"
        # The second Z report's job runs first: it waits for the first one.
        second._process()
        self.assertEqual(
            (second.state, second.error_kind, second.waiting_key),
            ("waiting", "sequence", f"closings:{STORE}"),
            second.error_message,
        )
        # The first register's late ticket, then its Z report, are applied.
        self.event(late[other])._process()
        first._process()
        self.assertEqual(first.state, "done", first.error_message)
        # The second one is woken, but its own register's late ticket is
        # still queued: it waits for that now, on its register.
        self.assertEqual(second.state, "waiting")
        self.assertEqual(
            (second.error_kind, second.waiting_key), ("prerequisite", f"{STORE}/{register}")
        )
        self.assertIn("still queued", second.error_message)
        # The ticket applied wakes it: the store's day closes.
        self.run_jobs()
        self.assertEqual(second.state, "done", second.error_message)
        self.assertEqual(self.closings().mapped("state"), ["closed", "closed"])
        self.assertEqual(self.day_session(late[register]).state, "closed")

    def test_resent_closing_counts_once(self):
        self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)])
        self.push()
        report = self.pos.fleet.closing(STORE, "R1")
        first = self.post_closing(report)
        again = self.post_closing(report)
        self.assertEqual(first["answer"], {"closing_id": report["closing_id"], "status": "stored"})
        self.assertEqual(
            again["answer"], {"closing_id": report["closing_id"], "status": "already_received"}
        )
        self.assertEqual(len(self.closings()), 1)
        events = self.events().filtered(lambda e: e.topic == "closing")
        self.assertEqual(events.mapped("state"), ["done", "duplicate"])
        self.assertEqual(self.closings().state, "closed")

    def test_bad_signature_is_refused(self):
        self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)])
        self.push()
        report = self.pos.fleet.closing(STORE, "R1")
        upload = self.post_closing(report, key="not-the-store-key")
        self.assertEqual(upload["status"], 401)
        self.assertEqual(upload["answer"]["error"]["code"], "unauthorized")
        self.assertFalse(self.closings())
        self.assertFalse(self.events().filtered(lambda e: e.topic == "closing"))

    def test_paused_fleet_answers_later(self):
        self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)])
        self.push()
        self.backend.action_pause()
        upload = self.post_closing(self.pos.fleet.closing(STORE, "R1"))
        self.assertEqual(upload["status"], 503)
        self.assertEqual(upload["attempts"][-1]["headers"]["Retry-After"], "300")
        self.assertFalse(self.events().filtered(lambda e: e.topic == "closing"))

    def test_malformed_closing_is_refused_naming_its_problems(self):
        self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)])
        self.push()
        report = self.pos.fleet.closing(STORE, "R1")
        report.update(last_sequence=report["first_sequence"] - 1, totals=[{"tender": "cash"}])
        raw = json.dumps(report).encode()
        self.env.flush_all()
        response = self.url_open(
            f"/connector/pos/v1/fleets/{FLEET}/closings",
            data=raw,
            headers={
                "Content-Type": "application/json",
                "X-Pos-Store": STORE,
                "X-Pos-Signature": hmac_sha256_base64(self.keys[STORE], raw),
            },
            timeout=60,
        )
        self.assertEqual(response.status_code, 400)
        error = response.json()["error"]
        self.assertEqual(error["code"], "invalid_closing")
        self.assertIn("totals.0.amount: required field", error["details"])
        self.assertFalse(self.closings())

    def test_closing_of_a_day_lets_the_next_day_tickets_apply(self):
        today = self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)])
        day = self.pos.business_day
        self.pos.next_day()
        tomorrow = self.pos.sale(STORE, "R1", [("SOC-006-36-40", 1)])
        self.push()
        self.assertEqual(self.event(tomorrow).state, "waiting")
        self.pos.close(STORE, "R1", business_day=day)
        self.push()
        self.assertEqual(self.day_session(today).state, "closed")
        self.assertEqual(self.event(tomorrow).state, "done")
        next_session = self.day_session(tomorrow)
        self.assertEqual(next_session.state, "opened")
        self.assertEqual(
            next_session.connector_pos_business_day.isoformat(), tomorrow["business_day"]
        )
