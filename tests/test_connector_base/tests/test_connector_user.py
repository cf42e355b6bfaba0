from odoo.tests import new_test_user

from odoo.addons.connector_base.tests.common import trap_jobs

from .common import ConnectorCase


class TestConnectorUser(ConnectorCase):
    """Every backend, of any connector, has a user of its own that its jobs run
    as: what they make is the connector's, whoever received or requeued the
    message or made the change that is sent."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.robot = cls.backend.connector_user_id
        cls.public = cls.env.ref("base.public_user")
        cls.support = new_test_user(
            cls.env, login="rs_support_robot", groups="connector_base.group_connector_user"
        )
        cls.clerk = new_test_user(cls.env, login="rs_clerk_robot", groups="base.group_user")

    def assert_runs_as_robot(self, job):
        self.assertEqual((job.recordset.env.uid, job.recordset.env.su), (self.robot.id, True))

    def test_backend_is_created_with_its_connector_user(self):
        self.assertTrue(self.robot)
        self.assertIn("connector: Test remote", self.robot.name)
        self.assertEqual(self.robot.login, f"connector.backend.{self.backend.id}")
        self.assertFalse(self.robot.share)
        self.assertTrue(self.robot.has_group("connector_base.group_connector_robot"))
        self.assertTrue(self.robot.has_group("base.group_user"))
        self.assertFalse(self.robot.has_group("connector_base.group_connector_manager"))
        self.assertEqual(self.robot.company_id, self.backend.company_id)

    def test_webhook_of_the_public_user_is_applied_by_the_connector_user(self):
        Event = self.env["connector.event"].with_user(self.public).sudo()
        with trap_jobs() as trap:
            event = Event._receive(
                self.backend.with_env(Event.env), "partner.upsert", {"id": 31, "name": "Ada"}, "d31"
            )
            dispatcher = trap.enqueued_jobs[-1]
            self.assertEqual(dispatcher.method_name, "_dispatch_received")
            self.assert_runs_as_robot(dispatcher)
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        partner = event._produced_record()
        self.assertEqual(partner.create_uid, self.robot)
        self.assertNotEqual(partner.create_uid, self.public)
        binding = self.Binding._find(self.backend, 31)
        self.assertEqual(binding.create_uid, self.robot)

    def test_requeue_by_support_runs_as_the_connector_user(self):
        with trap_jobs() as trap:
            note = self.receive("partner.note", {"partner_id": 32, "note": "VIP"}, "note-32")
            self.run_jobs(trap)
            self.assertEqual(note.state, "waiting")
            self.receive("partner.upsert", {"id": 32, "name": "Grace"}, "p-32")
            self.run_jobs(trap)
            # Put back to failed by hand, as a support user would meet it.
            note.sudo().write({"state": "failed"})
            note.with_user(self.support).action_requeue()
            self.assert_runs_as_robot(trap.enqueued_jobs[-1])
            self.run_jobs(trap)
        self.assertEqual(note.state, "done", note.error_message)
        partner = note._produced_record()
        self.assertEqual(partner.write_uid, self.robot)
        self.assertNotEqual(partner.write_uid, self.support)

    def test_changes_are_sent_by_the_connector_user(self):
        with trap_jobs() as trap:
            self.backend.with_user(self.clerk).sudo()._send_later(
                "partner.score", "p-33", {"score": 3}
            )
            self.assertTrue(trap.enqueued_jobs)
            self.assert_runs_as_robot(trap.enqueued_jobs[-1])
