import itertools
from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.tests import new_test_user

from odoo.addons.connector_base.tests.common import perform_trapped_jobs

from .common import ConnectorCase, trap_jobs

T0 = datetime(2026, 11, 1, 12, 0, 0)


class TestInbox(ConnectorCase):
    """Events stored before processing, applied once, in order, or kept with a reason."""

    def test_duplicate_delivery_has_one_effect(self):
        payload = {"id": 7, "name": "Ada", "email": "ada@example.com"}
        with trap_jobs() as trap:
            events = [self.receive("partner.upsert", payload, "delivery-7") for _ in range(3)]
            trap.assert_jobs_count(1)
            self.run_jobs(trap)
        first, *copies = events
        self.assertEqual(first.state, "done")
        self.assertEqual([e.state for e in copies], ["duplicate", "duplicate"])
        self.assertEqual({e.duplicate_of_id for e in copies}, {first})
        self.assertEqual(first.duplicate_count, 2)
        self.assertEqual(
            len(self.env["res.partner"].search([("email", "=", "ada@example.com")])), 1
        )
        self.assertEqual(first._produced_record(), self.partners(7))

    def test_out_of_order_delivery_is_applied_in_order(self):
        older = {"id": 8, "name": "Grace (old name)"}
        newer = {"id": 8, "name": "Grace Hopper"}
        with trap_jobs() as trap:
            # Each dispatched on its own: the newer one's job is queued first.
            late = self.receive(
                "partner.upsert", newer, "v2", occurred_at=T0 + timedelta(minutes=5)
            )
            self.dispatch()
            early = self.receive("partner.upsert", older, "v1", occurred_at=T0)
            self.dispatch()
            self.run_jobs(trap)
        self.assertEqual((early.state, late.state), ("done", "done"))
        self.assertLess(early.processed_at, late.processed_at + timedelta(seconds=1))
        self.assertEqual(self.partners(8).name, "Grace Hopper")
        self.assertEqual(late.attempts, 2, "the newer event waited once for the older one")

    def test_waiter_is_released_after_commit_when_its_blocker_finished_unseen(self):
        with trap_jobs() as trap:
            late = self.receive(
                "partner.upsert", {"id": 12, "name": "B"}, "s2", occurred_at=T0 + timedelta(1)
            )
            early = self.receive("partner.upsert", {"id": 12, "name": "A"}, "s1", occurred_at=T0)
            self.dispatch()
            trap.enqueued_jobs.clear()
            late._process()  # its job ran first: it waits for the earlier event
            self.assertEqual((late.state, late.error_kind), ("waiting", "sequence"))
            # The earlier event's job read the later one as still queued (its
            # snapshot predates the wait) and finished without waking it.
            early.write({"state": "done"})
            self.env.flush_all()  # what a commit does first
            self.env.cr.postcommit.run()  # the waiter's own check, once committed
            late.invalidate_recordset()
            self.assertEqual(late.state, "queued")
            # Its job was queued by the check's own cursor; run it here.
            self.assertEqual([job.method_name for job in trap.enqueued_jobs], ["_process"])
            late._process()
        self.assertEqual(late.state, "done")
        self.assertEqual(self.partners(12).name, "B")

    def test_waiter_stays_while_its_blocker_is_open(self):
        with trap_jobs() as trap:
            late = self.receive(
                "partner.upsert", {"id": 13, "name": "B"}, "t2", occurred_at=T0 + timedelta(1)
            )
            early = self.receive("partner.upsert", {"id": 13, "name": "A"}, "t1", occurred_at=T0)
            self.dispatch()
            trap.enqueued_jobs.clear()
            late._process()
            self.env.flush_all()
            self.env.cr.postcommit.run()
            late.invalidate_recordset()
            self.assertEqual(late.state, "waiting", "no busy loop while the earlier one is open")
            self.assertEqual(early.state, "queued")
            self.assertFalse(trap.enqueued_jobs)

    def test_stale_event_after_newer_one_is_not_applied(self):
        with trap_jobs() as trap:
            newer = self.receive("partner.upsert", {"id": 9, "name": "New"}, "n", T0 + timedelta(1))
            self.run_jobs(trap)
            older = self.receive("partner.upsert", {"id": 9, "name": "Old"}, "o", T0)
            self.run_jobs(trap)
        self.assertEqual(newer.state, "done")
        self.assertEqual(older.state, "stale", "skipped by the framework, not ignored")
        self.assertIn("newer message", older.error_message)
        self.assertEqual(self.partners(9).name, "New")

    def test_missing_prerequisite_waits_then_applies(self):
        with trap_jobs() as trap:
            note = self.receive("partner.note", {"partner_id": 10, "note": "VIP"}, "note-10")
            self.run_jobs(trap)
            self.assertEqual(note.state, "waiting")
            self.assertEqual(note.error_kind, "prerequisite")
            self.assertIn("Partner 10 is not imported yet", note.error_message)
            self.assertFalse(self.partners(10), "nothing applied early")
            self.receive("partner.upsert", {"id": 10, "name": "Linus"}, "p-10")
            self.run_jobs(trap)
        self.assertEqual(note.state, "done")
        self.assertIn("VIP", str(self.partners(10).comment))

    def test_waiting_event_is_rechecked_by_cron_when_its_check_is_due(self):
        with trap_jobs() as trap:
            note = self.receive("partner.note", {"partner_id": 11, "note": "late"}, "note-11")
            self.run_jobs(trap)
            # The partner arrives by another path than an event (bound by hand).
            partner = self.env["res.partner"].create({"name": "By hand"})
            self.Binding._bind(self.backend, 11, partner)
            self.Event._cron_recheck_waiting()
            self.assertEqual(note.state, "waiting", "its first check is 10 minutes away")
            with freeze_time(fields.Datetime.now() + timedelta(minutes=11)):
                self.Event._cron_recheck_waiting()
            self.assertEqual(note.state, "queued")
            # Its job was queued by the cron's own cursor; run it here.
            self.assertEqual([job.method_name for job in trap.enqueued_jobs], ["_process"])
            note._process()
        self.assertEqual(note.state, "done")

    def test_event_whose_prerequisite_is_missing_waits_without_a_job(self):
        with trap_jobs() as trap:
            note = self.receive("partner.note", {"partner_id": 24, "note": "x"}, "note-24")
            trap.assert_jobs_count(0)
            self.assertEqual((note.state, note.waiting_key), ("waiting", "partner:24"))
            self.assertIn("Partner 24 is not imported yet", note.error_message)
            # The safety net finds it still blocked: no job, and a later check.
            checks = []
            now = fields.Datetime.now()
            for minutes in (11, 31, 71, 151):
                with freeze_time(now + timedelta(minutes=minutes)):
                    self.Event._cron_recheck_waiting()
                checks.append(note.next_retry_at)
            trap.assert_jobs_count(0)
            self.assertEqual(note.recheck_count, 4)
            pauses = [(b - a).total_seconds() for a, b in itertools.pairwise(checks)]
            self.assertEqual(pauses, sorted(pauses), "checked less and less often")
            self.assertGreater(pauses[-1], pauses[0])
            # What it waits for arrives: it is queued at once, by that event.
            self.receive("partner.upsert", {"id": 24, "name": "Ada"}, "p-24")
            self.run_jobs(trap)
        self.assertEqual(note.state, "done")

    def test_waiters_whose_prerequisite_is_still_missing_are_not_woken(self):
        with trap_jobs() as trap:
            note = self.receive("partner.note", {"partner_id": 25, "note": "y"}, "note-25")
            other = self.receive("partner.upsert", {"id": 26, "name": "Other"}, "p-26")
            trap.enqueued_jobs.clear()
            other._process()
            self.env.flush_all()
            self.env.cr.postcommit.run()
            trap.assert_jobs_count(0)
        self.assertEqual(note.state, "waiting")

    def test_waiter_is_released_after_commit_when_its_prerequisite_came_unseen(self):
        with trap_jobs() as trap:
            note = self.receive("partner.note", {"partner_id": 27, "note": "z"}, "note-27")
            self.assertEqual(note.state, "waiting")
            # The partner was bound by a transaction this one could not see;
            # once the waiter's own transaction is committed, it looks again.
            self.env.cr.postcommit.clear()
            self.Binding._bind(self.backend, 27, self.env["res.partner"].create({"name": "Z"}))
            note._wait("Partner 27 is not imported yet.", waiting_key="partner:27")
            self.env.flush_all()
            self.env.cr.postcommit.run()
            note.invalidate_recordset()
            self.assertEqual(note.state, "queued")
            # Its job was queued by the check's own cursor; run it here.
            self.assertEqual([job.method_name for job in trap.enqueued_jobs], ["_process"])
            note._process()
        self.assertEqual(note.state, "done")

    def test_cron_recheck_is_bounded_per_run(self):
        with trap_jobs():
            notes = self.Event.browse()
            for n in range(30, 35):
                notes |= self.receive("partner.note", {"partner_id": n, "note": "b"}, f"nb-{n}")
        with freeze_time(fields.Datetime.now() + timedelta(minutes=11)):
            result = self.Event._cron_recheck_waiting(limit=2)
        self.assertEqual(result, "0 released, 2 still waiting")
        self.assertEqual(len(notes.filtered("recheck_count")), 2)

    def test_bad_payload_names_each_wrong_field_and_is_kept(self):
        payload = {"name": "", "email": 42}
        with trap_jobs() as trap:
            event = self.receive("partner.upsert", payload, "bad-1")
            self.run_jobs(trap)
        self.assertEqual(event.state, "failed")
        self.assertEqual(event.error_kind, "validation")
        for problem in (
            "email: must be of string type",
            "id: required field",
            "name: empty values not allowed",
        ):
            self.assertIn(problem, event.error_message)
        self.assertEqual(event.payload, payload, "the message is kept as received")

    def test_unknown_topic_is_kept_as_failed(self):
        with trap_jobs() as trap:
            event = self.receive("partner.delete", {"id": 1}, "unknown-1")
            trap.assert_jobs_count(0)
        self.assertEqual(event.state, "failed")
        self.assertEqual(event.error_kind, "configuration")
        self.assertIn("partner.delete", event.error_message)

    def test_unexpected_error_is_recorded_with_traceback(self):
        self.remote.script("/partners/12", (200, {}, b"<html>not json</html>"))
        with trap_jobs() as trap:
            event = self.receive(
                "partner.upsert", {"id": 12, "name": "X", "fetch_details": True}, "u"
            )
            self.run_jobs(trap)
        self.assertEqual(event.state, "failed")
        self.assertEqual(event.error_kind, "unexpected")
        self.assertIn("Traceback", event.error_traceback)
        self.assertFalse(self.partners(12), "a failed event leaves nothing half-made")

    def test_remote_429_is_retried_after_its_retry_after(self):
        self.remote.script("/partners/13", (429, {"Retry-After": "7"}, {"errors": "throttled"}))
        payload = {"id": 13, "name": "Throttled", "fetch_details": True}
        with trap_jobs() as trap:
            event = self.receive("partner.upsert", payload, "t-13")
            trap.enqueued_jobs.clear()  # the dispatcher's job
            self.dispatch()
            retry = self.expect_retry(lambda: perform_trapped_jobs(self.env, trap))
            self.assertEqual(retry.seconds, 7)
            self.assertEqual(event.state, "queued")
            self.assertEqual(event.retry_count, 0, "asked to wait: no attempt used up")
            self.assertIn("HTTP 429", event.error_message)
            self.assertTrue(event.next_retry_at)
            self.assertFalse(self.partners(13))
            # queue_job runs the job again after the delay: the remote answers now.
            event._process()
        self.assertEqual(event.state, "done")
        self.assertEqual(self.partners(13).ref, "REF-13")

    def test_a_remote_throttling_longer_than_the_attempts_is_waited_for(self):
        """A rate limit shared with a busy flow may answer 429 more often than
        an event has attempts: each answer asks to wait, none fails it."""
        throttled = (429, {"Retry-After": "1"}, {"errors": "throttled"})
        self.remote.script("/partners/15", *[throttled] * 6)
        self.backend.circuit_threshold = 100
        payload = {"id": 15, "name": "Patient client", "fetch_details": True}
        with trap_jobs():
            event = self.receive("partner.upsert", payload, "t-15")
            self.dispatch()
        for _ in range(6):
            self.expect_retry(event._process)
            self.assertEqual(event.state, "queued")
        event._process()
        self.assertEqual(event.state, "done")
        self.assertEqual(event.retry_count, 0)
        self.assertEqual(self.partners(15).ref, "REF-15")

    def test_remote_that_keeps_failing_gives_up_to_support(self):
        self.remote.down = True
        self.backend.circuit_threshold = 100
        payload = {"id": 14, "name": "Never", "fetch_details": True}
        with trap_jobs():
            event = self.receive("partner.upsert", payload, "d-14")
            self.dispatch()
        for _ in range(3):
            self.expect_retry(event._process)
        result = event._process()
        self.assertIn("failed", result)
        self.assertEqual(event.state, "failed")
        self.assertEqual(event.error_kind, "remote")
        self.assertIn("Gave up after 4 attempts", event.error_message)

    def test_an_outage_postpones_an_event_without_using_up_its_attempts(self):
        payload = {"id": 37, "name": "Patient", "fetch_details": True}
        with trap_jobs():
            event = self.receive("partner.upsert", payload, "o-37")
            self.dispatch()
        start = fields.Datetime.now()
        with freeze_time(start):
            self.open_circuit()
        # The topic gives up after 4 attempts; the outage lasts 30 cool-downs.
        for step in range(1, 31):
            with freeze_time(start + timedelta(seconds=61 * step)):
                self.assertTrue(self.expect_retry(event._process).ignore_retry)
        self.assertEqual(event.state, "queued", "never given up during the outage")
        self.assertEqual(event.retry_count, 0)
        self.assertIn("Retrying", event.error_message)
        self.remote.down = False
        with freeze_time(start + timedelta(seconds=61 * 31)):
            event._process()
        self.assertEqual(event.state, "done")
        self.assertEqual(self.partners(37).ref, "REF-37")

    def test_replay_of_a_done_event_does_not_duplicate_its_effect(self):
        with trap_jobs() as trap:
            event = self.receive("partner.upsert", {"id": 15, "name": "Once"}, "r-15")
            self.run_jobs(trap)
            partner = self.partners(15)
            partner.unlink()  # deleted by hand in Odoo: a replay rebuilds it
            self.Binding.search([("external_id", "=", "15")]).unlink()
            event.action_replay("rebuild deleted partner")
            self.run_jobs(trap)
            event.action_replay("again")
            self.run_jobs(trap)
        self.assertEqual(event.state, "done")
        self.assertEqual(len(self.env["res.partner"].search([("name", "=", "Once")])), 1)
        self.assertEqual(event.audit_ids.mapped("action"), ["replay", "replay"])

    def test_edit_payload_and_requeue(self):
        manager = new_test_user(
            self.env, login="rs_mgr", groups="connector_base.group_connector_manager"
        )
        with trap_jobs() as trap:
            event = self.receive("partner.upsert", {"id": 16}, "e-16")
            self.run_jobs(trap)
            self.assertEqual(event.state, "failed")
            wizard = (
                self.env["connector.event.edit"]
                .with_user(manager)
                .with_context(active_id=event.id)
                .create({"note": "added the missing name"})
            )
            wizard.payload_text = '{"id": 16, "name": "Fixed"}'
            wizard.action_save_and_requeue()
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(self.partners(16).name, "Fixed")
        self.assertEqual(event.audit_ids.user_id, manager)
        self.assertEqual(event.audit_ids.note, "added the missing name")

    def test_ignore_with_reason_releases_later_events(self):
        support = new_test_user(
            self.env, login="rs_sup", groups="connector_base.group_connector_user"
        )
        with trap_jobs() as trap:
            bad = self.receive("partner.upsert", {"id": 17}, "i-1", occurred_at=T0)
            good = self.receive(
                "partner.upsert",
                {"id": 17, "name": "Later"},
                "i-2",
                occurred_at=T0 + timedelta(minutes=1),
            )
            self.run_jobs(trap)
            self.assertEqual((bad.state, good.state), ("failed", "waiting"))
            self.env["connector.event.ignore"].with_user(support).with_context(
                active_ids=bad.ids
            ).create({"reason": "test message from the remote's sandbox"}).action_ignore()
            self.run_jobs(trap)
        self.assertEqual(bad.state, "ignored")
        self.assertEqual(good.state, "done", good.error_message)
        self.assertEqual(bad.audit_ids.user_id, support)
        self.assertIn("sandbox", bad.audit_ids.note)

    def test_bulk_requeue_after_the_cause_is_fixed(self):
        self.remote.script("/partners/", *[(404, {}, {"error": "gone"})] * 3)
        with trap_jobs() as trap:
            events = self.Event.browse()
            for n in (18, 19, 20):
                events |= self.receive(
                    "partner.upsert", {"id": n, "name": f"P{n}", "fetch_details": True}, f"b-{n}"
                )
            self.run_jobs(trap)
            self.assertEqual(set(events.mapped("state")), {"failed"})
            self.assertEqual(set(events.mapped("error_kind")), {"remote"})
            events.action_requeue()
            self.run_jobs(trap)
        self.assertEqual(
            events.mapped("state"), ["done"] * 3, [(e.state, e.error_message) for e in events]
        )

    def test_event_is_processed_by_a_job_on_its_backend_and_flow_channel(self):
        event = self.receive("partner.upsert", {"id": 21, "name": "Job"}, "j-21")
        self.assertEqual(event.state, "received")
        dispatcher = self.env["queue.job"].search(
            [("identity_key", "=", f"connector.dispatch-{self.backend.id}")]
        )
        self.assertEqual(dispatcher.state, "pending", "the dispatcher gives it its job")
        self.assertEqual(self.dispatch(), "1 events queued")
        self.assertEqual(event.state, "queued")
        self.assertEqual(len(event.job_ids), 1)
        policy = self.backend._policy("partners_in")
        self.assertEqual(
            event.job_ids.channel, f"root.connector.backend_{self.backend.id}.partners_in"
        )
        self.assertEqual(policy.channel, event.job_ids.channel)
        # A second enqueue of a queued event does nothing: one job per event.
        self.assertFalse(event._enqueue())
        self.assertEqual(len(event.job_ids), 1)
        self.assertEqual(event.job_ids.state, "pending")

    def test_paused_backend_keeps_messages_until_started(self):
        self.backend.action_pause()
        with trap_jobs() as trap:
            event = self.receive("partner.upsert", {"id": 22, "name": "Later"}, "p-22")
            trap.assert_jobs_count(0)
            self.assertEqual(event.state, "received")
            self.backend.action_start()
            trap.assert_jobs_count(1)
            self.run_jobs(trap)
        self.assertEqual(event.state, "done")

    def test_job_run_twice_applies_once(self):
        with trap_jobs() as trap:
            event = self.receive("partner.upsert", {"id": 23, "name": "Twice"}, "tw-23")
            self.run_jobs(trap)
        self.assertEqual(event._process(), "nothing to do: event is done")
        self.assertEqual(event.attempts, 1)


class TestInboxMany(ConnectorCase):
    """Many messages stored in one intake (an uploaded batch) as each alone would be."""

    def test_batch_stores_originals_once_and_repeats_as_duplicates(self):
        messages = [
            {
                "topic": "partner.upsert",
                "payload": {"id": 31, "name": "Ada"},
                "idempotency_key": "m-1",
            },
            {
                "topic": "partner.upsert",
                "payload": {"id": 31, "name": "Ada"},
                "idempotency_key": "m-1",
            },
            {
                "topic": "partner.upsert",
                "payload": {"id": 30, "name": "Again"},
                "idempotency_key": "m-0",
            },
            {
                "topic": "partner.note",
                "payload": {"partner_id": 99, "note": "waits"},
                "idempotency_key": "m-2",
                "occurred_at": T0,
            },
            {"topic": "no.such.topic", "payload": {}, "idempotency_key": "m-3"},
        ]
        with trap_jobs() as trap:
            earlier = self.receive("partner.upsert", {"id": 30, "name": "Before"}, "m-0")
            trap.enqueued_jobs.clear()
            events = self.Event._receive_many(self.backend, messages, source="upload")
            self.assertEqual(
                [job.method_name for job in trap.enqueued_jobs],
                ["_dispatch_received"],
                "one dispatcher for the whole batch",
            )
        self.assertEqual(
            events.mapped("state"), ["received", "duplicate", "duplicate", "waiting", "failed"]
        )
        self.assertEqual(events[1].duplicate_of_id, events[0])
        self.assertEqual(events[2].duplicate_of_id, earlier)
        self.assertFalse(events[2].payload, "a duplicate keeps no payload")
        self.assertEqual(events[0].payload, {"id": 31, "name": "Ada"})
        self.assertEqual(events[0].sequence_key, "partner:31")
        self.assertEqual(events[3].occurred_at, T0)
        self.assertEqual(events[4].error_kind, "configuration")
        self.assertEqual(set(events.mapped("source")), {"upload"})
        events.invalidate_recordset()
        self.assertEqual(
            events.mapped("state"), ["received", "duplicate", "duplicate", "waiting", "failed"]
        )
