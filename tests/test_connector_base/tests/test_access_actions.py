from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user

from .common import ConnectorCase, trap_jobs


class TestAccessThroughActions(ConnectorCase):
    """Users act on events and outbound changes through the actions only.

    States, payloads, audit lines and the outbox are the framework's to
    write: over RPC (the ORM as the user), support staff, managers and plain
    employees can write, create or delete none of them, while the actions
    of their group work and leave an audit line in their name.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.support = new_test_user(
            cls.env, login="acl_support", groups="connector_base.group_connector_user"
        )
        cls.manager = new_test_user(
            cls.env, login="acl_manager", groups="connector_base.group_connector_manager"
        )
        cls.clerk = new_test_user(cls.env, login="acl_clerk", groups="base.group_user")

    def setUp(self):
        super().setUp()
        with trap_jobs():
            self.event = self.receive("partner.upsert", {"id": 41, "name": "Ada"}, "acl-1")
            self.change = self.backend._send_later("partner.score", "k-41", {"score": 7})
        # What a failed processing and a refused send leave behind.
        self.event.write({"state": "failed", "error_kind": "business", "error_message": "x"})
        self.change.write({"state": "failed", "error_kind": "remote", "error_message": "no"})
        self.audit = self.env["connector.event.audit"].create(
            {"event_id": self.event.id, "action": "requeue"}
        )
        self.outbound_audit = self.env["connector.outbound.audit"].create(
            {"outbound_id": self.change.id, "action": "requeue"}
        )

    def assert_refused(self, user, what, call):
        with self.subTest(user=user.login, what=what), self.assertRaises(AccessError):
            call()

    def forged_writes(self, user):
        """What a user could try over RPC: ``{what: call}``, each as ``user``."""
        event, change, audit, outbound_audit = (
            r.with_user(user) for r in (self.event, self.change, self.audit, self.outbound_audit)
        )
        env = self.env(user=user)
        return {
            "event state": lambda: event.write({"state": "done"}),
            "event payload": lambda: event.write({"payload": {"id": 41, "name": "Eve"}}),
            "event create": lambda: env["connector.event"].create(
                {
                    "backend_id": self.backend.id,
                    "topic": "partner.upsert",
                    "idempotency_key": f"forged-{user.login}",
                    "occurred_at": "2026-01-01 00:00:00",
                    "state": "done",
                }
            ),
            "event unlink": event.unlink,
            "audit create": lambda: env["connector.event.audit"].create(
                {"event_id": self.event.id, "action": "ignore", "note": "forged"}
            ),
            "audit write": lambda: audit.write({"note": "rewritten"}),
            "audit unlink": audit.unlink,
            "outbound state": lambda: change.write({"state": "sent"}),
            "outbound payload": lambda: change.write({"payload": {"score": 99}}),
            "outbound create": lambda: env["connector.outbound"].create(
                {
                    "backend_id": self.backend.id,
                    "topic": "partner.score",
                    "coalescing_key": f"forged-{user.login}",
                    "payload": {"score": 99},
                }
            ),
            "outbound unlink": change.unlink,
            "outbound audit create": lambda: env["connector.outbound.audit"].create(
                {"outbound_id": self.change.id, "action": "cancel", "note": "forged"}
            ),
            "outbound audit write": lambda: outbound_audit.write({"note": "rewritten"}),
            "outbound audit unlink": outbound_audit.unlink,
        }

    def test_no_group_writes_states_payloads_audit_or_outbox_over_rpc(self):
        for user in (self.support, self.manager, self.clerk):
            for what, call in self.forged_writes(user).items():
                self.assert_refused(user, what, call)
        self.assertEqual(self.event.state, "failed")
        self.assertEqual(self.event.payload, {"id": 41, "name": "Ada"})
        self.assertEqual((self.change.state, self.change.payload), ("failed", {"score": 7}))
        self.assertEqual(self.audit.note, False)
        self.assertEqual(self.outbound_audit.note, False)

    def test_support_and_manager_read_what_they_act_on(self):
        for user in (self.support, self.manager):
            with self.subTest(user=user.login):
                self.assertEqual(self.event.with_user(user).state, "failed")
                self.assertEqual(self.change.with_user(user).payload, {"score": 7})
                self.assertEqual(self.audit.with_user(user).action, "requeue")

    def test_support_requeues_and_ignores_through_the_actions(self):
        with trap_jobs() as trap:
            self.event.with_user(self.support).action_requeue()
        self.assertEqual(self.event.state, "queued")
        self.assertEqual(len(trap.enqueued_jobs), 1)
        other = self.receive("partner.upsert", {"id": 42, "name": "Bob"}, "acl-2")
        other.write({"state": "failed"})
        wizard = (
            self.env["connector.event.ignore"]
            .with_user(self.support)
            .with_context(active_ids=other.ids)
            .create({"reason": "Test order, not a sale"})
        )
        wizard.action_ignore()
        self.assertEqual(other.state, "ignored")
        audits = self.env["connector.event.audit"].search(
            [("event_id", "in", (self.event | other).ids), ("user_id", "=", self.support.id)]
        )
        self.assertEqual(sorted(audits.mapped("action")), ["ignore", "requeue"])

    def test_support_requeues_and_cancels_outbound_changes_through_the_actions(self):
        with trap_jobs() as trap:
            self.change.with_user(self.support).action_requeue()
        self.assertEqual(self.change.state, "pending")
        flush = trap.enqueued_jobs[0]
        self.assertTrue(flush.recordset.env.su, "the flush writes the outbox as the system")
        self.change.with_user(self.support).action_cancel()
        self.assertEqual(self.change.state, "cancelled")

    def test_outbound_actions_are_audited_on_the_change_form(self):
        self.outbound_audit.unlink()
        with trap_jobs():
            self.change.with_user(self.support).action_requeue()
        self.change.with_user(self.manager).action_cancel()
        # What the support user sees on the change's form: who did what, when.
        change = self.change.with_user(self.support)
        arch = change.get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn('name="audit_ids"', arch)
        spec = {"date": {}, "user_id": {"fields": {"display_name": {}}}, "action": {}}
        lines = change.web_read({"audit_ids": {"fields": spec}})[0]["audit_ids"]
        self.assertEqual(
            [(line["action"], line["user_id"]["display_name"]) for line in lines],
            [("cancel", self.manager.name), ("requeue", self.support.name)],
            "newest first",
        )
        self.assertTrue(all(line["date"] for line in lines))

    def test_sending_again_a_change_superseded_by_a_newer_one_says_so(self):
        self.outbound_audit.unlink()
        with trap_jobs():
            newer = self.backend._send_later("partner.score", "k-41", {"score": 8})
            self.change.with_user(self.support).action_requeue()
        self.assertEqual((self.change.state, newer.state), ("cancelled", "pending"))
        self.assertEqual(self.change.audit_ids.user_id, self.support)
        self.assertIn("A newer change of this key is pending", self.change.audit_ids.note)
        self.assertFalse(newer.audit_ids, "nobody acted on the newer change")

    def test_outbound_actions_on_changes_in_another_state_say_what_is_possible(self):
        self.change.write({"state": "sent", "error_kind": False, "error_message": False})
        with self.assertRaisesRegex(UserError, "Only failed changes can be sent again"):
            self.change.with_user(self.support).action_requeue()
        with self.assertRaisesRegex(UserError, "Only pending or failed changes can be cancelled"):
            self.change.with_user(self.support).action_cancel()
        self.assertEqual(self.change.state, "sent")
        self.assertEqual(
            self.change.audit_ids, self.outbound_audit, "no line for what was not done"
        )

    def test_manager_edits_a_payload_and_sends_pending_changes_through_the_actions(self):
        with trap_jobs():
            self.event.with_user(self.manager).action_edit_payload(
                {"id": 41, "name": "Ada Lovelace"}, "typo in the name"
            )
        self.assertEqual(self.event.payload, {"id": 41, "name": "Ada Lovelace"})
        self.assertEqual(self.event.state, "queued")
        edit = self.event.audit_ids.filtered(lambda a: a.action == "edit")
        self.assertEqual((edit.user_id, edit.note), (self.manager, "typo in the name"))
        self.change.write({"state": "pending", "error_kind": False, "error_message": False})
        with trap_jobs() as trap:
            self.backend.with_user(self.manager).action_send_pending()
            # The job runs as the manager who pressed the button, as queue_job would.
            trap.enqueued_jobs[0].recordset = trap.enqueued_jobs[0].recordset.with_user(
                self.manager
            )
            self.run_jobs(trap)
        self.assertEqual(self.change.state, "sent")

    def test_plain_employee_has_no_action(self):
        with self.assertRaises(AccessError):
            self.event.with_user(self.clerk).action_requeue()
        with self.assertRaises(AccessError):
            self.change.with_user(self.clerk).action_cancel()
        self.assertEqual((self.event.state, self.change.state), ("failed", "failed"))
