import math
from datetime import timedelta

from odoo import fields
from odoo.tests import BaseCase, TransactionCase

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs
from odoo.addons.queue_job.exception import RetryableJobError

from ..components import mapper_product
from ..models.shopify_catalog import CATALOG_TOPIC, MUTATIONS_PER_REQUEST
from .common import make_backend, start_shop

CATALOG_MUTATIONS = {
    "productCreate",
    "productUpdate",
    "productVariantsBulkCreate",
    "productVariantsBulkUpdate",
}


class TestCatalogMapper(BaseCase):
    def test_user_error_names_a_variant_only_by_a_plain_index(self):
        # Found by the R3 fuzzing: blamed_index() raised AttributeError on a
        # null entry and ValueError on "²", a digit to str.isdigit only.
        blamed = mapper_product.blamed_index
        self.assertEqual(blamed({"field": ["variants", "12", "price"], "message": "x"}), 12)
        for error in (None, {"field": "variants"}, {"field": ["variants", "²"]}, {}):
            self.assertIsNone(blamed(error), error)


class TestCatalogOut(TransactionCase):
    """Odoo's products reach the Shopify store: created once, then only what changed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        cls.shop = start_shop(cls, seed=23, products=6)
        # The store as seeded, before any test exports to it.
        cls.seeded = [row for row in cls.shop.catalog() if row["sku"]]
        cls.backend = make_backend(cls.env, base_url=cls.shop.url)
        cls.size = cls.env["product.attribute"].create(
            {
                "name": "Size",
                "create_variant": "always",
                "value_ids": [(0, 0, {"name": name}) for name in ("S", "M", "L")],
            }
        )

    def setUp(self):
        super().setUp()
        self.shop.requests.clear()

    # --- helpers -------------------------------------------------------------------

    def make_shirt(self, name="Linen Shirt", code="LIN", price=40.0, stores=None):
        """A template varying by size (S, M, L), each with SKU, barcode and weight."""
        template = self.env["product.template"].create(
            {
                "name": name,
                "is_storable": True,
                "list_price": price,
                "attribute_line_ids": [
                    (
                        0,
                        0,
                        {
                            "attribute_id": self.size.id,
                            "value_ids": [(6, 0, self.size.value_ids.ids)],
                        },
                    )
                ],
                "shopify_backend_ids": [(6, 0, (stores or self.backend).ids)],
            }
        )
        for index, variant in enumerate(template.product_variant_ids):
            size = variant.product_template_attribute_value_ids.name
            variant.write(
                {
                    "default_code": f"{code}-{size}",
                    "barcode": f"{code}{index}0000{len(code)}",
                    "weight": 0.25 + index / 10,
                }
            )
        return template

    def value(self, template, name):
        return template.attribute_line_ids.product_template_value_ids.filtered(
            lambda v: v.name == name
        )

    def set_mode(self, mode):
        self.backend._policy("catalog_out").mode = mode

    def run_jobs(self, trap):
        run_trapped_jobs(self.env, trap)

    def export(self):
        """What the "Export catalog now" button does, with its jobs run."""
        with trap_jobs() as trap:
            self.backend.action_shopify_export_catalog()
            self.run_jobs(trap)

    def catalog_calls(self, since=0):
        return [
            entry
            for entry in self.shop.requests.entries(since)
            if CATALOG_MUTATIONS & set(entry.get("fields") or [])
        ]

    def last_seq(self):
        entries = self.shop.requests.entries()
        return entries[-1]["seq"] if entries else 0

    def outbound(self, template):
        return self.env["connector.outbound"].search(
            [
                ("backend_id", "=", self.backend.id),
                ("topic", "=", CATALOG_TOPIC),
                ("coalescing_key", "=", f"template:{template.id}"),
            ],
            order="id desc",
        )

    def bindings(self, template):
        return self.env["shopify.product.binding"].search(
            [("backend_id", "=", self.backend.id), ("odoo_id.product_tmpl_id", "=", template.id)]
        )

    # --- tests -------------------------------------------------------------------------

    def test_new_product_with_three_variants_becomes_one_shopify_product(self):
        shirt = self.make_shirt()
        pending = self.outbound(shirt)
        self.assertEqual(pending.state, "pending", "marking the product for the store queues it")
        self.export()
        rows = [r for r in self.shop.catalog() if (r["sku"] or "").startswith("LIN-")]
        self.assertEqual(len(rows), 3)
        self.assertEqual(len({r["product_id"] for r in rows}), 1, "one Shopify product")
        self.assertEqual({r["title"] for r in rows}, {"Linen Shirt"})
        for variant in shirt.product_variant_ids:
            row = next(r for r in rows if r["sku"] == variant.default_code)
            self.assertEqual(
                row["options"], {"Size": variant.product_template_attribute_value_ids.name}
            )
            self.assertEqual(row["barcode"], variant.barcode)
            self.assertEqual(row["price"], "40.00")
            self.assertEqual((row["weight"], row["weight_unit"]), (variant.weight, "KILOGRAMS"))
            binding = self.bindings(shirt).filtered(lambda b, v=variant: b.odoo_id == v)
            self.assertEqual(binding.external_id, row["variant_id"].rsplit("/", 1)[-1])
            self.assertEqual(binding.inventory_item_id, row["inventory_item_id"])
            self.assertEqual(binding.shopify_product_id, row["product_id"].rsplit("/", 1)[-1])
            self.assertTrue(binding.payload_hash)
        self.assertEqual(pending.state, "sent")
        self.assertIn("3 variants created", pending.remote_result)
        # The product form's smart button lists its three Shopify variants.
        shirt.invalidate_recordset(["shopify_binding_count"])
        self.assertEqual(shirt.shopify_binding_count, 3)
        action = shirt.action_view_shopify_bindings()
        self.assertEqual(
            self.env[action["res_model"]].search(action["domain"]), self.bindings(shirt)
        )
        # productCreate, then productVariantsBulkCreate replacing its standalone variant.
        self.assertEqual(
            [c["fields"] for c in self.catalog_calls()],
            [["productCreate"], ["productVariantsBulkCreate"]],
        )

    def test_unchanged_catalog_sends_no_mutation(self):
        shirt = self.make_shirt(name="Cotton Tee", code="COT")
        self.export()
        since = self.last_seq()
        self.export()
        self.assertEqual(self.catalog_calls(since), [], "the scheduled run found nothing to send")
        # Queued anyway (a price written back unchanged): the hash stops it at sending.
        shirt.list_price = 40.0
        with trap_jobs() as trap:
            self.backend._flush_outbound(CATALOG_TOPIC)
            self.run_jobs(trap)
        self.assertEqual(self.catalog_calls(since), [])
        self.assertEqual(self.outbound(shirt)[0].remote_result, "3 variants unchanged")

    def test_export_task_counts_sent_and_unchanged_products(self):
        shirt = self.make_shirt(name="Wool Scarf", code="WSC")
        Task = self.env["connector.task"]
        self.export()
        first = Task.search([("backend_id", "=", self.backend.id)], limit=1)
        self.assertEqual((first.kind, first.state), ("catalog_export", "done"))
        self.assertEqual((first.done_count, first.total_count), (1, 1))
        self.assertEqual(first.outbound_ids, self.outbound(shirt)[0])
        self.export()
        second = Task.search([("backend_id", "=", self.backend.id)], limit=1)
        self.assertNotEqual(second, first)
        self.assertEqual((second.state, second.done_count), ("done", 0))
        self.assertEqual((second.skipped_count, second.total_count), (1, 1), "unchanged")

    def test_price_change_sends_one_variant_update_at_once_in_realtime(self):
        shirt = self.make_shirt(name="Oxford Shirt", code="OXF")
        self.export()
        self.set_mode("realtime")
        since = self.last_seq()
        with trap_jobs() as trap:
            self.value(shirt, "M").price_extra = 7.5
            trap.assert_jobs_count(1, only=self.backend._flush_outbound)
            self.run_jobs(trap)
        calls = self.catalog_calls(since)
        self.assertEqual([c["fields"] for c in calls], [["productVariantsBulkUpdate"]])
        self.assertEqual(
            self.outbound(shirt)[0].remote_result, "1 variants updated, 2 variants unchanged"
        )
        self.assertEqual(self.shop.catalog("OXF-M")[0]["price"], "47.50")
        self.assertEqual(self.shop.catalog("OXF-S")[0]["price"], "40.00")

    def test_price_change_waits_for_the_schedule_in_scheduled_mode(self):
        shirt = self.make_shirt(name="Flannel Shirt", code="FLA")
        self.export()
        since = self.last_seq()
        with trap_jobs() as trap:
            shirt.list_price = 45.0
            self.assertEqual(self.outbound(shirt)[0].state, "pending")
            trap.assert_jobs_count(0, only=self.backend._flush_outbound)
        self.assertEqual(self.catalog_calls(since), [])
        self.export()
        self.assertEqual(
            {r["price"] for r in self.shop.catalog() if r["sku"].startswith("FLA-")}, {"45.00"}
        )

    def test_new_variants_get_their_stock_in_the_store(self):
        self.backend.action_shopify_import_locations()
        stock = self.env.ref("stock.warehouse0").lot_stock_id
        shirt = self.make_shirt(name="Polo Shirt", code="POLO")
        medium = shirt.product_variant_ids.filtered(lambda v: v.default_code == "POLO-M")
        self.env["stock.quant"]._update_available_quantity(medium, stock, 7)
        self.export()
        location = self.backend.shopify_location_ids.name
        stock_rows = {
            r["sku"]: r["available"] for r in self.shop.inventory() if r["location"] == location
        }
        self.assertEqual(
            {sku: qty for sku, qty in stock_rows.items() if sku.startswith("POLO-")},
            {"POLO-S": 0, "POLO-M": 7, "POLO-L": 0},
        )

    def test_scheduled_run_follows_the_policy_interval(self):
        Sync = self.env["shopify.catalog.sync"]
        policy = self.backend._policy("catalog_out")
        policy.watermark = False

        def runs(trap):
            return [c for c in trap.calls if c.method.__name__ == "_shopify_export_catalog"]

        with trap_jobs() as trap:
            Sync._cron_export()
            self.assertEqual(len(runs(trap)), 1)
            Sync._cron_export()  # within the 60 minutes of the policy: nothing more
            self.assertEqual(len(runs(trap)), 1)
            policy.interval_minutes = 1
            policy.watermark = fields.Datetime.to_string(
                fields.Datetime.now() - timedelta(minutes=2)
            )
            Sync._cron_export()
            self.assertEqual(len(runs(trap)), 2)

    def test_an_import_writing_prices_does_not_send_them_back(self):
        shirt = self.make_shirt(name="Linen Trousers", code="TRO")
        self.export()
        shirt.with_context(connector_no_export=True).list_price = 20.0
        self.assertEqual(self.outbound(shirt)[0].state, "sent", "nothing new queued")

    def test_many_price_changes_on_many_products_are_batched(self):
        count = 60
        templates = self.env["product.template"].create(
            [
                {
                    "name": f"Sock {n}",
                    "default_code": f"SOCK-{n:03d}",
                    "is_storable": True,
                    "list_price": 5.0,
                    "shopify_backend_ids": [(6, 0, self.backend.ids)],
                }
                for n in range(count)
            ]
        )
        since = self.last_seq()
        self.export()
        self.assertEqual(
            len([r for r in self.shop.catalog() if r["sku"].startswith("SOCK-")]), count
        )
        # Creating 60 products: per 50, one lookup by handle, one request of
        # productCreate and one of productVariantsBulkUpdate (the default variant).
        requests = math.ceil(count / MUTATIONS_PER_REQUEST)
        self.assertEqual(len(self.catalog_calls(since)), 2 * requests)
        self.assertEqual(len(self.shop.requests.entries(since)), 3 * requests)
        self.set_mode("realtime")
        since = self.last_seq()
        with trap_jobs() as trap:
            for price in (6.0, 7.0, 8.0):
                for template in templates:
                    template.list_price = price
            trap.assert_jobs_count(1, only=self.backend._flush_outbound)
            self.run_jobs(trap)
        calls = self.catalog_calls(since)
        self.assertEqual(len(calls), math.ceil(count / MUTATIONS_PER_REQUEST))
        self.assertEqual(
            {r["price"] for r in self.shop.catalog() if r["sku"].startswith("SOCK-")}, {"8.00"}
        )
        self.assertEqual(self.outbound(templates[0])[0].change_count, 3, "three writes, one send")

    def test_existing_store_bound_by_sku_is_updated_not_duplicated(self):
        product_count = len({r["product_id"] for r in self.shop.catalog() if r["sku"]})
        shopify_product = self.seeded[0]["product_id"]
        same_product = [r for r in self.seeded if r["product_id"] == shopify_product]
        template = self.env["product.template"].create(
            {"name": "Imported", "is_storable": True, "list_price": 33.0}
        )
        template.attribute_line_ids = [
            (
                0,
                0,
                {
                    "attribute_id": self.size.id,
                    "value_ids": [(6, 0, self.size.value_ids[: len(same_product)].ids)],
                },
            )
        ]
        for variant, row in zip(template.product_variant_ids, same_product, strict=False):
            variant.default_code = row["sku"]
        self.backend.action_shopify_bind_products()
        bindings = self.bindings(template)
        self.assertEqual(
            set(bindings.mapped("shopify_product_id")), {shopify_product.rsplit("/", 1)[-1]}
        )
        # Bindings made before the catalog flow existed lack it: the export reads it.
        bindings.shopify_product_id = False
        since = self.last_seq()
        self.export()
        calls = self.catalog_calls(since)
        self.assertNotIn(["productCreate"], [c["fields"] for c in calls])
        self.assertEqual(
            len({r["product_id"] for r in self.shop.catalog() if r["sku"]}), product_count
        )
        self.assertEqual(
            set(bindings.mapped("shopify_product_id")), {shopify_product.rsplit("/", 1)[-1]}
        )
        for variant in template.product_variant_ids.filtered("default_code"):
            self.assertEqual(self.shop.catalog(variant.default_code)[0]["price"], "33.00")

    def test_refused_product_is_failed_in_plain_words_others_sent(self):
        good = self.make_shirt(name="Denim Shirt", code="DEN")
        bad = self.make_shirt(name="Gift Card Refund", code="NEG", price=-5.0)
        self.export()
        refused = self.outbound(bad)[0]
        self.assertEqual(refused.state, "failed")
        self.assertEqual(refused.error_kind, "remote")
        self.assertIn("NEG-S", refused.error_message)
        self.assertIn("price must be greater than or equal to zero", refused.error_message)
        self.assertEqual(self.outbound(good)[0].state, "sent")
        self.assertEqual(len(self.shop.catalog("DEN-M")), 1)

    def test_lost_answer_of_a_create_is_found_again_not_doubled(self):
        shirt = self.make_shirt(name="Wool Coat", code="WOOL")
        # Shopify creates the variants, the answer never arrives.
        self.shop.faults.add(
            "drop", apply=True, endpoint="graphql:productVariantsBulkCreate", limit=1
        )
        with self.assertRaises(RetryableJobError):
            self.backend._flush_outbound(CATALOG_TOPIC)
        self.assertEqual(len(self.shop.catalog("WOOL-M")), 1, "applied, answer lost")
        self.backend._flush_outbound(CATALOG_TOPIC)
        rows = [r for r in self.shop.catalog() if r["title"] == "Wool Coat"]
        self.assertEqual(len({r["product_id"] for r in rows}), 1)
        self.assertEqual(sorted(r["sku"] for r in rows), ["WOOL-L", "WOOL-M", "WOOL-S"])
        self.assertEqual(
            sorted(self.bindings(shirt).mapped("external_id")),
            sorted(r["variant_id"].rsplit("/", 1)[-1] for r in rows),
        )
        self.assertEqual(self.outbound(shirt)[0].state, "sent")

    def test_five_hundred_and_throttle_are_retried_nothing_lost_nothing_doubled(self):
        shirt = self.make_shirt(name="Rain Jacket", code="RAIN")
        # The variants call fails after the product was created: the retry finds
        # the product by its handle instead of creating a second one.
        self.shop.faults.add(
            "error", status=503, endpoint="graphql:productVariantsBulkCreate", limit=1
        )
        with trap_jobs() as trap:
            self.backend.action_shopify_export_catalog()
            trap.perform_enqueued_jobs()  # the scan
            with self.assertRaises(RetryableJobError):
                self.backend._flush_outbound(CATALOG_TOPIC)
        self.assertEqual(self.outbound(shirt)[0].state, "pending")
        self.backend._flush_outbound(CATALOG_TOPIC)
        products = {r["product_id"] for r in self.shop.catalog() if r["title"] == "Rain Jacket"}
        self.assertEqual(len(products), 1, "no duplicate product")
        self.assertEqual(
            len([r for r in self.shop.catalog() if r["sku"] and r["sku"].startswith("RAIN-")]), 3
        )
        self.assertEqual(self.outbound(shirt)[0].state, "sent")

        shirt.list_price = 55.0
        self.shop.faults.add(
            "throttle", retry_after=3, endpoint="graphql:productVariantsBulkUpdate", limit=1
        )
        try:
            self.backend._flush_outbound(CATALOG_TOPIC)
        except RetryableJobError as retry:
            self.assertEqual(retry.seconds, 3)
        else:
            self.fail("the throttled send was not retried")
        self.assertEqual(self.outbound(shirt)[0].state, "pending")
        self.backend._flush_outbound(CATALOG_TOPIC)
        self.assertEqual(
            {r["price"] for r in self.shop.catalog() if (r["sku"] or "").startswith("RAIN-")},
            {"55.00"},
        )
