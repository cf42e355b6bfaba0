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
        self.dispatch()
        self.assertEqual(event.state, "queued")
        event.sudo().job_ids.unlink()  # the job was deleted, or its worker died
        self.env["connector.event"]._cron_reset_stuck()
        self.assertFalse(event.sudo().job_ids, "too recent: the job may just be slow")
        with freeze_time(fields.Datetime.now() + timedelta(minutes=31)):
            self.env["connector.event"]._cron_reset_stuck()
        self.assertEqual(event.state, "queued")
        self.assertEqual(len(event.sudo().job_ids), 1)
        self.assertEqual(event.audit_ids.action, "requeue")

    def test_sent_and_dead_outbound_changes_are_purged_after_retention(self):
        self.backend.retention_days = 7
        with trap_jobs() as trap:
            sent = self.backend._send_later("partner.score", "sent", {"score": 1})
            self.run_jobs(trap)
            pending = self.backend._send_later("partner.score", "pending", {"score": 2})
        self.assertEqual((sent.state, pending.state), ("sent", "pending"))
        with freeze_time(fields.Datetime.now() + timedelta(days=8)):
            purged = self.env["connector.event"]._cron_purge()
        self.assertEqual(purged["connector.outbound"], 1)
        self.assertFalse(sent.exists())
        self.assertTrue(pending.exists(), "what is still to send is never purged")

    def test_purge_works_in_chunks_each_committed(self):
        self.backend.retention_days = 1
        with trap_jobs() as trap:
            events = self.Event.browse()
            for n in range(5):
                events |= self.receive("partner.upsert", {"id": 900 + n, "name": f"P{n}"}, f"c-{n}")
            self.run_jobs(trap)
        with freeze_time(fields.Datetime.now() + timedelta(days=2)):
            purged = self.env["connector.event"]._cron_purge(chunk=2)
        self.assertEqual(purged["connector.event"], 5)
        self.assertFalse(events.exists())

    def test_received_events_whose_dispatcher_is_gone_get_one(self):
        event = self.receive("partner.upsert", {"id": 4, "name": "Undispatched"}, "h-4")
        Job = self.env["queue.job"]
        dispatchers = [("identity_key", "=", f"connector.dispatch-{self.backend.id}")]
        Job.search(dispatchers).unlink()  # the dispatcher's job was deleted
        with freeze_time(fields.Datetime.now() + timedelta(minutes=31)):
            self.env["connector.event"]._cron_reset_stuck()
        self.assertEqual(Job.search(dispatchers).state, "pending")
        self.dispatch()
        self.assertEqual(event.state, "queued")
