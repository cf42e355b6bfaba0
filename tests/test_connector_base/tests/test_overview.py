import json
from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo.tests import new_test_user, tagged
from odoo.tools import SQL

from odoo.addons.connector_base.models.connector_overview import duration_label

from .common import ConnectorCase

NOW = datetime(2026, 11, 30, 12, 0, 0)
TILE = [
    "overview_state",
    "overview_color",
    "overview_failed_count",
    "overview_waiting_count",
    "overview_backlog_count",
    "overview_outbound_pending_count",
    "overview_mismatch_count",
    "overview_oldest_pending",
    "overview_lag",
    "overview_last_webhook_at",
    "overview_last_sent_at",
    "overview_graph",
]


# After every module is loaded: the event list's links need the whole registry.
@tagged("post_install", "-at_install")
class TestOverview(ConnectorCase):
    """The tile of a backend on the Connectors overview."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = cls.env["connector.backend"].create(
            {"name": "Other remote", "backend_type": "test", "state": "running"}
        )
        cls.count = 0

    def event(self, state, *, ago, lag=None, processed=None, source="webhook", backend=None):
        """An event received ``ago`` before NOW, processed ``processed`` before
        NOW (when given), its change made ``lag`` seconds before it was applied."""
        type(self).count += 1
        received_at = NOW - ago
        processed_at = NOW - processed if processed is not None else None
        occurred_at = processed_at - timedelta(seconds=lag) if lag is not None else received_at
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO connector_event (backend_id, flow, topic, idempotency_key,
                    occurred_at, received_at, processed_at, lag_seconds, source, state)
                VALUES (%s, 'partners_in', 'partner.upsert', %s, %s, %s, %s, %s, %s, %s)
                """,
                (backend or self.backend).id,
                f"overview-{self.count}",
                occurred_at,
                received_at,
                processed_at,
                lag,
                source,
                state,
            )
        )

    def outbound(self, state, *, ago, sent=None):
        type(self).count += 1
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO connector_outbound (backend_id, flow, topic, coalescing_key, state,
                    sent_at, create_date)
                VALUES (%s, 'scores_out', 'partner.score', %s, %s, %s, %s)
                """,
                self.backend.id,
                f"overview-o-{self.count}",
                state,
                NOW - sent if sent else None,
                NOW - ago,
            )
        )

    def mismatches(self, backend, states):
        """What a reconciliation run on ``backend`` found: a mismatch in each of ``states``."""
        run = self.env["connector.reconciliation.run"].create(
            {"backend_id": backend.id, "kind": "scores", "kind_label": "Partner scores"}
        )
        return self.env["connector.reconciliation.mismatch"].create(
            [
                {
                    "run_id": run.id,
                    "backend_id": backend.id,
                    "kind": "scores",
                    "business_key": f"partner-{n}",
                    "state": state,
                }
                for n, state in enumerate(states)
            ]
        )

    def tile(self, backend=None):
        backend = backend or self.backend
        self.env.invalidate_all()
        with freeze_time(NOW):
            return backend.read(TILE)[0]

    def fill(self):
        # Applied in the last hour: lags of 1 to 10 minutes; earlier, one
        # applied 3 hours ago and one yesterday.
        for n in range(1, 11):
            self.event(
                "done",
                ago=timedelta(minutes=5 * n + 1),
                processed=timedelta(minutes=5 * n),
                lag=60 * n,
            )
        self.event("done", ago=timedelta(hours=3), processed=timedelta(hours=3), lag=30)
        self.event("done", ago=timedelta(hours=30), processed=timedelta(hours=30), lag=30)
        # What support sees: 2 failed, 1 waiting, 3 not processed yet.
        self.event("failed", ago=timedelta(minutes=6), processed=timedelta(minutes=5))
        self.event("failed", ago=timedelta(hours=2), processed=timedelta(hours=2))
        self.event("waiting", ago=timedelta(minutes=10))
        self.event("received", ago=timedelta(minutes=8))
        self.event("received", ago=timedelta(minutes=4))
        self.event("queued", ago=timedelta(minutes=3))
        # Newer, but not webhooks: a backfill's event, set aside as a redelivery.
        self.event("duplicate", ago=timedelta(minutes=1), source="poll")
        # Another backend's events are not this tile's.
        self.event(
            "failed", ago=timedelta(minutes=1), processed=timedelta(minutes=1), backend=self.other
        )
        self.event("received", ago=timedelta(seconds=30), backend=self.other)
        # Outbound: one change to send, one sent 20 minutes ago, one refused.
        self.outbound("pending", ago=timedelta(minutes=2))
        self.outbound("sent", ago=timedelta(minutes=21), sent=timedelta(minutes=20))
        self.outbound("sent", ago=timedelta(days=2), sent=timedelta(days=2))
        self.outbound("failed", ago=timedelta(hours=1))
        # Reconciliations: two mismatches still open, one accepted, one fixed;
        # the other backend has one open.
        self.mismatches(self.backend, ["open", "open", "accepted", "resolved"])
        self.mismatches(self.other, ["open"])

    def test_tile_counts_ages_lag_and_last_exchanges(self):
        self.fill()
        tile = self.tile()
        self.assertEqual(tile["overview_state"], "running")
        self.assertEqual(tile["overview_color"], 0, "a healthy backend's tile is not red")
        self.assertEqual(
            (
                tile["overview_failed_count"],
                tile["overview_waiting_count"],
                tile["overview_backlog_count"],
                tile["overview_outbound_pending_count"],
            ),
            (2, 1, 3, 1),
        )
        # The oldest event still to apply is the waiting one, 10 minutes old
        # (failed ones wait for a person: they are counted, not aged).
        self.assertEqual(self.backend.overview_oldest_pending_age, 10 * 60)
        self.assertEqual(tile["overview_oldest_pending"], "10 min")
        # Lags of 1..10 minutes in the last hour: p95 is 9 min 33 s, SLA 15 min.
        self.assertEqual(self.backend.overview_lag_p95, 573)
        self.assertEqual(tile["overview_lag"], "9 min (SLA 15 min, Partners in)")
        self.assertFalse(self.backend.overview_sla_breached)
        self.assertEqual(tile["overview_last_webhook_at"], NOW - timedelta(minutes=3))
        self.assertEqual(tile["overview_last_sent_at"], NOW - timedelta(minutes=20))
        self.assertEqual(tile["overview_mismatch_count"], 2, "accepted and fixed ones are closed")

        graph = json.loads(tile["overview_graph"])[0]
        counts = [point["value"] for point in graph["values"]]
        self.assertEqual(len(counts), 24, "one bar per hour of the last day")
        # 13:00 yesterday .. 12:00 today: ten applied in the 11:00 hour, one at 09:00.
        self.assertEqual(counts[22], 10)
        self.assertEqual(counts[20], 1)
        self.assertEqual(sum(counts), 11, "the event applied 30 hours ago is out of the graph")

        other = self.tile(self.other)
        self.assertEqual(
            (
                other["overview_failed_count"],
                other["overview_backlog_count"],
                other["overview_mismatch_count"],
            ),
            (1, 1, 1),
        )
        self.assertFalse(other["overview_last_sent_at"])

    def test_support_user_opens_the_overview(self):
        self.fill()
        support = new_test_user(
            self.env, login="overview_support", groups="connector_base.group_connector_user"
        )
        view = self.env.ref("connector_base.connector_backend_view_kanban_overview")
        Backend = self.env["connector.backend"].with_user(support)
        arch = Backend.get_views([(view.id, "kanban")])["views"]["kanban"]["arch"]
        self.assertIn("overview_graph", arch)
        self.env.invalidate_all()
        with freeze_time(NOW):
            tiles = Backend.web_search_read(
                [("id", "=", self.backend.id)], {name: {} for name in TILE}
            )["records"]
        self.assertEqual(tiles[0]["overview_failed_count"], 2)
        self.assertEqual(tiles[0]["overview_backlog_count"], 3)
        self.assertEqual(tiles[0]["overview_mismatch_count"], 2)

    def test_tile_of_a_backend_without_traffic(self):
        tile = self.tile(self.other)
        self.assertEqual(tile["overview_state"], "running")
        self.assertEqual(tile["overview_failed_count"], 0)
        self.assertFalse(tile["overview_oldest_pending"])
        self.assertFalse(tile["overview_lag"])
        self.assertFalse(tile["overview_last_webhook_at"])
        self.assertEqual(tile["overview_mismatch_count"], 0)
        graph = json.loads(tile["overview_graph"])[0]
        self.assertEqual([point["value"] for point in graph["values"]], [0] * 24)

    def test_tile_turns_red_and_degraded(self):
        self.fill()
        # A message waiting past its flow's SLA of 15 minutes: degraded, not red yet.
        self.event("received", ago=timedelta(minutes=20))
        tile = self.tile()
        self.assertTrue(self.backend.overview_sla_breached)
        self.assertTrue(self.backend.overview_pending_breached)
        self.assertFalse(self.backend.overview_lag_breached, "9 min of lag is within 15")
        self.assertEqual(tile["overview_state"], "degraded")
        self.assertEqual(tile["overview_oldest_pending"], "20 min")
        self.assertEqual(tile["overview_color"], 0)

        # A tighter SLA: the lag is late too.
        self.backend._policy("partners_in").sla_lag_minutes = 5
        tile = self.tile()
        self.assertTrue(self.backend.overview_lag_breached)
        self.assertEqual(tile["overview_lag"], "9 min (SLA 5 min, Partners in)")

        # The health check found it failing: red, whatever the state.
        self.backend.write({"health_state": "failing", "health_message": "Partners in is behind"})
        self.assertEqual(self.tile()["overview_color"], 1)
        self.backend.action_pause()
        tile = self.tile()
        self.assertEqual((tile["overview_state"], tile["overview_color"]), ("paused", 1))

    def test_circuit_open_tile_turns_red_with_the_health_check(self):
        self.backend.write({"state": "circuit_open", "circuit_opened_at": NOW})
        tile = self.tile()
        self.assertEqual((tile["overview_state"], tile["overview_color"]), ("circuit_open", 0))
        # The scheduled check finds it: the tile is red and says why.
        with freeze_time(NOW):
            self.env["connector.backend"]._connector_run_health_checks()
        tile = self.tile()
        self.assertEqual(tile["overview_color"], 1)
        self.assertIn("The remote keeps failing", self.backend.health_message)
        # Closed again: the next check clears it.
        self.backend.action_close_circuit()
        with freeze_time(NOW):
            self.env["connector.backend"]._connector_run_health_checks()
        tile = self.tile()
        self.assertEqual((tile["overview_state"], tile["overview_color"]), ("running", 0))

    def test_links_open_the_filtered_lists(self):
        for method, search_filter in (
            ("action_overview_failed", "failed"),
            ("action_overview_waiting", "waiting"),
            ("action_overview_backlog", "backlog"),
        ):
            action = getattr(self.backend, method)()
            self.assertEqual(action["res_model"], "connector.event")
            self.assertEqual(action["context"]["search_default_backend_id"], self.backend.id)
            self.assertEqual(action["context"][f"search_default_{search_filter}"], 1)
        action = self.backend.action_overview_outbound()
        self.assertEqual(action["res_model"], "connector.outbound")
        self.assertEqual(action["context"]["search_default_pending"], 1)
        action = self.backend.action_view_outbound_failed()
        self.assertEqual(action["context"]["search_default_failed"], 1)

    def test_mismatch_count_opens_the_backends_open_mismatches(self):
        self.fill()
        support = new_test_user(
            self.env, login="overview_mismatches", groups="connector_base.group_connector_user"
        )
        backend = self.backend.with_user(support)
        self.assertEqual(self.tile(backend)["overview_mismatch_count"], 2)
        # What the tile's link opens, as the web client would: the action's
        # domain and default filter applied.
        action = backend.action_view_mismatches()
        self.assertEqual(action["res_model"], "connector.reconciliation.mismatch")
        self.assertEqual(action["context"], {"search_default_open": 1})
        listed = (
            self.env["connector.reconciliation.mismatch"]
            .with_user(support)
            .search([*action["domain"], ("state", "=", "open")])
        )
        self.assertEqual(listed.backend_id, self.backend)
        self.assertEqual(len(listed), 2)
        # An accepted mismatch leaves the tile.
        listed[0].action_accept()
        self.assertEqual(self.tile(backend)["overview_mismatch_count"], 1)

    def test_as_many_queries_for_many_backends_as_for_one(self):
        self.fill()
        more = self.env["connector.backend"].create(
            [{"name": f"Remote {n}", "backend_type": "test", "state": "running"} for n in range(4)]
        )

        def queries(backends):
            self.env.invalidate_all()
            statements = []
            execute = self.env.cr.execute

            def logged(query, params=None, log_exceptions=True):
                statements.append(str(query)[:120])
                return execute(query, params, log_exceptions)

            self.env.cr.execute = logged
            try:
                with freeze_time(NOW):
                    backends.read(TILE)
            finally:
                del self.env.cr.execute
            return statements

        queries(self.other)  # the user's time zone, read once per request
        one = queries(self.backend)
        many = queries(self.backend | self.other | more)
        self.assertEqual(len(many), len(one), "\n".join([*many, "---", *one]))
        self.assertLessEqual(len(one), 8)

    def test_backend_form_actions(self):
        action = self.backend.action_replay_window()
        self.assertEqual(action["res_model"], "connector.event.replay")
        self.assertEqual(action["context"], {"default_backend_id": self.backend.id})
        # The test connector receives no webhooks: no address to show.
        self.assertFalse(self.backend.webhook_address)

    def test_overview_is_the_apps_landing_page(self):
        root = self.env.ref("connector_base.menu_connector_root")
        first = root.child_id.sorted("sequence")[0]
        self.assertEqual(first.action, self.env.ref("connector_base.action_connector_overview"))

    def test_duration_labels(self):
        self.assertEqual(
            [duration_label(s) for s in (0, 45, 60, 754, 3600, 11100, 86400 * 2 + 3600 * 4)],
            ["0 s", "45 s", "1 min", "12 min", "1 h 00", "3 h 05", "2 d 4 h"],
        )
