from odoo.tests import TransactionCase

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs

from .common import make_backend, make_products, order_payload


class TestOrderImport(TransactionCase):
    """A Shopify order becomes exactly one confirmed, reserved sale order."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        cls.backend = make_backend(cls.env)
        # No remote behind this backend: only the orders flow is under test here.
        for flow in ("stock_out", "fulfillment_out"):
            cls.backend._policy(flow).enabled = False
        cls.products = make_products(cls.env)
        cls.Event = cls.env["connector.event"]

    def deliver(self, topic, payload, webhook_id):
        return self.Event._receive(self.backend, topic, payload, webhook_id)

    def run_jobs(self, trap):
        run_trapped_jobs(self.env, trap)

    def binding(self, payload):
        return self.env["shopify.order.binding"]._find(self.backend, payload["id"])

    def test_same_order_delivered_three_times_gives_one_sale_order(self):
        payload = order_payload()
        with trap_jobs() as trap:
            events = [self.deliver("orders/create", payload, "wh-1") for _ in range(3)]
            self.run_jobs(trap)
        self.assertEqual([e.state for e in events], ["done", "duplicate", "duplicate"])
        orders = self.env["sale.order"].search([("client_order_ref", "=", "#1001")])
        self.assertEqual(len(orders), 1)
        order = orders
        self.assertEqual(order.state, "sale")
        self.assertEqual(self.binding(payload).odoo_id, order)
        self.assertEqual(order.shopify_order_name, "#1001")
        self.assertEqual(order.shopify_financial_status, "paid")
        line = order.order_line.filtered(lambda sol: sol.product_id == self.products)
        self.assertEqual((line.product_uom_qty, line.price_unit), (2, 50.0))
        self.assertAlmostEqual(line.discount, 10.0)
        self.assertEqual(line.tax_ids.amount, 20.0)
        self.assertTrue(line.tax_ids.price_include)
        # 2 x 50 - 10 discount + 15 shipping, taxes included: Shopify's 105.00
        self.assertAlmostEqual(order.amount_total, 105.0)
        self.assertEqual(order.picking_ids.move_ids.mapped("state"), ["assigned"])
        self.assertEqual(order.partner_id.email, "ada@example.com")
        self.assertEqual(order.partner_shipping_id.city, "London")

    def test_other_webhook_ids_for_the_same_order_do_not_duplicate_it(self):
        payload = order_payload()
        with trap_jobs() as trap:
            self.deliver("orders/create", payload, "wh-a")
            self.deliver("orders/updated", dict(payload, note="gift wrap"), "wh-b")
            self.run_jobs(trap)
        orders = self.env["sale.order"].search([("client_order_ref", "=", "#1001")])
        self.assertEqual(len(orders), 1)
        self.assertIn("gift wrap", str(orders.note))

    def test_backend_form_counts_bound_orders_and_customers_and_lists_them(self):
        with trap_jobs() as trap:
            self.deliver("orders/create", order_payload(id=801, name="#1801"), "wh-n")
            self.run_jobs(trap)
        self.backend.invalidate_recordset()
        self.assertEqual(self.backend.shopify_order_count, 1)
        self.assertEqual(self.backend.shopify_customer_count, 1)
        action = self.backend.with_context(
            binding_count="shopify_order_count"
        ).action_shopify_view_bindings()
        listed = self.env[action["res_model"]].search(action["domain"])
        self.assertEqual(listed.shopify_name, "#1801")

    def test_customer_is_matched_by_email_not_duplicated(self):
        known = self.env["res.partner"].create({"name": "Ada L.", "email": "ADA@example.com"})
        with trap_jobs() as trap:
            self.deliver("orders/create", order_payload(), "wh-c")
            self.run_jobs(trap)
        self.assertEqual(self.binding(order_payload()).odoo_id.partner_id, known)

    def test_customer_without_email_is_matched_by_phone_however_written(self):
        known = self.env["res.partner"].create(
            {"name": "Ada L.", "phone": "020 7946 0000", "country_id": self.env.ref("base.uk").id}
        )
        customer = {"id": 4711, "first_name": "Ada", "phone": "+44 20 7946 0000"}
        payload = order_payload(id=871, name="#1871", email=None, customer=customer)
        with trap_jobs() as trap:
            self.deliver("orders/create", payload, "wh-phone")
            self.run_jobs(trap)
        self.assertEqual(self.binding(payload).odoo_id.partner_id, known)
        customers = self.env["shopify.partner.binding"].search([("external_id", "=", "4711")])
        self.assertEqual(customers.odoo_id, known)
        self.assertEqual((known.name, known.phone), ("Ada L.", "020 7946 0000"), "kept")

    def test_pricelist_is_the_backends_in_its_currency_else_one_of_the_order_currency(self):
        eur = self.env.ref("base.EUR")
        usd = self.env.ref("base.USD")
        eur.active = usd.active = True
        retail = self.env["product.pricelist"].create({"name": "Web EUR", "currency_id": eur.id})
        self.backend.shopify_pricelist_id = retail
        with trap_jobs() as trap:
            self.deliver("orders/create", order_payload(id=701, name="#1701"), "wh-p1")
            self.deliver(
                "orders/create", order_payload(id=702, name="#1702", currency="USD"), "wh-p2"
            )
            self.run_jobs(trap)
        in_eur = self.binding({"id": 701}).odoo_id
        in_usd = self.binding({"id": 702}).odoo_id
        self.assertEqual(in_eur.pricelist_id, retail)
        self.assertEqual(in_usd.pricelist_id.currency_id, usd)
        self.assertEqual(in_usd.currency_id, usd)

    def test_unknown_sku_fails_with_its_name_then_succeeds_after_binding(self):
        payload = order_payload(id=555, name="#1555")
        payload["line_items"][0]["sku"] = "MUG-RED"
        with trap_jobs() as trap:
            event = self.deliver("orders/create", payload, "wh-sku")
            self.run_jobs(trap)
            self.assertEqual(event.state, "failed")
            self.assertEqual(event.error_kind, "business")
            self.assertIn("unknown SKU 'MUG-RED'", event.error_message)
            self.assertFalse(self.env["sale.order"].search([("client_order_ref", "=", "#1555")]))
            self.assertFalse(
                self.env["res.partner"].search([("email", "=", "ada@example.com")]),
                "nothing created half-way",
            )
            make_products(self.env, ["MUG-RED"])
            event.action_requeue()
            self.run_jobs(trap)
        self.assertEqual(event.state, "done")
        self.assertEqual(event._produced_record().client_order_ref, "#1555")

    def test_cancellation_cancels_the_sale_order(self):
        payload = order_payload(id=777, name="#1777")
        with trap_jobs() as trap:
            self.deliver("orders/create", payload, "wh-777")
            self.run_jobs(trap)
            cancel = self.deliver(
                "orders/cancelled",
                {"id": 777, "name": "#1777", "cancel_reason": "customer"},
                "wh-777-c",
            )
            self.run_jobs(trap)
        self.assertEqual(cancel.state, "done")
        self.assertEqual(self.binding(payload).odoo_id.state, "cancel")

    def test_cancellation_after_delivery_says_why_not(self):
        payload = order_payload(id=778, name="#1778")
        with trap_jobs() as trap:
            self.deliver("orders/create", payload, "wh-778")
            self.run_jobs(trap)
            picking = self.binding(payload).odoo_id.picking_ids
            picking.move_ids.quantity = 2
            picking.button_validate()
            cancel = self.deliver("orders/cancelled", {"id": 778, "name": "#1778"}, "wh-778-c")
            self.run_jobs(trap)
        self.assertEqual(cancel.state, "failed")
        self.assertIn("goods already delivered", cancel.error_message)
        self.assertEqual(self.binding(payload).odoo_id.state, "sale")

    def test_cancellation_before_the_order_waits_for_it(self):
        payload = order_payload(id=779, name="#1779")
        with trap_jobs() as trap:
            cancel = self.deliver("orders/cancelled", {"id": 779, "name": "#1779"}, "wh-779-c")
            self.run_jobs(trap)
            self.assertEqual(cancel.state, "waiting")
            self.assertIn("Order #1779 is not imported yet", cancel.error_message)
            self.assertEqual(cancel.error_kind, "prerequisite")
            create = self.deliver("orders/create", payload, "wh-779")
            self.run_jobs(trap)
        self.assertEqual(create.state, "done", create.error_message)
        self.assertEqual(cancel.state, "done", cancel.error_message)
        self.assertEqual(self.binding(payload).odoo_id.state, "cancel")
