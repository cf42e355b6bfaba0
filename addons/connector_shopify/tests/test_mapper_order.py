import random
from decimal import Decimal

from odoo.tests import BaseCase
from odoo.tools import float_round

from odoo.addons.connector_base.components.validation import PayloadError, validate_payload

from ..components import mapper_order

ORDER = {
    "id": 820982911946154508,
    "name": "#1001",
    "currency": "EUR",
    "taxes_included": True,
    "email": "Ada@Example.com ",
    "total_price": "105.00",
    "total_tax": "17.50",
    "financial_status": "paid",
    "cancelled_at": None,
    "customer": {
        "id": 115310627314723954,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "phone": "+44 20 7946 0000",
        "email_marketing_consent": {"state": "subscribed"},
    },
    "shipping_address": {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "address1": "12 St James's Square",
        "city": "London",
        "zip": "SW1Y 4JH",
        "country_code": "GB",
        "province_code": None,
    },
    "line_items": [
        {
            "id": 466157049,
            "sku": "TEE-BLUE-M",
            "variant_id": 39072856,
            "title": "Tee",
            "quantity": 2,
            "price": "50.00",
            # As Shopify sends a discount code: zero here, the amount in the
            # line's discount allocations.
            "total_discount": "0.00",
            "discount_allocations": [
                {
                    "amount": "10.00",
                    "amount_set": {
                        "shop_money": {"amount": "10.00", "currency_code": "EUR"},
                        "presentment_money": {"amount": "10.00", "currency_code": "EUR"},
                    },
                    "discount_application_index": 0,
                }
            ],
            "tax_lines": [{"title": "GB VAT", "rate": 0.2, "price": "15.00"}],
        }
    ],
    "shipping_lines": [
        {
            "title": "Standard",
            "price": "15.00",
            "discounted_price": "15.00",
            "discount_allocations": [],
            "tax_lines": [{"title": "GB VAT", "rate": 0.2, "price": "2.50"}],
        }
    ],
}


class TestOrderMapper(BaseCase):
    def test_order_lines_discount_and_taxes(self):
        values = mapper_order.order_values(ORDER)
        line = values["lines"][0]
        self.assertEqual(line["sku"], "TEE-BLUE-M")
        self.assertEqual(line["variant_id"], "39072856")
        self.assertEqual((line["quantity"], line["price_unit"]), (2, 50.0))
        self.assertAlmostEqual(line["discount"], 10.0)  # 10.00 off 100.00
        self.assertEqual(line["tax_rates"], [20.0])
        self.assertEqual(values["shipping"][0]["price_unit"], 15.0)
        self.assertTrue(values["taxes_included"])

    def test_line_discount_is_the_sum_of_its_discount_allocations(self):
        line = dict(
            ORDER["line_items"][0],
            discount_allocations=[
                {"amount": "6.00", "discount_application_index": 0},
                {"amount": "4.00", "discount_application_index": 1},
            ],
        )
        values = mapper_order.line_values(line)
        self.assertEqual(values["discount"], 10.0)
        self.assertEqual(values["net"], Decimal("90.00"))
        self.assertEqual(values["taxes"], [{"title": "GB VAT", "rate": 20.0}])

    def test_total_discount_counts_only_for_a_line_without_allocations(self):
        # A draft order's or the API's line discount: set alone.
        draft = dict(ORDER["line_items"][0], total_discount="25.00", discount_allocations=[])
        self.assertEqual(mapper_order.line_values(draft)["discount"], 25.0)
        both = dict(ORDER["line_items"][0], total_discount="10.00")
        self.assertEqual(mapper_order.line_values(both)["discount"], 10.0, "not counted twice")

    def test_discount_percentage_gives_shopify_net_amount_to_the_cent(self):
        # 3 x 999.99 with 5.00 off: 0.17 % (two digits) would take 5.10 off.
        line = dict(
            ORDER["line_items"][0],
            quantity=3,
            price="999.99",
            discount_allocations=[{"amount": "5.00"}],
        )
        values = mapper_order.line_values(line)
        self.assertEqual(values["discount"], 0.166668)
        rng = random.Random(7)
        for _ in range(2000):
            price = Decimal(rng.randint(1, 5_000_000)) / 100
            quantity = rng.randint(1, 20)
            gross = price * quantity
            if gross >= 1_000_000:
                continue
            net = Decimal(rng.randint(0, int(gross * 100))) / 100
            percent = mapper_order.discount_percent(gross, gross - net)
            # As Odoo computes a line rounded per line: price x (1 - discount) x quantity.
            odoo = float_round(float(price) * (1 - percent / 100.0) * quantity, precision_digits=2)
            self.assertEqual(odoo, float(net), (price, quantity, net, percent))

    def test_shipping_discount_from_its_allocations_or_discounted_price(self):
        shipping = dict(
            ORDER["shipping_lines"][0],
            discount_allocations=[{"amount": "5.00", "discount_application_index": 1}],
        )
        self.assertEqual(mapper_order.shipping_values(shipping)["net"], Decimal("10.00"))
        # GraphQL's discountedPriceSet: the price after its shipping discounts.
        graphql = dict(ORDER["shipping_lines"][0], discounted_price="12.00")
        values = mapper_order.shipping_values(graphql)
        self.assertEqual((values["net"], values["discount"]), (Decimal("12.00"), 20.0))

    def test_customer_and_address(self):
        customer = mapper_order.order_values(ORDER)["customer"]
        self.assertEqual(customer["external_id"], "115310627314723954")
        self.assertEqual(customer["name"], "Ada Lovelace")
        self.assertEqual(customer["email"], "ada@example.com")
        self.assertTrue(customer["accepts_marketing"])
        address = mapper_order.order_values(ORDER)["shipping_address"]
        self.assertEqual(address["name"], "Ada Lovelace")
        self.assertEqual(address["country_code"], "GB")

    def test_schema_names_what_is_wrong(self):
        bad = dict(ORDER, currency="euro", line_items=[{"id": 1, "quantity": 0, "price": "x"}])
        with self.assertRaises(PayloadError) as error:
            validate_payload(mapper_order.ORDER_SCHEMA, bad)
        problems = "; ".join(error.exception.problems)
        self.assertIn("currency: value does not match regex", problems)
        self.assertIn("line_items.0.quantity: min value is 1", problems)
        self.assertIn("line_items.0.price: value does not match regex", problems)

    def test_schema_accepts_a_real_order(self):
        self.assertEqual(validate_payload(mapper_order.ORDER_SCHEMA, ORDER)["id"], ORDER["id"])


class TestOrderMapperBadInput(BaseCase):
    """Bodies the R3 fuzzing (tests/reliability/fuzz_mappers.py) found: each one
    crashed the mapper or gave Odoo a number it cannot store; the schema now
    refuses them, naming the field."""

    LINE = ORDER["line_items"][0]

    def assert_refused(self, body, *fields):
        with self.assertRaises(PayloadError) as error:
            validate_payload(mapper_order.ORDER_SCHEMA, body)
        problems = "; ".join(error.exception.problems)
        for field in fields:
            self.assertIn(field, problems)
        return problems

    def test_customer_and_addresses_of_the_wrong_type_are_refused(self):
        # Each of these raised TypeError or AttributeError in order_values().
        self.assert_refused(
            dict(ORDER, billing_address={"first_name": 7, "last_name": "X"}),
            "billing_address.first_name: must be of string type",
        )
        self.assert_refused(
            dict(ORDER, customer={"email": 42}), "customer.email: must be of string type"
        )
        self.assert_refused(
            dict(ORDER, customer={"email_marketing_consent": ["subscribed"]}),
            "customer.email_marketing_consent: must be of dict type",
        )
        self.assert_refused(
            dict(ORDER, customer={"default_address": "12 rue"}),
            "customer.default_address: must be of dict type",
        )
        self.assert_refused(
            dict(ORDER, line_items=[dict(self.LINE, name=5)]),
            "line_items.0.name: must be of string type",
        )

    def test_discount_allocations_and_tax_titles_of_the_wrong_type_are_refused(self):
        self.assert_refused(
            dict(ORDER, line_items=[dict(self.LINE, discount_allocations=[{"amount": "ten"}])]),
            "line_items.0.discount_allocations.0.amount: value does not match regex",
        )
        self.assert_refused(
            dict(ORDER, line_items=[dict(self.LINE, discount_allocations=[{}])]),
            "line_items.0.discount_allocations.0.amount: required field",
        )
        shipping = dict(ORDER["shipping_lines"][0], discount_allocations="5.00")
        self.assert_refused(
            dict(ORDER, shipping_lines=[shipping]),
            "shipping_lines.0.discount_allocations: must be of list type",
        )
        self.assert_refused(
            dict(ORDER, line_items=[dict(self.LINE, tax_lines=[{"title": 7, "rate": 0.2}])]),
            "line_items.0.tax_lines.0.title: must be of string type",
        )
        self.assert_refused(dict(ORDER, total_tax=1.5), "total_tax: must be of string type")

    def test_tax_rates_that_are_not_finite_numbers_are_refused(self):
        # Python's json reads NaN and Infinity; a huge rate made an infinite percentage.
        for rate, message in [
            (float("nan"), "must be a finite number"),
            (float("inf"), "must be a finite number"),
            (1.8e306, "max value is 10"),
            (-0.2, "min value is 0"),
        ]:
            body = dict(ORDER, line_items=[dict(self.LINE, tax_lines=[{"rate": rate}])])
            self.assert_refused(body, f"line_items.0.tax_lines.0.rate: {message}")

    def test_amounts_and_quantities_beyond_a_float_are_refused(self):
        # order_values() gave price_unit = inf, a discount of inf %, a quantity
        # Odoo's float fields overflow on.
        self.assert_refused(
            dict(ORDER, line_items=[dict(self.LINE, price="9" * 400)]),
            "line_items.0.price: value does not match regex",
        )
        self.assert_refused(
            dict(ORDER, line_items=[dict(self.LINE, price="0." + "0" * 400 + "1")]),
            "line_items.0.price: value does not match regex",
        )
        self.assert_refused(
            dict(ORDER, line_items=[dict(self.LINE, quantity=2**1100)]),
            "line_items.0.quantity: max value is 2147483647",
        )
        # What Shopify does send still passes.
        body = dict(ORDER, line_items=[dict(self.LINE, price="1234567.125", quantity=10**6)])
        values = mapper_order.order_values(validate_payload(mapper_order.ORDER_SCHEMA, body))
        line = values["lines"][0]
        self.assertEqual((line["price_unit"], line["quantity"]), (1234567.125, 10**6))

    def test_graphql_node_it_cannot_read_is_refused_field_by_field(self):
        # order_from_graphql() raised KeyError / TypeError on each of these.
        with self.assertRaises(PayloadError) as error:
            mapper_order.order_from_graphql({})
        problems = "; ".join(error.exception.problems)
        for field in ("id: required field", "lineItems: required field", "name: required field"):
            self.assertIn(field, problems)
        node = {
            "id": "gid://shopify/Order/1",
            "name": "#1001",
            "currencyCode": "EUR",
            "taxesIncluded": True,
            "totalPriceSet": {"shopMoney": {"amount": "abc"}},
            "lineItems": {"edges": []},
            "shippingLines": {"edges": [{"node": {"taxLines": [{}]}}]},
        }
        with self.assertRaises(PayloadError) as error:
            mapper_order.order_from_graphql(node)
        problems = "; ".join(error.exception.problems)
        self.assertIn("totalPriceSet.shopMoney.amount: value does not match regex", problems)
        self.assertIn("shippingLines.edges.0.node.taxLines.0.rate: required field", problems)
        with self.assertRaises(PayloadError):
            mapper_order.order_from_graphql(None)


class TestFulfilledMapping(BaseCase):
    """What Shopify fulfilled of each line, from the webhook and from GraphQL."""

    def test_fulfilled_units_per_line_from_the_fulfillments_not_cancelled(self):
        line_id = ORDER["line_items"][0]["id"]
        fulfillments = [
            {"id": 1, "status": "success", "line_items": [{"id": line_id, "quantity": 1}]},
            {"id": 2, "status": "cancelled", "line_items": [{"id": line_id, "quantity": 2}]},
            {"id": 3, "status": "open", "line_items": [{"id": line_id, "quantity": 1}]},
        ]
        payload = validate_payload(
            mapper_order.ORDER_SCHEMA, dict(ORDER, fulfillments=fulfillments)
        )
        self.assertEqual(mapper_order.order_values(payload)["fulfilled"], {str(line_id): 2})
        self.assertEqual(mapper_order.order_values(ORDER)["fulfilled"], {})
        over = [{"id": 1, "status": "success", "line_items": [{"id": line_id, "quantity": 3}]}]
        with self.assertRaises(PayloadError) as error:
            mapper_order.order_values(dict(ORDER, fulfillments=over))
        self.assertIn("is fulfilled 3 times but ordered 2 times", str(error.exception))

    def test_graphql_fulfillments_read_as_the_webhook_has_them(self):
        node = {
            "id": "gid://shopify/Order/1",
            "name": "#1001",
            "currencyCode": "EUR",
            "taxesIncluded": True,
            "displayFulfillmentStatus": "PARTIALLY_FULFILLED",
            "lineItems": {"edges": [{"node": {"id": "gid://shopify/LineItem/7", "quantity": 3}}]},
            "shippingLines": {"edges": []},
            "fulfillments": [
                {
                    "id": "gid://shopify/Fulfillment/9",
                    "status": "SUCCESS",
                    "fulfillmentLineItems": {
                        "edges": [
                            {
                                "node": {
                                    "quantity": 2,
                                    "lineItem": {"id": "gid://shopify/LineItem/7"},
                                }
                            }
                        ]
                    },
                }
            ],
        }
        order = mapper_order.order_from_graphql(node)
        self.assertEqual(order["fulfillment_status"], "partial")
        self.assertEqual(
            order["fulfillments"],
            [{"id": 9, "status": "success", "line_items": [{"id": 7, "quantity": 2}]}],
        )
        self.assertEqual(mapper_order.fulfilled_quantities(order), {"7": 2})
