from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.connector_base.tests.common import run_trapped_jobs

from .common import start_remote_and_backend, trap_jobs


@tagged("post_install", "-at_install")
class TestExceptionsTour(HttpCase):
    """In a real browser: a support user works an exception from the
    Connectors overview to the event applied."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.remote, cls.backend = start_remote_and_backend(cls)
        # Support staff who may also create contact tags, as the fix needs.
        cls.support = new_test_user(
            cls.env,
            login="tour_support",
            groups="connector_base.group_connector_user,base.group_partner_manager",
        )

    def test_support_reads_the_reason_fixes_the_cause_and_requeues(self):
        with trap_jobs() as trap:
            event = self.env["connector.event"]._receive(
                self.backend,
                "partner.upsert",
                {"id": 77, "name": "Partner 77", "tag": "Gold"},
                "tour-77",
            )
            run_trapped_jobs(self.env, trap)
        self.assertEqual(event.state, "failed")

        with trap_jobs() as trap:
            self.start_tour("/odoo", "connector_exceptions_fix_and_requeue", login="tour_support")
            event.invalidate_recordset()
            self.assertEqual(event.state, "queued")
            self.assertEqual(len(trap.enqueued_jobs), 1, "one job, for the requeued event")
            # What the job runner does next.
            run_trapped_jobs(self.env, trap)
        self.assertEqual(event.state, "done")

        self.start_tour("/odoo", "connector_exceptions_done", login="tour_support")
        partner = self.env["test.partner.binding"]._find(self.backend, 77).odoo_id
        self.assertEqual(partner.category_id.name, "Gold")
        self.assertEqual(
            event.audit_ids.mapped(lambda a: (a.action, a.user_id)), [("requeue", self.support)]
        )
