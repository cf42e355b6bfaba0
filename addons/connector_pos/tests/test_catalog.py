import time
from decimal import Decimal

from simulators import PosSimulator

from odoo.tests import BaseCase, TransactionCase

from odoo.addons.connector_base.components.http_client import RemoteError
from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs
from odoo.addons.queue_job.exception import RetryableJobError

from ..components import catalog
from ..models.connector_pos_catalog import AVAILABILITY_TOPIC, CATALOG_TOPIC, URGENT_TOPIC
from .common import FLEET, make_fleet

PRODUCTS = 6


class TestCatalogRows(BaseCase):
    """The rows sent and the reading of the vendor's refusals, without a database."""

    def test_row_and_hash(self):
        row = catalog.product_row("A-1", "", "  Linen Scarf ", 24.9, "VAT20")
        self.assertEqual(
            row,
            {
                "sku": "A-1",
                "barcode": None,
                "name": "Linen Scarf",
                "price": "24.90",
                "tax_code": "VAT20",
            },
        )
        self.assertEqual(catalog.row_hash(row), catalog.row_hash(dict(reversed(row.items()))))
        self.assertNotEqual(catalog.row_hash(row), catalog.row_hash({**row, "price": "24.91"}))

    def test_refusals_name_items_only_by_a_plain_index(self):
        errors = [
            {"field": "products[3].price", "detail": "bad price", "code": "INVALID_VALUE"},
            {"field": "products[3].barcode", "detail": "taken", "code": "BARCODE_TAKEN"},
            {"field": "counts[1].sku", "detail": "x"},
            {"field": "products[²].sku", "detail": "x"},
            {"field": None, "detail": "whole batch"},
            None,
            "text",
        ]
        blamed = catalog.blamed(errors, "products")
        self.assertEqual(list(blamed), [3])
        self.assertIn("bad price (INVALID_VALUE)", blamed[3])
        self.assertIn("taken (BARCODE_TAKEN)", blamed[3])
        self.assertEqual(list(catalog.blamed(errors, "counts")), [1])
        self.assertEqual(catalog.blamed(None, "products"), {})
        self.assertEqual(catalog.errors_message([]), "refused without a reason")
        self.assertIn("whole batch", catalog.errors_message(errors))

    def test_same_items_and_body_same_key(self):
        body = [{"sku": "A"}]
        key = catalog.idempotency_key([3, 1], body)
        self.assertEqual(key, catalog.idempotency_key([1, 3], body))
        self.assertNotEqual(key, catalog.idempotency_key([1, 3], [{"sku": "B"}]))
        self.assertNotEqual(key, catalog.idempotency_key([1, 4], body))


class TestCatalogOut(TransactionCase):
    """Products, prices and available quantities out to the stores' POS, over
    HTTP to the POS simulator playing the vendor's API, jobs performed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        cls.pos = PosSimulator(seed=7, fleet_code=FLEET, stores=2, registers=1).start()
        cls.addClassCleanup(cls.pos.stop)
        cls.backend, cls.s01, _keys = make_fleet(cls.env)
        cls.backend.write({"base_url": cls.pos.api_url, "api_token": cls.pos.api_token})
        # Lyon has a warehouse of its own: its moves are not Paris's stock.
        lyon = cls.env["stock.warehouse"].create({"name": "Lyon store", "code": "LYS"})
        config = cls.env["pos.config"].create(
            {
                "name": "Store S02",
                "picking_type_id": lyon.pos_type_id.id,
                # Point of Sale gives each its own cash method: cards only here.
                "payment_method_ids": [
                    (
                        6,
                        0,
                        cls.s01.config_id.payment_method_ids.filtered("journal_id.type")
                        .filtered(lambda m: m.journal_id.type != "cash")
                        .ids,
                    )
                ],
            }
        )
        cls.s02 = cls.env["connector.pos.store"].create(
            {"backend_id": cls.backend.id, "code": "S02", "name": "Lyon", "config_id": config.id}
        )
        cls.stores = cls.s01 | cls.s02
        Pricelist = cls.env["product.pricelist"]
        cls.paris = Pricelist.create({"name": "Paris prices"})
        cls.s01.pricelist_id = cls.paris
        # Lyon sells at its Point of Sale's pricelist.
        cls.lyon = Pricelist.create({"name": "Lyon prices"})
        cls.s02.config_id.write(
            {
                "use_pricelist": True,
                "pricelist_id": cls.lyon.id,
                "available_pricelist_ids": [(6, 0, cls.lyon.ids)],
            }
        )
        taxes = {mapping.code: mapping.tax_id for mapping in cls.backend.pos_tax_ids}
        cls.seeded = [p for p in cls.pos.catalog() if p["tax_code"] in taxes][:PRODUCTS]
        cls.products = cls.env["product.product"].create(
            [
                {
                    "name": product["name"],
                    "default_code": product["sku"],
                    "barcode": product["barcode"],
                    "is_storable": True,
                    "available_in_pos": True,
                    "list_price": float(product["price"]),
                    "taxes_id": [(6, 0, taxes[product["tax_code"]].ids)],
                }
                for product in cls.seeded
            ]
        )
        # Not for the stores: not sold in Point of Sale, or without a SKU.
        cls.env["product.product"].create(
            [
                {"name": "Back office only", "default_code": "BO-1", "available_in_pos": False},
                {
                    "name": "No SKU",
                    "available_in_pos": True,
                    "taxes_id": [(6, 0, taxes["VAT20"].ids)],
                },
            ]
        )
        cls.paris_rule = cls.env["product.pricelist.item"].create(
            {
                "pricelist_id": cls.paris.id,
                "applied_on": "0_product_variant",
                "product_id": cls.products[0].id,
                "product_tmpl_id": cls.products[0].product_tmpl_id.id,
                "compute_price": "fixed",
                "fixed_price": 15.0,
            }
        )
        cls.customers = cls.env.ref("stock.stock_location_customers")
        for product in cls.products:
            for store in cls.stores:
                cls.env["stock.quant"]._update_available_quantity(product, store.location_id, 50)
        cls.env.cr.flush()  # as a commit would: the stores know none of them yet

    def setUp(self):
        super().setUp()
        self.pos.reset(7)

    # --- helpers ---------------------------------------------------------------------

    def calls(self, endpoint, since=0):
        return [e for e in self.pos.requests.entries(since) if endpoint in e["names"]]

    def last_seq(self):
        entries = self.pos.requests.entries()
        return entries[-1]["seq"] if entries else 0

    def scheduled_run(self):
        """The cron's pass once the flow's interval has gone by, its jobs run."""
        self.backend._policy("catalog_out").watermark = False
        with trap_jobs() as trap:
            self.env["connector.backend"]._cron_pos_export_catalog()
            trap.assert_jobs_count(1, only=self.backend._pos_export_catalog)
            run_trapped_jobs(self.env, trap)

    def outbound(self, topic, state=None):
        domain = [("backend_id", "=", self.backend.id), ("topic", "=", topic)]
        if state:
            domain.append(("state", "=", state))
        return self.env["connector.outbound"].search(domain)

    def sku(self, index):
        return self.products[index].default_code

    def price_at(self, store, index):
        return self.pos.store_products(store)[self.sku(index)]["price"]

    def ship(self, product, store, quantity=1):
        move = self.env["stock.move"].create(
            {
                "product_id": product.id,
                "product_uom_qty": quantity,
                "location_id": store.location_id.id,
                "location_dest_id": self.customers.id,
            }
        )
        move._action_confirm()
        move._action_assign()
        move.picked = True
        move._action_done()
        return move

    # --- tests -------------------------------------------------------------------------

    def test_connection_names_the_fleet_and_refuses_a_wrong_token(self):
        self.assertEqual(
            self.backend._test_connection(), "Connected to the fleet test-fleet: 2 stores."
        )
        self.backend.api_token = "not-the-token"
        with self.assertRaisesRegex(RemoteError, "HTTP 401"):
            self.backend._test_connection()

    def test_scheduled_export_sends_each_store_its_prices_then_nothing(self):
        self.scheduled_run()
        for store, pricelist in ((self.s01, self.paris), (self.s02, self.lyon)):
            sent = self.pos.store_products(store.code)
            self.assertEqual(set(sent), set(self.products.mapped("default_code")), store.code)
            for product, seeded in zip(self.products, self.seeded, strict=True):
                row = sent[product.default_code]
                self.assertEqual(row["barcode"], seeded["barcode"])
                self.assertEqual(row["name"], product.display_name)
                self.assertEqual(row["tax_code"], seeded["tax_code"])
                expected = pricelist._get_product_price(product, 1.0)
                self.assertEqual(row["price"], Decimal(f"{expected:.2f}"))
        # The store's pricelist, else its Point of Sale's: the Paris rule is Paris's only.
        self.assertEqual(self.price_at("S01", 0), Decimal("15.00"))
        self.assertEqual(self.price_at("S02", 0), self.seeded[0]["price"])
        self.assertEqual(len(self.calls("catalog_upsert")), 2, "one call per store")
        bindings = self.env["connector.pos.product"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(len(bindings), 2 * PRODUCTS)
        self.assertEqual(self.backend.pos_product_count, 2 * PRODUCTS)
        # The second run finds every row unchanged (hash): nothing queued, nothing sent.
        since = self.last_seq()
        self.scheduled_run()
        self.assertEqual(self.calls("catalog_upsert", since), [])
        self.assertFalse(self.outbound(CATALOG_TOPIC, "pending"))

    def test_export_now_and_the_full_quantity_push_are_followed_by_tasks(self):
        Task = self.env["connector.task"]

        def last(kind):
            task = Task.search([("backend_id", "=", self.backend.id), ("kind", "=", kind)], limit=1)
            task.invalidate_recordset()
            return task

        for _run in range(2):
            with trap_jobs() as trap:
                self.backend.action_pos_export_catalog()
                run_trapped_jobs(self.env, trap)
        first, second = Task.search(
            [("backend_id", "=", self.backend.id), ("kind", "=", "catalog_export")],
            order="id",
        )
        self.assertEqual((first.state, first.done_count), ("done", 2 * PRODUCTS))
        self.assertEqual((second.state, second.done_count), ("done", 0))
        self.assertEqual(second.skipped_count, 2 * PRODUCTS, "unchanged")
        # The POS lost its quantities (reset): a full push sets them all again.
        self.pos.reset(7)
        with trap_jobs() as trap:
            self.backend.action_pos_push_stock()
            run_trapped_jobs(self.env, trap)
        push = last("stock_push")
        self.assertEqual((push.state, push.done_count), ("done", 2 * PRODUCTS))
        self.assertEqual(len(self.pos.available("S01")), PRODUCTS)
        self.assertEqual(len(self.calls("inventory_set")), 1, "12 counts, one call")

    def test_changed_price_waits_for_the_next_scheduled_run(self):
        self.scheduled_run()
        since = self.last_seq()
        with trap_jobs() as trap:
            self.paris_rule.fixed_price = 13.5
            self.products[1].lst_price = 99.0
            self.assertFalse(trap.enqueued_jobs, "nothing sent before the schedule")
        self.scheduled_run()
        calls = self.calls("catalog_upsert", since)
        self.assertEqual([(c["store"], c["products"]) for c in calls], [("S01", 2), ("S02", 1)])
        self.assertEqual(self.price_at("S01", 0), Decimal("13.50"))
        self.assertEqual(self.price_at("S01", 1), Decimal("99.00"))
        self.assertEqual(self.price_at("S02", 1), Decimal("99.00"))
        self.assertEqual(self.price_at("S02", 0), self.seeded[0]["price"])

    def test_urgent_rule_goes_at_once_by_its_own_job(self):
        self.scheduled_run()
        since = self.last_seq()
        sla = self.backend._policy("prices_urgent").sla_lag_minutes * 60
        started = time.monotonic()
        with trap_jobs() as trap:
            self.env["product.pricelist.item"].create(
                {
                    "pricelist_id": self.paris.id,
                    "applied_on": "0_product_variant",
                    "product_id": self.products[2].id,
                    "product_tmpl_id": self.products[2].product_tmpl_id.id,
                    "compute_price": "fixed",
                    "fixed_price": 1.0,
                    "connector_pos_urgent": True,
                }
            )
            # A flush job of the urgent flow, due within seconds; no catalog run.
            trap.assert_jobs_count(1)
            job = trap.enqueued_jobs[0]
            self.assertEqual((job.method_name, job.args), ("_flush_outbound", (URGENT_TOPIC,)))
            self.assertEqual(job.channel, self.backend._policy("prices_urgent").channel)
            self.assertLessEqual((job.eta - job.date_created).total_seconds(), 5)
            self.assertFalse(self.outbound(CATALOG_TOPIC, "pending"))
            run_trapped_jobs(self.env, trap)
        elapsed = time.monotonic() - started
        self.assertEqual(self.price_at("S01", 2), Decimal("1.00"))
        self.assertEqual(self.price_at("S02", 2), self.seeded[2]["price"], "not Lyon's pricelist")
        self.assertEqual(
            [(c["store"], c["products"]) for c in self.calls("catalog_upsert", since)], [("S01", 1)]
        )
        self.assertLess(elapsed, sla)
        urgent = self.outbound(URGENT_TOPIC)
        self.assertEqual((urgent.state, urgent.flow), ("sent", "prices_urgent"))
        # The rule ends: urgent too, the price goes back.
        with trap_jobs() as trap:
            self.paris.item_ids.filtered("connector_pos_urgent").unlink()
            run_trapped_jobs(self.env, trap)
        self.assertEqual(self.price_at("S01", 2), self.seeded[2]["price"])
        # The scheduled run finds nothing left to send.
        since = self.last_seq()
        self.scheduled_run()
        self.assertEqual(self.calls("catalog_upsert", since), [])

    def test_a_pricing_user_flags_a_rule_urgent_without_connector_rights(self):
        self.scheduled_run()
        user = self.env["res.users"].create(
            {
                "name": "Pricing manager",
                "login": "pricing.manager",
                "group_ids": [(6, 0, self.env.ref("product.group_product_manager").ids)],
            }
        )
        self.assertFalse(user.has_group("connector_base.group_connector_user"))
        with trap_jobs() as trap:
            self.paris_rule.with_user(user).write(
                {"fixed_price": 12.0, "connector_pos_urgent": True}
            )
            run_trapped_jobs(self.env, trap)
        self.assertEqual(self.price_at("S01", 0), Decimal("12.00"))
        # The flag is the connector's: on the rule form for connector users only.
        arch = self.env["product.pricelist.item"].with_user(user).get_view(view_type="form")["arch"]
        self.assertNotIn("connector_pos_urgent", arch)

    def test_moves_at_a_store_send_its_latest_quantity_once_per_sku(self):
        self.scheduled_run()  # the stores know the products (and get their quantities)
        self.assertEqual(self.pos.available("S01", self.sku(3)), 50)
        self.assertEqual(self.pos.available("S02", self.sku(3)), 50)
        since = self.last_seq()
        with trap_jobs() as trap:
            for _ in range(7):
                self.ship(self.products[3], self.s01)
            self.ship(self.products[4], self.s01, quantity=5)
            self.assertFalse(trap.enqueued_jobs, "queued when the transaction commits")
            self.env.cr.flush()  # what a commit runs first
            pending = self.outbound(AVAILABILITY_TOPIC, "pending")
            self.assertEqual(len(pending), 2, "one change per store and SKU")
            self.assertEqual(set(pending.mapped("change_count")), {1}, "noted, queued once")
            trap.assert_jobs_count(1, only=self.backend._flush_outbound)
            run_trapped_jobs(self.env, trap)
        calls = self.calls("inventory_set", since)
        self.assertEqual([c["counts"] for c in calls], [2], "one batched call")
        self.assertEqual(self.pos.available("S01", self.sku(3)), 43)
        self.assertEqual(self.pos.available("S01", self.sku(4)), 45)
        self.assertEqual(self.pos.available("S02", self.sku(3)), 50, "Lyon's stock untouched")
        free = self.products[3].with_context(location=self.s01.location_id.id).free_qty
        self.assertEqual(free, 43)

    def test_a_new_sku_is_a_new_product_at_the_pos_with_its_quantity(self):
        self.scheduled_run()
        # (The barcode stays the old SKU's at the POS: it would refuse it.)
        self.products[1].write({"default_code": "RENAMED-1", "barcode": False})
        self.products[2].available_in_pos = False
        self.scheduled_run()
        for store in ("S01", "S02"):
            self.assertIn("RENAMED-1", self.pos.store_products(store))
            self.assertEqual(self.pos.available(store, "RENAMED-1"), 50)
        binding = self.env["connector.pos.product"].search(
            [("store_id", "=", self.s01.id), ("odoo_id", "=", self.products[1].id)]
        )
        self.assertEqual(binding.external_id, "RENAMED-1")
        # A change queued for a product since taken out of Point of Sale is not sent.
        with trap_jobs():
            self.backend._send_later(
                CATALOG_TOPIC,
                f"{self.s01.id}:{self.products[2].id}",
                {"store_id": self.s01.id, "product_id": self.products[2].id},
            )
            self.backend._flush_outbound(CATALOG_TOPIC)
        item = self.outbound(CATALOG_TOPIC).filtered(lambda i: i.payload.get("problem"))
        self.assertEqual(item.state, "failed")
        self.assertIn("no longer sold in Point of Sale", item.error_message)

    def test_a_fleet_polled_in_pull_mode_sends_nothing(self):
        self.scheduled_run()
        self.backend.pos_mode = "pull"
        self.backend._policy("catalog_out").watermark = False
        with trap_jobs() as trap:
            self.env["connector.backend"]._cron_pos_export_catalog()
            self.ship(self.products[3], self.s01)
            self.env.cr.flush()
            self.assertFalse(trap.enqueued_jobs)
        self.assertFalse(self.outbound(AVAILABILITY_TOPIC, "pending"))

    def test_remote_faults_are_retried_and_nothing_is_lost(self):
        # The first catalog call is applied but its answer lost; the next is
        # throttled; the first availability call meets a 503, the next is
        # applied but its answer cut in the middle.
        self.pos.faults.add("drop", endpoint="catalog_upsert", apply=True, limit=1)
        self.pos.faults.add("throttle", endpoint="catalog_upsert", retry_after=2, limit=1)
        self.pos.faults.add("error", endpoint="inventory_set", status=503, limit=1)
        self.pos.faults.add("malformed", endpoint="inventory_set", limit=1)
        self.backend._policy("catalog_out").watermark = False
        retries = []
        with trap_jobs() as trap:
            self.env["connector.backend"]._cron_pos_export_catalog()
            for _ in range(10):
                try:
                    run_trapped_jobs(self.env, trap)
                    break
                except RetryableJobError as retry:
                    retries.append(retry)
                    for topic in (CATALOG_TOPIC, AVAILABILITY_TOPIC):
                        if self.outbound(topic, "pending"):
                            self.backend._enqueue_outbound_flush(topic)
        self.assertGreaterEqual(len(retries), 4)
        self.assertIn("could not be read", " ".join(str(retry) for retry in retries))
        self.assertIn(2, [retry.seconds for retry in retries], "the remote's Retry-After")
        for store in ("S01", "S02"):
            self.assertEqual(len(self.pos.store_products(store)), PRODUCTS)
            self.assertEqual(len(self.pos.available(store)), PRODUCTS)
        self.assertEqual(set(self.outbound(CATALOG_TOPIC).mapped("state")), {"sent"})
        self.assertEqual(set(self.outbound(AVAILABILITY_TOPIC).mapped("state")), {"sent"})
        # The resend after the lost answer carried the same key: answered, not applied twice.
        keys = [c["idempotency_key"] for c in self.calls("catalog_upsert") if c["processed"]]
        self.assertLess(len(set(keys)), len(keys))
        keys = [c["idempotency_key"] for c in self.calls("inventory_set") if c["processed"]]
        self.assertLess(len(set(keys)), len(keys))
        self.assertEqual({p["version"] for p in self.pos.store_products("S01").values()}, {1})

    def test_refused_row_is_recorded_with_the_reason_and_not_resent_unchanged(self):
        # Another SKU of the POS already has this barcode: the POS refuses it.
        taken = self.pos.catalog()[-1]
        self.products[5].barcode = taken["barcode"]
        # A product whose tax no POS tax code stands for cannot be sent.
        untaxed = self.products[4]
        untaxed.taxes_id = False
        self.scheduled_run()
        failed = self.outbound(CATALOG_TOPIC, "failed")
        self.assertEqual(len(failed), 4, "two products at two stores")
        refused = failed.filtered(lambda i: i.res_id == self.products[5].id)
        for item in refused:
            self.assertIn("BARCODE_TAKEN", item.error_message)
            self.assertIn(taken["sku"], item.error_message)
            self.assertIn(self.sku(5), item.error_message)
            self.assertEqual(item.payload["row"]["barcode"], taken["barcode"])
        for item in failed - refused:
            self.assertIn("the POS takes one tax code", item.error_message)
        # The others went, at both stores.
        self.assertEqual(len(self.pos.store_products("S01")), PRODUCTS - 2)
        # The next run does not send the same refused rows again.
        since = self.last_seq()
        self.scheduled_run()
        self.assertEqual(self.calls("catalog_upsert", since), [])
        self.assertEqual(len(self.outbound(CATALOG_TOPIC, "failed")), 4)
        # Fixed: the next run sends them.
        self.products[5].barcode = False
        untaxed.taxes_id = self.backend.pos_tax_ids[0].tax_id
        self.scheduled_run()
        self.assertEqual(len(self.pos.store_products("S01")), PRODUCTS)
        self.assertIsNone(self.pos.store_products("S02")[self.sku(5)]["barcode"])
