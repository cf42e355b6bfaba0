from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo.exceptions import UserError
from odoo.tools import SQL

from .common import ConnectorCase, start_remote_and_backend, trap_jobs

NOW = datetime(2026, 11, 30, 12, 0, 0)


class TestMetrics(ConnectorCase):
    """Throughput, backlog, lag, error rate and duplicates per backend and flow."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other_remote, cls.other = start_remote_and_backend(cls, name="Other remote")
        cls.count = 0

    def event(
        self,
        state,
        *,
        flow="partners_in",
        received=None,
        lag=None,
        backend=None,
        source="webhook",
        **ago,
    ):
        """An event row in ``state``, processed ``ago`` before NOW (when given),
        received ``received`` before NOW (default: when it was processed)."""
        type(self).count += 1
        processed_at = NOW - timedelta(**ago) if ago else None
        received_at = NOW - received if received else processed_at or NOW
        occurred_at = processed_at - timedelta(seconds=lag) if lag is not None else received_at
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO connector_event (backend_id, flow, topic, idempotency_key,
                    occurred_at, received_at, processed_at, lag_seconds, source, state,
                    duplicate_of_id)
                VALUES (%s, %s, 'partner.upsert', %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (backend or self.backend).id,
                flow,
                f"m-{self.count}",
                occurred_at,
                received_at,
                processed_at,
                lag,
                source,
                state,
                None,
            )
        )

    def outbound(self, state, *, flow="scores_out", queued=None, sent=None):
        type(self).count += 1
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO connector_outbound (backend_id, flow, topic, coalescing_key, state,
                    sent_at, create_date)
                VALUES (%s, %s, 'partner.score', %s, %s, %s, %s)
                """,
                self.backend.id,
                flow,
                f"o-{self.count}",
                state,
                NOW - sent if sent else None,
                NOW - queued if queued else NOW,
            )
        )

    def metrics(self, period):
        with freeze_time(NOW):
            return (self.backend | self.other)._connector_metrics(period)

    def test_metrics_per_flow_over_hour_day_and_week(self):
        # Applied in the last hour with lags 10..100 s; one applied yesterday
        # morning, one 3 days ago.
        for n in range(1, 11):
            self.event("done", minutes=n, lag=10 * n)
        self.event("done", hours=20, lag=1000)
        self.event("done", days=3, lag=5000)
        # Failed: one this hour, one earlier today; one ignored by a person and
        # one skipped as stale this hour (processed, neither failed nor open).
        self.event("failed", minutes=5)
        self.event("failed", hours=5)
        self.event("ignored", minutes=7)
        self.event("stale", minutes=8)
        # Open: received 2 h ago (the oldest pending), waiting 30 min.
        self.event("received", received=timedelta(hours=2))
        self.event("waiting", received=timedelta(minutes=30))
        # Duplicates: one this hour, one 2 days ago.
        self.event("duplicate", received=timedelta(minutes=3))
        self.event("duplicate", received=timedelta(days=2))
        # Another flow of the same backend, and the other backend.
        self.event("done", flow="notes_in", minutes=2, lag=7)
        self.event("done", minutes=1, lag=99999, backend=self.other)
        self.event("failed", minutes=1, backend=self.other)
        self.event("received", received=timedelta(days=6), backend=self.other)

        hour = self.metrics("hour")[(self.backend.id, "partners_in")]
        self.assertAlmostEqual(hour["applied_per_minute"], 10 / 60)
        self.assertEqual(hour["lag_p50"], 55.0)  # lags 10..100: halfway between 50 and 60
        self.assertAlmostEqual(hour["lag_p95"], 95.5)
        self.assertAlmostEqual(
            hour["error_rate"], 1 / 13, msg="1 failed of 10 done, 1 failed, 1 ignored, 1 stale"
        )
        self.assertEqual(hour["duplicates"], 1)
        # The backlog is now's, whatever the period: 2 open + 2 failed.
        self.assertEqual((hour["backlog"], hour["failed"], hour["waiting"]), (4, 2, 1))
        self.assertEqual(hour["oldest_pending_age"], 2 * 3600)

        day = self.metrics("day")[(self.backend.id, "partners_in")]
        self.assertAlmostEqual(day["applied_per_minute"], 11 / 1440)
        self.assertAlmostEqual(day["error_rate"], 2 / 15)
        self.assertEqual(day["lag_p50"], 60.0)
        self.assertEqual(day["duplicates"], 1)

        week = self.metrics("week")[(self.backend.id, "partners_in")]
        self.assertAlmostEqual(week["applied_per_minute"], 12 / 10080)
        self.assertEqual(week["duplicates"], 2)
        self.assertEqual(week["backlog"], 4)

        notes = self.metrics("hour")[(self.backend.id, "notes_in")]
        self.assertAlmostEqual(notes["applied_per_minute"], 1 / 60)
        self.assertEqual((notes["lag_p50"], notes["lag_p95"], notes["error_rate"]), (7, 7, 0))
        self.assertEqual((notes["backlog"], notes["oldest_pending_age"]), (0, 0))

        other = self.metrics("hour")[(self.other.id, "partners_in")]
        self.assertAlmostEqual(other["applied_per_minute"], 1 / 60)
        self.assertEqual((other["lag_p50"], other["error_rate"]), (99999, 0.5))
        self.assertEqual((other["backlog"], other["oldest_pending_age"]), (2, 6 * 86400))

    def test_what_a_backfill_reads_is_applied_not_late(self):
        # Pushed by the remote: lags 10 and 20 s. Read by a backfill and by
        # a manual import: changes a day old, applied now.
        self.event("done", minutes=2, lag=10)
        self.event("done", minutes=3, lag=20, source="upload")
        self.event("done", minutes=1, lag=86400, source="poll")
        self.event("done", minutes=1, lag=86400, source="manual")

        hour = self.metrics("hour")[(self.backend.id, "partners_in")]
        self.assertAlmostEqual(hour["applied_per_minute"], 4 / 60)
        self.assertEqual((hour["lag_p50"], hour["lag_p95"]), (15.0, 19.5))

    def test_outbound_sent_pending_and_oldest_age(self):
        self.outbound("sent", sent=timedelta(minutes=10))
        self.outbound("sent", sent=timedelta(minutes=20))
        self.outbound("sent", sent=timedelta(hours=3))
        self.outbound("pending", queued=timedelta(minutes=45))
        self.outbound("sending", queued=timedelta(minutes=5))
        self.outbound("failed", queued=timedelta(days=1))
        self.outbound("cancelled", queued=timedelta(days=1))

        hour = self.metrics("hour")[(self.backend.id, "scores_out")]
        self.assertAlmostEqual(hour["sent_per_minute"], 2 / 60)
        self.assertEqual((hour["outbound_pending"], hour["outbound_failed"]), (2, 1))
        self.assertEqual(hour["oldest_pending_age"], 45 * 60)
        self.assertEqual(hour["backlog"], 0, "no event in this flow")
        self.assertIsNone(hour["lag_p50"])
        day = self.metrics("day")[(self.backend.id, "scores_out")]
        self.assertAlmostEqual(day["sent_per_minute"], 3 / 1440)
        self.assertNotIn((self.other.id, "scores_out"), day, "the other backend sent nothing")

    def test_a_quiet_backend_has_no_rows_and_old_history_does_not_count(self):
        self.event("done", days=8, lag=5)
        self.assertEqual(self.metrics("week"), {})
        self.assertEqual(self.env["connector.backend"]._connector_metrics("day"), {})

    def test_unknown_period_says_which_ones_exist(self):
        with self.assertRaisesRegex(UserError, "use one of hour, day, week"):
            self.backend._connector_metrics("month")

    def test_metrics_of_events_applied_by_the_framework(self):
        """Real processing fills the columns the metrics read."""
        with trap_jobs() as trap:
            event = self.receive("partner.upsert", {"id": 7, "name": "Metric"}, "real-1")
            self.run_jobs(trap)
        self.assertEqual(event.state, "done")
        values = self.backend._connector_metrics("hour")[(self.backend.id, "partners_in")]
        self.assertAlmostEqual(values["applied_per_minute"], 1 / 60)
        self.assertEqual((values["backlog"], values["error_rate"]), (0, 0))
        self.assertIsNotNone(values["lag_p95"])
