from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tools.safe_eval import safe_eval

from odoo.addons.queue_job.job import Job

from .common import ConnectorCase, trap_jobs


class TestOutbox(ConnectorCase):
    """Outbound changes coalesce per key, go in batches, and are never lost."""

    def send(self, key, score):
        return self.backend._send_later("partner.score", key, {"score": score})

    def test_many_changes_to_few_keys_become_one_batched_send_of_the_latest(self):
        with trap_jobs() as trap:
            for round_ in range(10):
                for key in ("a", "b", "c"):
                    self.send(key, round_)
            trap.assert_jobs_count(1, only=self.backend._flush_outbound)
            self.run_jobs(trap)
        self.assertEqual(len(self.remote.calls("/scores")), 1, "3 keys fit in one batch of 3")
        self.assertEqual(self.remote.scores, {"a": 9, "b": 9, "c": 9})
        items = self.env["connector.outbound"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(items.mapped("state"), ["sent"] * 3)
        self.assertEqual(sum(items.mapped("change_count")), 30)

    def test_batches_follow_the_topic_batch_limit(self):
        with trap_jobs() as trap:
            for n in range(7):
                self.send(f"k{n}", n)
            self.run_jobs(trap)
        calls = self.remote.calls("/scores")
        self.assertEqual([len(call[3]["scores"]) for call in calls], [3, 3, 1])
        self.assertEqual(len(self.remote.scores), 7)

    def test_refused_change_is_failed_with_the_remote_reason_then_resent(self):
        self.remote.refuse = {"bad"}
        with trap_jobs() as trap:
            good, bad = self.send("good", 1), self.send("bad", 2)
            self.run_jobs(trap)
            self.assertEqual((good.state, bad.state), ("sent", "failed"))
            self.assertEqual(bad.error_message, "unknown key")
            # Support staff find it in Exceptions > Outgoing changes.
            action = self.env["ir.actions.act_window"]._for_xml_id(
                "connector_base.action_connector_outbound_exceptions"
            )
            self.assertEqual(
                self.env["connector.outbound"].search(safe_eval(action["domain"])), bad
            )
            self.remote.refuse = set()
            bad.action_requeue()
            self.run_jobs(trap)
        self.assertEqual(bad.state, "sent")
        self.assertEqual(self.remote.scores["bad"], 2)

    def test_throttled_send_is_retried_after_retry_after_and_keeps_changes(self):
        self.remote.script("/scores", (429, {"Retry-After": "3"}, {"error": "slow down"}))
        with trap_jobs() as trap:
            item = self.send("x", 5)
            retry = self.expect_retry(trap.perform_enqueued_jobs)
            self.assertEqual(retry.seconds, 3)
            self.assertEqual(item.state, "pending")
            self.assertEqual(item.retry_count, 0, "asked to wait: no attempt used up")
            # a change arriving meanwhile coalesces into the pending one
            self.send("x", 6)
            self.backend._flush_outbound("partner.score")
        self.assertEqual(item.state, "sent")
        self.assertEqual(self.remote.scores, {"x": 6})

    def test_paused_backend_keeps_changes_until_started(self):
        self.backend.action_pause()
        with trap_jobs() as trap:
            item = self.send("p", 1)
            trap.assert_jobs_count(0)
            self.backend.action_start()
            self.run_jobs(trap)
        self.assertEqual(item.state, "sent")

    def test_scheduled_flow_is_sent_by_the_cron(self):
        policy = self.backend._policy("scores_out")
        policy.write({"mode": "scheduled", "interval_minutes": 1})
        with trap_jobs() as trap:
            item = self.send("s", 1)
            trap.assert_jobs_count(0)
            item.flush_recordset()
            self.env.cr.execute(
                "UPDATE connector_outbound SET create_date = create_date - interval '2 minutes' "
                "WHERE id = %s",
                (item.id,),
            )
            item.invalidate_recordset()
            self.env["connector.backend"]._cron_flush_outbound()
            self.run_jobs(trap)
        self.assertEqual(item.state, "sent")

    def test_scheduled_flow_at_set_times_is_sent_at_the_next_one(self):
        """Waves: changes made at 11:00 (Paris) wait for the 16:30 run, not for
        an interval; the cron sends them if their job is lost, not before."""
        self.env.company.partner_id.tz = "Europe/Paris"
        policy = self.backend._policy("scores_out")
        policy.write({"mode": "scheduled", "run_times": "16:30, 9:00"})
        with freeze_time("2026-11-30 10:00:00"), trap_jobs() as trap:
            item = self.send("w", 1)
            trap.assert_jobs_count(1, only=self.backend._flush_outbound)
            self.assertEqual(trap.enqueued_jobs[0].eta, datetime(2026, 11, 30, 15, 30))
        item.flush_recordset()
        self.env.cr.execute(
            "UPDATE connector_outbound SET create_date = '2026-11-30 10:00:00' WHERE id = %s",
            (item.id,),
        )
        item.invalidate_recordset()
        with trap_jobs() as trap:
            with freeze_time("2026-11-30 15:29:00"):
                self.env["connector.backend"]._cron_flush_outbound()
                trap.assert_jobs_count(0)
            with freeze_time("2026-11-30 15:31:00"):
                self.env["connector.backend"]._cron_flush_outbound()
                self.run_jobs(trap)
        self.assertEqual(item.state, "sent")
        self.assertEqual(self.remote.scores, {"w": 1})

    def test_set_times_of_day_are_checked(self):
        policy = self.backend._policy("scores_out")
        policy.run_times = " 7h05;13:30 , 23:59"
        self.assertEqual(
            [t.strftime("%H:%M") for t in policy._run_times()], ["07:05", "13:30", "23:59"]
        )
        with self.assertRaisesRegex(ValidationError, "'noon' is not a time of day"):
            policy.run_times = "09:00, noon"
        with self.assertRaisesRegex(ValidationError, "'24:00' is not a time of day"):
            policy.run_times = "24:00"

    def test_the_next_set_time_is_taken_in_the_company_timezone_across_days(self):
        self.env.company.partner_id.tz = "America/New_York"
        policy = self.backend._policy("scores_out")
        policy.run_times = "06:00"
        # 23:00 UTC is 18:00 in New York: the next 06:00 there is 11:00 UTC tomorrow.
        self.assertEqual(
            policy._next_run(datetime(2026, 11, 30, 23, 0)), datetime(2026, 12, 1, 11, 0)
        )
        policy.run_times = False
        self.assertIsNone(policy._next_run(datetime(2026, 11, 30, 23, 0)))

    def flush(self):
        return self.backend._flush_outbound("partner.score")

    def mark_sending(self, item, job_uuid=None, minutes_ago=1):
        """What a claim by another job left: the change is being sent."""
        item.flush_recordset()
        self.env.cr.execute(
            "UPDATE connector_outbound SET state = 'sending', attempt = attempt + 1, "
            "claimed_at = (now() at time zone 'UTC') - %s * interval '1 minute', "
            "claim_job_uuid = %s WHERE id = %s",
            (minutes_ago, job_uuid, item.id),
        )
        item.invalidate_recordset()

    def test_a_send_whose_job_died_is_taken_back_and_sent_again(self):
        with trap_jobs():
            item = self.send("dead", 3)
        # The worker sending it was killed: its job no longer runs.
        self.mark_sending(item, job_uuid="0f0e0d0c-0000-4000-8000-00000000dead")
        result = self.backend._flush_outbound("partner.score")
        self.assertEqual(result, "partner.score: 1 sent, 0 failed")
        self.assertEqual((item.state, item.attempt), ("sent", 2))
        self.assertEqual(self.remote.scores, {"dead": 3})

    def flush_jobs(self, state="pending"):
        return self.env["queue.job"].search(
            [
                ("identity_key", "=", f"connector.outbound-{self.backend.id}-partner.score"),
                ("state", "=", state),
            ]
        )

    def test_a_flush_found_waiting_that_ended_before_the_commit_is_followed_by_another(self):
        first = self.send("a", 1)
        job = self.flush_jobs()
        self.assertEqual(len(job), 1)
        self.env.cr.postcommit.clear()
        second = self.send("b", 2)
        self.assertEqual(self.flush_jobs(), job, "found waiting: no second job")
        # That job started before this transaction was committed, on a
        # snapshot without the second change, sent the first one and ended.
        first.write({"state": "sent", "sent_at": fields.Datetime.now()})
        job.state = "done"
        self.env.flush_all()
        self.env.cr.postcommit.run()  # once committed
        later = self.flush_jobs()
        self.assertEqual(len(later), 1, "another flush sends the change")
        self.assertEqual(
            Job.load(self.env, later.uuid).perform(), "partner.score: 1 sent, 0 failed"
        )
        self.assertEqual((second.state, self.remote.scores), ("sent", {"b": 2}))

    def test_a_flush_still_waiting_at_the_commit_is_not_doubled(self):
        self.send("a", 1)
        job = self.flush_jobs()
        self.env.cr.postcommit.clear()
        self.send("b", 2)
        self.send("c", 3)
        self.env.flush_all()
        self.env.cr.postcommit.run()
        self.assertEqual(self.flush_jobs(), job, "the waiting job sends both changes")

    def test_a_long_backlog_goes_on_in_another_job_past_the_time_budget(self):
        with trap_jobs():
            items = [self.send(f"k{n}", n) for n in range(7)]
        # Each batch of 3 takes 40 s of the job's 60 s budget.
        with freeze_time(fields.Datetime.now()) as clock:
            self.remote.on_request = lambda _path: clock.tick(40)
            self.addCleanup(setattr, self.remote, "on_request", None)
            result = self.flush()
        self.assertEqual(result, "partner.score: 6 sent, 0 failed; the rest in another job")
        self.assertEqual([item.state for item in items].count("pending"), 1)
        later = self.flush_jobs()
        self.assertEqual(len(later), 1, "another job sends the rest")
        result = Job.load(self.env, later.uuid).perform()
        self.assertEqual(result, "partner.score: 1 sent, 0 failed")
        self.assertEqual(len(self.remote.calls("/scores")), 3)
        self.assertEqual(len(self.remote.scores), 7)

    def test_a_key_in_flight_is_not_sent_twice_at_once(self):
        with trap_jobs():
            first = self.send("k", 1)
            self.mark_sending(first)  # sent by another flush right now
            second = self.send("k", 2)
        self.assertNotEqual(first, second, "a change made during a send is a new pending one")
        self.assertEqual(self.flush(), "partner.score: 0 sent, 0 failed")
        self.assertFalse(self.remote.calls("/scores"))
        self.assertEqual(second.state, "pending")
        # The first send is recorded; the next flush sends the newer value.
        first.write({"state": "sent"})
        self.backend._flush_outbound("partner.score")
        self.assertEqual(second.state, "sent")
        self.assertEqual(self.remote.scores, {"k": 2})

    def test_a_change_queued_unmerged_is_merged_at_the_claim_and_the_newest_sent(self):
        # A stock move whose merge clashed with a send claiming its key (it
        # ran on an older snapshot) queued its change on its own, beside the
        # pending one; a later change merged into the pending one.
        with trap_jobs():
            older = self.send("k", 1)
            self.send("m", 7)
        unmerged = (
            self.env["connector.outbound"]
            .sudo()
            .create(
                {
                    "backend_id": self.backend.id,
                    "topic": "partner.score",
                    "coalescing_key": "k",
                    "payload": {"score": 2},
                    "unmerged": True,
                }
            )
        )
        unmerged.flush_recordset()
        self.env.cr.execute(
            "UPDATE connector_outbound SET write_date = write_date - interval '1 second' "
            "WHERE id = %s",
            (unmerged.id,),
        )
        with trap_jobs():
            later = self.send("k", 3)
        self.assertEqual(later, older, "later changes still merge into the pending one")
        self.env.invalidate_all()
        self.assertEqual(self.flush(), "partner.score: 2 sent, 0 failed")
        calls = self.remote.calls("/scores")
        self.assertEqual(len(calls), 1, "one send per key: the key is sent once")
        self.assertEqual(self.remote.scores, {"k": 3, "m": 7}, "the newest change wins")
        self.assertEqual((older.state, older.change_count), ("sent", 3))
        self.assertEqual((unmerged.state, unmerged.error_kind), ("cancelled", "superseded"))

    def test_an_outage_postpones_sends_without_spending_attempts_and_drains_in_order(self):
        with trap_jobs():
            items = [self.send(key, n) for n, key in enumerate("abcde")]
        start = fields.Datetime.now()
        with freeze_time(start):
            self.open_circuit()
        # An hour of outage, time-compressed: a flush after every cool-down,
        # each letting one probe through, which fails.
        retries = []
        for step in range(1, 61):
            with freeze_time(start + timedelta(seconds=61 * step)):
                retries.append(self.expect_retry(self.flush))
        self.assertTrue(all(retry.ignore_retry for retry in retries), "no retry counted")
        self.assertEqual({i.state for i in items}, {"pending"}, "nothing given up")
        self.assertEqual({i.retry_count for i in items}, {0}, "no attempt spent")
        self.assertEqual(len(self.remote.calls("/scores")), 60, "one probe per cool-down")
        self.remote.down = False
        self.remote.requests.clear()
        with freeze_time(start + timedelta(seconds=61 * 62)):
            self.flush()
        self.assertEqual({i.state for i in items}, {"sent"})
        self.assertEqual(self.backend.state, "running", "the circuit closed by itself")
        sent_keys = [s["key"] for call in self.remote.calls("/scores") for s in call[3]["scores"]]
        self.assertEqual(sent_keys, list("abcde"), "in the order they were queued")
