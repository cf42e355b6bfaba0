from datetime import date, timedelta

from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user

from .common import ConnectorCase, trap_jobs


class TestReconciliation(ConnectorCase):
    """A connector declares what it compares and how it fixes; the framework
    runs it as a job, keeps one mismatch per key, and fixes with an audit."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.support = new_test_user(
            cls.env, login="recon_support", groups="connector_base.group_connector_user"
        )
        cls.clerk = new_test_user(cls.env, login="recon_clerk", groups="base.group_user")
        cls.Run = cls.env["connector.reconciliation.run"]
        cls.Mismatch = cls.env["connector.reconciliation.mismatch"]

    def setUp(self):
        super().setUp()
        Partner = self.env["res.partner"]
        # Odoo's score of a partner is its color; the remote keeps its own.
        for remote_id, color in ((1, 1), (2, 2), (3, 3)):
            self.Binding._bind(
                self.backend, remote_id, Partner.create({"name": f"P{remote_id}", "color": color})
            )
        self.remote.scores = {"partner-1": 1, "partner-2": 5}

    def reconcile(self, kind="scores", backend=None, day=None):
        with trap_jobs() as trap:
            run = (backend or self.backend)._reconcile_later(kind, day)
            self.run_jobs(trap)
        return run

    def open_mismatches(self):
        return self.Mismatch.search(
            [("backend_id", "=", self.backend.id), ("state", "=", "open")], order="business_key"
        )

    def test_a_run_lists_each_key_that_differs_with_both_values(self):
        run = self.reconcile()
        self.assertEqual(run.state, "done")
        self.assertEqual((run.compared_count, run.matched_count, run.mismatched_count), (3, 1, 2))
        self.assertTrue(run.started_at and run.finished_at)
        mismatches = self.open_mismatches()
        self.assertEqual(
            [(m.business_key, m.odoo_value, m.remote_value) for m in mismatches],
            [("partner-2", "2", "5"), ("partner-3", "3", "none")],
        )
        self.assertEqual(mismatches.mapped("kind_label"), ["Partner scores"] * 2)
        self.assertEqual(self.backend._reconciliation_open_counts(), {self.backend.id: 2})
        self.assertEqual(self.backend.reconciliation_open_count, 2)

    def test_fixing_resolves_with_who_and_how_and_a_rerun_finds_nothing(self):
        self.reconcile()
        mismatches = self.open_mismatches()
        with trap_jobs() as trap:
            result = mismatches.with_user(self.support).action_fix()
            self.run_jobs(trap)
        self.assertEqual(result["params"]["type"], "success")
        self.assertEqual(self.remote.scores, {"partner-1": 1, "partner-2": 2, "partner-3": 3})
        self.assertEqual(set(mismatches.mapped("state")), {"resolved"})
        self.assertEqual(set(mismatches.mapped("resolution")), {"Push Odoo's score"})
        self.assertEqual(mismatches.resolved_by_id, self.support)
        self.assertTrue(all(mismatches.mapped("fixed")))
        self.assertTrue(all(mismatches.mapped("resolved_at")))
        message = mismatches[0].message_ids[:1]
        self.assertEqual(message.author_id, self.support.partner_id, "the chatter says who")
        self.assertIn("Push Odoo's score, by", message.body)
        self.assertEqual(mismatches.run_id.fixed_count, 2)
        rerun = self.reconcile()
        self.assertEqual((rerun.compared_count, rerun.mismatched_count), (3, 0))
        self.assertFalse(self.open_mismatches())
        self.assertEqual(self.backend._reconciliation_open_counts(), {self.backend.id: 0})

    def test_a_rerun_keeps_one_mismatch_per_key_and_closes_what_agrees_now(self):
        first = self.reconcile()
        self.remote.scores["partner-3"] = 3  # fixed on the remote's side
        self.remote.scores["partner-2"] = 6
        second = self.reconcile()
        mismatches = self.Mismatch.search([("backend_id", "=", self.backend.id)])
        self.assertEqual(len(mismatches), 2, "no second mismatch for partner-2")
        still = mismatches.filtered(lambda m: m.business_key == "partner-2")
        self.assertEqual((still.state, still.remote_value), ("open", "6"))
        self.assertEqual((still.run_id, still.last_run_id), (first, second))
        gone = mismatches - still
        self.assertEqual(gone.state, "resolved")
        self.assertFalse(gone.fixed)
        self.assertFalse(gone.resolved_by_id)
        self.assertIn(f"run {second.id}", gone.resolution)

    def test_an_accepted_difference_stays_accepted(self):
        self.reconcile()
        accepted = self.open_mismatches()[:1]
        accepted.with_user(self.support).action_accept()
        self.assertEqual(accepted.state, "accepted")
        self.assertEqual(accepted.resolved_by_id, self.support)
        self.reconcile()
        self.assertEqual(accepted.state, "accepted")
        self.assertEqual(len(self.open_mismatches()), 1)
        accepted.with_user(self.support).action_reopen()
        self.assertEqual(len(self.open_mismatches()), 2)

    def test_a_daily_reconciliation_compares_the_day_before_on_schedule(self):
        with freeze_time("2026-11-20 08:00:00"), trap_jobs() as trap:
            self.env["connector.backend"]._cron_reconcile()
            runs = self.Run.search([("backend_id", "=", self.backend.id)])
            self.assertEqual(sorted(runs.mapped("kind")), ["notes", "scores"])
            self.run_jobs(trap)
        daily = runs.filtered(lambda r: r.kind == "notes")
        self.assertEqual(str(daily.window_start), "2026-11-19 00:00:00")
        self.assertEqual(str(daily.window_end), "2026-11-20 00:00:00")
        self.assertTrue(self.remote.calls("/ping?since=2026-11-19T00:00:00"))
        snapshot = runs - daily
        self.assertFalse(snapshot.window_start)
        self.assertEqual(set(runs.mapped("state")), {"done"})

    def test_a_paused_backend_is_left_out_by_the_cron_and_refused_on_demand(self):
        self.backend.state = "paused"
        with trap_jobs() as trap:
            self.env["connector.backend"]._cron_reconcile()
            self.assertFalse(trap.enqueued_jobs)
        with self.assertRaisesRegex(UserError, "paused: start it before reconciling"):
            self.backend._reconcile_later("scores")

    def test_a_run_queued_before_the_backend_was_paused_fails_with_the_reason(self):
        with trap_jobs() as trap:
            run = self.backend._reconcile_later("scores")
            self.backend.state = "paused"
            self.run_jobs(trap)
        self.assertEqual(run.state, "failed")
        self.assertIn("is not running: start it", run.error_message)

    def test_bad_input_is_refused_with_what_to_do(self):
        with self.assertRaisesRegex(UserError, "no reconciliation 'stock'.*notes, scores"):
            self.backend._reconcile_later("stock")
        tomorrow = date.today() + timedelta(days=2)
        with self.assertRaisesRegex(UserError, "has not come yet"):
            self.backend._reconcile_later("notes", tomorrow)
        self.reconcile()
        mismatch = self.open_mismatches()[:1]
        mismatch.with_user(self.support).action_accept()
        with self.assertRaisesRegex(UserError, "Only open mismatches can be fixed"):
            mismatch.with_user(self.support).action_fix()
        with self.assertRaisesRegex(UserError, "Only accepted mismatches can be reopened"):
            self.open_mismatches().with_user(self.support).action_reopen()

    def test_a_fix_that_cannot_apply_says_why(self):
        self.reconcile()
        mismatches = self.open_mismatches()
        self.Binding._find(self.backend, 3).unlink()
        with trap_jobs() as trap:
            result = mismatches.with_user(self.support).action_fix()
            self.run_jobs(trap)
        self.assertEqual(result["params"]["type"], "warning")
        refused = mismatches.filtered(lambda m: m.business_key == "partner-3")
        self.assertEqual(refused.state, "open")
        self.assertIn("no longer bound", refused.message_ids[0].body)
        self.assertEqual((mismatches - refused).state, "resolved")

    def test_remote_refusal_fails_the_run_and_an_outage_retries_it(self):
        self.remote.script("/scores", (400, {}, {"error": "bad request"}))
        run = self.reconcile()
        self.assertEqual(run.state, "failed")
        self.assertIn("400", run.error_message)
        self.remote.down = True
        with trap_jobs() as trap:
            run = self.backend._reconcile_later("scores")
            job = trap.enqueued_jobs[0]
            self.expect_retry(job.perform)
        self.assertEqual(run.state, "running", "kept for the retry, not failed")

    def test_people_act_through_the_actions_only(self):
        self.reconcile()
        mismatch = self.open_mismatches()[:1]
        with self.assertRaises(AccessError):
            mismatch.with_user(self.support).write({"state": "resolved"})
        with self.assertRaises(AccessError):
            mismatch.with_user(self.clerk).action_fix()
        with self.assertRaises(AccessError):
            self.Run.with_user(self.support).create(
                {"backend_id": self.backend.id, "kind": "scores"}
            )

    def test_the_wizard_runs_a_day_on_demand(self):
        day = date.today() - timedelta(days=3)
        wizard = (
            self.env["connector.reconciliation.wizard"]
            .with_user(self.support)
            .create({"backend_id": self.backend.id, "kind": "notes", "day": day})
        )
        self.assertTrue(wizard.daily)
        with trap_jobs() as trap:
            action = wizard.action_run()
            self.run_jobs(trap)
        run = self.Run.browse(action["res_id"])
        self.assertEqual(run.window_start.date(), day)
        self.assertEqual(run.state, "done")
        kinds = dict(self.env["connector.reconciliation.wizard"]._kind_selection())
        self.assertEqual(kinds["scores"], "Partner scores")

    def test_a_run_whose_job_died_is_replaced_not_waited_for(self):
        with trap_jobs() as trap:
            stale = self.backend._reconcile_later("scores")
            trap.enqueued_jobs.clear()  # its job is gone: no queue.job will run it
            run = self.backend._reconcile_later("scores")
            self.run_jobs(trap)
        self.assertNotEqual(run, stale)
        self.assertEqual(stale.state, "failed")
        self.assertIn("ended without recording it", stale.error_message)
        self.assertEqual(run.state, "done")

    def test_the_schedule_leaves_out_a_reconciliation_whose_flow_is_off(self):
        self.backend._policy("scores_out").enabled = False
        with trap_jobs():
            self.env["connector.backend"]._cron_reconcile()
        runs = self.Run.search([("backend_id", "=", self.backend.id)])
        self.assertEqual(runs.mapped("kind"), ["notes"])
        self.assertEqual(self.reconcile().state, "done", "on demand it runs")
        action = self.backend.action_reconcile()
        self.assertEqual(action["res_model"], "connector.reconciliation.wizard")
        self.assertEqual(action["context"], {"default_backend_id": self.backend.id})
