from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs

from .common import connect_store

ON_HAND = 12


@tagged("post_install", "-at_install")
class TestReconciliationTour(HttpCase):
    """In the browser: a manager resolves a stock mismatch."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        connect_store(cls, sku_count=3, on_hand=ON_HAND, seed=41, products=4)
        cls.manager = new_test_user(
            cls.env,
            login="recon_tour_manager",
            groups="base.group_user,connector_base.group_connector_manager",
        )

    def test_a_manager_pushes_odoo_quantity_from_the_mismatch(self):
        location = self.backend.shopify_location_ids
        with trap_jobs() as trap:
            self.backend.action_shopify_push_stock()
            run_trapped_jobs(self.env, trap)
        sku = self.skus[1]
        self.shop.set_inventory(sku, location.external_id, 2)
        with trap_jobs() as trap:
            run = self.backend._reconcile_later("stock")
            run_trapped_jobs(self.env, trap)
        mismatch = run.mismatch_ids
        self.assertEqual(mismatch.business_key, f"{sku} @ {location.name}")
        with trap_jobs() as trap:
            self.start_tour(
                "/odoo",
                "connector_shopify_resolve_stock_mismatch",
                login=self.manager.login,
            )
            run_trapped_jobs(self.env, trap)
        self.assertEqual(mismatch.state, "resolved")
        self.assertEqual(mismatch.resolved_by_id, self.manager)
        self.assertEqual(self.shop.inventory(sku)[0]["available"], ON_HAND)
