from psycopg2 import IntegrityError

from odoo.exceptions import AccessError, UserError
from odoo.tests import TransactionCase, new_test_user
from odoo.tools import mute_logger

from odoo.addons.connector_base.tests.common import trap_jobs

from .common import ACCESS_TOKEN, connect_3pl


class TestBackend(TransactionCase):
    """The 3PL backend: its flows, connection test, credentials and health."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        connect_3pl(cls, sku_count=1)

    def test_flows_and_sync_policy(self):
        flows = self.backend.policy_ids.mapped("flow")
        self.assertEqual(flows[:2], ["releases_out", "shipments_in"])
        self.assertIn("stock_snapshot", flows)
        self.assertIn("returns", flows)
        self.assertEqual(self.backend._policy("releases_out").mode, "realtime")
        self.assertEqual(self.backend._policy("shipments_in").mode, "realtime")

    def test_connection_names_the_channel_and_fills_it_when_empty(self):
        self.backend.tpl_channel_id = False
        action = self.backend.action_test_connection()
        self.assertEqual(action["params"]["type"], "success")
        self.assertEqual(self.backend.tpl_channel_id, self.tpl.headers["shipbob_channel_id"])
        self.assertIn(self.backend.tpl_channel_id, action["params"]["message"])

    def test_connection_with_a_wrong_token_or_channel_says_what_to_fix(self):
        self.backend.api_token = "wrong-token"
        with self.assertRaisesRegex(UserError, "401"):
            self.backend.action_test_connection()
        self.backend.api_token = ACCESS_TOKEN
        self.backend.tpl_channel_id = "999"
        with self.assertRaisesRegex(UserError, "does not know the API channel 999"):
            self.backend.action_test_connection()

    def test_credentials_are_for_connector_managers_only(self):
        support = new_test_user(
            self.env, login="tpl_support", groups="connector_base.group_connector_user"
        )
        backend = self.backend.with_user(support)
        self.assertEqual(backend.tpl_warehouse_id, self.warehouse)
        for field in ("api_token", "webhook_secret"):
            with self.assertRaises(AccessError):
                backend.read([field])
        manager = new_test_user(
            self.env, login="tpl_manager", groups="connector_base.group_connector_manager"
        )
        self.assertEqual(self.backend.with_user(manager).api_token, ACCESS_TOKEN)

    def test_one_backend_per_warehouse(self):
        with (
            self.assertRaises(IntegrityError),
            mute_logger("odoo.sql_db"),
            self.cr.savepoint(),
        ):
            self.env["connector.backend"].create(
                {"name": "Other 3PL", "backend_type": "3pl", "tpl_warehouse_id": self.warehouse.id}
            )

    def test_health_check_names_a_backend_without_warehouse(self):
        other = self.env["connector.backend"].create(
            {"name": "3PL not set up", "backend_type": "3pl", "state": "running"}
        )
        checks = (self.backend | other)._connector_health_checks()
        self.assertIn("tpl_setup", dict(checks[other.id]))
        self.assertNotIn("tpl_setup", dict(checks[self.backend.id]))

    def test_carrier_mapping_by_carrier_and_service(self):
        product = self.env["product.product"].create({"name": "Shipping", "type": "service"})
        dhl, dhl_express = self.env["delivery.carrier"].create(
            [
                {"name": "DHL", "product_id": product.id},
                {"name": "DHL Express", "product_id": product.id},
            ]
        )
        Carrier = self.env["tpl.carrier"]
        Carrier.create(
            [
                {"backend_id": self.backend.id, "carrier": "DHL", "delivery_carrier_id": dhl.id},
                {
                    "backend_id": self.backend.id,
                    "carrier": "DHL",
                    "service": "Express",
                    "delivery_carrier_id": dhl_express.id,
                },
            ]
        )
        self.assertEqual(Carrier._lookup(self.backend, "dhl", "express"), dhl_express)
        self.assertEqual(Carrier._lookup(self.backend, "DHL", "Parcel"), dhl)
        self.assertFalse(Carrier._lookup(self.backend, "UPS"))

    def test_release_ready_deliveries_of_a_backend_started_late(self):
        self.backend.state = "draft"
        customers = self.env.ref("stock.stock_location_customers")
        with trap_jobs():
            picking = self.env["stock.picking"].create(
                {
                    "picking_type_id": self.warehouse.out_type_id.id,
                    "partner_id": self.env.user.partner_id.id,
                    "location_id": self.warehouse.lot_stock_id.id,
                    "location_dest_id": customers.id,
                    "move_ids": [
                        (
                            0,
                            0,
                            {
                                "product_id": self.products.id,
                                "product_uom_qty": 1,
                                "location_id": self.warehouse.lot_stock_id.id,
                                "location_dest_id": customers.id,
                            },
                        )
                    ],
                }
            )
            picking.action_confirm()
            picking.action_assign()
            self.assertEqual(picking.state, "assigned")
            self.assertFalse(picking.tpl_binding_ids, "a draft backend releases nothing")
            self.backend.action_start()
            self.backend.action_tpl_release_ready()
        self.assertEqual(picking.tpl_binding_ids.release_state, "queued")
