import base64
import json
import re

from odoo.tests import HttpCase, TransactionCase, tagged

from .common import start_remote_and_backend

# Spreadsheet group-by granularities ("processed_at:day") and measures'
# aggregators ("received_at:min") name a field before the colon.
FIELD = re.compile(r"^([a-z_]+)")
LIST_CELL = re.compile(r'ODOO\.LIST(?:\.HEADER)?\((\d+),\s*(?:\d+,\s*)?"([a-z_]+)"')
PIVOT_CELL = re.compile(r"PIVOT(?:\.VALUE|\.HEADER)?\((\d+)")


def domain_fields(domain):
    return [term[0] for term in domain if isinstance(term, list)]


class TestRetailSyncDashboard(TransactionCase):
    """The Dashboards app's Retail Sync dashboard reads what exists."""

    def setUp(self):
        super().setUp()
        self.dashboard = self.env.ref("connector_base.spreadsheet_dashboard_retail_sync")
        self.data = json.loads(base64.b64decode(self.dashboard.spreadsheet_binary_data))

    def assert_field(self, model, name, where, groupable=False):
        field = self.env[model]._fields.get(FIELD.match(name).group(1))
        self.assertTrue(field, f"{where}: {model} has no field {name!r}")
        if groupable:
            self.assertTrue(field.store, f"{where}: {model}.{name} is not stored")

    def assert_source(self, model, domain, group_by, measures, where):
        """Every field exists and the server answers the source's query as the
        spreadsheet asks it (a wrong value in a domain fails here too)."""
        self.assertIn(model, self.env, f"{where}: no model {model!r}")
        for name in domain_fields(domain):
            self.assert_field(model, name, where)
        for name in [*group_by, *(m for m in measures if m != "__count")]:
            self.assert_field(model, name, where, groupable=True)
        aggregates = [
            "__count" if m == "__count" else (m if ":" in m else f"{m}:sum") for m in measures
        ]
        self.env[model].formatted_read_group(domain, group_by, aggregates)

    def test_dashboard_is_published_for_connector_users(self):
        self.assertEqual(self.dashboard.name, "Retail Sync")
        self.assertTrue(self.dashboard.is_published)
        self.assertIn(self.env.ref("connector_base.group_connector_user"), self.dashboard.group_ids)

    def test_dashboard_references_existing_models_and_fields(self):
        data = self.data
        for pivot_id, pivot in data["pivots"].items():
            where = f"pivot {pivot_id} ({pivot['name']})"
            self.assert_source(
                pivot["model"],
                pivot["domain"],
                [d["fieldName"] for d in pivot["rows"] + pivot["columns"]],
                [
                    m["fieldName"] if m["fieldName"] == "__count" else m["id"]
                    for m in pivot["measures"]
                ],
                where,
            )
            for matching in pivot["fieldMatching"].values():
                self.assert_field(pivot["model"], matching["chain"], where)
        for list_id, odoo_list in data["lists"].items():
            where = f"list {list_id} ({odoo_list['name']})"
            model = self.env[odoo_list["model"]]
            for name in odoo_list["columns"] + domain_fields(odoo_list["domain"]):
                self.assert_field(model._name, name, where)
            order = ", ".join(
                f"{o['name']} {'asc' if o['asc'] else 'desc'}" for o in odoo_list["orderBy"]
            )
            model.search_fetch(odoo_list["domain"], odoo_list["columns"], order=order, limit=10)
        charts = [
            figure["data"]
            for sheet in data["sheets"]
            for figure in sheet["figures"]
            if figure["data"]["type"].startswith("odoo_")
        ]
        self.assertTrue(charts, "the dashboard shows charts of events and outbound changes")
        for chart in charts:
            meta = chart["metaData"]
            where = f"chart {chart['title']['text']!r}"
            self.assert_source(
                meta["resModel"],
                chart["searchParams"]["domain"],
                meta["groupBy"],
                [meta["measure"]],
                where,
            )
        for global_filter in data["globalFilters"]:
            if global_filter["type"] == "relation":
                self.assertIn(global_filter["modelName"], self.env)
        # Formulas name lists and pivots that exist, and list columns they load.
        for sheet in data["sheets"]:
            for cell, content in sheet["cells"].items():
                for list_id, name in LIST_CELL.findall(content):
                    self.assertIn(list_id, data["lists"], f"{cell}: no list {list_id}")
                    self.assertIn(name, data["lists"][list_id]["columns"], cell)
                for pivot_id in PIVOT_CELL.findall(content):
                    self.assertIn(pivot_id, data["pivots"], f"{cell}: no pivot {pivot_id}")


@tagged("post_install", "-at_install")
class TestRetailSyncDashboardTour(HttpCase):
    """The dashboard opens in a real browser, with events to show."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.remote, cls.backend = start_remote_and_backend(cls)

    def test_dashboard_opens_without_error(self):
        Event = self.env["connector.event"]
        Event._receive(self.backend, "partner.upsert", {"id": 1, "name": "Ann"}, "k-1")
        Event._receive(self.backend, "unknown/topic", {"id": 2}, "k-2")  # failed
        dashboard = self.env.ref("connector_base.spreadsheet_dashboard_retail_sync")
        self.start_tour(
            f"/odoo/dashboards?dashboard_id={dashboard.id}",
            "connector_retail_sync_dashboard",
            login="admin",
        )
