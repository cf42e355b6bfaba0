from datetime import timedelta
from decimal import Decimal
from unittest.mock import patch

from odoo import Command, fields
from odoo.tests import BaseCase, TransactionCase

from odoo.addons.connector_base.components.validation import PayloadError
from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs

from ..components import mapper_payout
from .common import connect_store, make_backend, make_products, run_jobs, start_shop


def import_payouts(test):
    with trap_jobs() as trap:
        test.backend.action_shopify_import_payouts()
        return run_jobs(test, trap)


def ground_truth(shop):
    """The simulated store's payouts, each with its balance transactions."""
    state = shop.snapshot(["payouts", "balance_transactions"])
    transactions = {row["id"]: row for row in state["balance_transactions"]}
    return {
        payout["id"]: {
            **payout,
            "transactions": [transactions[i] for i in payout["balance_transactions"]],
        }
        for payout in state["payouts"]
    }


class TestPayoutMapper(BaseCase):
    """Shopify's payout and balance transaction nodes, read as they are."""

    def test_amounts_are_kept_as_shopify_gives_them(self):
        values = mapper_payout.payout_values(
            {
                "id": "gid://shopify/ShopifyPaymentsPayout/42",
                "legacyResourceId": "42",
                "issuedAt": "2026-11-20T23:00:00Z",
                "status": "IN_TRANSIT",
                "transactionType": "DEPOSIT",
                "net": {"amount": "1234.56", "currencyCode": "EUR"},
                "summary": {"chargesGross": {"amount": "1300.10", "currencyCode": "EUR"}},
            }
        )
        self.assertEqual(values["net_amount"], Decimal("1234.56"))
        self.assertEqual(values["charges_gross"], Decimal("1300.10"))
        self.assertEqual(values["refunds_gross"], Decimal(0))
        self.assertEqual(values["status"], "in_transit")
        self.assertEqual(values["shopify_payout_id"], "42")

    def test_transaction_types_fall_into_kinds(self):
        kinds = {
            name: mapper_payout.transaction_category(name)
            for name in ("CHARGE", "REFUND", "DISPUTE_WITHDRAWAL", "ADJUSTMENT", "PAYOUT")
        }
        self.assertEqual(
            kinds,
            {
                "CHARGE": "charge",
                "REFUND": "refund",
                "DISPUTE_WITHDRAWAL": "dispute",
                "ADJUSTMENT": "adjustment",
                "PAYOUT": "other",
            },
        )

    def test_node_it_cannot_read_is_refused_field_by_field(self):
        # Found by the R3 fuzzing: payout_values() and transaction_values()
        # raised TypeError, AttributeError or KeyError on these.
        for mapper, node, problem in [
            (
                mapper_payout.payout_values,
                {"id": "gid://shopify/ShopifyPaymentsPayout/1", "net": "12.00"},
                "net: must be of dict type",
            ),
            (
                mapper_payout.payout_values,
                {"id": "gid://shopify/ShopifyPaymentsPayout/1", "summary": ["x"]},
                "summary: must be of dict type",
            ),
            (mapper_payout.payout_values, {}, "id: required field"),
            (
                mapper_payout.transaction_values,
                {"id": "x", "associatedOrder": {"id": "gid://shopify/Order/abc"}},
                "associatedOrder.id: value does not match regex",
            ),
            (
                mapper_payout.transaction_values,
                {"id": "x", "fee": {"amount": None}},
                "fee.amount: null value not allowed",
            ),
        ]:
            with self.assertRaises(PayloadError) as error:
                mapper(node)
            self.assertIn(problem, str(error.exception))


class TestPayoutImport(TransactionCase):
    """Payouts of orders imported in Odoo: totals, fees, transactions, links."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        connect_store(cls, sku_count=2, on_hand=50, seed=41, products=6)
        with trap_jobs() as trap:
            cls.orders = []
            for lines in ([(cls.skus[0], 2)], [(cls.skus[1], 1)], [(cls.skus[0], 1)]):
                payload = cls.shop.create_order(lines)
                cls.env["connector.event"]._receive(
                    cls.backend, "orders/create", payload, f"wh-{payload['id']}"
                )
                cls.orders.append(payload)
            run_trapped_jobs(cls.env, trap)
        cls.shop.refund_order(cls.orders[0]["name"], {cls.skus[0]: 1})
        cls.payout_ids = cls.shop.create_payout(status="IN_TRANSIT")

    def payout_of(self, external_id):
        return self.env["shopify.payout"].search(
            [("backend_id", "=", self.backend.id), ("external_id", "=", external_id)]
        )

    def test_payouts_imported_with_totals_fees_transactions_and_orders(self):
        done, _retries = import_payouts(self)
        truth = ground_truth(self.shop)
        payouts = self.env["shopify.payout"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(set(payouts.mapped("external_id")), set(truth))
        self.assertIn("_shopify_import_payout_transactions", done)
        sales = {
            order["name"]: self.env["sale.order"].search([("client_order_ref", "=", order["name"])])
            for order in self.orders
        }
        categories = set()
        for external_id, expected in truth.items():
            payout = self.payout_of(external_id)
            rows = expected["transactions"]
            self.assertEqual(payout.status, "in_transit")
            self.assertEqual(payout.currency_id.name, "EUR")
            self.assertAlmostEqual(payout.net_amount, float(expected["net"]), places=2)
            charges = [r for r in rows if r["type"] == "CHARGE"]
            refunds = [r for r in rows if r["type"] == "REFUND"]
            self.assertAlmostEqual(
                payout.charges_gross, float(sum(Decimal(r["amount"]) for r in charges)), places=2
            )
            self.assertAlmostEqual(
                payout.charges_fee, float(sum(Decimal(r["fee"]) for r in charges)), places=2
            )
            self.assertAlmostEqual(
                payout.refunds_gross, float(sum(Decimal(r["amount"]) for r in refunds)), places=2
            )
            self.assertTrue(payout.transactions_complete)
            self.assertFalse(payout.amount_mismatch, payout.mismatch_message)
            self.assertEqual(payout.finance_state, "to_export")
            self.assertEqual(payout.transaction_count, len(rows))
            self.assertAlmostEqual(payout.transaction_net_total, payout.net_amount, places=2)
            by_id = {t.external_id: t for t in payout.transaction_ids}
            self.assertEqual(set(by_id), {r["id"] for r in rows})
            for row in rows:
                transaction = by_id[row["id"]]
                categories.add(transaction.category)
                self.assertEqual(transaction.category, row["type"].lower())
                self.assertAlmostEqual(transaction.amount, float(row["amount"]), places=2)
                self.assertAlmostEqual(transaction.fee, float(row["fee"]), places=2)
                self.assertAlmostEqual(transaction.net_amount, float(row["net"]), places=2)
                order_name = self.shop.order(row["order_id"])["name"]
                self.assertEqual(transaction.shopify_order_name, order_name)
                self.assertEqual(transaction.sale_order_id, sales[order_name])
        self.assertEqual(categories, {"charge", "refund"})
        self.assertTrue(self.backend._policy("payouts_in").watermark)

    def test_second_import_changes_nothing(self):
        import_payouts(self)
        payouts = self.env["shopify.payout"].search([("backend_id", "=", self.backend.id)])
        transactions = payouts.transaction_ids
        before = [
            (p.id, p.status, p.net_amount, p.sync_date, p.payload_hash, p.transaction_count)
            for p in payouts
        ]
        done, _retries = import_payouts(self)
        self.assertEqual(done, ["_shopify_import_payouts"], "no transaction read again")
        payouts = self.env["shopify.payout"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(
            [
                (p.id, p.status, p.net_amount, p.sync_date, p.payload_hash, p.transaction_count)
                for p in payouts
            ],
            before,
        )
        self.assertEqual(payouts.transaction_ids, transactions)

    def test_payout_paid_after_import_is_updated(self):
        import_payouts(self)
        payout = self.payout_of(self.payout_ids[0])
        self.assertEqual(payout.status, "in_transit")
        transactions = payout.transaction_ids
        self.shop.set_payout_status(self.payout_ids[0], "PAID")
        self.addCleanup(self.shop.set_payout_status, self.payout_ids[0], "IN_TRANSIT")
        import_payouts(self)
        self.assertEqual(payout.status, "paid")
        self.assertEqual(self.payout_of(self.payout_ids[0]), payout, "updated, not duplicated")
        self.assertEqual(payout.transaction_ids, transactions)
        self.assertFalse(payout.amount_mismatch)

    def test_payout_whose_transactions_do_not_add_up_is_flagged(self):
        store_payout = self.shop.store.payouts[self.payout_ids[0]]
        with self.shop.lock:
            store_payout["_net"] += Decimal("0.05")

        def restore():
            with self.shop.lock:
                store_payout["_net"] -= Decimal("0.05")

        self.addCleanup(restore)
        import_payouts(self)
        payout = self.payout_of(self.payout_ids[0])
        self.assertTrue(payout.transactions_complete)
        self.assertTrue(payout.amount_mismatch)
        self.assertIn("difference", payout.mismatch_message)
        flagged = self.env["shopify.payout"].search([("amount_mismatch", "=", True)])
        self.assertIn(payout, flagged)

    def test_cron_reads_again_from_the_oldest_payout_still_on_its_way(self):
        import_payouts(self)
        on_its_way = self.env["shopify.payout"].search(
            [("backend_id", "=", self.backend.id), ("status", "=", "in_transit")]
        )
        self.assertTrue(on_its_way)
        policy = self.backend._policy("payouts_in")
        # Long after the newest payout read: the payout in transit still counts.
        later = fields.Datetime.now() + timedelta(days=60)
        policy.watermark = later.strftime("%Y-%m-%dT%H:%M:%SZ")
        with trap_jobs() as trap:
            self.env["connector.backend"]._cron_shopify_import_payouts()
            jobs = [job for job in trap.enqueued_jobs if job.recordset == self.backend]
            self.assertEqual(len(jobs), 1)
            self.assertEqual(
                jobs[0].args[0], min(on_its_way.mapped("date")).strftime("%Y-%m-%dT%H:%M:%SZ")
            )
        policy.enabled = False
        with trap_jobs() as trap:
            self.env["connector.backend"]._cron_shopify_import_payouts()
            self.assertFalse([job for job in trap.enqueued_jobs if job.recordset == self.backend])

    def test_users_of_another_company_see_no_payout(self):
        import_payouts(self)
        other = self.env["res.company"].create({"name": "Other retail company"})
        Users = self.env["res.users"].with_context(no_reset_password=True)
        stranger = Users.create(
            {
                "name": "Support of the other company",
                "login": "payout-stranger",
                "company_id": other.id,
                "company_ids": [Command.set(other.ids)],
                "group_ids": [Command.set(self.env.ref("connector_base.group_connector_user").ids)],
            }
        )
        accountant = Users.create(
            {
                "name": "Accountant",
                "login": "payout-accountant",
                "group_ids": [Command.set(self.env.ref("account.group_account_readonly").ids)],
            }
        )
        Payout = self.env["shopify.payout"]
        self.assertFalse(Payout.with_user(stranger).search([]))
        self.assertFalse(self.env["shopify.payout.transaction"].with_user(stranger).search([]))
        seen = Payout.with_user(accountant).search([("backend_id", "=", self.backend.id)])
        self.assertEqual(len(seen), len(self.payout_ids))
        self.assertTrue(seen.transaction_ids.mapped("net_amount"))


class TestPayoutPages(TransactionCase):
    """A store with weeks of payouts: many pages, faults, orders imported later."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        # A generous bucket: these tests are about faults and pages, not pacing.
        cls.shop = start_shop(
            cls, seed=53, products=8, orders=60, restore_rate=50000, bucket_size=50000
        )
        cls.backend = make_backend(cls.env, base_url=cls.shop.url, circuit_threshold=50)
        make_products(cls.env, sorted({row["sku"] for row in cls.shop.inventory()}), on_hand=500)
        cls.truth = ground_truth(cls.shop)

    def setUp(self):
        super().setUp()
        # Small pages, so that a few weeks of payouts take several of them.
        for name, size in (("PAYOUTS_PAGE_SIZE", 4), ("TRANSACTIONS_PAGE_SIZE", 2)):
            patcher = patch.object(mapper_payout, name, size)
            patcher.start()
            self.addCleanup(patcher.stop)

    def test_many_payouts_under_throttling_and_errors_are_imported_exactly_once(self):
        self.assertGreater(len(self.truth), 3 * mapper_payout.PAYOUTS_PAGE_SIZE)
        self.shop.faults.add(
            "throttle", rate=0.15, endpoint="graphql:shopifyPaymentsAccount", retry_after=1
        )
        self.shop.faults.add(
            "error", rate=0.10, status=502, endpoint="graphql:shopifyPaymentsAccount"
        )
        self.addCleanup(self.shop.faults.clear)
        done, retries = import_payouts(self)
        self.assertGreater(retries, 0, "the faults were met and retried")
        self.assertGreater(done.count("_shopify_import_payouts"), 3)
        payouts = self.env["shopify.payout"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(sorted(payouts.mapped("external_id")), sorted(self.truth))
        for payout in payouts:
            expected = self.truth[payout.external_id]
            self.assertEqual(payout.status, "paid")
            self.assertAlmostEqual(payout.net_amount, float(expected["net"]), places=2)
            self.assertEqual(
                sorted(payout.transaction_ids.mapped("external_id")),
                sorted(expected["balance_transactions"]),
            )
            self.assertFalse(payout.amount_mismatch, payout.mismatch_message)
        self.assertEqual(
            len(payouts.transaction_ids),
            sum(len(p["balance_transactions"]) for p in self.truth.values()),
        )
        newest = max(p["issued_at"] for p in self.truth.values())
        self.assertEqual(self.backend._policy("payouts_in").watermark, newest)
        # Read again, from scratch: the same payouts, none twice.
        self.shop.faults.clear()
        self.backend._policy("payouts_in").watermark = False
        import_payouts(self)
        again = self.env["shopify.payout"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(again, payouts)

    def test_orders_imported_after_their_payout_are_linked(self):
        import_payouts(self)
        transactions = self.env["shopify.payout.transaction"].search(
            [("backend_id", "=", self.backend.id)]
        )
        self.assertTrue(transactions)
        self.assertTrue(all(t.shopify_order_id for t in transactions))
        self.assertFalse(transactions.sale_order_id, "no order imported yet")
        with trap_jobs() as trap:
            self.backend.with_delay()._shopify_backfill_orders("2000-01-01T00:00:00Z")
            run_jobs(self, trap, limit=5000)
        for transaction in transactions:
            self.assertEqual(
                transaction.sale_order_id.client_order_ref, transaction.shopify_order_name
            )
