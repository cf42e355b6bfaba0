from datetime import datetime, timedelta

from odoo.tests import TransactionCase

from odoo.addons.connector_base.tests.common import trap_jobs
from odoo.addons.connector_shopify.models.shopify_backend import ORDER_SHARDS, order_shard

from .common import make_backend, make_products, order_payload, run_jobs

# Order ids of one key space: one batch job applies their events together.
SAME_SHARD = [5000 + ORDER_SHARDS * i for i in range(3)]


class TestOrderBatch(TransactionCase):
    """At flash-sale volume one job applies a key space's order events, each
    as a job of its own would: exactly once, in order, failing alone."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        cls.backend = make_backend(cls.env)
        # No remote behind this backend: only the orders flow is under test here.
        for flow in ("stock_out", "fulfillment_out"):
            cls.backend._policy(flow).enabled = False
        cls.products = make_products(cls.env)
        cls.Event = cls.env["connector.event"]
        cls.start = datetime(2026, 11, 27, 9, 0)

    def deliver(self, topic, payload, webhook_id, minutes=0):
        return self.Event._receive(
            self.backend,
            topic,
            payload,
            webhook_id,
            occurred_at=self.start + timedelta(minutes=minutes),
        )

    def order(self, number, **changes):
        return order_payload(id=number, name=f"#{number}", **changes)

    def sale_order(self, number):
        return self.env["shopify.order.binding"]._find(self.backend, number).odoo_id

    def test_order_events_are_spread_over_key_spaces_stable_per_order(self):
        shards = {order_shard({"id": number}) for number in range(5000, 5000 + ORDER_SHARDS)}
        self.assertEqual(len(shards), ORDER_SHARDS, "several jobs side by side")
        created = self.deliver("orders/create", self.order(5001), "wh-k1")
        updated = self.deliver("orders/updated", self.order(5001, note="later"), "wh-k2", 1)
        self.assertEqual(created.batch_key, updated.batch_key, "an order stays in one key space")

    def test_one_bad_order_fails_alone_then_applies_after_the_fix_and_a_requeue(self):
        good, bad, other = SAME_SHARD
        payloads = [self.order(good), self.order(bad), self.order(other)]
        payloads[1]["line_items"][0]["sku"] = "MUG-RED"
        payloads[1]["line_items"][0]["variant_id"] = 39079999
        with trap_jobs() as trap:
            events = [
                self.deliver("orders/create", payload, f"wh-b{i}", minutes=i)
                for i, payload in enumerate(payloads)
            ]
            jobs, _retries = run_jobs(self, trap)
            self.assertEqual(jobs, ["_dispatch_received", "_process_batch"], "one job for all")
            self.assertEqual([e.state for e in events], ["done", "failed", "done"])
            self.assertEqual(events[1].error_kind, "business")
            self.assertIn("unknown SKU 'MUG-RED'", events[1].error_message)
            self.assertEqual(self.sale_order(good).state, "sale")
            self.assertEqual(self.sale_order(other).state, "sale")
            self.assertFalse(self.sale_order(bad), "nothing of the bad order kept")
            make_products(self.env, ["MUG-RED"])
            events[1].action_requeue()
            run_jobs(self, trap)
        self.assertEqual(events[1].state, "done")
        self.assertEqual(self.sale_order(bad).client_order_ref, f"#{bad}")
        self.assertEqual(
            self.env["sale.order"].search_count([("client_order_ref", "in", ["#5000", "#5008"])]),
            2,
            "the others not applied again",
        )

    def test_updates_in_one_batch_apply_in_the_order_they_occurred(self):
        number = SAME_SHARD[0]
        with trap_jobs() as trap:
            self.deliver("orders/create", self.order(number), "wh-c0")
            run_jobs(self, trap)
            # Delivered newest first, in one burst: one job applies both, oldest first.
            newer = self.deliver("orders/updated", self.order(number, note="ring"), "wh-u2", 2)
            older = self.deliver("orders/updated", self.order(number, note="knock"), "wh-u1", 1)
            jobs, _retries = run_jobs(self, trap)
        self.assertEqual(jobs, ["_dispatch_received", "_process_batch"])
        # The newer applied first would have left the older one stale.
        self.assertEqual((older.state, newer.state), ("done", "done"))
        self.assertIn("ring", str(self.sale_order(number).note), "the newest last")

    def test_update_in_the_batch_of_its_creation_applies_after_it(self):
        number = SAME_SHARD[1]
        with trap_jobs() as trap:
            # Shopify's update overtakes the creation it follows.
            updated = self.deliver("orders/updated", self.order(number, note="gift"), "wh-u", 1)
            created = self.deliver("orders/create", self.order(number), "wh-c")
            jobs, _retries = run_jobs(self, trap)
        self.assertEqual(jobs, ["_dispatch_received", "_process_batch"], "one job for both")
        # The update applied first would have made the order, its creation stale.
        self.assertEqual((created.state, updated.state), ("done", "done"))
        orders = self.env["sale.order"].search([("client_order_ref", "=", f"#{number}")])
        self.assertEqual(orders, self.sale_order(number))
        self.assertIn("gift", str(orders.note))

    def test_duplicate_delivery_in_a_batch_counts_once(self):
        payloads = [self.order(number) for number in SAME_SHARD[:2]]
        with trap_jobs() as trap:
            first = self.deliver("orders/create", payloads[0], "wh-d1")
            again = self.deliver("orders/create", payloads[0], "wh-d1")
            other = self.deliver("orders/create", payloads[1], "wh-d2", 1)
            jobs, _retries = run_jobs(self, trap)
        self.assertEqual(jobs, ["_dispatch_received", "_process_batch"])
        self.assertEqual([first.state, again.state, other.state], ["done", "duplicate", "done"])
        self.assertEqual(again.duplicate_of_id, first)
        self.assertEqual(
            self.env["sale.order"].search_count([("client_order_ref", "=", payloads[0]["name"])]), 1
        )
