from odoo import fields
from odoo.fields import Command
from odoo.tests import BaseCase, TransactionCase, tagged

from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs

from ..components.mapper_order import order_values, payment_values, shopify_time
from .common import connect_store, ensure_chart_of_accounts, order_payload


class TestOrderPaymentMapper(BaseCase):
    """What the customer paid, read from the order: only captured money."""

    def paid(self, **changes):
        return payment_values(order_values(order_payload(**changes)))

    def test_captured_statuses_pay_the_order_total_through_the_first_gateway(self):
        gateways = ["shopify_payments", "gift_card"]
        for status in ("paid", "partially_refunded", "refunded"):
            self.assertEqual(
                self.paid(financial_status=status, payment_gateway_names=gateways),
                {"amount": 105.0, "gateway": "shopify_payments"},
                status,
            )

    def test_money_not_captured_pays_nothing(self):
        for status in ("pending", "authorized", "partially_paid", "voided", None):
            self.assertIsNone(self.paid(financial_status=status), status)
        self.assertIsNone(self.paid(total_price="0.00"), "a free order moved no money")

    def test_an_order_marked_paid_without_gateway_is_shopifys_manual_one(self):
        self.assertEqual(self.paid(payment_gateway_names=[])["gateway"], "manual")


@tagged("post_install", "-at_install")
class TestOrderPayment(TransactionCase):
    """An order Shopify captured the money of has exactly one posted customer
    payment in Odoo, in its gateway's journal, its memo the Shopify order
    number that payouts name; an order not paid has none."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        ensure_chart_of_accounts(cls.env)
        connect_store(cls, sku_count=2, on_hand=20, seed=43, products=8)
        # Stock levels and fulfillments are not under test here.
        for flow in ("stock_out", "fulfillment_out"):
            cls.backend._policy(flow).enabled = False
        Journal = cls.env["account.journal"]
        cls.card_journal = Journal.create(
            {"name": "Shopify Payments", "type": "bank", "code": "SHPAY"}
        )
        cls.deposit_journal = Journal.create(
            {"name": "Bank deposits", "type": "bank", "code": "SHDEP"}
        )
        cls.backend.shopify_payment_method_ids = [
            Command.create({"gateway": "shopify_payments", "journal_id": cls.card_journal.id}),
            Command.create({"gateway": "bank_deposit", "journal_id": cls.deposit_journal.id}),
        ]
        cls.Event = cls.env["connector.event"]
        cls.Payment = cls.env["account.payment"]

    # --- helpers ------------------------------------------------------------------

    def receive(self, topic, payload, webhook_id=None):
        return self.Event._receive(
            self.backend,
            topic,
            payload,
            webhook_id
            or f"wh-{topic}-{payload['id']}-{payload.get('updated_at', payload['created_at'])}",
        )

    def run_jobs(self, trap):
        run_trapped_jobs(self.env, trap)

    def binding(self, payload):
        return self.env["shopify.order.binding"]._find(self.backend, payload["id"])

    def payments_of(self, payload):
        """Every customer payment Odoo has for the order, as a payout's
        transaction naming the order would find them: by its number."""
        return self.Payment.search(
            [("memo", "=", payload["name"]), ("payment_type", "=", "inbound")]
        )

    def assert_paid(self, payload, journal, paid_at):
        """The order has one posted inbound payment of its total, as an
        accountant checks it; returns it."""
        binding = self.binding(payload)
        payment = self.payments_of(payload)
        self.assertEqual(len(payment), 1, "one payment for the order")
        self.assertEqual(binding.payment_id, payment)
        self.assertEqual(binding.odoo_id.shopify_payment_id, payment)
        self.assertEqual((payment.payment_type, payment.partner_type), ("inbound", "customer"))
        self.assertIn(payment.state, ("in_process", "paid"), "posted")
        if payment.move_id:
            self.assertEqual(payment.move_id.state, "posted")
        self.assertEqual(payment.partner_id, binding.odoo_id.partner_invoice_id)
        self.assertEqual(payment.currency_id.name, payload["currency"])
        self.assertAlmostEqual(payment.amount, float(payload["total_price"]), places=2)
        self.assertEqual(payment.journal_id, journal)
        self.assertEqual((payment.memo, payment.payment_reference), (payload["name"],) * 2)
        self.assertEqual(
            payment.date,
            fields.Date.context_today(payment, timestamp=shopify_time(paid_at)),
        )
        return payment

    # --- paid orders ----------------------------------------------------------------

    def test_paid_order_gets_one_posted_payment_of_its_total_in_its_gateways_journal(self):
        payload = self.shop.create_order([(self.skus[0], 2), (self.skus[1], 1)])
        self.assertEqual(payload["financial_status"], "paid")
        self.assertEqual(payload["payment_gateway_names"], ["shopify_payments"])
        with trap_jobs() as trap:
            event = self.receive("orders/create", payload)
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        payment = self.assert_paid(payload, self.card_journal, payload["processed_at"])
        # What the sale order totals, the customer paid.
        self.assertAlmostEqual(payment.amount, self.binding(payload).odoo_id.amount_total, 2)
        self.assertIn(
            "Paid in Shopify through shopify_payments",
            str(self.binding(payload).odoo_id.message_ids.mapped("body")),
        )

    def test_an_order_delivered_again_updated_replayed_or_polled_is_paid_once(self):
        payload = self.shop.create_order([(self.skus[0], 1)])
        with trap_jobs() as trap:
            created = self.receive("orders/create", payload, "wh-1")
            again = self.receive("orders/create", payload, "wh-1")
            other_id = self.receive("orders/create", payload, "wh-2")
            updated = self.receive("orders/updated", payload, "wh-3")
            self.run_jobs(trap)
            self.assertEqual(created.state, "done", created.error_message)
            self.assertEqual(again.state, "duplicate")
            changed = self.shop.update_order(payload["id"], note="leave at the door")
            self.receive("orders/updated", changed)
            self.run_jobs(trap)
            created.action_replay("checking")
            self.run_jobs(trap)
            # Polling reads the order again (GraphQL, as a missed webhook would be).
            self.backend.with_delay()._shopify_backfill_orders("2000-01-01T00:00:00Z")
            self.run_jobs(trap)
        self.assertIn(other_id.state, ("done", "duplicate"))
        self.assertIn(updated.state, ("done", "duplicate"))
        self.assertIn("leave at the door", str(self.binding(payload).odoo_id.note))
        events = self.Event.search([("backend_id", "=", self.backend.id)])
        self.assertFalse(events.filtered(lambda e: e.state == "failed"), "nothing failed")
        self.assert_paid(payload, self.card_journal, payload["processed_at"])

    def test_an_order_polled_before_any_webhook_is_paid_from_the_graphql_order(self):
        payload = self.shop.create_order([(self.skus[1], 3)])
        with trap_jobs() as trap:
            self.backend.with_delay()._shopify_backfill_orders("2000-01-01T00:00:00Z")
            self.run_jobs(trap)
            self.assert_paid(payload, self.card_journal, payload["processed_at"])
            # Its webhook, arriving late, finds the payment.
            self.receive("orders/create", payload)
            self.run_jobs(trap)
        self.assert_paid(payload, self.card_journal, payload["processed_at"])

    # --- orders not paid, or paid later ---------------------------------------------

    def test_pending_order_has_no_payment_until_it_is_paid_then_one(self):
        payload = self.shop.create_order([(self.skus[0], 1)], paid=False)
        self.assertEqual(payload["financial_status"], "pending")
        with trap_jobs() as trap:
            self.receive("orders/create", payload)
            self.run_jobs(trap)
            self.assertEqual(self.binding(payload).odoo_id.state, "sale")
            self.assertFalse(self.payments_of(payload))
            self.assertFalse(self.binding(payload).payment_id)
            paid = self.shop.mark_order_paid(payload["id"])
            self.assertEqual(paid["financial_status"], "paid")
            event = self.receive("orders/updated", paid)
            self.run_jobs(trap)
            self.assertEqual(event.state, "done", event.error_message)
            # Paid by bank deposit: in that gateway's journal, dated when it was paid.
            payment = self.assert_paid(paid, self.deposit_journal, paid["updated_at"])
            self.assertEqual(self.binding(paid).financial_status, "paid")
            # Later updates, and a poll, leave it alone.
            changed = self.shop.update_order(payload["id"], note="paid at the counter")
            self.receive("orders/updated", changed)
            self.backend.with_delay()._shopify_backfill_orders("2000-01-01T00:00:00Z")
            self.run_jobs(trap)
        self.assertEqual(self.assert_paid(paid, self.deposit_journal, paid["updated_at"]), payment)

    def test_pending_order_paid_while_no_webhook_came_is_paid_when_polled(self):
        payload = self.shop.create_order([(self.skus[0], 2)], paid=False)
        with trap_jobs() as trap:
            self.receive("orders/create", payload)
            self.run_jobs(trap)
            paid = self.shop.mark_order_paid(payload["id"])
            self.backend.with_delay()._shopify_backfill_orders("2000-01-01T00:00:00Z")
            self.run_jobs(trap)
        self.assert_paid(paid, self.deposit_journal, paid["updated_at"])

    def test_orders_pending_authorized_or_voided_get_no_payment(self):
        pending = self.shop.create_order([(self.skus[0], 1)], paid=False)
        # The simulated store takes no card authorizations: the webhook
        # Shopify sends for an order whose card was authorized, not captured.
        authorized = dict(
            self.shop.create_order([(self.skus[1], 1)], paid=False),
            financial_status="authorized",
            payment_gateway_names=["shopify_payments"],
        )
        to_void = self.shop.create_order([(self.skus[0], 2)], paid=False)
        with trap_jobs() as trap:
            for payload in (pending, authorized, to_void):
                self.receive("orders/create", payload)
            self.run_jobs(trap)
            voided = self.shop.cancel_order(to_void["id"])
            self.assertEqual(voided["financial_status"], "voided")
            self.receive("orders/cancelled", voided)
            self.receive("orders/updated", voided)
            self.run_jobs(trap)
        for payload in (pending, authorized, voided):
            self.assertTrue(self.binding(payload), payload["name"])
            self.assertFalse(self.binding(payload).payment_id, payload["name"])
            self.assertFalse(self.payments_of(payload), payload["name"])
        self.assertEqual(self.binding(voided).odoo_id.state, "cancel")

    def test_backend_that_does_not_register_payments_makes_none(self):
        self.backend.shopify_register_payments = False
        payload = self.shop.create_order([(self.skus[0], 1)])
        pending = self.shop.create_order([(self.skus[1], 1)], paid=False)
        with trap_jobs() as trap:
            event = self.receive("orders/create", payload)
            self.receive("orders/create", pending)
            self.run_jobs(trap)
            self.receive("orders/updated", self.shop.mark_order_paid(pending["id"]))
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(self.binding(payload).odoo_id.state, "sale")
        self.assertFalse(self.payments_of(payload))
        self.assertFalse(self.payments_of(pending))

    # --- bad input ----------------------------------------------------------------

    def test_paid_order_whose_gateway_has_no_journal_fails_whole_then_imports_once_mapped(self):
        # No journal for the gateway: no mapping, and no bank journal to fall back on.
        self.backend.shopify_payment_method_ids.unlink()
        self.env["account.journal"].search(
            [("company_id", "=", self.env.company.id), ("type", "=", "bank")]
        ).action_archive()
        payload = self.shop.create_order([(self.skus[0], 1)])
        with trap_jobs() as trap:
            event = self.receive("orders/create", payload)
            self.run_jobs(trap)
            self.assertEqual(event.state, "failed")
            self.assertEqual(event.error_kind, "business")
            self.assertIn(
                "No journal for the Shopify gateway 'shopify_payments': map it to a bank "
                "journal in the Mappings tab",
                event.error_message,
            )
            self.assertFalse(self.binding(payload), "nothing imported half-way")
            self.assertFalse(
                self.env["sale.order"].search([("client_order_ref", "=", payload["name"])])
            )
            self.assertFalse(self.payments_of(payload))
            self.backend.shopify_payment_method_ids = [
                Command.create({"gateway": "shopify_payments", "journal_id": self.card_journal.id})
            ]
            self.card_journal.action_unarchive()
            event.action_requeue()
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        self.assert_paid(payload, self.card_journal, payload["processed_at"])

    def test_order_paid_later_through_an_unmapped_gateway_fails_its_update_whole(self):
        payload = self.shop.create_order([(self.skus[0], 1)], paid=False)
        with trap_jobs() as trap:
            self.receive("orders/create", payload)
            self.run_jobs(trap)
            self.backend.shopify_payment_method_ids.unlink()
            self.env["account.journal"].search(
                [("company_id", "=", self.env.company.id), ("type", "=", "bank")]
            ).action_archive()
            paid = self.shop.mark_order_paid(payload["id"])
            event = self.receive("orders/updated", paid)
            self.run_jobs(trap)
            self.assertEqual(event.state, "failed")
            self.assertIn("No journal for the Shopify gateway 'bank_deposit'", event.error_message)
            self.assertEqual(self.binding(payload).financial_status, "pending", "not half-done")
            self.assertFalse(self.payments_of(payload))
            self.deposit_journal.action_unarchive()
            self.backend.shopify_payment_method_ids = [
                Command.create({"gateway": "bank_deposit", "journal_id": self.deposit_journal.id})
            ]
            event.action_requeue()
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        self.assert_paid(paid, self.deposit_journal, paid["updated_at"])

    # --- refunds and cancellations --------------------------------------------------

    def test_refunds_keep_their_own_payments_and_the_orders_stays(self):
        payload = self.shop.create_order([(self.skus[0], 2)])
        with trap_jobs() as trap:
            self.receive("orders/create", payload)
            self.run_jobs(trap)
            payment = self.assert_paid(payload, self.card_journal, payload["processed_at"])
            refund = self.shop.refund_order(payload["id"], {self.skus[0]: 1})
            refund_event = self.receive("refunds/create", refund)
            updated = self.shop.order(payload["id"])
            self.assertEqual(updated["financial_status"], "partially_refunded")
            self.receive("orders/updated", updated)
            self.run_jobs(trap)
        self.assertEqual(refund_event.state, "done", refund_event.error_message)
        refund_binding = self.env["shopify.refund.binding"]._find(self.backend, refund["id"])
        money_back = refund_binding.payment_ids
        self.assertEqual(len(money_back), 1)
        self.assertEqual(money_back.payment_type, "outbound")
        self.assertEqual(money_back.journal_id, self.card_journal)
        self.assertNotEqual(money_back, payment)
        self.assertEqual(
            self.assert_paid(updated, self.card_journal, payload["processed_at"]), payment
        )

    def test_cancelled_paid_order_keeps_its_payment_and_the_refund_pays_back(self):
        payload = self.shop.create_order([(self.skus[1], 1)])
        with trap_jobs() as trap:
            self.receive("orders/create", payload)
            self.run_jobs(trap)
            payment = self.assert_paid(payload, self.card_journal, payload["processed_at"])
            cancelled = self.shop.cancel_order(payload["id"])
            self.assertEqual(cancelled["financial_status"], "refunded")
            refund = cancelled["refunds"][0]
            self.receive("refunds/create", refund)
            self.receive("orders/cancelled", cancelled)
            self.receive("orders/updated", cancelled)
            self.run_jobs(trap)
        self.assertEqual(self.binding(payload).odoo_id.state, "cancel")
        self.assertEqual(
            self.assert_paid(cancelled, self.card_journal, payload["processed_at"]), payment
        )
        money_back = (
            self.env["shopify.refund.binding"]._find(self.backend, refund["id"]).payment_ids
        )
        self.assertEqual(money_back.payment_type, "outbound")
        self.assertAlmostEqual(money_back.amount, payment.amount, places=2)
