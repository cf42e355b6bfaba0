"""The Shopify simulator: GraphQL API, cost and throttle, inventory, fulfillment, webhooks.

Checks go through the HTTP API with ``requests`` the way the connector will,
and compare with the simulator's ground truth or with figures worked out here.
"""

import base64
import hashlib
import hmac
import importlib
import json
import pkgutil
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import graphql
import requests
import simulators
from simulators.shopify.schema import SCHEMA
from simulators.shopify.store import StoreError
from simulators.testing import WebhookReceiver

from odoo.tests import BaseCase

TIMEOUT = 10
EPOCH = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)

ORDERS_PAGE = """
query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    edges {
      cursor
      node {
        id name updatedAt displayFinancialStatus presentmentCurrencyCode
        customer { id email }
        totalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
        lineItems(first: 10) {
          nodes { sku quantity taxLines { rate priceSet { shopMoney { amount } } } }
        }
        shippingLines(first: 2) { nodes { title originalPriceSet { shopMoney { amount } } } }
        discountApplications(first: 2) { nodes { ... on DiscountCodeApplication { code } } }
        transactions { kind status amountSet { shopMoney { amount } } }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

SET_QUANTITIES = """
mutation Set($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id changes { name delta quantityAfterChange } }
    userErrors { field message code }
  }
}
"""


def signature(secret, body):
    """Shopify's webhook signature, computed here independently of the simulator."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


VARIANTS_BULK_CREATE = """mutation($id: ID!, $variants: [ProductVariantsBulkInput!]!) {
    productVariantsBulkCreate(productId: $id, variants: $variants) {
    productVariants { id sku price } userErrors { field message code } } }"""
VARIANT_M = {
    "optionValues": [{"optionName": "Size", "name": "M"}],
    "price": "49.90",
    "inventoryItem": {"sku": "LIN-M"},
}


def truth_of(shop, payout_id):
    """A payout as the simulator's ground truth shows it."""
    return next(p for p in shop.snapshot(["payouts"])["payouts"] if p["id"] == payout_id)


class ShopifyCase(BaseCase):
    options = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.receiver = WebhookReceiver().__enter__()
        cls.addClassCleanup(cls.receiver.__exit__, None, None, None)
        cls.shop = simulators.ShopifySimulator(
            seed=42, epoch=EPOCH, webhook_url=cls.receiver.url, **cls.options
        ).start()
        cls.addClassCleanup(cls.shop.stop)

    def setUp(self):
        super().setUp()
        self.shop.wait_webhooks(10)  # nothing of the previous test still on its way
        self.shop.reset(42)
        self.receiver.clear()

    def graphql(self, query, variables=None, token=None):
        headers = {**self.shop.headers}
        if token is not None:
            headers["X-Shopify-Access-Token"] = token
        response = requests.post(
            self.shop.graphql_url,
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=TIMEOUT,
        )
        return response

    def data(self, query, variables=None):
        response = self.graphql(query, variables)
        self.assertEqual(response.headers.get("X-Shopify-API-Version"), "2026-10")
        body = response.json()
        self.assertNotIn("errors", body, body.get("errors"))
        return body["data"]

    def all_orders(self, query=None):
        """Every order node ORDERS_PAGE returns, page by page (312 points requested a page)."""
        nodes, after = [], None
        while True:
            page = self.data(ORDERS_PAGE, {"first": 5, "after": after, "query": query})["orders"]
            nodes += [edge["node"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return nodes
            after = page["pageInfo"]["endCursor"]

    def deliveries(self, count):
        self.assertTrue(self.shop.wait_webhooks(10))
        return self.receiver.wait_for(count)


class TestDoneWhen(ShopifyCase):
    """The issue's acceptance: seed, page orders, hit the throttle, verify a webhook."""

    options = {"bucket_size": 400, "restore_rate": 400}

    def test_seed_page_orders_hit_throttle_and_verify_a_signed_webhook(self):
        truth = {o["name"] for o in self.shop.orders()}
        self.assertEqual(len(truth), 40)
        names, cursor, throttled = [], None, None
        while True:
            response = self.graphql(ORDERS_PAGE, {"first": 5, "after": cursor})
            self.assertEqual(response.status_code, 200)
            body = response.json()
            if body.get("errors"):
                throttled = body
                self.assertEqual(body["errors"][0]["extensions"]["code"], "THROTTLED")
                cost = body["extensions"]["cost"]
                wait = cost["requestedQueryCost"] - cost["throttleStatus"]["currentlyAvailable"]
                time.sleep(wait / cost["throttleStatus"]["restoreRate"] + 0.05)
                continue
            page = body["data"]["orders"]
            names += [edge["node"]["name"] for edge in page["edges"]]
            cursor = page["pageInfo"]["endCursor"]
            if not page["pageInfo"]["hasNextPage"]:
                break
        self.assertEqual(sorted(names), sorted(truth), "every order once, none twice")
        self.assertIsNotNone(
            throttled, "a 400-point bucket cannot start 8 pages of 312 points each"
        )
        self.assertIsNone(throttled["extensions"]["cost"]["actualQueryCost"])
        self.assertNotIn("data", throttled)

        order = self.shop.create_order([(self.shop.inventory()[0]["sku"], 1)])
        created = next(
            d for d in self.deliveries(2) if d["headers"]["X-Shopify-Topic"] == "orders/create"
        )
        headers = created["headers"]
        self.assertEqual(
            headers["X-Shopify-Hmac-Sha256"], signature(self.shop.webhooks.secret, created["body"])
        )
        self.assertEqual(headers["X-Shopify-Shop-Domain"], "retail-sync-demo.myshopify.com")
        self.assertEqual(headers["X-Shopify-API-Version"], "2026-10")
        self.assertRegex(headers["X-Shopify-Webhook-Id"], r"^[0-9a-f-]{36}$")
        self.assertRegex(headers["X-Shopify-Triggered-At"], r"^\d{4}-\d\d-\d\dT.*Z$")
        payload = json.loads(created["body"])
        self.assertEqual(payload["admin_graphql_api_id"], order["admin_graphql_api_id"])
        self.assertEqual(payload["name"], order["name"])


class TestGraphqlApi(ShopifyCase):
    def test_a_wrong_token_is_refused_like_shopify(self):
        response = self.graphql("{ shop { name } }", token="shpat_wrong")
        self.assertEqual(response.status_code, 401)
        self.assertIn("Invalid API key or access token", response.json()["errors"])

    def test_errors_are_shaped_like_shopify(self):
        unknown = self.graphql("{ shop { nickname } }").json()["errors"][0]
        self.assertEqual(unknown["message"], "Field 'nickname' doesn't exist on type 'Shop'")
        self.assertEqual(unknown["extensions"]["code"], "undefinedField")
        self.assertEqual(unknown["locations"], [{"line": 1, "column": 10}])
        syntax = self.graphql("{ shop { name }").json()["errors"][0]
        self.assertTrue(syntax["message"].startswith("Parse error"), syntax)
        missing = self.graphql("query($n: Int!) { orders(first: $n) { nodes { id } } }")
        self.assertEqual(missing.json()["errors"][0]["extensions"]["code"], "INVALID_VARIABLE")

    def test_updated_at_filter_matches_the_ground_truth(self):
        orders = sorted(self.shop.orders(), key=lambda o: o["updated_at"])
        since = orders[len(orders) // 2]["updated_at"]
        expected = {o["name"] for o in orders if o["updated_at"] > since}
        window = f"updated_at:>'{since}'"
        self.assertEqual({n["name"] for n in self.all_orders(window)}, expected)
        self.shop.update_order(orders[0]["admin_graphql_api_id"], note="gift wrap")
        self.assertIn(
            orders[0]["name"],
            {n["name"] for n in self.all_orders(window)},
            "an update brings an old order into the backfill window",
        )

    def test_orders_carry_lines_taxes_discounts_shipping_and_currencies(self):
        nodes = self.all_orders()
        self.assertEqual(len(nodes), 40)
        self.assertTrue(any(n["discountApplications"]["nodes"] for n in nodes))
        self.assertGreater(len({n["presentmentCurrencyCode"] for n in nodes}), 1)
        for node in nodes:
            truth = self.shop.order(node["id"])
            total = node["totalPriceSet"]
            self.assertEqual(total["shopMoney"]["amount"], truth["total_price"])
            self.assertEqual(
                total["presentmentMoney"]["currencyCode"], truth["presentment_currency"]
            )
            self.assertEqual(
                [(li["sku"], li["quantity"]) for li in node["lineItems"]["nodes"]],
                [(li["sku"], li["quantity"]) for li in truth["line_items"]],
            )
            self.assertTrue(all(li["taxLines"] for li in node["lineItems"]["nodes"]))
            self.assertEqual(len(node["shippingLines"]["nodes"]), 1)
            self.assertEqual(node["transactions"][0]["kind"], "SALE")

    def test_products_page_through_with_variants_and_skus(self):
        query = """query($after: String) { products(first: 7, after: $after) {
            nodes { id title variants(first: 20) { nodes { sku price inventoryItem { id } } } }
            pageInfo { hasNextPage endCursor } } }"""
        skus, after = [], None
        while True:
            page = self.data(query, {"after": after})["products"]
            skus += [v["sku"] for p in page["nodes"] for v in p["variants"]["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        truth = {row["sku"] for row in self.shop.inventory()}
        self.assertEqual(sorted(skus), sorted(truth))

    def test_fragments_aliases_and_node_lookup(self):
        order = self.shop.orders()[0]
        data = self.data(
            """query($id: ID!) { first: node(id: $id) { ...O } again: nodes(ids: [$id]) { ...O } }
            fragment O on Order { id name }""",
            {"id": order["admin_graphql_api_id"]},
        )
        self.assertEqual(
            data["first"], {"id": order["admin_graphql_api_id"], "name": order["name"]}
        )
        self.assertEqual(data["again"], [data["first"]])
        missing = self.data('{ nodes(ids: ["gid://shopify/Order/1"]) { id } }')
        self.assertEqual(missing, {"nodes": [None]})


class TestCostAndThrottle(ShopifyCase):
    options = {"bucket_size": 1000, "restore_rate": 50}

    def cost(self, query, variables=None):
        return self.graphql(query, variables).json()["extensions"]["cost"]

    def test_requested_and_actual_cost_follow_shopify_rules(self):
        # shop: object 1. orders: 2 + 10 x (node 1 + customer 1 + lineItems (2 + 5 x 1)) = 92
        query = """{ shop { name } orders(first: 10) { nodes { id customer { id }
                   lineItems(first: 5) { nodes { sku } } } } }"""
        cost = self.cost(query)
        self.assertEqual(cost["requestedQueryCost"], 1 + 2 + 10 * (1 + 1 + 2 + 5))
        lines = sum(
            len(o["line_items"])
            for o in sorted(self.shop.orders(), key=lambda o: o["admin_graphql_api_id"])[:10]
        )
        # actual: what came back: 10 orders, their customers, their line items
        self.assertEqual(cost["actualQueryCost"], 1 + 2 + 10 * (1 + 1 + 2) + lines)
        self.assertEqual(self.cost("{ shop { name currencyCode } }")["requestedQueryCost"], 1)

    def test_mutation_costs_10_and_the_bucket_refills(self):
        status = self.cost(
            'mutation { productUpdate(product: {id: "gid://shopify/Product/1"})'
            " { userErrors { message } } }"
        )
        self.assertEqual((status["requestedQueryCost"], status["actualQueryCost"]), (10, 10))
        throttle = status["throttleStatus"]
        self.assertEqual((throttle["maximumAvailable"], throttle["restoreRate"]), (1000.0, 50.0))
        self.shop.bucket.set_available(0)
        time.sleep(0.2)
        later = self.cost("{ shop { name } }")["throttleStatus"]["currentlyAvailable"]
        self.assertGreaterEqual(later, 9.0 - 1)  # ~10 restored in 0.2 s, minus the query

    def test_throttled_until_the_bucket_holds_the_requested_cost(self):
        self.shop.bucket.set_available(50)
        body = self.graphql("{ orders(first: 60) { nodes { id } } }").json()  # 2 + 60 x 1
        self.assertEqual(
            body["errors"][0],
            {
                "message": "Throttled",
                "extensions": {
                    "code": "THROTTLED",
                    "documentation": "https://shopify.dev/api/usage/rate-limits",
                },
            },
        )
        self.assertEqual(body["extensions"]["cost"]["requestedQueryCost"], 62)
        self.assertEqual(self.shop.requests.entries()[-1]["throttled"], True)
        time.sleep((62 - 50) / 50 + 0.1)
        self.assertNotIn("errors", self.graphql("{ orders(first: 60) { nodes { id } } }").json())

    def test_a_query_over_the_single_query_limit_is_refused(self):
        body = self.graphql(
            "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }"
        ).json()
        self.assertEqual(body["errors"][0]["extensions"]["code"], "MAX_COST_EXCEEDED")
        self.assertIn(
            "exceeds the single query max cost limit (1000)", body["errors"][0]["message"]
        )


class TestInventory(ShopifyCase):
    def level(self, index=0):
        return self.shop.inventory()[index]

    def set_quantities(self, quantities, key="k-1", name="available", **extra):
        variables = {
            "input": {
                "name": name,
                "reason": "correction",
                "referenceDocumentUri": "gid://retail-sync/StockMove/7",
                "quantities": quantities,
                **extra,
            },
            "key": key,
        }
        return self.graphql(SET_QUANTITIES, variables).json()

    def quantity(self, row, quantity, change_from):
        return {
            "inventoryItemId": row["inventory_item_id"],
            "locationId": row["location_id"],
            "quantity": quantity,
            "changeFromQuantity": change_from,
        }

    def test_set_quantities_with_compare_and_swap(self):
        row = self.level()
        result = self.set_quantities([self.quantity(row, 40, row["available"])])
        payload = result["data"]["inventorySetQuantities"]
        self.assertEqual(payload["userErrors"], [])
        self.assertIn(
            {"name": "available", "delta": 40 - row["available"], "quantityAfterChange": 40},
            payload["inventoryAdjustmentGroup"]["changes"],
        )
        self.assertEqual(self.level()["available"], 40)
        stale = self.set_quantities([self.quantity(row, 41, row["available"] + 1000)], key="k-2")
        errors = stale["data"]["inventorySetQuantities"]["userErrors"]
        self.assertEqual(errors[0]["code"], "CHANGE_FROM_QUANTITY_STALE")
        self.assertEqual(errors[0]["field"], ["input", "quantities", "0", "changeFromQuantity"])
        self.assertEqual(self.level()["available"], 40, "a stale batch changes nothing")
        unchecked = self.set_quantities([self.quantity(row, 12, None)], key="k-3")
        self.assertEqual(unchecked["data"]["inventorySetQuantities"]["userErrors"], [])
        self.assertEqual(self.level()["available"], 12)
        topics = [d["headers"]["X-Shopify-Topic"] for d in self.deliveries(2)]
        self.assertEqual(topics, ["inventory_levels/update"] * 2)
        self.assertEqual(json.loads(self.receiver.received[-1]["body"])["available"], 12)

    def test_inventory_listeners_told_each_quantity_an_api_call_set(self):
        """A benchmark times a quantity from Odoo's commit to the store showing it."""
        told = []
        self.shop.inventory_listeners.append(told.append)
        self.addCleanup(self.shop.inventory_listeners.remove, told.append)
        first, second = self.level(0), self.level(1)
        self.shop.set_inventory(first["sku"], first["location"], 5)
        self.assertEqual(told, [], "a change the merchant makes is no API call")
        result = self.set_quantities(
            [self.quantity(first, 7, None), self.quantity(second, 9, None)]
        )
        self.assertEqual(result["data"]["inventorySetQuantities"]["userErrors"], [])
        self.assertEqual(
            sorted((row["inventory_item_id"], row["available"]) for row in told),
            sorted([(first["inventory_item_id"], 7), (second["inventory_item_id"], 9)]),
        )
        self.assertIn(self.level(0), told)
        refused = self.set_quantities([self.quantity(first, 8, 1000)], key="k-2")
        self.assertTrue(refused["data"]["inventorySetQuantities"]["userErrors"])
        self.assertEqual(len(told), 2, "a refused call sets nothing")

    def test_2026_04_rules_change_from_quantity_and_idempotency(self):
        row = self.level()
        missing = dict(self.quantity(row, 5, 0))
        del missing["changeFromQuantity"]
        errors = self.set_quantities([missing])["data"]["inventorySetQuantities"]["userErrors"]
        self.assertEqual(errors[0]["field"][-1], "changeFromQuantity")
        removed = self.set_quantities(
            [{**self.quantity(row, 5, None), "compareQuantity": 1}], key="k-9"
        )
        self.assertEqual(removed["errors"][0]["extensions"]["code"], "INVALID_VARIABLE")
        no_key = self.graphql(
            """mutation($input: InventorySetQuantitiesInput!) {
                 inventorySetQuantities(input: $input) { userErrors { code } } }""",
            {
                "input": {
                    "name": "available",
                    "reason": "correction",
                    "quantities": [self.quantity(row, 5, None)],
                }
            },
        ).json()
        self.assertIn("@idempotent", no_key["errors"][0]["message"])
        self.assertEqual(self.level()["available"], row["available"], "nothing applied")

    def test_a_retry_with_the_same_key_applies_once(self):
        row = self.level()
        first = self.set_quantities([self.quantity(row, row["available"] + 5, None)], key="same")
        again = self.set_quantities([self.quantity(row, row["available"] + 5, None)], key="same")
        self.assertEqual(first["data"], again["data"])
        self.assertEqual(self.level()["available"], row["available"] + 5)
        other = self.set_quantities([self.quantity(row, 3, None)], key="same")
        self.assertEqual(
            other["data"]["inventorySetQuantities"]["userErrors"][0]["code"],
            "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
        )

    def test_faults_target_one_graphql_field(self):
        self.shop.faults.add("error", status=503, endpoint="graphql:inventorySetQuantities")
        self.assertEqual(self.graphql("{ orders(first: 1) { nodes { id } } }").status_code, 200)
        row = self.level()
        response = self.graphql(
            SET_QUANTITIES,
            {
                "input": {
                    "name": "available",
                    "reason": "correction",
                    "quantities": [self.quantity(row, 3, None)],
                },
                "key": "k-503",
            },
        )
        self.assertEqual(response.status_code, 503)
        self.assertEqual(self.level()["available"], row["available"], "a 5xx applies nothing")

    def test_a_lost_answer_then_a_retry_with_the_same_key_applies_once(self):
        row = self.level()
        self.shop.faults.add("drop", apply=True, limit=1, endpoint="graphql:inventorySet*")
        quantities = [self.quantity(row, row["available"] + 9, row["available"])]
        with self.assertRaises(requests.ConnectionError):
            self.set_quantities(quantities, key="lost")
        self.assertEqual(self.level()["available"], row["available"] + 9, "applied, unanswered")
        retry = self.set_quantities(quantities, key="lost")
        self.assertEqual(retry["data"]["inventorySetQuantities"]["userErrors"], [])
        self.assertEqual(self.level()["available"], row["available"] + 9, "not applied twice")

    def test_batch_limit_is_250_quantities(self):
        rows = self.shop.inventory()
        self.assertGreater(len(rows), 250)
        # oversold items have a negative available; a set quantity can't be negative
        batch = [self.quantity(r, max(r["available"], 0), r["available"]) for r in rows[:250]]
        self.assertEqual(
            self.set_quantities(batch)["data"]["inventorySetQuantities"]["userErrors"], []
        )
        too_many = self.set_quantities([*batch, self.quantity(rows[250], 1, None)], key="k-251")
        error = too_many["errors"][0]
        self.assertEqual(error["extensions"]["code"], "MAX_INPUT_SIZE_EXCEEDED")
        self.assertEqual(
            error["message"],
            "The input array size of 251 is greater than the maximum allowed of 250.",
        )

    def test_an_order_commits_stock_and_a_fulfillment_ships_it(self):
        row = next(r for r in self.shop.inventory() if r["location"] == "Main Warehouse")
        order = self.shop.create_order([(row["sku"], 2)])
        after_order = self.shop.inventory(row["sku"])
        warehouse = next(r for r in after_order if r["location"] == "Main Warehouse")
        self.assertEqual(
            (warehouse["available"], warehouse["committed"], warehouse["on_hand"]),
            (row["available"] - 2, row["committed"] + 2, row["on_hand"]),
        )
        self.shop.fulfill_order(order["admin_graphql_api_id"], tracking_number="TRK1")
        shipped = next(
            r for r in self.shop.inventory(row["sku"]) if r["location"] == "Main Warehouse"
        )
        self.assertEqual(
            (shipped["available"], shipped["committed"], shipped["on_hand"]),
            (row["available"] - 2, row["committed"], row["on_hand"] - 2),
        )

    def test_a_deny_variant_sells_no_more_than_the_location_has(self):
        """Checkout refuses an order of a DENY variant beyond what its
        location has available, whole: nothing committed; CONTINUE sells on."""
        row = next(r for r in self.shop.inventory() if r["location"] == "Main Warehouse")
        self.shop.set_inventory(row["sku"], "Main Warehouse", 2)
        self.assertEqual(self.shop.set_inventory_policy(row["sku"], "DENY"), "DENY")
        self.shop.create_order([(row["sku"], 2)])
        with self.assertRaises(StoreError) as refused:
            self.shop.create_order([(row["sku"], 1)])
        self.assertEqual(refused.exception.code, "NOT_ENOUGH_IN_STOCK")
        warehouse = next(
            r for r in self.shop.inventory(row["sku"]) if r["location"] == "Main Warehouse"
        )
        self.assertEqual(
            (warehouse["available"], warehouse["committed"]), (0, row["committed"] + 2)
        )
        self.shop.set_inventory_policy(row["sku"], "CONTINUE")
        self.shop.create_order([(row["sku"], 1)])
        warehouse = next(
            r for r in self.shop.inventory(row["sku"]) if r["location"] == "Main Warehouse"
        )
        self.assertEqual(warehouse["available"], -1)


class TestStrictAsShopify(ShopifyCase):
    """The simulator refuses what Shopify's GraphQL server refuses, in Shopify's words.

    Each refusal is an HTTP 200 whose ``errors`` carry a message, the
    ``locations`` of the offending node and Shopify's ``extensions.code``;
    nothing runs (no ``data``).
    """

    def refusal(self, query, variables=None):
        response = self.graphql(query, variables)
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertNotIn("data", body, "a refused request runs nothing")
        self.assertEqual(len(body["errors"]), 1, body["errors"])
        return body["errors"][0]

    def test_a_wrong_field_is_refused(self):
        error = self.refusal("{ orders(first: 1) { edges { node { id totalPrice } } } }")
        self.assertEqual(error["message"], "Field 'totalPrice' doesn't exist on type 'Order'")
        self.assertEqual(
            error["extensions"],
            {"code": "undefinedField", "typeName": "Order", "fieldName": "totalPrice"},
        )
        self.assertEqual(error["locations"], [{"line": 1, "column": 40}])
        # Shopify's plain UserError has no code (only the payloads with a typed error do).
        error = self.refusal(
            'mutation { productUpdate(product: {id: "gid://shopify/Product/1"}) '
            "{ userErrors { field message code } } }"
        )
        self.assertEqual(error["message"], "Field 'code' doesn't exist on type 'UserError'")

    def test_a_wrong_argument_is_refused(self):
        error = self.refusal("{ orders(first: 2, since: 1) { nodes { id } } }")
        self.assertEqual(error["message"], "Field 'orders' doesn't accept argument 'since'")
        self.assertEqual(error["extensions"]["code"], "argumentNotAccepted")

    def test_a_variable_of_the_wrong_type_is_refused(self):
        order = self.shop.orders()[0]["admin_graphql_api_id"]
        error = self.refusal("query($id: String) { order(id: $id) { id } }", {"id": order})
        self.assertEqual(
            error["message"], "Type mismatch on variable $id and argument id (String / ID!)"
        )
        self.assertEqual(
            error["extensions"],
            {
                "code": "variableMismatch",
                "variableName": "id",
                "typeName": "String",
                "argumentName": "id",
                "errorMessage": "Type mismatch",
            },
        )
        error = self.refusal("query($id: ID) { order(id: $id) { id } }", {"id": order})
        self.assertEqual(
            error["message"], "Nullability mismatch on variable $id and argument id (ID / ID!)"
        )

    def test_an_enum_given_as_a_string_literal_is_refused(self):
        error = self.refusal('{ orders(first: 2, sortKey: "UPDATED_AT") { nodes { id } } }')
        self.assertEqual(
            error["message"],
            "Argument 'sortKey' on Field 'orders' has an invalid value (\"UPDATED_AT\"). "
            "Expected type 'OrderSortKeys'.",
        )
        self.assertEqual(
            error["extensions"],
            {
                "code": "argumentLiteralsIncompatible",
                "typeName": "Field",
                "argumentName": "sortKey",
            },
        )
        # An enum variable takes the value's name as a JSON string, and only a known one.
        error = self.refusal(
            "query($key: OrderSortKeys) { orders(first: 2, sortKey: $key) { nodes { id } } }",
            {"key": "UPDATED"},
        )
        self.assertEqual(error["extensions"]["code"], "INVALID_VARIABLE")
        self.assertTrue(
            error["extensions"]["problems"][0]["explanation"].startswith(
                'Expected "UPDATED" to be one of: CREATED_AT, '
            ),
            error,
        )

    def test_a_missing_required_argument_is_refused(self):
        error = self.refusal("{ order { id } }")
        self.assertEqual(error["message"], "Field 'order' is missing required arguments: id")
        self.assertEqual(
            error["extensions"],
            {
                "code": "missingRequiredArguments",
                "className": "Field",
                "name": "order",
                "arguments": "id",
            },
        )

    def test_a_variable_value_that_does_not_fit_its_input_type_is_refused(self):
        row = self.shop.inventory()[0]
        quantity = {
            "inventoryItemId": row["inventory_item_id"],
            "locationId": row["location_id"],
            "quantity": "40",
            "changeFromQuantity": None,
        }
        variables = {
            "input": {"name": "available", "reason": "correction", "quantities": [quantity]},
            "key": "k-strict",
        }
        error = self.refusal(SET_QUANTITIES, variables)
        self.assertEqual(
            error["message"],
            "Variable $input of type InventorySetQuantitiesInput! was provided invalid value "
            'for quantities.0.quantity (Could not coerce value "40" to Int)',
        )
        self.assertEqual(error["extensions"]["code"], "INVALID_VARIABLE")
        self.assertEqual(error["extensions"]["value"], variables["input"])
        del quantity["locationId"]
        quantity["quantity"] = 40
        error = self.refusal(SET_QUANTITIES, variables)
        self.assertEqual(
            error["extensions"]["problems"],
            [
                {
                    "path": ["quantities", 0, "locationId"],
                    "explanation": "Expected value to not be null",
                }
            ],
        )
        self.assertEqual(self.shop.inventory()[0]["available"], row["available"])

    def test_a_query_over_the_cost_limit_is_refused_before_it_runs(self):
        body = self.graphql(
            "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }"
        ).json()
        self.assertNotIn("data", body)
        # 2 + 250 orders x (1 + lineItems: 2 + 250 lines x 1)
        cost = 2 + 250 * (1 + 2 + 250)
        self.assertEqual(
            body["errors"][0]["extensions"],
            {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": 1000},
        )
        self.assertTrue(
            body["errors"][0]["message"].startswith(
                f"Query cost is {cost}, which exceeds the single query max cost limit (1000)."
            )
        )
        self.assertEqual(body["extensions"]["cost"]["requestedQueryCost"], cost)
        self.assertIsNone(body["extensions"]["cost"]["actualQueryCost"])

    def test_money_and_64_bit_ids_are_strings_as_shopify_sends_them(self):
        node = self.data(
            "{ orders(first: 1) { nodes { legacyResourceId totalPriceSet "
            "{ shopMoney { amount currencyCode } } lineItems(first: 1) "
            "{ nodes { variant { price } } } } } }"
        )["orders"]["nodes"][0]
        self.assertIsInstance(node["legacyResourceId"], str)
        self.assertIsInstance(node["totalPriceSet"]["shopMoney"]["amount"], str)
        self.assertEqual(node["totalPriceSet"]["shopMoney"]["currencyCode"], "EUR")
        self.assertIsInstance(node["lineItems"]["nodes"][0]["variant"]["price"], str)

    def test_line_and_shipping_lines_carry_their_discount_allocations(self):
        sku = self.shop.inventory()[0]["sku"]
        with self.shop.lock:
            order = self.shop.store.create_order(
                lines=[(sku, 2)],
                discount=[
                    {
                        "code": "LINE5",
                        "kind": "fixed_amount",
                        "value": "5.00",
                        "target": "line",
                        "line": 0,
                    },
                    {
                        "code": "SHIPFREE",
                        "kind": "percentage",
                        "value": "100",
                        "target": "shipping",
                    },
                ],
                shipping={"title": "Standard", "code": "STANDARD", "price": "4.90"},
            )
        query = """query($id: ID!) { order(id: $id) {
            lineItems(first: 5) { nodes { discountAllocations { ...Allocation } } }
            shippingLines(first: 5) { nodes { discountedPriceSet { shopMoney { amount } }
                                              discountAllocations { ...Allocation } } } } }
            fragment Allocation on DiscountAllocation {
              allocatedAmountSet { shopMoney { amount } }
              discountApplication { targetType ... on DiscountCodeApplication { code } } }"""
        data = self.data(query, {"id": order["id"]})["order"]
        self.assertEqual(
            data["lineItems"]["nodes"][0]["discountAllocations"],
            [
                {
                    "allocatedAmountSet": {"shopMoney": {"amount": "5.00"}},
                    "discountApplication": {"targetType": "LINE_ITEM", "code": "LINE5"},
                }
            ],
        )
        shipping = data["shippingLines"]["nodes"][0]
        self.assertEqual(shipping["discountedPriceSet"]["shopMoney"]["amount"], "0.00")
        self.assertEqual(
            shipping["discountAllocations"],
            [
                {
                    "allocatedAmountSet": {"shopMoney": {"amount": "4.90"}},
                    "discountApplication": {"targetType": "SHIPPING_LINE", "code": "SHIPFREE"},
                }
            ],
        )

    def test_every_query_the_connector_sends_validates_against_the_sdl(self):
        """The connector's operations, checked with graphql-core's own ``validate``
        against the SDL excerpt the simulator serves (the catalog export builds its
        mutations at run time: they are checked as the connector builds them)."""
        operations = connector_operations()
        self.assertGreaterEqual(len(operations), 20, sorted(operations))
        for name, text in sorted(operations.items()):
            with self.subTest(name):
                errors = graphql.validate(SCHEMA, graphql.parse(text))
                self.assertEqual([e.message for e in errors], [], text)


def connector_operations():
    """Every GraphQL operation string the connector defines, by module and name."""
    package = importlib.import_module("odoo.addons.connector_shopify")
    found = {}
    for module_info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if ".tests" in module_info.name:
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if isinstance(value, str) and re.match(r"\s*(query|mutation)\b[^{]*\{", value):
                found[f"{module_info.name.rsplit('.', 1)[-1]}.{name}"] = value
    catalog = importlib.import_module("odoo.addons.connector_shopify.models.shopify_catalog")
    # The selection every catalog mutation shares, as the connector writes it.
    source = Path(catalog.__file__).read_text()
    user_errors = re.search(r"(userErrors \{\{[^}]*\}\})", source).group(1)
    user_errors = user_errors.replace("{{", "{").replace("}}", "}")
    found["shopify_catalog.CatalogLookup"] = (
        "query CatalogLookup($h0: String!) "
        "{ p0: productByIdentifier(identifier: {handle: $h0}) { id } }"
    )
    found["shopify_catalog.CatalogExport"] = (
        "mutation CatalogExport($m0_product: ProductCreateInput!, $m1_productId: ID!, "
        "$m1_variants: [ProductVariantsBulkInput!]!, "
        "$m1_strategy: ProductVariantsBulkCreateStrategy, $m2_productId: ID!, "
        "$m2_variants: [ProductVariantsBulkInput!]!, $m3_product: ProductUpdateInput!) { "
        f"m0: productCreate(product: $m0_product) {{ product {{ id variants(first: 1) "
        f"{{ nodes {{ {catalog.VARIANT_SELECTION} }} }} }} {user_errors} }} "
        "m1: productVariantsBulkCreate(productId: $m1_productId, variants: $m1_variants, "
        f"strategy: $m1_strategy) {{ productVariants {{ {catalog.VARIANT_SELECTION} }} "
        f"{user_errors} }} "
        "m2: productVariantsBulkUpdate(productId: $m2_productId, variants: $m2_variants) "
        f"{{ productVariants {{ id }} {user_errors} }} "
        f"m3: productUpdate(product: $m3_product) {{ product {{ id }} {user_errors} }} }}"
    )
    return found


class TestFulfillmentRefundsPayouts(ShopifyCase):
    def test_fulfillment_create_with_tracking(self):
        order = self.shop.create_order([(self.shop.inventory()[0]["sku"], 3)])
        query = """query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 5) { nodes {
                   id status lineItems(first: 10) { nodes { id remainingQuantity } } } } } }"""
        fulfillment_order = self.data(query, {"id": order["admin_graphql_api_id"]})["order"][
            "fulfillmentOrders"
        ]["nodes"][0]
        line = fulfillment_order["lineItems"]["nodes"][0]
        mutation = """mutation($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) {
            fulfillment { id name status trackingInfo { company number url } }
            userErrors { field message } } }"""
        variables = {
            "f": {
                "lineItemsByFulfillmentOrder": [
                    {
                        "fulfillmentOrderId": fulfillment_order["id"],
                        "fulfillmentOrderLineItems": [{"id": line["id"], "quantity": 2}],
                    }
                ],
                "trackingInfo": {"company": "UPS", "number": "1Z999", "url": "https://t.example/1"},
            }
        }
        created = self.data(mutation, variables)["fulfillmentCreate"]
        self.assertEqual(created["userErrors"], [])
        self.assertEqual(
            created["fulfillment"]["trackingInfo"],
            [{"company": "UPS", "number": "1Z999", "url": "https://t.example/1"}],
        )
        truth = self.shop.fulfillments(order["admin_graphql_api_id"])
        self.assertEqual(
            [(f["tracking_number"], f["line_items"][0]["quantity"]) for f in truth], [("1Z999", 2)]
        )
        self.assertEqual(self.shop.order(order["name"])["fulfillment_status"], "partial")
        too_many = self.data(mutation, variables)["fulfillmentCreate"]
        self.assertIn(
            "Invalid fulfillment order line item quantity", too_many["userErrors"][0]["message"]
        )
        topics = [d["headers"]["X-Shopify-Topic"] for d in self.deliveries(4)]
        self.assertIn("fulfillments/create", topics)

    def test_part_fulfilled_by_the_merchant_reads_as_shopify_reports_it(self):
        """A part fulfilled outside any app: REST's order and line statuses,
        fulfillable quantities and fulfillments; GraphQL's display status and
        unfulfilled quantities."""
        first, second = sorted({row["sku"] for row in self.shop.inventory()})[:2]
        order = self.shop.create_order([(first, 3), (second, 1)])
        self.shop.fulfill_order(order["name"], tracking_number="HAND-1", lines={first: 2})
        rest = self.shop.order(order["name"])
        self.assertEqual(rest["fulfillment_status"], "partial")
        lines = {line["sku"]: line for line in rest["line_items"]}
        self.assertEqual(
            [
                (lines[sku]["fulfillable_quantity"], lines[sku]["fulfillment_status"])
                for sku in (first, second)
            ],
            [(1, "partial"), (1, None)],
        )
        (fulfillment,) = rest["fulfillments"]
        self.assertEqual(fulfillment["status"], "success")
        self.assertEqual(
            [(line["id"], line["quantity"]) for line in fulfillment["line_items"]],
            [(lines[first]["id"], 2)],
        )
        query = """query($id: ID!) { order(id: $id) { displayFulfillmentStatus
                   lineItems(first: 5) { nodes { sku quantity unfulfilledQuantity } } } }"""
        node = self.data(query, {"id": order["admin_graphql_api_id"]})["order"]
        self.assertEqual(node["displayFulfillmentStatus"], "PARTIALLY_FULFILLED")
        self.assertEqual(
            [(n["sku"], n["unfulfilledQuantity"]) for n in node["lineItems"]["nodes"]],
            [(first, 1), (second, 1)],
        )
        self.shop.fulfill_order(order["name"])
        done = self.shop.order(order["name"])
        self.assertEqual(done["fulfillment_status"], "fulfilled")
        self.assertEqual({line["fulfillment_status"] for line in done["line_items"]}, {"fulfilled"})
        self.assertEqual({line["fulfillable_quantity"] for line in done["line_items"]}, {0})

    def test_refund_and_cancel_emit_their_webhooks_with_real_shapes(self):
        order = self.shop.create_order([(self.shop.inventory()[0]["sku"], 2)])
        sku = order["line_items"][0]["sku"]
        refund = self.shop.refund_order(order["name"], {sku: 1}, note="damaged")
        self.assertEqual(refund["refund_line_items"][0]["quantity"], 1)
        self.assertEqual(refund["transactions"][0]["kind"], "refund")
        self.assertEqual(self.shop.order(order["name"])["financial_status"], "partially_refunded")
        cancelled = self.shop.cancel_order(order["name"])
        self.assertEqual(cancelled["cancel_reason"], "customer")
        self.assertEqual(cancelled["financial_status"], "refunded")
        self.assertTrue(self.shop.wait_webhooks(10))
        topics = [d["headers"]["X-Shopify-Topic"] for d in self.receiver.received]
        for topic in ("orders/create", "refunds/create", "orders/updated", "orders/cancelled"):
            self.assertIn(topic, topics)
        refund_body = json.loads(
            next(
                d["body"]
                for d in self.receiver.received
                if d["headers"]["X-Shopify-Topic"] == "refunds/create"
            )
        )
        self.assertEqual(refund_body["order_id"], int(order["id"]))
        # Typed as Shopify types them: line amounts are JSON numbers, their
        # *_set bags and the transactions carry decimal strings.
        line = refund_body["refund_line_items"][0]
        self.assertIsInstance(line["subtotal"], float)
        self.assertIsInstance(line["total_tax"], float)
        self.assertIsInstance(line["subtotal_set"]["shop_money"]["amount"], str)
        self.assertIsInstance(refund_body["transactions"][0]["amount"], str)

    def test_payouts_and_balance_transactions(self):
        data = self.data("""{ shopifyPaymentsAccount {
            payouts(first: 50) { nodes { id issuedAt status net { amount currencyCode } } }
            balanceTransactions(first: 100) { nodes { type amount { amount } fee { amount }
              net { amount } associatedPayout { id } associatedOrder { name } } } } }""")
        account = data["shopifyPaymentsAccount"]
        payouts = account["payouts"]["nodes"]
        self.assertTrue(payouts)
        for payout in payouts:
            paid = [
                b
                for b in account["balanceTransactions"]["nodes"]
                if b["associatedPayout"]["id"] == payout["id"]
            ]
            self.assertEqual(
                sum(float(b["net"]["amount"]) for b in paid),
                float(payout["net"]["amount"]),
            )
        self.assertIn("REFUND", {b["type"] for b in account["balanceTransactions"]["nodes"]})

    def test_payout_listeners_told_once_a_payout_is_paid(self):
        """The retailer's bank sees a payout when it is paid, once."""
        paid = []
        self.shop.payout_listeners.append(paid.append)
        self.addCleanup(self.shop.payout_listeners.remove, paid.append)
        self.shop.create_order([(self.shop.inventory()[0]["sku"], 2)])
        # Today's order and the seeded store's last days: a payout a day.
        payout_ids = self.shop.create_payout(status="IN_TRANSIT")
        self.assertTrue(payout_ids)
        self.assertEqual(paid, [])
        for payout_id in payout_ids:
            self.shop.set_payout_status(payout_id, "PAID")
            self.shop.set_payout_status(payout_id, "PAID")
        self.assertEqual(paid, [truth_of(self.shop, payout_id) for payout_id in payout_ids])
        for payout in paid:
            self.assertEqual(payout["legacy_id"], payout["id"].rsplit("/", 1)[1])
            self.assertEqual(payout["status"], "PAID")
        self.shop.create_order([(self.shop.inventory()[0]["sku"], 1)])
        [paid_at_once] = self.shop.create_payout()
        self.assertEqual(paid[-1], truth_of(self.shop, paid_at_once))

    def test_webhook_subscription_receives_its_topic(self):
        with WebhookReceiver() as subscriber:
            created = self.data(
                """mutation($uri: String!) { webhookSubscriptionCreate(
                topic: PRODUCTS_UPDATE, webhookSubscription: {uri: $uri, format: JSON}) {
                webhookSubscription { id topic uri } userErrors { message } } }""",
                {"uri": subscriber.url},
            )["webhookSubscriptionCreate"]
            self.assertEqual(created["webhookSubscription"]["topic"], "PRODUCTS_UPDATE")
            self.shop.update_product(self.shop.inventory()[0]["sku"], title="Renamed Tee")
            self.assertTrue(self.shop.wait_webhooks(10))
            body = json.loads(subscriber.wait_for(1)[0]["body"])
        self.assertEqual(body["title"], "Renamed Tee")


class TestCatalogueMutations(ShopifyCase):
    def test_create_a_product_with_variants_then_update_price(self):
        created = self.data(
            """mutation { productCreate(product: {title: "Linen Shirt", vendor: "Atelier",
                productOptions: [{name: "Size", values: [{name: "S"}, {name: "M"}]}]}) {
                product { id handle variants(first: 5) { nodes { id title } } }
                userErrors { field message } } }"""
        )["productCreate"]
        self.assertEqual(created["userErrors"], [])
        product = created["product"]
        self.assertEqual([v["title"] for v in product["variants"]["nodes"]], ["S"])
        bulk = self.data(
            VARIANTS_BULK_CREATE,
            {
                "id": product["id"],
                "variants": [
                    VARIANT_M,
                    {"optionValues": [{"optionName": "Size", "name": "S"}], "price": "49.90"},
                ],
            },
        )["productVariantsBulkCreate"]
        self.assertEqual(bulk["userErrors"][0]["code"], "VARIANT_ALREADY_EXISTS")
        bulk = self.data(
            VARIANTS_BULK_CREATE,
            {
                "id": product["id"],
                "variants": [VARIANT_M],
            },
        )["productVariantsBulkCreate"]
        variant = bulk["productVariants"][0]
        self.assertEqual((variant["sku"], variant["price"]), ("LIN-M", "49.90"))
        updated = self.data(
            """mutation($id: ID!, $variants: [ProductVariantsBulkInput!]!) {
                productVariantsBulkUpdate(productId: $id, variants: $variants) {
                productVariants { price } userErrors { code } } }""",
            {"id": product["id"], "variants": [{"id": variant["id"], "price": "39.90"}]},
        )["productVariantsBulkUpdate"]
        self.assertEqual(updated["productVariants"], [{"price": "39.90"}])
        self.assertEqual({r["sku"] for r in self.shop.inventory("LIN-M")}, {"LIN-M"})
        topics = [d["headers"]["X-Shopify-Topic"] for d in self.deliveries(3)]
        self.assertEqual(topics, ["products/create", "products/update", "products/update"])

    def test_remove_standalone_strategy_weight_lookup_by_handle_and_negative_price(self):
        created = self.data(
            """mutation { productCreate(product: {title: "Wool Cap", handle: "wool-cap-7",
                productOptions: [{name: "Color", values: [{name: "Grey"}, {name: "Navy"}]}]}) {
                product { id } userErrors { field message } } }"""
        )["productCreate"]
        product_id = created["product"]["id"]
        variants = [
            {
                "optionValues": [{"optionName": "Color", "name": color}],
                "price": "19.00",
                "barcode": "4006381333931",
                "inventoryItem": {
                    "sku": f"CAP-{color.upper()}",
                    "measurement": {"weight": {"value": 0.12, "unit": "KILOGRAMS"}},
                },
            }
            for color in ("Grey", "Navy")
        ]
        bulk = self.data(
            """mutation($id: ID!, $variants: [ProductVariantsBulkInput!]!) {
                productVariantsBulkCreate(productId: $id, variants: $variants,
                    strategy: REMOVE_STANDALONE_VARIANT) {
                productVariants { id sku inventoryItem { measurement { weight { unit value } } } }
                userErrors { field message code } } }""",
            {"id": product_id, "variants": variants},
        )["productVariantsBulkCreate"]
        # The standalone "Grey" made by productCreate is replaced, not a duplicate.
        self.assertEqual(bulk["userErrors"], [])
        self.assertEqual(
            [
                (v["sku"], v["inventoryItem"]["measurement"]["weight"])
                for v in bulk["productVariants"]
            ],
            [(s, {"unit": "KILOGRAMS", "value": 0.12}) for s in ("CAP-GREY", "CAP-NAVY")],
        )
        rows = [r for r in self.shop.catalog() if r["product_id"] == product_id]
        self.assertEqual([r["sku"] for r in rows], ["CAP-GREY", "CAP-NAVY"])
        found = self.data(
            """{ hit: productByIdentifier(identifier: {handle: "wool-cap-7"}) { id }
                 miss: productByIdentifier(identifier: {handle: "no-such-cap"}) { id } }"""
        )
        self.assertEqual(found, {"hit": {"id": product_id}, "miss": None})
        refused = self.data(
            """mutation($id: ID!, $variants: [ProductVariantsBulkInput!]!) {
                productVariantsBulkUpdate(productId: $id, variants: $variants) {
                productVariants { id } userErrors { field code } } }""",
            {"id": product_id, "variants": [{"id": rows[0]["variant_id"], "price": "-1.00"}]},
        )["productVariantsBulkUpdate"]
        self.assertEqual(
            refused["userErrors"],
            [{"field": ["variants", "0", "price"], "code": "GREATER_THAN_OR_EQUAL_TO"}],
        )
        self.assertEqual(self.shop.catalog("CAP-GREY")[0]["price"], "19.00")


class TestSeed(BaseCase):
    def test_same_seed_and_epoch_same_shop(self):
        first = simulators.ShopifySimulator(seed=9, epoch=EPOCH).snapshot()
        second = simulators.ShopifySimulator(seed=9, epoch=EPOCH).snapshot()
        other = simulators.ShopifySimulator(seed=10, epoch=EPOCH).snapshot()
        first.pop("throttle"), second.pop("throttle"), other.pop("throttle")
        self.assertEqual(first, second)
        self.assertNotEqual(first["orders"], other["orders"])
