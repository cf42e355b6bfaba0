import math
from datetime import datetime

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import BaseCase, TransactionCase, new_test_user

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs

from ..components import reconcile
from .common import (
    connect_store,
    ensure_chart_of_accounts,
    make_backend,
    make_products,
    run_jobs,
    start_shop,
)

SKU_COUNT = 30
ON_HAND = 40


def open_mismatches(backend, kind):
    return backend.env["connector.reconciliation.mismatch"].search(
        [("backend_id", "=", backend.id), ("kind", "=", kind), ("state", "=", "open")],
        order="business_key",
    )


def run_reconciliation(test, kind, day=None):
    with trap_jobs() as trap:
        run = test.backend._reconcile_later(kind, day)
        run_jobs(test, trap)
    return run


class TestStockReconciliation(TransactionCase):
    """Shopify's available quantities against what Odoo would push, per SKU
    and location; Odoo's quantity pushed back on request."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        connect_store(cls, sku_count=SKU_COUNT, on_hand=ON_HAND, seed=31, products=40)
        cls.location = cls.backend.shopify_location_ids
        cls.manager = new_test_user(
            cls.env, login="recon_manager", groups="connector_base.group_connector_manager"
        )
        # Shopify starts from Odoo's figures: the connector pushed them all.
        with trap_jobs() as trap:
            cls.backend.action_shopify_push_stock()
            run_trapped_jobs(cls.env, trap)

    def setUp(self):
        super().setUp()
        # The store outlives each test's rollback: back to Odoo's figures.
        for sku in self.skus:
            self.shop.set_inventory(sku, self.location.external_id, ON_HAND)

    def shopify_available(self, sku):
        return self.shop.inventory(sku)[0]["available"]

    def level_requests(self):
        return [e for e in self.shop.requests.entries() if "graphql:location" in e["names"]]

    def test_a_run_finds_the_skewed_skus_and_pushing_odoo_quantity_fixes_them(self):
        skewed = self.skus[3], self.skus[7]
        self.shop.set_inventory(skewed[0], self.location.external_id, ON_HAND + 5)
        self.shop.set_inventory(skewed[1], self.location.external_id, 0)
        self.shop.requests.clear()
        run = run_reconciliation(self, "stock")
        self.assertEqual(run.state, "done", run.error_message)
        self.assertEqual(
            (run.compared_count, run.matched_count, run.mismatched_count),
            (SKU_COUNT, SKU_COUNT - 2, 2),
            [(m.business_key, m.what, m.odoo_value, m.remote_value) for m in run.mismatch_ids],
        )
        levels_at_location = len(self.shop.inventory())  # one location: every item
        self.assertEqual(
            len(self.level_requests()),
            math.ceil(levels_at_location / 100),
            "Shopify's levels read page after page",
        )
        mismatches = open_mismatches(self.backend, "stock")
        self.assertEqual(
            [(m.business_key, m.odoo_value, m.remote_value) for m in mismatches],
            sorted(
                [
                    (f"{skewed[0]} @ {self.location.name}", str(ON_HAND), str(ON_HAND + 5)),
                    (f"{skewed[1]} @ {self.location.name}", str(ON_HAND), "0"),
                ]
            ),
        )
        self.assertEqual(
            self.backend._reconciliation_open_counts(), {self.backend.id: 2}, "for the overview"
        )
        with trap_jobs() as trap:
            mismatches.with_user(self.manager).action_fix()
            run_jobs(self, trap)
        self.assertEqual([self.shopify_available(sku) for sku in skewed], [ON_HAND, ON_HAND])
        self.assertEqual(set(mismatches.mapped("state")), {"resolved"})
        self.assertEqual(set(mismatches.mapped("resolution")), {"Push Odoo's quantity"})
        self.assertEqual(mismatches.resolved_by_id, self.manager)
        rerun = run_reconciliation(self, "stock")
        self.assertEqual((rerun.matched_count, rerun.mismatched_count), (SKU_COUNT, 0))
        self.assertFalse(open_mismatches(self.backend, "stock"))

    def test_odoo_side_counts_reservations_and_safety_stock_as_the_stock_flow(self):
        self.backend.shopify_stock_buffer_qty = 3  # not pushed yet: every SKU differs
        run = run_reconciliation(self, "stock")
        self.assertEqual(run.mismatched_count, SKU_COUNT)
        mismatches = open_mismatches(self.backend, "stock")
        self.assertEqual(set(mismatches.mapped("odoo_value")), {str(ON_HAND - 3)})
        with trap_jobs() as trap:
            mismatches.with_user(self.manager).action_fix()
            run_jobs(self, trap)
        self.assertEqual(self.shopify_available(self.skus[0]), ON_HAND - 3)
        self.assertEqual(run_reconciliation(self, "stock").mismatched_count, 0)

    def test_a_pending_push_is_told_and_an_unmapped_location_stops_the_run(self):
        self.shop.set_inventory(self.skus[0], self.location.external_id, 1)
        with trap_jobs():
            self.env["shopify.stock.sync"]._queue(
                self.env["shopify.product.binding"].search(
                    [("backend_id", "=", self.backend.id), ("odoo_id", "=", self.products[0].id)]
                ),
                self.location,
            )
            run = self.backend._reconcile_later("stock")
            run._execute()
        self.assertIn("waiting to be sent", open_mismatches(self.backend, "stock").what)
        self.location.location_id = False
        run = run_reconciliation(self, "stock")
        self.assertEqual(run.state, "failed")
        self.assertIn("is mapped to an Odoo location", run.error_message)

    def test_stock_out_turned_off_refuses_the_push(self):
        self.shop.set_inventory(self.skus[0], self.location.external_id, 1)
        run_reconciliation(self, "stock")
        self.backend._policy("stock_out").enabled = False
        with self.assertRaisesRegex(UserError, "Stock out of .* is off"):
            open_mismatches(self.backend, "stock").with_user(self.manager).action_fix()


class TestOrderReconciliation(TransactionCase):
    """Shopify's orders of a day against the sale orders imported from it;
    the missing ones imported by one click."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        ensure_chart_of_accounts(cls.env)
        cls.shop = start_shop(cls, seed=37, products=6, orders=0)
        cls.backend = make_backend(cls.env, base_url=cls.shop.url)
        make_products(cls.env, sorted({row["sku"] for row in cls.shop.inventory()}), on_hand=500)
        cls.support = new_test_user(
            cls.env, login="recon_support", groups="connector_base.group_connector_user"
        )

    def sale_orders(self, names):
        return self.env["sale.order"].search([("client_order_ref", "in", list(names))])

    def test_missing_orders_are_found_and_imported_by_one_click(self):
        first = self.shop.create_order()
        with trap_jobs() as trap:
            self.backend.with_delay()._shopify_backfill_orders("2000-01-01T00:00:00Z")
            run_jobs(self, trap)
        self.assertEqual(len(self.sale_orders([first["name"]])), 1)
        # Their webhooks never came (the store has no webhook address here).
        missed = [self.shop.create_order()["name"] for _ in range(2)]
        today = fields.Datetime.now().date()
        run = run_reconciliation(self, "orders", today)
        self.assertEqual(run.state, "done", run.error_message)
        self.assertEqual(str(run.window_start), f"{today} 00:00:00")
        self.assertEqual((run.compared_count, run.matched_count, run.mismatched_count), (3, 1, 2))
        mismatches = open_mismatches(self.backend, "orders")
        self.assertEqual(mismatches.mapped("business_key"), sorted(missed))
        self.assertEqual(set(mismatches.mapped("what")), {"Order not imported"})
        self.assertFalse(self.sale_orders(missed))
        with trap_jobs() as trap:
            mismatches.with_user(self.support).action_fix()
            run_jobs(self, trap)
        self.assertEqual(len(self.sale_orders(missed)), 2, "each imported once")
        self.assertEqual(set(mismatches.mapped("state")), {"resolved"})
        self.assertEqual(set(mismatches.mapped("resolution")), {"Import the order"})
        rerun = run_reconciliation(self, "orders", today)
        self.assertEqual((rerun.matched_count, rerun.mismatched_count), (3, 0))
        self.assertFalse(open_mismatches(self.backend, "orders"))
        # Another day has none of these orders.
        other = run_reconciliation(self, "orders", today.replace(year=today.year - 1))
        self.assertEqual((other.compared_count, other.mismatched_count), (0, 0))

    def test_bad_input_gets_a_clear_error(self):
        with self.assertRaisesRegex(UserError, "no reconciliation 'payouts'.*orders, stock"):
            self.backend._reconcile_later("payouts")
        self.backend.action_pause()
        with self.assertRaisesRegex(UserError, "is paused: start it before reconciling"):
            self.backend._reconcile_later("orders")
        self.backend.action_start()
        self.backend.shopify_location_ids.unlink()
        run = run_reconciliation(self, "stock")
        self.assertEqual(run.state, "failed")
        self.assertIn("import the locations and map them", run.error_message)


class TestComparisons(BaseCase):
    """The comparisons alone, over plain data."""

    def test_stock_pairs_differ_by_quantity_or_absence(self):
        expected = [
            {
                "item": f"gid://shopify/InventoryItem/{n}",
                "location": "gid://shopify/Location/1",
                "sku": f"SKU-{n}",
                "location_name": "Shop",
                "quantity": 5,
                "fix_data": {"n": n},
            }
            for n in (1, 2, 3)
        ]
        remote = {
            ("gid://shopify/InventoryItem/1", "gid://shopify/Location/1"): 5,
            ("gid://shopify/InventoryItem/2", "gid://shopify/Location/1"): 7,
        }
        differences = reconcile.compare_stock(expected, remote)
        self.assertEqual(
            [(d.key, d.odoo_value, d.remote_value, d.fix_data) for d in differences],
            [("SKU-2 @ Shop", "5", "7", {"n": 2}), ("SKU-3 @ Shop", "5", "not stocked", {"n": 3})],
        )
        levels = [
            {"item": {"id": "i1"}, "quantities": [{"name": "available", "quantity": 4}]},
            {"item": {"id": "i2"}, "quantities": []},
        ]
        self.assertEqual(reconcile.available_by_item(levels), {"i1": 4, "i2": 0})

    def test_orders_missing_in_odoo_and_why(self):
        orders = [
            {"id": f"gid://shopify/Order/{n}", "name": f"#{n}", "createdAt": "2026-11-29T10:00:00Z"}
            for n in (1001, 1002, 1003)
        ]
        differences = reconcile.compare_orders(orders, {"1001"}, {"1003": "its event is failed"})
        self.assertEqual(
            [(d.key, d.what) for d in differences],
            [("#1002", "Order not imported"), ("#1003", "Order not imported: its event is failed")],
        )
        self.assertEqual(
            reconcile.orders_created_search(datetime(2026, 11, 29), datetime(2026, 11, 30)),
            "created_at:>='2026-11-29T00:00:00Z' created_at:<'2026-11-30T00:00:00Z'",
        )
