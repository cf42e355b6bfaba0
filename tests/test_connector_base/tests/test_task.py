from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.connector_base.tests.common import run_trapped_jobs

from .common import ConnectorCase, start_remote_and_backend, trap_jobs


class TestConnectorTask(ConnectorCase):
    """A long operation shows its progress while its jobs run, then its outcome."""

    def replay_window(self, note="after fixing the partner mapping"):
        wizard = self.env["connector.event.replay"].create(
            {
                "backend_id": self.backend.id,
                "date_from": fields.Datetime.now() - timedelta(hours=1),
                "date_to": fields.Datetime.now() + timedelta(minutes=1),
                "note": note,
            }
        )
        action = wizard.action_replay()
        self.assertEqual(action["res_model"], "connector.task")
        return self.env["connector.task"].browse(action["res_id"])

    def test_replay_window_shows_progress_then_outcome(self):
        with trap_jobs() as trap:
            good = self.receive("partner.upsert", {"id": 1, "name": "Ann"}, "t-1")
            good |= self.receive("partner.upsert", {"id": 2, "name": "Bob"}, "t-2")
            bad = self.receive("partner.upsert", {"id": 3, "name": ""}, "t-3")
            self.run_jobs(trap)
            self.assertEqual(bad.state, "failed")
            start = fields.Datetime.now()
            with freeze_time(start):
                task = self.replay_window()
            self.assertEqual(task.kind, "replay")
            self.assertEqual(task.backend_id, self.backend)
            self.assertEqual(task.event_ids, good | bad)
            self.assertEqual(task.state, "running")
            self.assertEqual((task.total_count, task.pending_count, task.progress), (3, 3, 0.0))
            self.assertIn(task, self.backend.running_task_ids)
            self.assertEqual(
                self.env["connector.task"].search([("state", "in", ["running"])]), task
            )
            trap.assert_jobs_count(3)
            # The backend's tile on the overview says it too.
            support = new_test_user(
                self.env, login="rs_tile_support", groups="connector_base.group_connector_user"
            )
            tile = self.backend.with_user(support)
            self.assertEqual(tile.overview_task_progress, 0.0)
            self.assertEqual(
                tile.overview_task_label,
                "Replay of 3 events: after fixing the partner mapping: 0 of 3 · Estimating…",
            )
            # One event done a minute after the start: two left at that pace.
            first = next(job for job in trap.enqueued_jobs if job.recordset == good[0])
            trap.enqueued_jobs[:] = [job for job in trap.enqueued_jobs if job is not first]
            with freeze_time(start + timedelta(minutes=1)):
                first.perform()
                task.invalidate_recordset()
                self.assertEqual((task.done_count, task.pending_count), (1, 2))
                self.assertAlmostEqual(task.progress, 100 / 3)
                self.assertEqual(task.estimate, "About 2 minutes left")
                self.assertEqual(task.estimated_end, start + timedelta(minutes=3))
                self.backend.invalidate_recordset()
                self.assertAlmostEqual(self.backend.overview_task_progress, 100 / 3)
                self.assertTrue(
                    self.backend.overview_task_label.endswith("1 of 3 · About 2 minutes left")
                )
            self.run_jobs(trap)
        task.invalidate_recordset()
        self.assertEqual(task.state, "failed")
        self.assertEqual(
            (task.done_count, task.failed_count, task.skipped_count, task.pending_count),
            (2, 1, 0, 0),
        )
        self.assertEqual(task.progress, 100.0)
        self.assertFalse(task.estimate)
        self.assertTrue(task.finished_at)
        self.assertNotIn(task, self.backend.running_task_ids)
        self.backend.invalidate_recordset()
        self.assertFalse(self.backend.overview_task_label)
        # Each count opens the events behind it.
        Event = self.env["connector.event"]
        self.assertEqual(Event.search(task.action_view_done()["domain"]), good)
        self.assertEqual(Event.search(task.action_view_failed()["domain"]), bad)
        self.assertFalse(Event.search(task.action_view_skipped()["domain"]))
        self.assertEqual(self.env["connector.task"].search([("state", "in", ["failed"])]), task)

    def test_a_task_without_failures_ends_done(self):
        with trap_jobs() as trap:
            self.receive("partner.upsert", {"id": 4, "name": "Cy"}, "t-4")
            self.run_jobs(trap)
            task = self.replay_window()
            self.run_jobs(trap)
        task.invalidate_recordset()
        self.assertEqual((task.state, task.done_count, task.total_count), ("done", 1, 1))
        self.assertEqual(self.env["connector.task"].search([("state", "in", ["done"])]), task)

    def test_outbound_changes_queued_in_a_task_count_for_it(self):
        partner = self.env["res.partner"].create({"name": "Dee"})
        task = self.env["connector.task"]._start(self.backend, "stock_push", "Scores")
        backend = self.backend.with_context(connector_task_id=task.id)
        with trap_jobs() as trap:
            backend._send_later_many(
                "partner.score",
                [(f"p:{n}", {"score": n}, partner) for n in range(4)],
            )
            # A change queued outside the task coalesces, the task keeps it.
            self.backend._send_later("partner.score", "p:0", {"score": 9})
            task.invalidate_recordset()
            self.assertEqual((task.state, task.total_count, task.pending_count), ("running", 4, 4))
            self.run_jobs(trap)
        task.invalidate_recordset()
        self.assertEqual((task.state, task.done_count), ("done", 4))
        Outbound = self.env["connector.outbound"]
        self.assertEqual(Outbound.search(task.action_view_done()["domain"]), task.outbound_ids)

    def test_a_planning_task_runs_until_its_planner_is_done(self):
        task = self.env["connector.task"]._start(self.backend, "backfill", "Read", planning=True)
        self.assertEqual((task.state, task.estimate), ("running", "Estimating…"))
        task._planned(skipped=3)
        task.invalidate_recordset()
        self.assertEqual((task.state, task.skipped_count, task.progress), ("done", 3, 100.0))

    def test_only_a_manager_stops_waiting_for_a_planner(self):
        task = self.env["connector.task"]._start(self.backend, "backfill", "Read", planning=True)
        support = new_test_user(
            self.env, login="rs_task_support", groups="connector_base.group_connector_user"
        )
        with self.assertRaisesRegex(AccessError, "Only connector managers"):
            task.with_user(support).action_stop_waiting()
        self.assertEqual(task.state, "running")
        task.action_stop_waiting()  # as a connector manager
        task.invalidate_recordset()
        self.assertEqual((task.state, task.planning), ("done", False))


@tagged("post_install", "-at_install")
class TestConnectorTaskTour(HttpCase):
    """The progress of a long operation, seen in a real browser."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.remote, cls.backend = start_remote_and_backend(cls)

    def test_backend_shows_a_running_replay_and_its_events(self):
        Event = self.env["connector.event"]
        with trap_jobs() as trap:
            Event._receive(self.backend, "partner.upsert", {"id": 1, "name": "Ann"}, "u-1")
            Event._receive(self.backend, "partner.upsert", {"id": 2, "name": "Bob"}, "u-2")
            run_trapped_jobs(self.env, trap)
            self.env["connector.event.replay"].create(
                {
                    "backend_id": self.backend.id,
                    "date_from": fields.Datetime.now() - timedelta(hours=1),
                    "date_to": fields.Datetime.now() + timedelta(minutes=1),
                    "note": "after a fix",
                }
            ).action_replay()
        self.start_tour(
            f"/odoo/action-connector_base.action_connector_backend/{self.backend.id}",
            "connector_task_progress",
            login="admin",
        )
