from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.tools import SQL

from .common import ConnectorCase


class TestHealth(ConnectorCase):
    """Scheduled health checks: one activity per failing check, closed when it passes."""

    def setUp(self):
        super().setUp()
        self.now = fields.Datetime.now()
        self.backend.responsible_id = self.env.ref("base.user_admin")

    def run_checks(self, minutes=0):
        with freeze_time(self.now + timedelta(minutes=minutes)):
            return self.env["connector.backend"]._connector_run_health_checks()

    def activities(self, code=None):
        domain = [
            ("res_model", "=", "connector.backend"),
            ("res_id", "=", self.backend.id),
            ("connector_health_check", "!=", False),
        ]
        if code:
            domain.append(("connector_health_check", "=", code))
        return self.env["mail.activity"].search(domain)

    def waiting_job(self):
        """A job queued now, which nobody starts (the runner is stopped)."""
        self.receive("partner.upsert", {"id": 1, "name": "Stuck"}, "h-1")
        job = self.env["queue.job"].search(
            [("identity_key", "=", f"connector.dispatch-{self.backend.id}")]
        )
        self.assertEqual(job.state, "pending")
        return job

    def test_healthy_backend_gets_no_activity(self):
        checks = self.run_checks()
        self.assertEqual(checks[self.backend.id], [])
        self.assertFalse(self.activities())
        self.assertEqual(self.backend.health_state, "ok")
        self.assertFalse(self.backend.health_message)

    def test_backend_defaults_its_responsible_to_the_creating_user(self):
        admin = self.env.ref("base.user_admin")
        backend = (
            self.env["connector.backend"]
            .with_user(admin)
            .create({"name": "New store", "backend_type": "test"})
        )
        self.assertEqual(backend.responsible_id, admin)

    def test_stopped_runner_raises_one_activity_closed_when_jobs_run(self):
        job = self.waiting_job()
        # 11 minutes later the job still waits and none started: two cron
        # runs raise one activity, not two.
        self.run_checks(minutes=11)
        self.run_checks(minutes=14)
        activity = self.activities()
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.connector_health_check, "runner")
        self.assertEqual(activity.user_id, self.env.ref("base.user_admin"))
        self.assertEqual(activity.activity_type_id, self.env.ref("mail.mail_activity_data_todo"))
        self.assertEqual(activity.summary, "Connector health: Queue jobs are not running")
        self.assertIn("not running", str(activity.note))
        self.assertEqual(self.backend.health_state, "failing")
        self.assertIn("queue_job runner", self.backend.health_message)
        # The runner is back: the job started a minute ago.
        self.env["queue.job"].flush_model()
        self.env.cr.execute(
            SQL(
                "UPDATE queue_job SET state = 'started', date_started = %s WHERE id = %s",
                self.now + timedelta(minutes=14),
                job.id,
            )
        )
        self.env["queue.job"].invalidate_model()
        self.run_checks(minutes=15)
        self.assertFalse(activity.exists() and activity.active)
        self.assertFalse(self.activities())
        self.assertEqual(self.backend.health_state, "ok")
        self.assertTrue(
            self.backend.message_ids.filtered(lambda m: "Resolved" in str(m.body)),
            "the done activity leaves its feedback in the chatter",
        )

    def test_jobs_waiting_less_than_the_threshold_are_fine(self):
        self.waiting_job()
        self.assertEqual(self.run_checks(minutes=5)[self.backend.id], [])

    def test_paused_backend_is_not_blamed_for_the_runner(self):
        self.waiting_job()
        self.backend.action_pause()
        self.assertEqual(self.run_checks(minutes=15)[self.backend.id], [])

    def test_open_circuit_raises_its_activity(self):
        self.open_circuit()
        self.assertEqual(self.backend.state, "circuit_open")
        self.run_checks()
        self.run_checks(minutes=1)
        activity = self.activities("circuit")
        self.assertEqual(len(activity), 1)
        self.assertIn("close the circuit", str(activity.note))
        self.backend.action_close_circuit()
        self.run_checks(minutes=2)
        self.assertFalse(self.activities())

    def test_event_waiting_past_the_sla_raises_an_activity(self):
        policy = self.backend._policy("partners_in")
        policy.sla_lag_minutes = 15
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO connector_event (backend_id, flow, topic, idempotency_key,
                    occurred_at, received_at, source, state)
                VALUES (%s, 'partners_in', 'partner.upsert', 'sla-1', %s, %s, 'webhook', 'queued')
                """,
                self.backend.id,
                self.now - timedelta(minutes=20),
                self.now - timedelta(minutes=20),
            )
        )
        checks = self.run_checks()
        self.assertEqual([code for code, _message in checks[self.backend.id]], ["sla"])
        activity = self.activities("sla")
        self.assertEqual(len(activity), 1)
        self.assertIn("SLA of 15 minutes", str(activity.note))
        self.assertIn("20 minutes", str(activity.note))
        # A longer SLA: the same wait is within it, the activity is closed.
        policy.sla_lag_minutes = 30
        self.run_checks()
        self.assertFalse(self.activities())
        self.assertEqual(self.backend.health_state, "ok")
