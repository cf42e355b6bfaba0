from datetime import timedelta

from freezegun import freeze_time

from odoo import fields

from .common import ConnectorCase, trap_jobs


class TestHousekeeping(ConnectorCase):
    """Crons purge old payloads, requeue what a dead worker left, recheck waiting."""

    def test_processed_events_are_purged_after_retention_failed_ones_kept(self):
        self.backend.retention_days = 7
        with trap_jobs() as trap:
            done = self.receive("partner.upsert", {"id": 1, "name": "Old"}, "h-1")
            failed = self.receive("partner.upsert", {"id": 2}, "h-2")
            self.run_jobs(trap)
        self.assertEqual((done.state, failed.state), ("done", "failed"))
        with freeze_time(fields.Datetime.now() + timedelta(days=6)):
            self.env["connector.event"]._cron_purge()
        self.assertTrue(done.exists())
        with freeze_time(fields.Datetime.now() + timedelta(days=8)):
            self.env["connector.event"]._cron_purge()
        self.assertFalse(done.exists())
        self.assertTrue(failed.exists(), "failed events wait for support, whatever their age")

    def test_event_whose_job_is_gone_is_requeued(self):
        event = self.receive("partner.upsert", {"id": 3, "name": "Stuck"}, "h-3")
        self.assertEqual(event.state, "queued")
        event.sudo().job_ids.unlink()  # the job was deleted, or its worker died
        self.env["connector.event"]._cron_reset_stuck()
        self.assertFalse(event.sudo().job_ids, "too recent: the job may just be slow")
        with freeze_time(fields.Datetime.now() + timedelta(minutes=31)):
            self.env["connector.event"]._cron_reset_stuck()
        self.assertEqual(event.state, "queued")
        self.assertEqual(len(event.sudo().job_ids), 1)
        self.assertEqual(event.audit_ids.action, "requeue")
