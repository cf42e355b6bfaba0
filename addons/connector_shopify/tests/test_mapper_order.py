from odoo.tests import BaseCase

from odoo.addons.connector_base.components.validation import PayloadError, validate_payload

from ..components import mapper_order

ORDER = {
    "id": 820982911946154508,
    "name": "#1001",
    "currency": "EUR",
    "taxes_included": True,
    "email": "Ada@Example.com ",
    "total_price": "105.00",
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
            "total_discount": "10.00",
            "tax_lines": [{"rate": 0.2, "price": "15.00"}],
        }
    ],
    "shipping_lines": [
        {
            "title": "Standard",
            "price": "15.00",
            "discounted_price": "15.00",
            "tax_lines": [{"rate": 0.2, "price": "2.50"}],
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
