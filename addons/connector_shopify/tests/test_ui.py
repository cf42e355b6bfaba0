from odoo.tests import HttpCase, tagged

from .common import ACCESS_TOKEN, SHOP_DOMAIN, make_tax, start_shop


@tagged("post_install", "-at_install")
class TestShopifyBackendSetupTour(HttpCase):
    """In a browser, an administrator connects a simulated Shopify store."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.shop = start_shop(cls, locations=2)
        company = cls.env.company
        company.country_id = company.country_id or cls.env.ref("base.uk")
        # As the configuration guide says: Shopify rounds tax per line.
        company.tax_calculation_rounding_method = "round_per_line"
        cls.tax = make_tax(cls.env, 20.0)
        cls.tax.name = "Tour VAT 20% incl."
        warehouse = cls.env.ref("stock.warehouse0")
        cls.shop_floor = cls.env["stock.location"].create(
            {
                "name": "Shop floor",
                "location_id": warehouse.view_location_id.id,
                "usage": "internal",
            }
        )
        # The store's address: the simulator's, which the administrator would
        # type; a default here, as the tour cannot know its port.
        cls.env["ir.default"].set("connector.backend", "base_url", cls.shop.url)

    def test_administrator_connects_a_store(self):
        self.start_tour(
            "/odoo/action-connector_base.action_connector_overview",
            "connector_shopify_backend_setup",
            login="admin",
        )
        backend = self.env["connector.backend"].search([("shopify_shop_domain", "=", SHOP_DOMAIN)])
        self.assertEqual(backend.name, "Flagship store")
        self.assertEqual(backend.sudo().api_token, ACCESS_TOKEN)
        self.assertEqual(
            backend.shopify_location_ids.mapped("location_id.name").count("Shop floor"), 1
        )
        self.assertEqual(len(backend.shopify_location_ids), 2)
        mapping = backend.shopify_tax_mapping_ids.filtered(lambda m: m.name == "VAT")
        self.assertEqual((mapping.rate, mapping.tax_id), (20.0, self.tax))
        self.assertEqual(backend.shopify_webhook_state, "ok")
        rows = self.shop.snapshot(["webhook_subscriptions"])["webhook_subscriptions"]
        self.assertTrue(rows)
        self.assertEqual({row["uri"] for row in rows}, {backend.webhook_address})
