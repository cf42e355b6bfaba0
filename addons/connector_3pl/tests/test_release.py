from datetime import datetime

from freezegun import freeze_time

from odoo.exceptions import UserError
from odoo.tests import TransactionCase, new_test_user

from odoo.addons.connector_base.models.connector_backend import NO_SHIPPING_CONTEXT
from odoo.addons.connector_base.tests.common import trap_jobs
from odoo.addons.queue_job.exception import RetryableJobError

from .common import TplCaseMixin, connect_3pl

RELEASE = "order.release"
CANCEL = "order.cancel"
HOLD = "order.hold"


class TestRelease(TplCaseMixin, TransactionCase):
    """Ready deliveries of the 3PL's warehouse are released once, with their
    reserved quantities; refusals and cancellations are shown on the delivery."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        connect_3pl(cls, sku_count=2, on_hand=10)
        cls.sku_a, cls.sku_b = cls.skus

    def test_ready_delivery_is_released_with_its_reference(self):
        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_a: 2, self.sku_b: 1})
            self.assertEqual(picking.state, "assigned")
            self.assertEqual(picking.tpl_release_state, "queued")
            self.run_jobs(trap)
        orders = self.tpl_orders(picking)
        self.assertEqual(len(orders), 1)
        self.assertEqual(self.tpl_quantities(orders[0]), {self.sku_a: 2, self.sku_b: 1})
        self.assertEqual(orders[0]["recipient"]["address"]["city"], "Paris")
        binding = picking.tpl_binding_ids
        self.assertEqual(binding.release_state, "released")
        self.assertEqual(binding.external_id, str(orders[0]["id"]))
        self.assertEqual(binding.tpl_status, "Processing")
        self.assertEqual(self.outbound(picking).state, "sent")

    def test_releases_in_waves_go_together_at_the_set_time(self):
        """The releases policy at set times (the 3PL's waves): deliveries ready
        at 09:00 wait for the 10:00 wave and go in it; one ready after it
        waits for the next."""
        self.env.company.partner_id.tz = "UTC"
        self.backend._policy("releases_out").write(
            {"mode": "scheduled", "run_times": "10:00, 15:00"}
        )
        with trap_jobs() as trap:
            with freeze_time("2026-11-30 09:00:00"):
                first = self.make_delivery({self.sku_a: 1})
                second = self.make_delivery({self.sku_b: 2})
            (wave,) = trap.enqueued_jobs
            self.assertEqual(wave.eta, datetime(2026, 11, 30, 10, 0))
            self.assertEqual((first + second).mapped("tpl_release_state"), ["queued"] * 2)
            self.assertFalse(self.tpl_orders(first) + self.tpl_orders(second))
            self.run_jobs(trap)  # the job runner at 10:00
        self.assertEqual((first + second).mapped("tpl_release_state"), ["released"] * 2)
        self.assertEqual(len(self.tpl_orders(first) + self.tpl_orders(second)), 2)
        with trap_jobs() as trap, freeze_time("2026-11-30 10:30:00"):
            later = self.make_delivery({self.sku_a: 1})
            (wave,) = trap.enqueued_jobs
            self.assertEqual(wave.eta, datetime(2026, 11, 30, 15, 0))
        self.assertEqual(later.tpl_release_state, "queued")

    def test_a_warehouse_user_readying_a_delivery_releases_it(self):
        """The release is the connector's work: a stock user without connector
        rights readies the delivery, the connector user sends it."""
        clerk = new_test_user(self.env, login="tpl_clerk", groups="stock.group_stock_user")
        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_a: 1}, user=clerk)
            self.assertEqual(picking.tpl_release_state, "queued")
            self.run_jobs(trap)
        self.assertEqual(picking.tpl_release_state, "released")
        self.assertEqual(
            picking.tpl_binding_ids.external_id, str(self.tpl_orders(picking)[0]["id"])
        )

    def test_only_reserved_quantities_are_released(self):
        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_a: 14})
            self.assertEqual(picking.state, "assigned", "partly reserved: 10 of 14")
            self.run_jobs(trap)
        (order,) = self.tpl_orders(picking)
        self.assertEqual(self.tpl_quantities(order), {self.sku_a: 10})

    def test_delivery_of_another_warehouse_is_not_released(self):
        main = self.env.ref("stock.warehouse0")
        self.env["stock.quant"]._update_available_quantity(
            self.product(self.sku_a), main.lot_stock_id, 5
        )
        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_a: 1}, warehouse=main)
            self.run_jobs(trap)
        self.assertFalse(picking.tpl_binding_ids)
        self.assertFalse(self.tpl_orders(picking))

    def test_goods_that_left_another_way_are_not_released(self):
        """A sales channel's connector validating what the channel fulfilled
        itself readies the delivery under connector_base's no-shipping
        context: not released; readied again outside it, what is left is.
        (A delivery a channel says delivered elsewhere is never released:
        tests/test_retail_sync, with the channel's connector answering.)"""
        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_a: 1}, context={NO_SHIPPING_CONTEXT: True})
            self.assertEqual(picking.state, "assigned")
            self.assertFalse(picking.tpl_binding_ids)
            picking.with_context(**{NO_SHIPPING_CONTEXT: False}).action_assign()
            self.assertEqual(picking.tpl_release_state, "queued")
            self.run_jobs(trap)
        self.assertEqual(len(self.tpl_orders(picking)), 1)

    def test_delivery_waiting_for_stock_is_released_when_reserved(self):
        product, stock = self.product(self.sku_b), self.warehouse.lot_stock_id
        self.env["stock.quant"]._update_available_quantity(product, stock, -10)
        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_b: 1})
            self.assertEqual(picking.state, "confirmed", "nothing to reserve")
            self.assertFalse(picking.tpl_binding_ids)
            self.env["stock.quant"]._update_available_quantity(product, stock, 3)
            picking.action_assign()
            self.run_jobs(trap)
        self.assertEqual(picking.tpl_binding_ids.release_state, "released")
        self.assertEqual(len(self.tpl_orders(picking)), 1)

    def test_release_resent_after_a_lost_answer_is_made_once(self):
        with trap_jobs():
            picking = self.make_delivery({self.sku_a: 2})
        item = self.outbound(picking)
        self.tpl.faults.add("drop", endpoint="order_create", apply=True, limit=1)
        with self.assertRaises(RetryableJobError):
            self.backend._flush_outbound(RELEASE)
        self.assertEqual(len(self.tpl_orders(picking)), 1, "made, its answer lost")
        self.assertEqual(item.state, "pending")
        self.assertEqual(picking.tpl_release_state, "queued")

        self.backend._flush_outbound(RELEASE)
        orders = self.tpl_orders(picking)
        self.assertEqual(len(orders), 1, "the resend was answered with the same order")
        self.assertEqual(item.state, "sent", item.error_message)
        self.assertEqual(picking.tpl_binding_ids.external_id, str(orders[0]["id"]))

    def test_release_resent_with_other_quantities_adopts_the_order_made(self):
        """The reservation changed between a lost answer and the resend: the
        3PL refuses the reference with another body; the order it made under
        it is this delivery's, recorded, not made again."""
        with trap_jobs():
            picking = self.make_delivery({self.sku_a: 2})
        self.tpl.faults.add("drop", endpoint="order_create", apply=True, limit=1)
        with self.assertRaises(RetryableJobError):
            self.backend._flush_outbound(RELEASE)
        picking.move_ids.quantity = 1
        self.backend._flush_outbound(RELEASE)
        orders = self.tpl_orders(picking)
        self.assertEqual(len(orders), 1)
        self.assertEqual(picking.tpl_binding_ids.release_state, "released")
        self.assertEqual(picking.tpl_binding_ids.external_id, str(orders[0]["id"]))

    def test_throttled_release_waits_what_the_3pl_asked(self):
        with trap_jobs():
            picking = self.make_delivery({self.sku_a: 1})
        self.tpl.faults.add("throttle", endpoint="order_create", retry_after=7, limit=1)
        with self.assertRaises(RetryableJobError) as raised:
            self.backend._flush_outbound(RELEASE)
        self.assertEqual(raised.exception.seconds, 7)
        self.backend._flush_outbound(RELEASE)
        self.assertEqual(picking.tpl_release_state, "released")
        self.assertEqual(len(self.tpl_orders(picking)), 1)

    def test_releases_under_faults_are_each_made_and_recorded_once(self):
        """20 % 429 and 10 % 503 while 16 deliveries are released: a fault
        never undoes a release the 3PL made before it (sent again, an
        attempt charged each time), nor stops the ones after it for good."""
        self.backend.circuit_threshold = 1000  # each fault retried at once here
        with trap_jobs():
            pickings = self.env["stock.picking"].browse(
                [self.make_delivery({self.skus[n % 2]: 1}).id for n in range(16)]
            )
        since = max((e["seq"] for e in self.tpl.requests.entries()), default=0)
        self.tpl.faults.clear()  # the draws numbered afresh: the same faults every run
        self.addCleanup(self.tpl.faults.clear)
        self.tpl.faults.add("throttle", rate=0.2, endpoint="order_create", retry_after=1)
        self.tpl.faults.add("error", rate=0.1, endpoint="order_create", status=503)
        faults = 0
        for _attempt in range(50):
            try:
                self.backend._flush_outbound(RELEASE)
                break
            except RetryableJobError:
                faults += 1
        self.assertGreater(faults, 1, "the faults were not exercised")
        for picking in pickings:
            self.assertEqual(picking.tpl_release_state, "released", picking.tpl_message)
            self.assertEqual(len(self.tpl_orders(picking)), 1)
            self.assertEqual(self.outbound(picking).state, "sent")
        releases = [e for e in self.tpl.requests.entries(since) if e["path"].endswith("/order")]
        self.assertEqual(len(releases), len(pickings) + faults, "each sent once, plus its faults")
        self.assertFalse([e for e in releases if e.get("resent")], "a recorded release sent again")

    def test_rejection_is_shown_on_the_delivery_and_requeued_once_fixed(self):
        self.tpl.set_active(self.sku_b, False)
        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_a: 1, self.sku_b: 1})
            self.run_jobs(trap)
        item = self.outbound(picking)
        self.assertEqual(item.state, "failed")
        self.assertEqual(item.error_kind, "remote")
        self.assertIn("inactive", item.error_message)
        self.assertEqual(picking.tpl_release_state, "rejected")
        self.assertIn(self.sku_b, picking.tpl_message)
        self.assertIn("inactive", picking.message_ids[:1].body)
        self.assertFalse(self.tpl_orders(picking))
        checks = self.backend._connector_health_checks()[self.backend.id]
        self.assertIn("tpl_refused", dict(checks))

        self.tpl.set_active(self.sku_b, True)
        with trap_jobs() as trap:
            item.action_requeue()
            self.run_jobs(trap)
        self.assertEqual(item.state, "sent", item.error_message)
        self.assertEqual(picking.tpl_release_state, "released")
        self.assertFalse(picking.tpl_message)
        self.assertEqual(len(self.tpl_orders(picking)), 1)

    def test_incomplete_address_is_refused_in_odoo_words(self):
        nowhere = self.env["res.partner"].create({"name": "No Address"})
        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_a: 1}, customer=nowhere)
            self.run_jobs(trap)
        self.assertEqual(picking.tpl_release_state, "rejected")
        self.assertIn("street, city, country", picking.tpl_message)
        self.assertFalse(self.tpl_orders(picking), "the 3PL was not asked")

    def test_cancel_before_pick_cancels_at_the_3pl(self):
        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_a: 2})
            self.run_jobs(trap)
            picking.action_cancel()
            self.assertEqual(picking.tpl_release_state, "cancelling")
            self.run_jobs(trap)
        (order,) = self.tpl_orders(picking)
        self.assertEqual(order["status"], "Cancelled")
        self.assertEqual(picking.tpl_release_state, "cancelled")
        self.assertEqual(picking.tpl_binding_ids.tpl_status, "Cancelled")
        self.assertEqual(self.outbound(picking, CANCEL).state, "sent")

    def test_cancel_before_release_sends_nothing(self):
        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_a: 1})
            picking.action_cancel()
            self.run_jobs(trap)
        self.assertFalse(self.tpl_orders(picking))
        self.assertEqual(picking.tpl_release_state, "cancelled")

    def test_hold_before_pick_keeps_the_delivery_back_until_released(self):
        """A warehouse user holds a released delivery: the 3PL keeps it back
        (its clock does not pick it) until the hold is released in Odoo."""
        clerk = new_test_user(self.env, login="tpl_holder", groups="stock.group_stock_user")
        with trap_jobs() as trap:
            picking = self.release({self.sku_a: 1}, trap)
            picking.with_user(clerk).action_tpl_hold()
            self.assertEqual(picking.tpl_hold, "asked")
            self.run_jobs(trap)
            self.assertEqual(picking.tpl_hold, "held")
            self.assertEqual(self.outbound(picking, HOLD).state, "sent")
            self.tpl.advance(hours=10)
            (order,) = self.tpl_orders(picking)
            shipment = order["shipments"][0]
            self.assertEqual(
                (shipment["status"], shipment["status_details"][0]["name"]),
                ("OnHold", "MerchantHold"),
            )
            picking.with_user(clerk).action_tpl_release_hold()
            self.assertEqual(picking.tpl_hold, "lifting")
            self.run_jobs(trap)
        self.assertFalse(picking.tpl_hold)
        self.assertEqual(self.tpl_orders(picking)[0]["shipments"][0]["status"], "Processing")
        self.tpl.advance(hours=3)
        self.assertEqual(self.tpl_orders(picking)[0]["status"], "Fulfilled")
        bodies = picking.message_ids.mapped("body")
        self.assertTrue(any("Hold asked at the 3PL" in body for body in bodies), bodies)

    def test_hold_refused_after_pick_is_shown_never_ignored(self):
        self.backend.responsible_id = self.env.ref("base.user_admin")
        with trap_jobs() as trap:
            picking = self.release({self.sku_a: 1}, trap)
            self.tpl.pick(picking.name)
            picking.action_tpl_hold()
            self.run_jobs(trap)
        self.assertEqual(picking.tpl_hold, "refused")
        self.assertIn("refused to hold it", picking.tpl_message)
        self.assertIn("picked", picking.tpl_message)
        item = self.outbound(picking, HOLD)
        self.assertEqual(item.state, "failed")
        self.assertIn("picked", item.error_message)
        self.assertIn("picked", picking.activity_ids.note)
        self.assertNotEqual(self.tpl_orders(picking)[0]["shipments"][0]["status"], "OnHold")
        self.assertEqual(self.backend.tpl_refused_count, 1)
        refused = self.backend.with_context(tpl_refused=True).action_tpl_view_deliveries()
        self.assertEqual(
            self.env["tpl.delivery.binding"].search(refused["domain"]), picking.tpl_binding_ids
        )

    def test_a_delivery_not_released_has_no_hold_to_ask(self):
        with trap_jobs():
            picking = self.make_delivery({self.sku_a: 1})
        self.assertEqual(picking.tpl_release_state, "queued")
        with self.assertRaisesRegex(UserError, "not with the 3PL"):
            picking.action_tpl_hold()

    def test_cancel_refused_after_pick_is_shown_never_ignored(self):
        self.backend.responsible_id = self.env.ref("base.user_admin")
        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_a: 2})
            self.run_jobs(trap)
            self.tpl.pick(picking.name)
            picking.action_cancel()
            self.run_jobs(trap)
        (order,) = self.tpl_orders(picking)
        self.assertNotEqual(order["status"], "Cancelled")
        self.assertEqual(picking.tpl_release_state, "cancel_refused")
        self.assertIn("picked", picking.tpl_message)
        item = self.outbound(picking, CANCEL)
        self.assertEqual(item.state, "failed")
        self.assertIn("picked", item.error_message)
        activity = picking.activity_ids
        self.assertEqual(activity.user_id, self.env.ref("base.user_admin"))
        self.assertIn("picked", activity.note)
        checks = self.backend._connector_health_checks()[self.backend.id]
        self.assertIn("tpl_refused", dict(checks))

    def test_paused_flow_releases_nothing(self):
        self.backend._policy("releases_out").enabled = False
        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_a: 1})
            self.run_jobs(trap)
        self.assertFalse(picking.tpl_binding_ids)
        self.assertFalse(self.tpl_orders(picking))
