import json
from decimal import Decimal

from simulators.shopify.webhooks import order_payload

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import TransactionCase, new_test_user, tagged

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs

from .common import make_backend, make_products, make_tax, start_shop

# SKU: Shopify price. Prices chosen for what they test: 999.99 for a discount
# of a fraction of a percent, 10.03 for tax rounded per line (20 % of it is
# 2.006: 2.01 per line, where a total rounded once loses a cent).
PRICES = {
    "LAPTOP": "999.99",
    "CHARGER": "10.03",
    "CABLE": "10.03",
    "TEE": "19.90",
    "CAP": "24.90",
    "SOCKS": "7.35",
    "BAG": "89.00",
    "MUG": "12.49",
    "PEN": "1.99",
    "BOOK": "17.45",
    "LAMP": "44.95",
    "PLANT": "23.33",
}
# Country: the store's tax title and rate there (simulators.retail_data.TAX_REGIONS).
CUSTOMERS = {"GB": "GB VAT", "DE": "DE MwSt", "NL": "NL BTW"}
STANDARD = {"title": "Standard", "code": "STANDARD", "price": Decimal("4.90")}
FREE = {"title": "Free shipping", "code": "FREE", "price": Decimal("0.00")}


def allocations(line):
    return line["discount_allocations"]


@tagged("post_install", "-at_install")
class TestOrderTotals(TransactionCase):
    """Odoo's order totals are Shopify's to the cent, or the event fails
    naming what to fix: orders priced by the simulated store (discounts of
    lines, of the order and of shipping, taxes included or not), delivered as
    its webhook JSON and imported by the event jobs."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        cls.shop = start_shop(cls, seed=53, products=1, customers=1)
        cls.store = cls.shop.store
        cls.variants = {}
        for sku, price in PRICES.items():
            product = cls.store.add_product(
                {"title": sku.title(), "variants": [{"sku": sku, "price": Decimal(price)}]}
            )
            cls.variants[sku] = product["_variants"][0]
        cls.customers = {
            country: cls.store.add_customer(
                {
                    "first_name": "Ada",
                    "last_name": country,
                    "email": f"ada.{country.lower()}@example.com",
                    "address": {
                        "first_name": "Ada",
                        "last_name": country,
                        "address1": "1 Main Street",
                        "city": "Town",
                        "zip": "1000",
                        "country_code": country,
                    },
                }
            )["id"]
            for country in CUSTOMERS
        }
        cls.backend = make_backend(cls.env, base_url=cls.shop.url)
        # Only the orders flow is under test: nothing goes back to the store.
        for flow in ("stock_out", "fulfillment_out"):
            cls.backend._policy(flow).enabled = False
        make_products(cls.env, list(PRICES), on_hand=100)
        cls.Event = cls.env["connector.event"]

    # --- helpers --------------------------------------------------------------

    def place(self, lines, *, discount=None, shipping=None, country="GB", included=True):
        """An order the store prices, as the JSON its orders/create webhook carries;
        shipped Standard (4.90) unless ``shipping`` says otherwise."""
        with self.shop.lock:
            self.store.shop["taxesIncluded"] = included
            order = self.store.create_order(
                customer_id=self.customers[country],
                lines=[(self.variants[sku], quantity) for sku, quantity in lines],
                discount=discount,
                shipping=shipping or STANDARD,
                emit=False,
            )
            return json.loads(json.dumps(order_payload(self.store, order)))

    def deliver(self, payload):
        with trap_jobs() as trap:
            event = self.Event._receive(
                self.backend, "orders/create", payload, f"wh-{payload['id']}"
            )
            run_trapped_jobs(self.env, trap)
        return event

    def sale_order(self, payload):
        return self.env["shopify.order.binding"]._find(self.backend, payload["id"]).odoo_id

    def assert_shopify_totals(self, payload):
        """Delivered and imported, the order totals what Shopify says, to the cent."""
        event = self.deliver(payload)
        self.assertEqual(event.state, "done", event.error_message)
        order = self.sale_order(payload)
        digits = order.currency_id.decimal_places
        self.assertEqual(
            (f"{order.amount_total:.{digits}f}", f"{order.amount_tax:.{digits}f}"),
            (payload["total_price"], payload["total_tax"]),
        )
        self.assertEqual(
            len(order.order_line.filtered("shopify_line_item_id")), len(payload["line_items"])
        )
        return order

    def map_excluded_taxes(self):
        for rate in (19.0, 20.0, 21.0):
            make_tax(self.env, rate, included=False)
        self.backend.action_shopify_fill_tax_mapping()

    # --- the matrix -------------------------------------------------------------

    def test_line_discount_comes_from_discount_allocations(self):
        payload = self.place(
            [("TEE", 2), ("CAP", 1)],
            discount={
                "code": "TEE20",
                "kind": "percentage",
                "value": Decimal(20),
                "target": "line",
                "line": 0,
            },
        )
        tee = payload["line_items"][0]
        # As Shopify sends it: the line's total_discount stays zero for a code,
        # the allocation carries the amount and points at the application.
        self.assertEqual(tee["total_discount"], "0.00")
        self.assertEqual(
            [(a["amount"], a["discount_application_index"]) for a in allocations(tee)],
            [("7.96", 0)],
        )
        self.assertEqual(payload["discount_applications"][0]["target_selection"], "explicit")
        self.assertEqual(payload["line_items"][1]["discount_allocations"], [])
        order = self.assert_shopify_totals(payload)
        line = order.order_line.filtered(lambda sol: sol.product_id.default_code == "TEE")
        self.assertEqual(line.price_subtotal, round(31.84 / 1.2, 2))

    def test_fixed_order_discount_is_spread_over_the_lines(self):
        payload = self.place(
            [("TEE", 3), ("SOCKS", 1), ("MUG", 2)],
            discount={"code": "TENOFF", "kind": "fixed_amount", "value": Decimal("10.00")},
        )
        allocations = [
            Decimal(a["amount"])
            for line in payload["line_items"]
            for a in line["discount_allocations"]
        ]
        self.assertEqual(len(allocations), 3, "a share on each line")
        self.assertEqual(sum(allocations), Decimal("10.00"))
        self.assertEqual(payload["discount_codes"][0]["amount"], "10.00")
        self.assert_shopify_totals(payload)

    def test_shipping_discount_and_line_and_order_discounts_together(self):
        payload = self.place(
            [("BAG", 1), ("PEN", 3)],
            discount=[
                {
                    "code": "PEN10",
                    "kind": "percentage",
                    "value": Decimal(10),
                    "target": "line",
                    "line": 1,
                },
                {"code": "SPRING", "kind": "percentage", "value": Decimal(15)},
                {
                    "code": "SHIP2",
                    "kind": "fixed_amount",
                    "value": Decimal("2.00"),
                    "target": "shipping",
                },
            ],
            shipping={"title": "Express", "code": "EXPRESS", "price": Decimal("9.90")},
        )
        shipping = payload["shipping_lines"][0]
        self.assertEqual(shipping["discounted_price"], "7.90")
        self.assertEqual(
            [
                (a["amount"], a["discount_application_index"])
                for a in shipping["discount_allocations"]
            ],
            [("2.00", 2)],
        )
        self.assertEqual(
            [
                a["discount_application_index"]
                for a in payload["line_items"][1]["discount_allocations"]
            ],
            [0, 1],
        )
        order = self.assert_shopify_totals(payload)
        delivery = order.order_line.filtered(lambda sol: not sol.shopify_line_item_id)
        self.assertEqual(delivery.price_total, 7.90)

    def test_taxes_excluded(self):
        self.map_excluded_taxes()
        payload = self.place(
            [("TEE", 2), ("LAMP", 1)],
            discount={"code": "FIVEOFF", "kind": "fixed_amount", "value": Decimal("5.00")},
            country="NL",
            included=False,
        )
        self.assertFalse(payload["taxes_included"])
        order = self.assert_shopify_totals(payload)
        self.assertFalse(any(order.order_line.tax_ids.mapped("price_include")))
        self.assertEqual(order.order_line.tax_ids.mapped("amount"), [21.0])

    def test_tax_rounded_per_line_as_shopify_rounds_it(self):
        # 20 % of 10.03 is 2.006: Shopify charges 2.01 on each line, 4.02 in
        # all; rounded once on the order's 20.06 it would be 4.01.
        self.map_excluded_taxes()
        payload = self.place([("CHARGER", 1), ("CABLE", 1)], shipping=FREE, included=False)
        self.assertEqual(payload["total_tax"], "4.02")
        self.assert_shopify_totals(payload)

    def test_tax_rounded_per_tax_fails_naming_the_setting(self):
        self.map_excluded_taxes()
        self.env.company.tax_calculation_rounding_method = "round_globally"
        payload = self.place([("CHARGER", 1), ("CABLE", 1)], shipping=FREE, included=False)
        event = self.deliver(payload)
        self.assertEqual(event.state, "failed")
        self.assertEqual(event.error_kind, "business")
        self.assertIn(
            f"Odoo total 24.07 differs from Shopify's 24.08 on order {payload['name']}",
            event.error_message,
        )
        self.assertIn("Tax Calculation Rounding Method", event.error_message)
        self.assertIn("'Round per Line'", event.error_message)
        self.assertFalse(
            self.env["sale.order"].search([("client_order_ref", "=", payload["name"])]),
            "nothing half-created",
        )
        self.env.company.tax_calculation_rounding_method = "round_per_line"
        with trap_jobs() as trap:
            event.action_requeue()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(self.sale_order(payload).amount_total, 24.08)

    def test_order_in_a_currency_other_than_the_company_one(self):
        eur = self.env.ref("base.EUR")
        eur.active = True
        self.assertNotEqual(self.env.company.currency_id, eur)
        self.env["res.currency.rate"].create({"currency_id": eur.id, "rate": 0.9123})
        payload = self.place(
            [("BOOK", 3), ("PLANT", 1)],
            discount={"code": "WELCOME10", "kind": "percentage", "value": Decimal(10)},
            country="DE",
        )
        self.assertEqual(payload["currency"], "EUR")
        order = self.assert_shopify_totals(payload)
        self.assertEqual(order.currency_id, eur)
        self.assertEqual(order.pricelist_id.currency_id, eur)

    def test_three_times_999_99_with_5_off(self):
        payload = self.place(
            [("LAPTOP", 3)],
            discount={"code": "FIVEOFF", "kind": "fixed_amount", "value": Decimal("5.00")},
            shipping=FREE,
        )
        self.assertEqual(payload["total_price"], "2994.97")
        order = self.assert_shopify_totals(payload)
        line = order.order_line.filtered("shopify_line_item_id")
        # 5.00 off 2999.97: 0.166668 %, not 0.17 % (5.10 off).
        self.assertEqual(line.discount, 0.166668)
        self.assertEqual(line.price_total, 2994.97)

    def test_an_order_of_twelve_lines(self):
        payload = self.place(
            [(sku, quantity) for quantity, sku in enumerate(PRICES, start=1) if sku != "LAPTOP"]
            + [("LAPTOP", 1)],
            discount={"code": "ODD", "kind": "fixed_amount", "value": Decimal("7.77")},
            country="DE",
        )
        self.assertEqual(len(payload["line_items"]), 12)
        order = self.assert_shopify_totals(payload)
        self.assertEqual(len(order.order_line), 13, "twelve lines and the shipping")

    def test_with_taxes_left_to_odoo_a_difference_is_said_not_failed(self):
        # The backend chose Odoo's taxes (fiscal positions): the totals may
        # differ by design, the order says so.
        self.backend.shopify_tax_policy = "odoo"
        payload = self.place([("TEE", 1)])
        event = self.deliver(payload)
        self.assertEqual(event.state, "done", event.error_message)
        order = self.sale_order(payload)
        self.assertNotEqual(
            (f"{order.amount_total:.2f}", f"{order.amount_tax:.2f}"),
            (payload["total_price"], payload["total_tax"]),
        )
        self.assertIn("differs from the Odoo total", "\n".join(order.message_ids.mapped("body")))

    def test_unmapped_tax_rate_fails_naming_what_to_map_then_succeeds(self):
        self.backend.shopify_tax_mapping_ids.filtered(lambda m: m.rate == 19.0).unlink()
        payload = self.place([("TEE", 1)], country="DE")
        event = self.deliver(payload)
        self.assertEqual(event.state, "failed")
        self.assertEqual(event.error_kind, "business")
        self.assertIn("map tax 'DE MwSt 19 %' on backend Shopify test store", event.error_message)
        self.assertFalse(self.sale_order(payload))
        self.assertFalse(
            self.env["res.partner"].search([("email", "=", "ada.de@example.com")]),
            "nothing half-created",
        )
        self.env["shopify.tax.mapping"].create(
            {
                "backend_id": self.backend.id,
                "name": "DE MwSt",
                "rate": 19.0,
                "country_id": self.env.ref("base.de").id,
                "tax_id": make_tax(self.env, 19.0).id,
            }
        )
        with trap_jobs() as trap:
            event.action_requeue()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(f"{self.sale_order(payload).amount_total:.2f}", payload["total_price"])


class TestTaxMapping(TransactionCase):
    """Taxes come from the backend's mapping, filled from the company's taxes."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend = make_backend(cls.env)
        cls.Mapping = cls.env["shopify.tax.mapping"]

    def test_backend_is_created_with_the_company_sale_taxes_mapped(self):
        tax = make_tax(self.env, 20.0)
        rows = self.backend.shopify_tax_mapping_ids.filtered(lambda m: m.tax_id == tax)
        self.assertEqual(len(rows), 1)
        self.assertEqual((rows.rate, rows.name, rows.country_id.id), (20.0, False, False))
        self.assertTrue(rows.price_include)

    def test_fill_adds_only_taxes_not_mapped_yet(self):
        before = len(self.backend.shopify_tax_mapping_ids)
        self.backend.action_shopify_fill_tax_mapping()
        self.assertEqual(len(self.backend.shopify_tax_mapping_ids), before)
        excluded = make_tax(self.env, 7.7, included=False)
        self.backend.action_shopify_fill_tax_mapping()
        self.assertEqual(len(self.backend.shopify_tax_mapping_ids), before + 1)
        self.assertIn(excluded, self.backend.shopify_tax_mapping_ids.tax_id)

    def test_the_country_and_title_rows_win_and_price_include_must_match(self):
        generic = make_tax(self.env, 20.0)
        french = make_tax(self.env, 20.0).copy({"name": "TVA 20% incl."})
        self.Mapping.create(
            {
                "backend_id": self.backend.id,
                "name": "FR TVA",
                "rate": 20.0,
                "country_id": self.env.ref("base.fr").id,
                "tax_id": french.id,
            }
        )
        find = self.Mapping._find
        france = self.env.ref("base.fr")
        self.assertEqual(find(self.backend, "FR TVA", 20.0, france, True), french)
        self.assertEqual(find(self.backend, "fr tva ", 20.0, france, True), french)
        self.assertEqual(find(self.backend, "GB VAT", 20.0, self.env.ref("base.uk"), True), generic)
        self.assertFalse(find(self.backend, "FR TVA", 20.0, france, False), "no excluded 20 %")

    def test_connector_users_read_the_mapping_managers_change_it(self):
        user = new_test_user(
            self.env, login="rs_tax_reader", groups="connector_base.group_connector_user"
        )
        manager = new_test_user(
            self.env, login="rs_tax_manager", groups="connector_base.group_connector_manager"
        )
        row = self.backend.shopify_tax_mapping_ids[:1]
        self.assertTrue(row.with_user(user).tax_id)
        with self.assertRaises(AccessError):
            row.with_user(user).name = "VAT"
        with self.assertRaises(AccessError):
            self.Mapping.with_user(user).create(
                {"backend_id": self.backend.id, "rate": row.rate, "tax_id": row.tax_id.id}
            )
        row.with_user(manager).name = "VAT"
        self.assertEqual(row.name, "VAT")

    def test_a_tax_of_another_rate_is_refused(self):
        with self.assertRaises(ValidationError) as error:
            self.Mapping.create(
                {"backend_id": self.backend.id, "rate": 7.7, "tax_id": make_tax(self.env, 20.0).id}
            )
        self.assertIn("'7.7 %'", str(error.exception))


@tagged("post_install", "-at_install")
class TestTaxRoundingCheck(TransactionCase):
    """Test connection says when the company does not round tax per line."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.shop = start_shop(cls, seed=59, products=1, customers=1)
        cls.backend = make_backend(cls.env, base_url=cls.shop.url)

    def test_connection_test_names_the_rounding_method(self):
        self.env.company.tax_calculation_rounding_method = "round_globally"
        with self.assertRaises(UserError) as error:
            self.backend.action_test_connection()
        self.assertIn("Tax Calculation Rounding Method", str(error.exception))
        self.assertIn("'Round per Line'", str(error.exception))
        self.env.company.tax_calculation_rounding_method = "round_per_line"
        answer = self.backend.action_test_connection()
        self.assertEqual(answer["params"]["type"], "success")
