from decimal import Decimal

from odoo.tests import BaseCase

from odoo.addons.connector_base.components.validation import PayloadError, validate_payload

from ..components import mapper_refund

REFUND = {
    "id": 509562969,
    "order_id": 820982911946154508,
    "note": "Wrong size",
    "restock": True,
    "refund_line_items": [
        {
            "id": 104689539,
            "line_item_id": 466157049,
            "quantity": 1,
            "restock_type": "return",
            "location_id": 24826418,
            "subtotal": "45.00",
            "total_tax": "7.50",
            "line_item": {"id": 466157049, "sku": "TEE-BLUE-M", "variant_id": 39072856},
        },
        {
            "id": 104689540,
            "line_item_id": 466157050,
            "quantity": 3,
            "restock_type": "no_restock",
            "location_id": None,
            "subtotal": "10.00",
            "total_tax": "1.67",
        },
    ],
    "transactions": [
        {"id": 1, "kind": "refund", "status": "success", "gateway": "shopify_payments",
         "amount": "60.00"},
        {"id": 2, "kind": "refund", "status": "failure", "gateway": "paypal", "amount": "9.99"},
        {"id": 3, "kind": "refund", "status": "pending", "gateway": "manual", "amount": "1.00"},
    ],
    "order_adjustments": [
        {"kind": "shipping_refund", "amount": "-5.00", "tax_amount": "-0.83"},
        {"kind": "refund_discrepancy", "amount": "0.50", "tax_amount": "0.00"},
    ],
}  # fmt: skip


class TestRefundMapper(BaseCase):
    def test_lines_restock_and_location(self):
        lines = mapper_refund.refund_values(REFUND)["lines"]
        returned, kept = lines
        self.assertEqual(returned["line_item_id"], "466157049")
        self.assertEqual((returned["sku"], returned["variant_id"]), ("TEE-BLUE-M", "39072856"))
        self.assertEqual((returned["quantity"], returned["restock"]), (1, "return"))
        self.assertEqual(returned["location_id"], "24826418")
        self.assertEqual(returned["subtotal"], Decimal("45.00"))
        self.assertEqual((kept["restock"], kept["location_id"], kept["sku"]), ("none", None, None))

    def test_restock_types_as_odoo_sees_them(self):
        for shopify, odoo in [
            ("return", "return"),
            ("legacy_restock", "return"),
            ("cancel", "cancel"),
            ("no_restock", "none"),
            (None, "none"),
        ]:
            line = dict(REFUND["refund_line_items"][0], restock_type=shopify)
            self.assertEqual(mapper_refund.refund_line_values(line)["restock"], odoo, shopify)

    def test_only_successful_refund_transactions_are_money_back(self):
        values = mapper_refund.refund_values(REFUND)
        self.assertEqual(
            values["payments"],
            [{"external_id": "1", "gateway": "shopify_payments", "amount": Decimal("60.00")}],
        )
        self.assertEqual(values["amount"], Decimal("60.00"))

    def test_shipping_refund_is_the_shipping_adjustment_only(self):
        self.assertEqual(mapper_refund.refund_values(REFUND)["shipping"], Decimal("5.00"))
        no_shipping = dict(REFUND, order_adjustments=[])
        self.assertEqual(mapper_refund.refund_values(no_shipping)["shipping"], 0)

    def test_sequence_key_is_the_order(self):
        self.assertEqual(mapper_refund.refund_order_key(REFUND), "order:820982911946154508")

    def test_split_amount_adds_up_to_the_cent(self):
        self.assertEqual(mapper_refund.split_amount(Decimal("45.00"), 1), [(1, Decimal("45.00"))])
        self.assertEqual(
            mapper_refund.split_amount(Decimal("10.00"), 3),
            [(2, Decimal("3.33")), (1, Decimal("3.34"))],
        )
        self.assertEqual(
            mapper_refund.split_amount(Decimal("1000"), 3, digits=0), [(2, 333), (1, 334)]
        )
        for amount, quantity in [("0.05", 7), ("99.99", 4), ("0.00", 2)]:
            parts = mapper_refund.split_amount(Decimal(amount), quantity)
            self.assertEqual(sum(q for q, _ in parts), quantity)
            self.assertEqual(sum(q * p for q, p in parts), Decimal(amount))

    def test_schema_names_what_is_wrong(self):
        bad = dict(
            REFUND,
            order_id=None,
            refund_line_items=[{"line_item_id": 1, "quantity": 0, "restock_type": "later"}],
        )
        with self.assertRaises(PayloadError) as error:
            validate_payload(mapper_refund.REFUND_SCHEMA, bad)
        message = str(error.exception)
        self.assertIn("order_id", message)
        self.assertIn("quantity", message)
        self.assertIn("restock_type", message)
        self.assertIn("subtotal", message)

    def test_schema_refuses_a_null_or_mistyped_amount_by_name(self):
        for subtotal, words in [(None, "null value not allowed"), ([], "must be of")]:
            bad = dict(
                REFUND,
                refund_line_items=[{"line_item_id": 1, "quantity": 1, "subtotal": subtotal}],
            )
            with self.assertRaises(PayloadError) as error:
                validate_payload(mapper_refund.REFUND_SCHEMA, bad)
            self.assertIn("subtotal", str(error.exception))
            self.assertIn(words, str(error.exception))

    def test_schema_accepts_the_webhook(self):
        self.assertEqual(validate_payload(mapper_refund.REFUND_SCHEMA, REFUND)["id"], 509562969)

    def test_refund_read_by_graphql_maps_like_the_webhook(self):
        def money(amount):
            return {"shopMoney": {"amount": amount}}

        def edges(*nodes):
            return {"edges": [{"node": node} for node in nodes]}

        node = {
            "id": "gid://shopify/Refund/509562969",
            "note": "Wrong size",
            "createdAt": "2026-11-20T10:00:00Z",
            "order": {"id": "gid://shopify/Order/820982911946154508"},
            "refundLineItems": edges(
                {
                    "id": "gid://shopify/RefundLineItem/104689539",
                    "quantity": 1,
                    "restockType": "RETURN",
                    "location": {"id": "gid://shopify/Location/24826418"},
                    "lineItem": {
                        "id": "gid://shopify/LineItem/466157049",
                        "sku": "TEE-BLUE-M",
                        "variant": {"id": "gid://shopify/ProductVariant/39072856"},
                    },
                    "subtotalSet": money("45.00"),
                    "totalTaxSet": money("7.50"),
                },
                {
                    "id": "gid://shopify/RefundLineItem/104689540",
                    "quantity": 3,
                    "restockType": "NO_RESTOCK",
                    "location": None,
                    "lineItem": {"id": "gid://shopify/LineItem/466157050", "sku": None},
                    "subtotalSet": money("10.00"),
                    "totalTaxSet": money("1.67"),
                },
            ),
            "refundShippingLines": edges({"subtotalAmountSet": money("5.00")}),
            "transactions": edges(
                {
                    "id": "gid://shopify/OrderTransaction/1",
                    "kind": "REFUND",
                    "status": "SUCCESS",
                    "gateway": "shopify_payments",
                    "amountSet": money("60.00"),
                },
                {
                    "id": "gid://shopify/OrderTransaction/2",
                    "kind": "REFUND",
                    "status": "FAILURE",
                    "gateway": "paypal",
                    "amountSet": money("9.99"),
                },
            ),
        }
        payload = mapper_refund.refund_from_graphql(node)
        payload = validate_payload(mapper_refund.REFUND_SCHEMA, payload)
        polled = mapper_refund.refund_values(payload)
        webhook = mapper_refund.refund_values(REFUND)
        for key in ("external_id", "order_external_id", "note", "amount", "shipping"):
            self.assertEqual(polled[key], webhook[key], key)
        for read, sent in zip(polled["lines"], webhook["lines"], strict=True):
            for key in ("line_item_id", "quantity", "restock", "location_id", "subtotal", "tax"):
                self.assertEqual(read[key], sent[key], key)


class TestRefundMapperBadInput(BaseCase):
    """Bodies the R3 fuzzing (tests/reliability/fuzz_mappers.py) found: each one
    crashed the mapper or split a refund into negative quantities."""

    LINE = REFUND["refund_line_items"][0]

    def problems(self, body):
        with self.assertRaises(PayloadError) as error:
            validate_payload(mapper_refund.REFUND_SCHEMA, body)
        return "; ".join(error.exception.problems)

    def test_order_adjustment_without_kind_is_not_shipping(self):
        # refund_values() raised KeyError: 'kind'; the schema does not require it.
        body = dict(REFUND, order_adjustments=[{"amount": "-5.00"}])
        values = mapper_refund.refund_values(validate_payload(mapper_refund.REFUND_SCHEMA, body))
        self.assertEqual(values["shipping"], 0)

    def test_refunded_subtotal_below_zero_is_refused(self):
        # split_amount(-1, 2, digits=0) gave [(3, -0), (-1, 1)]: a negative quantity.
        body = dict(REFUND, refund_line_items=[dict(self.LINE, quantity=2, subtotal="-1")])
        self.assertIn("refund_line_items.0.subtotal: must not be negative", self.problems(body))

    def test_refunded_subtotal_beyond_decimal_precision_is_refused(self):
        # split_amount() raised decimal.InvalidOperation quantizing 29 digits.
        body = dict(REFUND, refund_line_items=[dict(self.LINE, subtotal="1" * 27 + ".00")])
        self.assertIn("refund_line_items.0.subtotal: must be an amount", self.problems(body))
        parts = mapper_refund.split_amount(Decimal("999999999999999.99"), 7)
        self.assertEqual(sum(q * p for q, p in parts), Decimal("999999999999999.99"))

    def test_line_item_of_the_wrong_type_is_refused(self):
        # refund_line_values() raised AttributeError: 'int' object has no attribute 'strip'.
        body = dict(REFUND, refund_line_items=[dict(self.LINE, line_item={"sku": 5})])
        self.assertIn(
            "refund_line_items.0.line_item.sku: must be of string type", self.problems(body)
        )

    def test_graphql_node_it_cannot_read_is_refused_field_by_field(self):
        # refund_from_graphql() raised KeyError / TypeError on each of these.
        with self.assertRaises(PayloadError) as error:
            mapper_refund.refund_from_graphql({"id": "gid://shopify/Refund/1", "order": None})
        self.assertIn("order: null value not allowed", error.exception.problems)
        node = {
            "id": "gid://shopify/Refund/1",
            "order": {"id": "gid://shopify/Order/abc"},
            "refundLineItems": {"edges": [{"node": {"id": "gid://shopify/RefundLineItem/2"}}]},
        }
        with self.assertRaises(PayloadError) as error:
            mapper_refund.refund_from_graphql(node)
        problems = "; ".join(error.exception.problems)
        self.assertIn("order.id: value does not match regex", problems)
        self.assertIn("refundLineItems.edges.0.node.lineItem: required field", problems)
        self.assertIn("refundLineItems.edges.0.node.quantity: required field", problems)


class TestRefundAmountsAsShopifyTypesThem(BaseCase):
    def test_line_amounts_sent_as_json_numbers_are_read_to_the_cent(self):
        # In Shopify's refunds/create webhook, refund_line_items[].subtotal and
        # .total_tax are JSON numbers; their *_set bags carry strings.
        refund = {
            **REFUND,
            "refund_line_items": [
                {**line, "subtotal": float(line["subtotal"]), "total_tax": float(line["total_tax"])}
                for line in REFUND["refund_line_items"]
            ],
        }
        document = validate_payload(mapper_refund.REFUND_SCHEMA, refund)
        lines = mapper_refund.refund_values(document)["lines"]
        self.assertEqual([line["subtotal"] for line in lines], [Decimal("45"), Decimal("10")])
        self.assertEqual([line["tax"] for line in lines], [Decimal("7.5"), Decimal("1.67")])
        self.assertEqual(
            mapper_refund.split_amount(lines[1]["subtotal"], 3),
            [(2, Decimal("3.33")), (1, Decimal("3.34"))],
        )

    def test_an_amount_that_is_no_amount_is_refused_by_name(self):
        for bad, why in [
            (-1.5, "must not be negative"),
            ("ten", "must be an amount"),
            (float("inf"), "finite amount"),
            (True, "type"),
        ]:
            line = {**REFUND["refund_line_items"][0], "subtotal": bad}
            with self.subTest(bad=bad), self.assertRaises(PayloadError) as error:
                validate_payload(
                    mapper_refund.REFUND_SCHEMA, {**REFUND, "refund_line_items": [line]}
                )
            self.assertIn("refund_line_items.0.subtotal", str(error.exception))
            self.assertIn(why, str(error.exception))
