from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.connector_base.tests.common import trap_jobs

from .common import TplCaseMixin, connect_3pl


@tagged("post_install", "-at_install")
class TestHoldTour(TplCaseMixin, HttpCase):
    """In the browser: a warehouse user holds a delivery released to the 3PL."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        connect_3pl(cls, sku_count=1, on_hand=5)
        cls.clerk = new_test_user(
            cls.env, login="tpl_tour_clerk", groups="base.group_user,stock.group_stock_user"
        )

    def test_a_warehouse_user_holds_a_released_delivery(self):
        with trap_jobs() as trap:
            picking = self.release({self.skus[0]: 1}, trap)
        with trap_jobs() as trap:
            self.start_tour(
                f"/odoo/action-stock.action_picking_tree_all/{picking.id}",
                "connector_3pl_hold_delivery",
                login=self.clerk.login,
            )
            self.run_jobs(trap)
        self.assertEqual(picking.tpl_hold, "held")
        shipment = self.tpl_orders(picking)[0]["shipments"][0]
        self.assertEqual(shipment["status"], "OnHold")
