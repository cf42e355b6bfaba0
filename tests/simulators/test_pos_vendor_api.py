"""The POS vendor's API that Odoo calls (products and availability in), over HTTP.

Plain unittest, no Odoo: ``cd tests && python3 -m unittest simulators.test_pos_vendor_api``.
"""

import json
import unittest
import urllib.error
import urllib.request
from datetime import date
from decimal import Decimal

from simulators import PosSimulator

DAY = date(2026, 11, 30)


def product(sku="NEW-001", **values):
    return {
        "sku": sku,
        "barcode": "4006381333931",
        "name": "Linen Scarf",
        "price": "24.90",
        "tax_code": "VAT20",
        **values,
    }


class VendorApiCase(unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.pos = PosSimulator(seed=42, business_day=DAY).start()
        self.addCleanup(self.pos.stop)

    def call(self, method, path, body=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(
            f"{self.pos.api_url}{path}",
            data=data,
            method=method,
            headers=self.pos.api_headers if headers is None else headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def upsert(self, products, store="S01", key="k1", **kwargs):
        return self.call(
            "POST",
            f"/stores/{store}/products/batch-upsert",
            {"idempotency_key": key, "products": products},
            **kwargs,
        )

    def set_counts(self, counts, key="c1"):
        return self.call("POST", "/inventory/batch-set", {"idempotency_key": key, "counts": counts})


class TestProducts(VendorApiCase):
    def test_token_is_required(self):
        status, body = self.upsert([product()], headers={"Content-Type": "application/json"})
        self.assertEqual(status, 401)
        self.assertEqual(body["errors"][0]["code"], "UNAUTHORIZED")
        self.assertEqual(self.pos.store_products("S01"), {})

    def test_lists_the_stores(self):
        status, body = self.call("GET", "/stores")
        self.assertEqual(status, 200)
        self.assertEqual([s["code"] for s in body["stores"]], ["S01", "S02", "S03"])

    def test_pushed_product_is_what_the_store_sells_at_its_price(self):
        seeded = self.pos.catalog()[0]
        status, body = self.upsert(
            [product(), product(seeded["sku"], barcode=seeded["barcode"], price="9.99")]
        )
        self.assertEqual(status, 200, body)
        self.assertEqual([p["result"] for p in body["products"]], ["created", "created"])
        self.assertEqual(self.pos.store_products("S01")["NEW-001"]["price"], Decimal("24.90"))
        # The store sells the new product and the seeded one at Odoo's price; S02 does not.
        self.assertEqual(self.pos.catalog(seeded["sku"], store="S01")["price"], Decimal("9.99"))
        self.assertEqual(self.pos.catalog(seeded["sku"], store="S02")["price"], seeded["price"])
        self.assertIn("NEW-001", {p["sku"] for p in self.pos.catalog(store="S01")})
        self.assertNotIn("NEW-001", {p["sku"] for p in self.pos.catalog()})
        ticket = self.pos.sale("S01", "R1", [("NEW-001", 2), (seeded["sku"], 1)], tenders=["card"])
        self.assertEqual([line["unit_price"] for line in ticket["lines"]], ["24.90", "9.99"])
        self.assertEqual(ticket["total"], "59.79")
        # The same again: unchanged, version kept.
        status, body = self.upsert([product()], key="k2")
        self.assertEqual(body["products"][0]["result"], "unchanged")
        self.assertEqual(body["products"][0]["version"], 1)

    def test_one_bad_product_refuses_the_batch_naming_it(self):
        status, body = self.upsert(
            [
                product("A-1", barcode=None),
                product("A-2", barcode=None, price=24.9),
                product("A-3", barcode="123", tax_code="VAT99", colour="red"),
                product("A-4", barcode=None, name=None),
            ]
        )
        self.assertEqual(status, 400)
        fields = {e["field"]: e["code"] for e in body["errors"]}
        self.assertEqual(
            fields,
            {
                "products[1].price": "INVALID_VALUE",
                "products[2].barcode": "INVALID_VALUE",
                "products[2].tax_code": "INVALID_VALUE",
                "products[2].colour": "UNEXPECTED_FIELD",
                "products[3].name": "MISSING_REQUIRED_PARAMETER",
            },
        )
        self.assertEqual(self.pos.store_products("S01"), {}, "nothing applied")

    def test_limits_and_shapes(self):
        status, body = self.upsert([product(f"B-{n}", barcode=None) for n in range(501)])
        self.assertEqual((status, body["errors"][0]["code"]), (400, "TOO_MANY_ITEMS"))
        status, body = self.upsert([product(), product()])
        self.assertEqual(status, 400)
        self.assertEqual(body["errors"][0]["field"], "products[1].sku")
        status, body = self.call("POST", "/stores/S01/products/batch-upsert", raw=b"{not json")
        self.assertEqual((status, body["errors"][0]["code"]), (400, "INVALID_JSON"))
        status, body = self.call(
            "POST",
            "/stores/S01/products/batch-upsert",
            {"idempotency_key": "x", "products": [product()]},
            headers={"Authorization": f"Bearer {self.pos.api_token}", "Content-Type": "text/csv"},
        )
        self.assertEqual(status, 415)
        status, body = self.upsert([product()], store="S99")
        self.assertEqual((status, body["errors"][0]["code"]), (404, "NOT_FOUND"))
        status, body = self.call("POST", "/stores/S01/products/batch-upsert", {"products": []})
        self.assertEqual(status, 400)
        self.assertEqual(body["errors"][0]["field"], "idempotency_key")

    def test_barcode_of_another_sku_is_refused(self):
        seeded = self.pos.catalog()[0]
        status, body = self.upsert([product(barcode=seeded["barcode"])])
        self.assertEqual(status, 400)
        self.assertEqual(body["errors"][0]["code"], "BARCODE_TAKEN")
        self.assertIn(seeded["sku"], body["errors"][0]["detail"])

    def test_idempotency_key_replays_or_refuses(self):
        status, first = self.upsert([product()], key="same")
        self.assertEqual(status, 200)
        status, again = self.upsert([product()], key="same")
        self.assertEqual((status, again), (200, first), "the first answer, nothing applied again")
        status, body = self.upsert([product(price="1.00")], key="same")
        self.assertEqual((status, body["errors"][0]["code"]), (422, "IDEMPOTENCY_KEY_REUSED"))
        self.assertEqual(self.pos.store_products("S01")["NEW-001"]["price"], Decimal("24.90"))

    def test_faults_apply_to_the_vendor_api(self):
        self.pos.faults.add("throttle", endpoint="catalog_upsert", retry_after=2, limit=1)
        status, _body = self.upsert([product()])
        self.assertEqual(status, 429)
        status, _body = self.upsert([product()])
        self.assertEqual(status, 200)


class TestAvailability(VendorApiCase):
    def test_counts_are_set_per_store_and_sku(self):
        sku = self.pos.catalog()[0]["sku"]
        status, body = self.set_counts(
            [
                {"store": "S01", "sku": sku, "available": 7},
                {"store": "S02", "sku": sku, "available": 0},
            ]
        )
        self.assertEqual(status, 200, body)
        self.assertEqual(self.pos.available("S01", sku), 7)
        self.assertEqual(self.pos.available("S02"), {sku: 0})
        self.assertIsNone(self.pos.available("S03", sku))

    def test_bad_counts_refuse_the_batch_naming_them(self):
        sku = self.pos.catalog()[0]["sku"]
        status, body = self.set_counts(
            [
                {"store": "S01", "sku": sku, "available": 3},
                {"store": "S01", "sku": "NOPE", "available": 1},
                {"store": "S09", "sku": sku, "available": 1},
                {"store": "S02", "sku": sku, "available": "4"},
                {"store": "S03", "sku": sku, "available": -1},
                {"store": "S01", "sku": sku, "available": 2},
            ]
        )
        self.assertEqual(status, 400)
        self.assertEqual(
            [e["field"] for e in body["errors"]],
            [
                "counts[1].sku",
                "counts[2].store",
                "counts[3].available",
                "counts[4].available",
                "counts[5]",
            ],
        )
        self.assertEqual(self.pos.available("S01"), {}, "nothing applied")
        status, body = self.set_counts(
            [{"store": "S01", "sku": sku, "available": n} for n in range(101)]
        )
        self.assertEqual((status, body["errors"][0]["code"]), (400, "TOO_MANY_ITEMS"))
