import importlib.util
from datetime import datetime, timedelta
from pathlib import Path

from freezegun import freeze_time
from lxml import etree

from odoo.exceptions import UserError
from odoo.tests import new_test_user
from odoo.tools.safe_eval import safe_eval

from odoo.addons import connector_base

from .common import ConnectorCase, trap_jobs

T0 = datetime(2026, 11, 30, 8, 0, 0)


class TestExceptions(ConnectorCase):
    """Connectors > Exceptions: rows newest first with their reason, a filter
    panel, bulk requeue and ignore; stale events told apart from ignored ones."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.support = new_test_user(
            cls.env, login="exc_support", groups="connector_base.group_connector_user"
        )
        cls.action = cls.env["ir.actions.act_window"]._for_xml_id(
            "connector_base.action_connector_exceptions"
        )

    def received(self, remote_id, at, topic="partner.upsert", **payload):
        """An event received and processed at ``at``, as the job runner would."""
        payload = payload or {"id": remote_id, "name": f"Partner {remote_id}", "tag": "VIP"}
        with freeze_time(at), trap_jobs() as trap:
            event = self.receive(topic, payload, f"exc-{remote_id}-{at:%H%M}", occurred_at=at)
            self.run_jobs(trap)
        return event

    def views(self):
        """The views the action opens, as the web client loads them for support."""
        views = list(self.action["views"])
        search_view = self.action["search_view_id"]
        views.append((search_view[0] if search_view else False, "search"))
        result = self.Event.with_user(self.support).get_views(views, {"load_filters": False})
        return {kind: etree.fromstring(view["arch"]) for kind, view in result["views"].items()}

    def exception_rows(self, list_arch):
        """The rows of the list, as the web client asks for them."""
        domain = [*safe_eval(self.action["domain"]), ("backend_id", "=", self.backend.id)]
        return self.Event.with_user(self.support).search(
            domain, order=list_arch.get("default_order")
        )

    def test_exceptions_open_on_rows_newest_first_with_the_reason(self):
        oldest = self.received(1, T0)
        middle = self.received(2, T0 + timedelta(minutes=5))
        newest = self.received(3, T0 + timedelta(minutes=10))
        done = self.received(4, T0 + timedelta(minutes=15), id=4, name="No tag needed")
        self.assertEqual((oldest | middle | newest).mapped("state"), ["failed"] * 3)
        self.assertEqual(done.state, "done")

        context = safe_eval(self.action["context"] or "{}")
        self.assertFalse(
            [key for key in context if "group_by" in key], "rows, not groups: nothing grouped"
        )
        views = self.views()
        rows = self.exception_rows(views["list"])
        self.assertEqual(rows, newest | middle | oldest)
        self.assertEqual(rows.ids, [newest.id, middle.id, oldest.id], "newest first")
        reason = views["list"].xpath("//field[@name='error_message']")[0]
        self.assertEqual(reason.get("string"), "Reason")
        self.assertNotIn(reason.get("optional"), ("hide",), "the reason shows in the row")
        self.assertIn("The contact tag VIP does not exist in Odoo", newest.error_message)

        panel = views["search"].xpath("//searchpanel/field/@name")
        self.assertEqual(panel, ["backend_id", "flow", "error_kind"])
        domain = safe_eval(self.action["domain"])
        Event = self.Event.with_user(self.support)
        flows = Event.search_panel_select_range("flow", search_domain=domain, enable_counters=True)[
            "values"
        ]
        self.assertIn(
            {"id": "partners_in", "display_name": "Partners in", "__count": 3},
            flows,
            "the flow by its name, with its count",
        )
        kinds = Event.search_panel_select_range(
            "error_kind", search_domain=domain, enable_counters=True
        )["values"]
        business = [k for k in kinds if k["id"] == "business"]
        self.assertEqual(business[0]["__count"], 3)
        backends = Event.search_panel_select_range(
            "backend_id", search_domain=domain, enable_counters=True
        )["values"]
        self.assertIn(self.backend.id, [b["id"] for b in backends])

    def test_backend_opens_its_exceptions_in_the_same_list(self):
        action = self.backend.with_user(self.support).action_view_exceptions()
        self.assertEqual(action["id"], self.action["id"])
        self.assertEqual(action["context"], {"searchpanel_default_backend_id": self.backend.id})

    def test_graph_and_pivot_views_on_events_and_outbound(self):
        for xmlid in ("action_connector_event", "action_connector_exceptions"):
            action = self.env["ir.actions.act_window"]._for_xml_id(f"connector_base.{xmlid}")
            self.assertIn("pivot", action["view_mode"])
            self.assertIn("graph", action["view_mode"])
        outbound = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_base.action_connector_outbound"
        )
        self.assertEqual(outbound["view_mode"], "list,form,pivot,graph")
        # The average lag per flow, as the pivot shows it.
        with freeze_time(T0):
            first = self.received(5, T0 - timedelta(seconds=30), id=5, name="Five")
            second = self.received(6, T0 - timedelta(seconds=90), id=6, name="Six")
        first.lag_seconds, second.lag_seconds = 30, 90
        lag = self.Event.with_user(self.support).fields_get(["lag_seconds"])["lag_seconds"]
        self.assertEqual(lag["aggregator"], "avg", "the pivot and graph average the lag")
        groups = self.Event.with_user(self.support).formatted_read_group(
            [("id", "in", (first | second).ids)], ["flow"], ["__count", "lag_seconds:avg"]
        )
        self.assertEqual(
            [(g["flow"], g["__count"], g["lag_seconds:avg"]) for g in groups],
            [("partners_in", 2, 60.0)],
        )

    def test_bulk_requeue_from_the_list_once_the_cause_is_fixed(self):
        failed = self.received(11, T0) | self.received(12, T0) | self.received(13, T0)
        done = self.received(14, T0, id=14, name="Fourteen")
        self.assertEqual(failed.mapped("error_kind"), ["business"] * 3)
        # The fix the reason asks for, then one requeue of the whole selection.
        self.env["res.partner.category"].create({"name": "VIP"})
        with trap_jobs() as trap:
            answer = (failed | done).with_user(self.support).action_requeue()
            self.assertEqual(failed.mapped("state"), ["queued"] * 3)
            self.run_jobs(trap)
        self.assertEqual(failed.mapped("state"), ["done"] * 3)
        self.assertEqual(done.state, "done")
        self.assertEqual(
            answer["params"]["message"],
            "3 of the 4 selected events requeued; the 1 other(s) were left as they were.",
        )
        for event in failed:
            self.assertEqual(self.partners(int(event.payload["id"])).category_id.name, "VIP")
            self.assertEqual(
                event.audit_ids.mapped(lambda a: (a.action, a.user_id)),
                [("requeue", self.support)],
            )
        self.assertFalse(done.audit_ids, "the done event was not touched")

    def test_bulk_ignore_from_the_list_asks_why(self):
        failed = self.received(21, T0) | self.received(22, T0)
        waiting = self.received(23, T0, topic="partner.note", partner_id=99, note="gone for good")
        done = self.received(24, T0, id=24, name="Twenty-four")
        self.assertEqual(waiting.state, "waiting")
        selection = failed | waiting | done
        Ignore = self.env["connector.event.ignore"].with_user(self.support)

        with self.assertRaisesRegex(UserError, "Say why"):
            Ignore.with_context(active_ids=selection.ids).create({"reason": "   "}).action_ignore()
        with self.assertRaisesRegex(UserError, "Only failed, waiting, received or queued"):
            Ignore.with_context(active_ids=done.ids).create({"reason": "old"}).action_ignore()
        self.assertEqual(failed.mapped("state"), ["failed"] * 2)

        answer = (
            Ignore.with_context(active_ids=selection.ids)
            .create({"reason": "Orders of the remote's sandbox"})
            .action_ignore()
        )
        self.assertEqual((failed | waiting).mapped("state"), ["ignored"] * 3)
        self.assertEqual(done.state, "done")
        self.assertIn("3 of the 4 selected events ignored", answer["params"]["message"])
        self.assertEqual(answer["params"]["next"], {"type": "ir.actions.act_window_close"})
        for event in failed | waiting:
            self.assertEqual(
                event.audit_ids.mapped(lambda a: (a.action, a.user_id, a.note)),
                [("ignore", self.support, "Orders of the remote's sandbox")],
            )
            self.assertIn("Orders of the remote's sandbox", event.error_message)

    def test_stale_events_are_told_apart_from_ignored_ones(self):
        newer = self.received(31, T0 + timedelta(minutes=1), id=31, name="New name")
        older = self.received(31, T0, id=31, name="Old name")
        ignored = self.received(32, T0)
        self.env["connector.event.ignore"].with_user(self.support).with_context(
            active_ids=ignored.ids
        ).create({"reason": "Test partner"}).action_ignore()

        self.assertEqual(newer.state, "done")
        self.assertEqual(older.state, "stale")
        self.assertEqual(
            dict(self.Event._fields["state"]._description_selection(self.env))["stale"],
            "Skipped (stale)",
        )
        self.assertIn("a newer message about partner:31 was already applied", older.error_message)
        self.assertFalse(older.audit_ids, "nobody acted on it")
        self.assertEqual(ignored.state, "ignored")
        self.assertEqual(self.partners(31).name, "New name")

        # The search filters support staff use.
        search = self.views()["search"]
        filters = {f.get("name"): f.get("domain") for f in search.xpath("//filter[@domain]")}
        mine = [("backend_id", "=", self.backend.id)]
        Event = self.Event.with_user(self.support)
        self.assertEqual(Event.search(safe_eval(filters["stale"]) + mine), older)
        self.assertEqual(Event.search(safe_eval(filters["ignored"]) + mine), ignored)

        # A stale event can be replayed, like an ignored one.
        with trap_jobs() as trap:
            older.with_user(self.support).action_replay("check the skip")
            self.assertEqual(older.state, "queued")
            self.run_jobs(trap)
        self.assertEqual(older.state, "stale", "still older than the applied one")

    def test_stale_event_releases_the_later_events_of_its_key(self):
        # The newest is applied first; then the oldest arrives (it will be
        # skipped) and one in between, whose job runs first and waits for it.
        self.received(41, T0 + timedelta(minutes=2), id=41, name="Newest")
        with trap_jobs() as trap:
            oldest = self.receive("partner.upsert", {"id": 41, "name": "Oldest"}, "o-41", T0)
            between = self.receive(
                "partner.upsert", {"id": 41, "name": "Between"}, "b-41", T0 + timedelta(minutes=1)
            )
            self.dispatch()
            trap.enqueued_jobs.clear()
            between._process()
            self.assertEqual(between.state, "waiting")
            oldest._process()
            self.assertEqual(oldest.state, "stale")
            self.assertEqual(between.state, "queued", "woken by the skip, not 10 minutes later")
            self.run_jobs(trap)
        self.assertEqual(between.state, "stale")
        self.assertEqual(self.partners(41).name, "Newest")

    def test_upgrade_tells_stale_events_from_ignored_ones(self):
        """The 19.0.1.3.0 migration: ignored events a person did not ignore
        (no ``ignore`` as their last audit line) become stale."""
        by_framework = self.received(51, T0, id=51, name="A")
        after_requeue = self.received(52, T0, id=52, name="B")
        by_person = self.received(53, T0, id=53, name="C")
        ignored_again = self.received(54, T0, id=54, name="D")
        events = by_framework | after_requeue | by_person | ignored_again
        Audit = self.env["connector.event.audit"]
        Audit.create({"event_id": after_requeue.id, "action": "requeue"})
        Audit.create({"event_id": by_person.id, "action": "ignore", "note": "test"})
        Audit.create({"event_id": ignored_again.id, "action": "ignore", "note": "test"})
        Audit.create({"event_id": ignored_again.id, "action": "replay"})
        Audit.create({"event_id": ignored_again.id, "action": "ignore", "note": "again"})
        # What 19.0.1.2.0 left: every one of them "ignored".
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE connector_event SET state = 'ignored' WHERE id IN %s", (tuple(events.ids),)
        )
        script = (
            Path(connector_base.__file__).parent / "migrations" / "19.0.1.3.0" / "post-migrate.py"
        )
        spec = importlib.util.spec_from_file_location("connector_base_migrate_1_3", script)
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        migration.migrate(self.env.cr, "19.0.1.2.0")
        events.invalidate_recordset()
        self.assertEqual(
            events.mapped("state"), ["stale", "stale", "ignored", "ignored"], events.audit_ids
        )
