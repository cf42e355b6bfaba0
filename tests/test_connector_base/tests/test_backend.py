from datetime import timedelta

import psycopg2

from odoo import fields
from odoo.exceptions import UserError
from odoo.tools import mute_logger

from .common import ConnectorCase, trap_jobs


class TestBackend(ConnectorCase):
    """Backends carry one sync policy per flow; bindings are unique both ways."""

    def test_each_flow_gets_a_policy_line_and_its_own_channel(self):
        policies = self.backend.policy_ids
        self.assertEqual(sorted(policies.mapped("flow")), ["partners_in", "scores_out"])
        self.assertEqual(
            sorted(policies.mapped("channel")),
            [
                f"root.connector.backend_{self.backend.id}.partners_in",
                f"root.connector.backend_{self.backend.id}.scores_out",
            ],
        )
        self.assertEqual(set(policies.mapped("mode")), {"realtime"})

    def test_micro_batch_policy_delays_processing(self):
        self.backend._policy("partners_in").write({"mode": "micro_batch", "interval_minutes": 5})
        with trap_jobs() as trap:
            self.receive("partner.upsert", {"id": 1, "name": "Batch"}, "mb-1")
            trap.enqueued_jobs.clear()  # the dispatcher's job
            self.dispatch()
        eta = trap.enqueued_jobs[0].eta
        self.assertGreater(eta, fields.Datetime.now() + timedelta(minutes=4))

    def test_failed_connection_test_says_why(self):
        self.remote.down = True
        with self.assertRaises(UserError) as error:
            self.backend.action_test_connection()
        self.assertIn("HTTP 503", str(error.exception))

    def test_unknown_flow_is_a_clear_error(self):
        with self.assertRaises(UserError) as error:
            self.backend._policy("nope")
        self.assertIn("no sync policy for the flow 'nope'", str(error.exception))

    def test_binding_is_unique_per_external_id_and_per_record(self):
        ada = self.env["res.partner"].create({"name": "Ada"})
        bob = self.env["res.partner"].create({"name": "Bob"})
        self.Binding.create({"backend_id": self.backend.id, "external_id": "1", "odoo_id": ada.id})
        with mute_logger("odoo.sql_db"), self.assertRaises(psycopg2.errors.UniqueViolation):
            self.Binding.create(
                {"backend_id": self.backend.id, "external_id": "1", "odoo_id": bob.id}
            ).flush_recordset()
        with mute_logger("odoo.sql_db"), self.assertRaises(psycopg2.errors.UniqueViolation):
            self.Binding.create(
                {"backend_id": self.backend.id, "external_id": "2", "odoo_id": ada.id}
            ).flush_recordset()

    def test_same_record_can_be_bound_on_two_backends(self):
        other = self.backend.copy({"name": "Second store"})
        ada = self.env["res.partner"].create({"name": "Ada"})
        self.Binding._bind(self.backend, 1, ada)
        self.Binding._bind(other, 1, ada)
        self.assertEqual(len(self.Binding.search([("odoo_id", "=", ada.id)])), 2)

    def test_replay_window_wizard_replays_what_was_received_in_it(self):
        with trap_jobs() as trap:
            events = self.receive("partner.upsert", {"id": 5, "name": "W"}, "w-1")
            events |= self.receive("partner.upsert", {"id": 6, "name": "X"}, "w-2")
            self.run_jobs(trap)
            wizard = self.env["connector.event.replay"].create(
                {
                    "backend_id": self.backend.id,
                    "date_from": fields.Datetime.now() - timedelta(hours=1),
                    "date_to": fields.Datetime.now() + timedelta(minutes=1),
                    "note": "after fixing the partner mapping",
                }
            )
            self.assertEqual(wizard.event_count, 2)
            action = wizard.action_replay()
            trap.assert_jobs_count(2)
            self.run_jobs(trap)
        task = self.env["connector.task"].browse(action["res_id"])
        self.assertEqual(task.event_ids, events)
        self.assertEqual(events.mapped("state"), ["done", "done"])
        self.assertEqual(events.mapped("audit_ids.note"), ["after fixing the partner mapping"] * 2)
        self.assertEqual(self.Binding.search_count([("backend_id", "=", self.backend.id)]), 2)

    def test_empty_replay_window_says_so(self):
        wizard = self.env["connector.event.replay"].create(
            {
                "backend_id": self.backend.id,
                "date_from": fields.Datetime.now() - timedelta(days=30),
                "date_to": fields.Datetime.now() - timedelta(days=29),
                "note": "nothing there",
            }
        )
        with self.assertRaises(UserError):
            wizard.action_replay()

    def test_an_identity_stands_for_one_record(self):
        Partner = self.env["res.partner"]
        Identity = self.env["connector.identity"]
        made = []

        def make(name):
            def _make():
                made.append(name)
                return Partner.create({"name": name})

            return _make

        ada = Identity._record_for(
            self.backend, ["email:ada@example.com"], "res.partner", make("Ada")
        )
        again = Identity._record_for(
            self.backend, ["email:ada@example.com"], "res.partner", make("Ada twice")
        )
        self.assertEqual(again, ada)
        self.assertEqual(made, ["Ada"], "made once")
        # A phone of another living person keeps standing for that person.
        bob = Identity._record_for(self.backend, ["phone:+3212345"], "res.partner", make("Bob"))
        both = Identity._record_for(
            self.backend, ["email:ada@example.com", "phone:+3212345"], "res.partner", make("?")
        )
        self.assertEqual(both, ada)
        self.assertEqual(
            Identity._record_for(self.backend, ["phone:+3212345"], "res.partner", make("?")), bob
        )
        # A key whose record was deleted stands for the next one made.
        ada.unlink()
        ada_again = Identity._record_for(
            self.backend, ["email:ada@example.com"], "res.partner", make("Ada, back")
        )
        self.assertEqual(ada_again.name, "Ada, back")
        self.assertEqual(made, ["Ada", "Bob", "Ada, back"])
        # One backend's identities are not another's.
        other = self.backend.copy({"name": "Other remote"})
        self.assertNotEqual(
            Identity._record_for(other, ["email:ada@example.com"], "res.partner", make("B2")),
            ada_again,
        )
