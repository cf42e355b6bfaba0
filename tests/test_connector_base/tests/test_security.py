from odoo.exceptions import AccessError
from odoo.tests import new_test_user

from .common import ConnectorCase, trap_jobs


class TestSecurity(ConnectorCase):
    """Credentials for managers only; each company sees its own connector data."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.support = new_test_user(
            cls.env, login="sec_support", groups="connector_base.group_connector_user"
        )
        cls.manager = new_test_user(
            cls.env, login="sec_manager", groups="connector_base.group_connector_manager"
        )

    def test_connector_user_cannot_read_credentials(self):
        backend = self.backend.with_user(self.support)
        self.assertEqual(backend.name, "Test remote")
        for field in ("api_token", "webhook_secret", "webhook_secret_previous"):
            with self.assertRaises(AccessError):
                backend.read([field])
        self.assertNotIn("api_token", backend.fields_get())

    def test_manager_reads_and_writes_credentials(self):
        backend = self.backend.with_user(self.manager)
        self.assertTrue(backend.api_token)
        backend.api_token = "tok-rotated-value"
        self.assertEqual(self.backend.api_token, "tok-rotated-value")

    def test_connector_user_cannot_change_backends_or_payloads(self):
        with self.assertRaises(AccessError):
            self.backend.with_user(self.support).write({"base_url": "http://127.0.0.1:1"})
        with trap_jobs():
            event = self.receive("partner.upsert", {"id": 1}, "s-1")
        with self.assertRaises(AccessError):
            event.with_user(self.support).write({"payload": {"id": 1, "name": "x"}})
        with self.assertRaises(AccessError):
            event.with_user(self.support).action_edit_payload({"id": 1, "name": "x"})

    def test_plain_employee_cannot_see_events(self):
        clerk = new_test_user(self.env, login="sec_clerk", groups="base.group_user")
        with self.assertRaises(AccessError):
            self.env["connector.event"].with_user(clerk).search([])

    def test_job_arguments_carry_no_secret(self):
        with trap_jobs() as trap:
            self.receive("partner.upsert", {"id": 2, "name": "J"}, "s-2")
            self.backend._send_later("partner.score", "k", {"score": 1})
        for job in trap.enqueued_jobs:
            text = repr((job.args, job.kwargs, job.description, job.recordset))
            self.assertNotIn(self.backend.api_token, text)
            self.assertNotIn(self.backend.webhook_secret, text)

    def test_company_b_sees_nothing_of_company_a(self):
        company_b = self.env["res.company"].create({"name": "Store B"})
        user_b = new_test_user(
            self.env,
            login="sec_b",
            groups="connector_base.group_connector_manager",
            company_id=company_b.id,
            company_ids=[company_b.id],
        )
        with trap_jobs() as trap:
            self.receive("partner.upsert", {"id": 3, "name": "A's partner"}, "s-3")
            self.backend._send_later("partner.score", "k", {"score": 1})
            self.run_jobs(trap)
        env_b = self.env(user=user_b)
        for model in (
            "connector.backend",
            "connector.event",
            "connector.outbound",
            "connector.sync.policy",
            "test.partner.binding",
        ):
            self.assertFalse(env_b[model].search([]), model)
        with self.assertRaises(AccessError):
            self.backend.with_user(user_b).read(["name"])
