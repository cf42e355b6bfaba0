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

from odoo import fields
from odoo.tests import TransactionCase, tagged

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs
from odoo.addons.connector_finance.tests.common import bank_line, customer_payment, odoo_account
from odoo.addons.connector_shopify.tests.common import ensure_chart_of_accounts, make_backend


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
        cls.finance = env["connector.backend"].create(
            {
                "name": "Book of record",
                "backend_type": "finance",
                "finance_tenant_id": "tenant",
                "finance_bank_journal_id": cls.payout_journal.id,
                "finance_shopify_fee_account_id": cls.fee_account.id,
                "state": "running",
            }
        )
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
