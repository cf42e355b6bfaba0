from odoo.exceptions import AccessError, UserError
from odoo.tests import TransactionCase, new_test_user

from odoo.addons.connector_base.tests.common import trap_jobs
from odoo.addons.queue_job.exception import RetryableJobError

from .common import TplCaseMixin, connect_3pl

ON_HAND = 10


class TestStockSnapshots(TplCaseMixin, TransactionCase):
    """The 3PL's counts compared with Odoo's, and Odoo adjusted to them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        # A small account (17 SKUs), each an Odoo product with as many units
        # in the warehouse as on the 3PL's shelves.
        connect_3pl(cls, sku_count=1000, on_hand=ON_HAND, products=3)
        cls.stock = cls.warehouse.lot_stock_id
        cls.shelf = cls.env["stock.location"].create(
            {"name": "Shelf A", "location_id": cls.stock.id}
        )
        cls.manager = new_test_user(
            cls.env, login="tpl_stock_manager", groups="connector_base.group_connector_manager"
        )
        cls.support = new_test_user(
            cls.env, login="tpl_stock_support", groups="connector_base.group_connector_user"
        )

    def setUp(self):
        super().setUp()
        # The simulator outlives each test's rollback: its counts set back.
        for sku in self.tpl.inventory():
            self.tpl.set_on_hand(sku, ON_HAND if sku in self.skus else 0)

    def reconcile(self):
        with trap_jobs() as trap:
            run = self.backend._reconcile_later("stock")
            self.run_jobs(trap)
        self.assertEqual(run.state, "done", run.error_message)
        return run

    def open_mismatches(self):
        return self.env["connector.reconciliation.mismatch"].search(
            [("backend_id", "=", self.backend.id), ("kind", "=", "stock"), ("state", "=", "open")]
        )

    def mismatch(self, sku):
        return self.open_mismatches().filtered(lambda m: m.business_key.startswith(f"{sku} @"))

    def on_hand(self, product):
        return product.with_context(location=self.stock.id).qty_available

    def test_equal_stock_no_mismatch(self):
        self.assertEqual(len(self.skus), 17)
        self.assertIn("stock_snapshot", self.backend.policy_ids.mapped("flow"))
        run = self.reconcile()
        # SKUs other tests added, at 0 on both sides, match too.
        compared = len(self.tpl.inventory())
        self.assertEqual((run.compared_count, run.mismatched_count), (compared, 0))
        self.assertFalse(self.open_mismatches())

    def test_differences_listed_with_both_figures_over_several_pages(self):
        sku_a, sku_b = self.skus[:2]
        self.tpl.set_on_hand(sku_a, 14)
        # Units on a shelf inside the stock location count as the warehouse's.
        self.env["stock.quant"]._update_available_quantity(self.product(sku_b), self.shelf, 2)
        # 240 SKUs more: a second page of 250; the last one known to Odoo.
        extra = [f"XTR-{number:03d}" for number in range(240)]
        for sku in extra:
            self.tpl.set_on_hand(sku, 3)
        last = self.env["product.product"].create(
            {"name": "Extra last", "default_code": extra[-1], "is_storable": True}
        )
        self.env["stock.quant"]._update_available_quantity(last, self.stock, 1)
        odoo_only = self.env["product.product"].create(
            {"name": "Not at the 3PL", "default_code": "ODOO-ONLY", "is_storable": True}
        )
        self.env["stock.quant"]._update_available_quantity(odoo_only, self.stock, 5)
        since = self.tpl.requests.entries()[-1]["seq"]
        # The 3PL's rate limit: the run waits what the 3PL asked, then reads.
        self.tpl.faults.add("throttle", endpoint="inventory_list", retry_after=7, limit=1)
        with trap_jobs() as trap:
            run = self.backend._reconcile_later("stock")
            with self.assertRaises(RetryableJobError) as raised:
                run.with_user(self.backend._connector_user()).sudo()._execute()
            self.assertEqual(raised.exception.seconds, 7)
            self.run_jobs(trap)
        self.assertEqual(run.state, "done", run.error_message)
        pages = [e["page"] for e in self.tpl.requests.entries(since) if e.get("status") == 200]
        self.assertEqual(pages, [1, 2])
        self.assertEqual(len(self.tpl.inventory()), 17 + 240)
        self.assertEqual(run.compared_count, 17 + 240 + 1)
        self.assertEqual(run.mismatched_count, 2 + 239 + 1 + 1)
        mismatch = self.mismatch(sku_a)
        self.assertEqual((mismatch.remote_value, mismatch.odoo_value), ("14", "10"))
        self.assertEqual(mismatch.fix_data["product_id"], self.product(sku_a).id)
        self.assertIn(self.product(sku_a).display_name, mismatch.what)
        mismatch = self.mismatch(sku_b)
        self.assertEqual((mismatch.remote_value, mismatch.odoo_value), ("10", "12"))
        self.assertEqual(mismatch.business_key, f"{sku_b} @ {self.stock.complete_name}")
        # Read from the second page: both figures.
        mismatch = self.mismatch(extra[-1])
        self.assertEqual((mismatch.remote_value, mismatch.odoo_value), ("3", "1"))
        unknown = self.mismatch(extra[0])
        self.assertEqual((unknown.remote_value, unknown.odoo_value), ("3", False))
        self.assertIn("Unknown to Odoo", unknown.what)
        mismatch = self.mismatch("ODOO-ONLY")
        self.assertEqual((mismatch.remote_value, mismatch.odoo_value), (False, "5"))
        # Counted again once the 3PL's count is Odoo's: the mismatch closes.
        self.tpl.set_on_hand(sku_a, ON_HAND)
        self.reconcile()
        self.assertFalse(self.mismatch(sku_a))

    def test_units_released_and_picked_are_no_difference(self):
        """The 3PL's on hand keeps the units picked for an order until they
        ship, as Odoo's keeps the reserved units of the delivery until it is
        validated, and the units shipped for a delivery Odoo has not validated
        yet count back on the 3PL's side: a delivery in flight opens no
        mismatch at any stage, and a unit really missing still does."""
        sku = self.skus[0]
        product = self.product(sku)
        self._seen_webhooks = {m["message_id"] for m in self.tpl.webhook_messages()}
        with trap_jobs() as trap:
            picking = self.release({sku: 2}, trap)
        # Cancelled at the 3PL if the test stops half-way: nothing left picked
        # for the next test's counts.
        self.addCleanup(
            lambda: self.tpl.warehouse.cancel(self.tpl.warehouse.order(picking.name), forced=True)
        )
        quant = self.env["stock.quant"].search(
            [("product_id", "=", product.id), ("location_id", "=", self.stock.id)]
        )
        self.assertEqual((quant.quantity, quant.reserved_quantity), (ON_HAND, 2))
        counts = self.tpl.inventory(sku)
        self.assertEqual((counts["onhand"], counts["committed"]), (ON_HAND, 2))
        self.assertEqual(self.reconcile().mismatched_count, 0, "released, not picked")
        self.tpl.pick(picking.name, {sku: 2})
        counts = self.tpl.inventory(sku)
        self.assertEqual((counts["onhand"], counts["committed"]), (ON_HAND, 2))
        self.assertEqual(self.reconcile().mismatched_count, 0, "picked, not shipped")
        # A unit lost from the shelves is a real difference, both figures shown.
        self.tpl.set_on_hand(sku, ON_HAND - 3)
        self.reconcile()
        mismatch = self.mismatch(sku)
        self.assertEqual((mismatch.remote_value, mismatch.odoo_value), ("9", "10"))
        # Found again; then the order ships: gone from the 3PL's on hand, not
        # yet from Odoo's while the shipment's webhook is on its way.
        self.tpl.set_on_hand(sku, ON_HAND - 2)
        self.tpl.ship(picking.name)
        self.assertEqual(self.tpl.inventory(sku)["onhand"], ON_HAND - 2)
        self.assertEqual(self.on_hand(product), ON_HAND)
        self.assertEqual(self.reconcile().mismatched_count, 0, "shipped, not validated yet")
        with trap_jobs() as trap:
            events = self.receive_webhooks("order.shipped")
            self.run_jobs(trap)
        self.assertEqual(events.mapped("state"), ["done"], events.mapped("error_message"))
        self.assertEqual(picking.state, "done")
        self.assertEqual(self.tpl.inventory(sku)["onhand"], ON_HAND - 2)
        self.assertEqual(self.on_hand(product), ON_HAND - 2)
        self.assertEqual(self.reconcile().mismatched_count, 0, "shipped on both sides")
        self.assertFalse(self.mismatch(sku))

    def test_adjust_one_then_the_rest_in_bulk(self):
        sku_a, sku_b, sku_c = self.skus[:3]
        product_a, product_b, product_c = (self.product(s) for s in (sku_a, sku_b, sku_c))
        self.tpl.set_on_hand(sku_a, 14)
        self.tpl.set_on_hand(sku_b, 6)
        self.tpl.set_on_hand(sku_c, 0)
        self.env["stock.quant"]._update_available_quantity(product_b, self.shelf, 3)
        self.reconcile()
        self.assertEqual(len(self.open_mismatches()), 3)
        one = self.mismatch(sku_a)
        one.with_user(self.manager).action_fix()
        self.assertEqual(self.on_hand(product_a), 14)
        self.assertEqual(one.state, "resolved")
        self.assertTrue(one.fixed)
        self.assertEqual(one.resolved_by_id, self.manager)
        (audit,) = [b for b in one.message_ids.mapped("body") if "from 10 to 14" in b]
        self.assertIn(self.manager.name, audit)
        # Odoo's own inventory adjustment, in the product's history, by the manager.
        move = self.env["stock.move"].search(
            [("product_id", "=", product_a.id), ("is_inventory", "=", True)]
        )
        self.assertEqual(len(move), 1)
        self.assertEqual(move.state, "done")
        self.assertEqual(move.quantity, 4)
        self.assertEqual(move.location_dest_id, self.stock)
        self.assertEqual(move.create_uid, self.manager)
        self.assertEqual(move.reference, f"3PL count: 3PL Lyon ({self.manager.name})")
        # The rest at once: taken from the stock location first, then the shelf.
        self.open_mismatches().with_user(self.manager).action_fix()
        self.assertEqual(self.on_hand(product_b), 6)
        self.assertEqual(self.on_hand(product_c), 0)
        self.assertFalse(self.open_mismatches())
        self.assertEqual(self.reconcile().mismatched_count, 0)

    def test_stale_odoo_figure_is_not_adjusted(self):
        sku = self.skus[0]
        self.tpl.set_on_hand(sku, 14)
        self.reconcile()
        self.env["stock.quant"]._update_available_quantity(self.product(sku), self.stock, 1)
        mismatch = self.mismatch(sku)
        with self.assertRaisesRegex(UserError, "changed since the comparison"):
            mismatch.with_user(self.manager).action_fix()
        self.assertEqual(mismatch.state, "open")
        self.assertEqual(self.on_hand(self.product(sku)), ON_HAND + 1)

    def test_connector_user_cannot_adjust(self):
        sku = self.skus[0]
        self.tpl.set_on_hand(sku, 14)
        self.reconcile()
        mismatch = self.mismatch(sku)
        with self.assertRaises(AccessError):
            mismatch.with_user(self.support).action_fix()
        self.assertEqual(mismatch.state, "open")
        self.assertEqual(self.on_hand(self.product(sku)), ON_HAND)
        # Support staff may still accept the difference.
        mismatch.with_user(self.support).action_accept()
        self.assertEqual(mismatch.state, "accepted")

    def test_scheduled_by_the_flow_policy(self):
        policy = self.backend._policy("stock_snapshot")
        self.assertEqual((policy.mode, policy.interval_minutes), ("scheduled", 60))
        Run = self.env["connector.reconciliation.run"]
        with trap_jobs() as trap:
            self.env["connector.backend"]._cron_tpl_stock_snapshots()
            run = Run.search([("backend_id", "=", self.backend.id), ("kind", "=", "stock")])
            self.assertEqual(len(run), 1)
            # Not due again within the hour.
            self.env["connector.backend"]._cron_tpl_stock_snapshots()
            self.assertEqual(
                Run.search_count([("backend_id", "=", self.backend.id), ("kind", "=", "stock")]), 1
            )
            self.run_jobs(trap)
        self.assertEqual(run.state, "done", run.error_message)

    def test_unknown_sku_refused_and_product_not_at_the_3pl_counted_to_zero(self):
        self.tpl.set_on_hand("NEW-SKU-1", 4)
        odoo_only = self.env["product.product"].create(
            {"name": "Not at the 3PL", "default_code": "ODOO-ONLY", "is_storable": True}
        )
        self.env["stock.quant"]._update_available_quantity(odoo_only, self.shelf, 5)
        self.reconcile()
        unknown, gone = self.mismatch("NEW-SKU-1"), self.mismatch("ODOO-ONLY")
        with self.assertRaisesRegex(UserError, "No Odoo product has this SKU"):
            unknown.with_user(self.manager).action_fix()
        self.assertEqual(unknown.state, "open")
        (unknown | gone).with_user(self.manager).action_fix()
        self.assertEqual(self.on_hand(odoo_only), 0)
        self.assertEqual(gone.state, "resolved")
        self.assertIn("failed: No Odoo product", unknown.message_ids[:1].body)
        # Once the product exists with the 3PL's count, the next run closes it.
        product = self.env["product.product"].create(
            {"name": "New", "default_code": "NEW-SKU-1", "is_storable": True}
        )
        self.env["stock.quant"]._update_available_quantity(product, self.stock, 4)
        self.reconcile()
        self.assertEqual(unknown.state, "resolved")
        self.assertFalse(unknown.fixed)
