"""A Shopify Payments payout, imported by the Shopify connector, settled by
the finance connector: its charges matched to the orders' payments, its
refunds to the refunds' payments, Shopify's fees booked to the fee account
and the payout reconciled with its bank line.

Neither connector knows the other: the finance connector reads the payouts
connector_shopify keeps (through the registry), never Shopify itself. The
payouts and their balance transactions are created here as that import makes
them, and the orders' payments as the Shopify connector records them (one
posted inbound payment per paid order, its memo the order name).
"""

from datetime import timedelta

from odoo import Command, fields
from odoo.tests import TransactionCase, tagged

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs
from odoo.addons.connector_finance.tests.common import bank_line, customer_payment, odoo_account
from odoo.addons.connector_shopify.tests.common import (
    connect_store,
    ensure_chart_of_accounts,
    make_backend,
)


def book_of_record(env, payout_journal, fee_account):
    """The accounting system backend that settles the store's payouts: their
    bank journal and the fee account of Shopify's fees (no API call made),
    connected a month ago (the payouts of the tests are of the last days)."""
    return env["connector.backend"].create(
        {
            "name": "Book of record",
            "backend_type": "finance",
            "finance_tenant_id": "tenant",
            "finance_bank_journal_id": payout_journal.id,
            "finance_shopify_fee_account_id": fee_account.id,
            "finance_settle_from": fields.Date.today() - timedelta(days=30),
            "state": "running",
        }
    )


@tagged("post_install", "-at_install")
class TestShopifyPayoutSettled(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        ensure_chart_of_accounts(env)
        env.company.currency_id = env.ref("base.EUR")
        cls.shopify = make_backend(env)
        cls.payout_journal = env["account.journal"].create(
            {"name": "Payouts bank", "type": "bank", "code": "SHPB"}
        )
        cls.fee_account = odoo_account(env, "404", "Shopify Payments fees")
        cls.finance = book_of_record(env, cls.payout_journal, cls.fee_account)
        cls.customer = env["res.partner"].create({"name": "Online customer"})
        cls.gateway = env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", env.company.id)], limit=1
        )
        cls.number = 0

    def payout(self, transactions, status="paid", net=None):
        """A payout and its balance transactions as connector_shopify imports them:
        ``transactions`` of ``(category, order name, gross, fee)``."""
        type(self).number += 1
        number = f"9{self.number:04d}"
        issued = fields.Datetime.now() - timedelta(days=1)
        rows = [
            {
                "backend_id": self.shopify.id,
                "external_id": f"gid://shopify/ShopifyPaymentsBalanceTransaction/{number}{index}",
                "category": category,
                "shopify_type": category.upper(),
                "processed_at": issued - timedelta(hours=index + 1),
                "amount": gross,
                "fee": fee,
                "net_amount": round(gross - fee, 2),
                "shopify_order_id": f"{number}{index}",
                "shopify_order_name": name,
            }
            for index, (category, name, gross, fee) in enumerate(transactions)
        ]
        total = round(sum(row["net_amount"] for row in rows), 2)
        payout = self.env["shopify.payout"].create(
            {
                "backend_id": self.shopify.id,
                "external_id": f"gid://shopify/ShopifyPaymentsPayout/{number}",
                "shopify_payout_id": number,
                "date": issued,
                "status": status,
                "transaction_type": "deposit",
                "currency_id": self.env.ref("base.EUR").id,
                "net_amount": total if net is None else net,
                "charges_gross": sum(r["amount"] for r in rows if r["category"] == "charge"),
                "charges_fee": sum(r["fee"] for r in rows if r["category"] == "charge"),
                "refunds_gross": sum(r["amount"] for r in rows if r["category"] == "refund"),
                "transactions_complete": True,
            }
        )
        self.env["shopify.payout.transaction"].create(
            [{**row, "payout_id": payout.id} for row in rows]
        )
        return payout

    def pay(self, order_name, amount, outbound=False):
        return customer_payment(
            self.env, order_name, amount, self.customer, outbound=outbound, journal=self.gateway
        )

    def settle(self):
        with trap_jobs() as trap:
            self.finance.action_finance_read_settlements()
            run_trapped_jobs(self.env, trap)
        return self.env["finance.settlement"].search(
            [("backend_id", "=", self.finance.id), ("source", "=", "shopify")]
        )

    def test_payout_matched_fees_booked_and_reconciled(self):
        first = self.pay("#1001", 59.90)
        second = self.pay("#1002", 120.00)
        refund = self.pay("#1001", 19.95, outbound=True)
        payout = self.payout(
            [
                ("charge", "#1001", 59.90, 1.99),
                ("charge", "#1002", 120.00, 3.73),
                ("refund", "#1001", -19.95, 0.0),
            ]
        )
        st_line = bank_line(
            self.env,
            self.payout_journal,
            payout.net_amount,
            f"SHOPIFY PAYMENTS PAYOUT {payout.shopify_payout_id}",
        )

        settlement = self.settle()

        self.assertEqual(settlement.state, "reconciled", settlement.state_message)
        self.assertEqual(settlement.payout_res_id, payout.id)
        self.assertEqual(payout.finance_state, "exported")
        self.assertAlmostEqual(settlement.fee_total, 5.72, places=2)
        self.assertTrue(st_line.is_reconciled)
        for payment in (first, second, refund):
            liquidity = payment._seek_for_lines()[0]
            self.assertTrue(liquidity.full_reconcile_id, f"{payment.display_name}: partial")
            self.assertTrue(payment.is_matched)
        fees = st_line.move_id.line_ids.filtered(lambda ln: ln.account_id == self.fee_account)
        self.assertAlmostEqual(fees.balance, 5.72, places=2)
        # Taken once: read again, nothing new.
        self.assertEqual(self.settle(), settlement)

    def test_payout_with_a_missing_payment_is_listed(self):
        self.pay("#2001", 40.00)
        payout = self.payout([("charge", "#2001", 40.00, 1.46), ("charge", "#2002", 75.00, 2.48)])
        bank_line(self.env, self.payout_journal, payout.net_amount, "SHOPIFY PAYOUT")

        settlement = self.settle()

        self.assertEqual(settlement.state, "mismatch")
        self.assertEqual(payout.finance_state, "to_export")
        mismatch = self.env["connector.reconciliation.mismatch"].search(
            [("backend_id", "=", self.finance.id), ("state", "=", "open")]
        )
        self.assertEqual(len(mismatch), 1)
        self.assertIn("#2002", mismatch.business_key)
        self.assertIn("75.00", mismatch.remote_value)

    def test_payout_not_paid_yet_waits(self):
        self.payout([("charge", "#3001", 10.00, 0.39)], status="in_transit")
        self.assertFalse(self.settle())

    def test_payout_issued_before_the_settling_start_is_left_alone(self):
        """A store connected with its history: the payouts of before the
        connection pay orders Odoo never imported, and are not taken."""
        self.assertEqual(
            self.env["connector.backend"].default_get(["finance_settle_from"]),
            {"finance_settle_from": fields.Date.context_today(self.finance)},
        )
        self.pay("#4001", 30.00)
        payout = self.payout([("charge", "#4001", 30.00, 0.70)])
        bank_line(
            self.env,
            self.payout_journal,
            payout.net_amount,
            f"SHOPIFY PAYMENTS PAYOUT {payout.shopify_payout_id}",
        )
        self.finance.finance_settle_from = payout.date.date() + timedelta(days=1)

        self.assertFalse(self.settle())
        self.assertEqual(payout.finance_state, "to_export")
        self.assertFalse(
            self.env["connector.reconciliation.mismatch"].search(
                [("backend_id", "=", self.finance.id)]
            )
        )

        # Odoo has that day's orders after all: the day set earlier takes it.
        self.finance.finance_settle_from = payout.date.date()
        settlement = self.settle()
        self.assertEqual(settlement.payout_res_id, payout.id)
        self.assertEqual(settlement.state, "reconciled", settlement.state_message)


@tagged("post_install", "-at_install")
class TestShopifyPayoutFromTheStore(TransactionCase):
    """The whole way: orders and a refund imported from the Shopify simulator
    (their payments recorded by the Shopify connector), the payout imported
    by it, then settled and reconciled by the finance connector."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        env = cls.env
        ensure_chart_of_accounts(env)
        env.company.currency_id = env.ref("base.EUR")
        connect_store(cls, sku_count=2, on_hand=20, seed=44, products=8)
        for flow in ("stock_out", "fulfillment_out"):
            cls.backend._policy(flow).enabled = False
        Journal = env["account.journal"]
        cls.card_journal = Journal.create(
            {"name": "Shopify Payments", "type": "bank", "code": "SHPAY"}
        )
        cls.backend.shopify_payment_method_ids = [
            Command.create({"gateway": "shopify_payments", "journal_id": cls.card_journal.id})
        ]
        cls.payout_journal = Journal.create(
            {"name": "Payouts bank", "type": "bank", "code": "SHPB"}
        )
        cls.fee_account = odoo_account(env, "404", "Shopify Payments fees")
        cls.finance = book_of_record(env, cls.payout_journal, cls.fee_account)

    def receive(self, topic, payload):
        return self.env["connector.event"]._receive(
            self.backend,
            topic,
            payload,
            f"wh-{topic}-{payload['id']}-{payload.get('updated_at', payload['created_at'])}",
        )

    def test_orders_refund_and_payout_imported_then_settled(self):
        with trap_jobs() as trap:
            first = self.shop.create_order([(self.skus[0], 2)], currency="EUR")
            second = self.shop.create_order([(self.skus[1], 1)], currency="EUR")
            for payload in (first, second):
                self.receive("orders/create", payload)
            run_trapped_jobs(self.env, trap)
            refund = self.shop.refund_order(first["id"], {self.skus[0]: 1})
            self.receive("refunds/create", refund)
            self.receive("orders/updated", self.shop.order(first["id"]))
            run_trapped_jobs(self.env, trap)
        self.shop.create_payout(status="PAID")
        with trap_jobs() as trap:
            self.backend.action_shopify_import_payouts()
            run_trapped_jobs(self.env, trap)
        payout = self.env["shopify.payout"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(len(payout), 1)
        self.assertEqual(set(payout.transaction_ids.mapped("category")), {"charge", "refund"})
        st_line = bank_line(
            self.env,
            self.payout_journal,
            payout.net_amount,
            f"SHOPIFY PAYOUT {payout.shopify_payout_id}",
        )

        with trap_jobs() as trap:
            self.finance.action_finance_read_settlements()
            run_trapped_jobs(self.env, trap)

        settlement = self.env["finance.settlement"].search([("backend_id", "=", self.finance.id)])
        self.assertEqual(settlement.state, "reconciled", settlement.state_message)
        self.assertEqual(payout.finance_state, "exported")
        self.assertTrue(st_line.is_reconciled)
        orders = self.env["shopify.order.binding"].search([("backend_id", "=", self.backend.id)])
        refunds = self.env["shopify.refund.binding"].search([("backend_id", "=", self.backend.id)])
        payments = orders.payment_id | refunds.payment_ids
        self.assertEqual(len(payments), 3)
        self.assertEqual(settlement.line_ids.payment_id, payments)
        for payment in payments:
            self.assertTrue(payment._seek_for_lines()[0].full_reconcile_id, payment.display_name)
        fees = st_line.move_id.line_ids.filtered(lambda ln: ln.account_id == self.fee_account)
        self.assertAlmostEqual(fees.balance, sum(payout.transaction_ids.mapped("fee")), places=2)
