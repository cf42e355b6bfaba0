from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from odoo.addons.connector_base.components.http_client import RemoteError

from .common import ConnectorCase, start_remote_and_backend


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

    def set_job(self, job, state, minutes_ago):
        """The job as the runner left it ``minutes_ago`` minutes before now."""
        moment = self.now - timedelta(minutes=minutes_ago)
        self.env["queue.job"].flush_model()
        self.env.cr.execute(
            SQL(
                "UPDATE queue_job SET state = %s, date_enqueued = %s, date_started = %s "
                "WHERE id = %s",
                state,
                moment,
                moment if state == "started" else None,
                job.id,
            )
        )
        self.env["queue.job"].invalidate_model()

    def event_job(self):
        """The processing job of a received event, on its flow's channel."""
        self.set_job(self.waiting_job(), "done", minutes_ago=0)  # this test dispatches
        self.dispatch()
        job = self.env["queue.job"].search(
            [("channel", "=like", f"root.connector.backend_{self.backend.id}.%")]
        )
        self.assertEqual(len(job), 1)
        return job

    def test_job_started_far_too_long_reports_its_stuck_channel(self):
        job = self.event_job()
        self.set_job(job, "started", minutes_ago=61)
        self.run_checks()
        self.run_checks(minutes=5)
        activity = self.activities()
        self.assertEqual(activity.connector_health_check, "channel")
        self.assertEqual(activity.summary, "Connector health: A job channel is stuck")
        note = str(activity.note)
        self.assertIn(f"root.connector.backend_{self.backend.id}.partners_in", note)
        self.assertIn("started more than 60 minutes ago", note)
        self.assertIn("restart the Odoo worker", note)
        self.assertEqual(self.backend.health_state, "failing")
        # The job ends: the channel moves again and the activity is closed.
        self.set_job(job, "done", minutes_ago=0)
        self.run_checks(minutes=6)
        self.assertFalse(self.activities())
        self.assertEqual(self.backend.health_state, "ok")

    def test_job_started_within_the_threshold_is_fine(self):
        self.set_job(self.event_job(), "started", minutes_ago=30)
        self.assertEqual(self.run_checks()[self.backend.id], [])

    def test_job_enqueued_and_never_started_reports_its_channel(self):
        job = self.event_job()
        self.set_job(job, "enqueued", minutes_ago=11)
        codes = [code for code, _message in self.run_checks()[self.backend.id]]
        # Nothing started for 11 minutes: the runner is blamed too.
        self.assertEqual(sorted(codes), ["channel", "runner"])
        note = str(self.activities("channel").note)
        self.assertIn("handed to a worker more than 10 minutes ago and never started", note)

    def test_backend_job_and_dispatcher_are_the_backends_jobs(self):
        """Jobs on the backend itself (a backfill) and its dispatcher, off its channels."""
        dispatcher = self.waiting_job()
        self.set_job(dispatcher, "started", minutes_ago=70)
        backend_job = self.backend.with_delay(description="Stuck import")._test_connection()
        backend_job = self.env["queue.job"].search([("uuid", "=", backend_job.uuid)])
        self.set_job(backend_job, "started", minutes_ago=65)
        checks = dict(self.run_checks()[self.backend.id])
        self.assertIn("2 job(s) started more than 60 minutes ago", checks["channel"])
        self.assertIn("queue the messages received", checks["channel"])  # the oldest

    def test_stuck_job_of_another_backend_is_not_this_ones(self):
        _remote, other = start_remote_and_backend(self, name="Other remote")
        self.receive("partner.upsert", {"id": 7, "name": "Other"}, "o-1", backend=other)
        job = self.env["queue.job"].search(
            [("identity_key", "=", f"connector.dispatch-{other.id}")]
        )
        self.set_job(job, "started", minutes_ago=90)
        checks = self.run_checks()
        self.assertEqual(checks[self.backend.id], [])
        self.assertEqual([code for code, _message in checks[other.id]], ["channel"])

    def test_thresholds_are_system_parameters(self):
        Parameters = self.env["ir.config_parameter"]
        Parameters.set_param("connector_base.health_job_started_minutes", "5")
        self.set_job(self.event_job(), "started", minutes_ago=6)
        checks = dict(self.run_checks()[self.backend.id])
        self.assertIn("started more than 5 minutes ago", checks["channel"])
        Parameters.set_param("connector_base.health_runner_stall_minutes", "0.5")
        self.assertEqual(
            self.backend._health_minutes("connector_base.health_runner_stall_minutes"), 0.5
        )

    def test_threshold_that_is_not_minutes_is_refused(self):
        Parameters = self.env["ir.config_parameter"]
        for value in ("ten", "0", "-5", "nan"):
            with self.assertRaisesRegex(ValidationError, "number of minutes above 0"):
                Parameters.set_param("connector_base.health_job_enqueued_minutes", value)

    def test_rejected_credentials_raise_an_activity_until_a_call_is_accepted(self):
        self.remote.script("/ping", (401, {}, {"errors": "Invalid API key or access token"}))
        error = self.expect_error(self.ping, RemoteError)
        self.assertEqual(error.status, 401)
        self.assertTrue(self.backend.auth_rejected_at)
        self.assertIn("HTTP 401", self.backend.auth_rejected_message)
        self.assertEqual(self.backend.state, "running", "a refusal does not open the circuit")
        self.run_checks()
        self.run_checks(minutes=5)
        activity = self.activities()
        self.assertEqual(activity.connector_health_check, "credentials")
        self.assertEqual(activity.summary, "Connector health: The remote rejected the credentials")
        note = str(activity.note)
        self.assertIn("refused the credentials", note)
        self.assertIn("Enter a valid API token", note)
        self.assertIn("Invalid API key", note)
        # Another refusal that is not about credentials does not clear it...
        self.remote.script("/ping", (404, {}, {"error": "not found"}))
        self.expect_error(self.ping, RemoteError)
        self.assertTrue(self.backend.auth_rejected_at)
        # ...an accepted call does.
        self.ping()
        self.assertFalse(self.backend.auth_rejected_at)
        self.assertFalse(self.backend.auth_rejected_message)
        self.run_checks(minutes=6)
        self.assertFalse(self.activities())
        self.assertEqual(self.backend.health_state, "ok")

    def test_forbidden_is_a_rejection_of_the_credentials_too(self):
        self.remote.script("/ping", (403, {}, {"errors": "Access denied for scope"}))
        self.expect_error(self.ping, RemoteError)
        checks = dict(self.run_checks()[self.backend.id])
        self.assertIn("HTTP 403", checks["credentials"])

    def test_transient_fault_is_not_a_rejection_of_the_credentials(self):
        self.open_circuit(count=1)
        self.assertFalse(self.backend.auth_rejected_at)

    def refuse_webhooks(self, count):
        """``count`` webhooks refused for their signature, as the intake counts them."""
        for _n in range(count):
            self.backend._record_rejected_webhook()

    def test_webhooks_refused_for_their_signature_raise_an_activity(self):
        self.refuse_webhooks(3)
        self.run_checks()
        self.run_checks(minutes=5)
        activity = self.activities()
        self.assertEqual(activity.connector_health_check, "webhook_signature")
        self.assertEqual(
            activity.summary, "Connector health: Webhooks are refused for their signature"
        )
        note = str(activity.note)
        self.assertIn("3 webhooks were refused for their signature", note)
        self.assertIn("Webhook secret of the Connection tab", note)
        # The secret fixed, the remote's next webhook is accepted.
        self.receive("partner.upsert", {"id": 2, "name": "Signed"}, "sig-1")
        self.run_checks(minutes=6)
        self.assertFalse(self.activities())

    def test_a_few_refused_webhooks_among_accepted_ones_are_fine(self):
        self.refuse_webhooks(2)
        self.assertEqual(self.run_checks()[self.backend.id], [])
        self.receive("partner.upsert", {"id": 3, "name": "Signed"}, "sig-2")
        self.refuse_webhooks(5)
        self.receive("partner.upsert", {"id": 4, "name": "Signed"}, "sig-3")
        self.assertEqual(self.run_checks()[self.backend.id], [])

    def test_webhooks_refused_more_than_an_hour_ago_are_forgotten(self):
        self.refuse_webhooks(4)
        self.assertEqual(self.run_checks(minutes=61)[self.backend.id], [])
