from unittest.mock import patch

import psycopg2

from odoo.tests import HttpCase, TransactionCase, tagged

from odoo.addons.connector_base.components.signature import hmac_sha256_base64
from odoo.addons.connector_base.tests.common import trap_jobs
from odoo.addons.queue_job.exception import RetryableJobError

from .common import WEBHOOK_SECRET, TplCaseMixin, connect_3pl


class TestShipments(TplCaseMixin, TransactionCase):
    """Shipments reported by the 3PL validate their delivery, parcel by parcel."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        connect_3pl(cls, sku_count=2, on_hand=10)
        cls.sku_a, cls.sku_b = cls.skus
        product = cls.env["product.product"].create({"name": "Shipping", "type": "service"})
        cls.dhl, cls.ups = cls.env["delivery.carrier"].create(
            [
                {"name": "DHL Parcel", "product_id": product.id},
                {"name": "UPS Standard", "product_id": product.id},
            ]
        )
        cls.env["tpl.carrier"].create(
            [
                {"backend_id": cls.backend.id, "carrier": "DHL", "delivery_carrier_id": cls.dhl.id},
                {"backend_id": cls.backend.id, "carrier": "UPS", "delivery_carrier_id": cls.ups.id},
            ]
        )

    def setUp(self):
        super().setUp()
        self._seen_webhooks = {m["message_id"] for m in self.tpl.webhook_messages()}

    def test_two_parcels_each_with_its_carrier_and_tracking(self):
        with trap_jobs() as trap:
            picking = self.release({self.sku_a: 2, self.sku_b: 1}, trap)
            self.tpl.ship(
                picking.name,
                parcels=[{self.sku_a: 2}, {self.sku_b: 1}],
                carriers=["DHL", "UPS"],
            )
            events = self.receive_webhooks("order.shipped")
            self.run_jobs(trap)
        self.assertEqual(events.mapped("state"), ["done"], events.mapped("error_message"))
        self.assertEqual(picking.state, "done")
        self.assertEqual(
            {m.product_id.default_code: m.quantity for m in picking.move_ids},
            {self.sku_a: 2, self.sku_b: 1},
        )
        parcels = picking.tpl_parcel_ids
        shipment = self.tpl.order(picking.name)["shipments"][0]
        self.assertEqual(
            sorted(parcels.mapped("tracking_number")),
            sorted(p["tracking_number"] for p in shipment["packages"]),
        )
        self.assertEqual(len(set(parcels.mapped("tracking_number"))), 2, "each its own")
        self.assertEqual(parcels.delivery_carrier_id, self.dhl | self.ups)
        self.assertEqual(
            parcels.filtered(lambda p: p.delivery_carrier_id == self.ups).contents,
            f"{self.sku_b} x 1",
        )
        for number in parcels.mapped("tracking_number"):
            self.assertIn(number, picking.carrier_tracking_ref)
        self.assertEqual(picking.tpl_binding_ids.tpl_status, "Fulfilled")

    def test_partial_shipment_backorders_the_rest_which_is_released_in_turn(self):
        with trap_jobs() as trap:
            picking = self.release({self.sku_a: 3}, trap)
            self.tpl.ship_short(picking.name, {self.sku_a: 2})
            self.receive_webhooks("order.shipped")
            self.run_jobs(trap)
        self.assertEqual(picking.state, "done")
        self.assertEqual(picking.move_ids.quantity, 2)
        backorder = picking.backorder_ids
        self.assertEqual(len(backorder), 1)
        self.assertEqual(backorder.move_ids.product_uom_qty, 1)
        self.assertFalse(backorder.carrier_tracking_ref, "never the first parcel's (#80636)")
        self.assertEqual(picking.tpl_binding_ids.tpl_status, "PartiallyFulfilled")
        self.assertEqual(backorder.tpl_release_state, "released")
        (order,) = self.tpl_orders(backorder)
        self.assertEqual(self.tpl_quantities(order), {self.sku_a: 1})

    def acknowledge_all(self):
        """What earlier tests left unacknowledged at the 3PL (their deliveries
        rolled back in Odoo), out of the way."""
        client = self.backend._tpl_client()
        ids = [
            shipment["id"]
            for order in client.unacknowledged_shipments()
            for shipment in order["shipments"]
            if shipment["packages"]
        ]
        if ids:
            client.acknowledge(ids)

    def test_polled_shipments_are_stored_then_acknowledged(self):
        self.acknowledge_all()
        with trap_jobs() as trap:
            picking = self.release({self.sku_a: 1}, trap)
            self.tpl.ship(picking.name, carriers=["UPS"])
            result = self.backend._tpl_poll_shipments()
            self.assertIn("1 shipments stored, 1 acknowledged", result)
            shipment = self.tpl.order(picking.name)["shipments"][0]
            self.assertTrue(shipment["is_tracking_uploaded"])
            self.run_jobs(trap)
            self.assertEqual(picking.state, "done")
            self.assertEqual(picking.carrier_id, self.ups)
            # The webhook of the same shipment, after: a duplicate, no effect.
            (event,) = self.receive_webhooks("order.shipped")
            self.assertEqual(event.state, "duplicate")
            self.assertIn("0 shipments stored", self.backend._tpl_poll_shipments())

    def test_shipment_before_its_release_is_recorded_waits_for_it(self):
        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_a: 1})
            self.tpl.faults.add("drop", endpoint="order_create", apply=True, limit=1)
            with self.assertRaises(RetryableJobError):
                self.backend._flush_outbound("order.release")
            self.tpl.ship(picking.name)
            (event,) = self.receive_webhooks("order.shipped")
            self.assertEqual(event.state, "waiting")
            self.assertIn("Waiting for the release", event.error_message)
            self.assertEqual(picking.state, "assigned")
            # The release's job runs again: the 3PL's order is recorded, which
            # wakes the shipment.
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(picking.state, "done")

    def test_a_clash_waking_the_shipment_never_undoes_its_release(self):
        """Recording the release wakes the shipment waiting for it; another
        job changed that event meanwhile (a serialization failure): the
        release stays recorded, the shipment is queued by the check after."""
        Event = type(self.env["connector.event"])
        enqueue = Event._enqueue

        def clash(events, *args, **kwargs):
            if kwargs.get("from_states") == ("waiting",):
                raise psycopg2.errors.SerializationFailure("could not serialize access")
            return enqueue(events, *args, **kwargs)

        with trap_jobs() as trap:
            picking = self.make_delivery({self.sku_a: 1})
            self.tpl.faults.add("drop", endpoint="order_create", apply=True, limit=1)
            with self.assertRaises(RetryableJobError):
                self.backend._flush_outbound("order.release")
            self.tpl.ship(picking.name)
            (event,) = self.receive_webhooks("order.shipped")
            self.assertEqual(event.state, "waiting")
            with patch.object(Event, "_enqueue", clash):
                self.backend._flush_outbound("order.release")
            self.assertEqual(picking.tpl_release_state, "released", picking.tpl_message)
            self.assertEqual(self.outbound(picking).state, "sent")
            self.assertEqual(event.state, "waiting", "left to the check after commit")
            # The check after commit, as the release's transaction runs it.
            self.env["connector.event"]._release_waiters(
                {(self.backend.id, f"release:{picking.name}")}
            )
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(picking.state, "done")

    def test_late_shipped_never_moves_a_done_delivery_back(self):
        with trap_jobs() as trap:
            picking = self.release({self.sku_a: 2}, trap)
            self.tpl.ship(picking.name, parcels=[{self.sku_a: 1}, {self.sku_a: 1}])
            self.receive_webhooks("order.shipped")
            self.run_jobs(trap)
            self.tpl.deliver(picking.name)
            self.receive_webhooks()
            self.run_jobs(trap)
            parcels = picking.tpl_parcel_ids.read(["package_id", "tracking_number"])
            self.assertEqual(picking.tpl_binding_ids.tracking_status, "Delivered")
            # The same "shipped", told again later with other parcels (nearmerch#214).
            (message,) = self.tpl.webhook_messages("order.shipped")[-1:]
            payload = dict(message["payload"])
            payload["data"] = {**payload["data"], "packages": payload["data"]["packages"][:1]}
            late = self.env["connector.event"]._receive(
                self.backend, "order.shipped", payload, "late-shipped-again"
            )
            self.run_jobs(trap)
        self.assertEqual(late.state, "done", late.error_message)
        self.assertEqual(picking.state, "done")
        self.assertEqual(picking.tpl_parcel_ids.read(["package_id", "tracking_number"]), parcels)
        self.assertEqual(picking.tpl_binding_ids.tracking_status, "Delivered")

    def test_on_hold_and_exception_are_shown_on_the_delivery(self):
        with trap_jobs() as trap:
            picking = self.release({self.sku_a: 1}, trap)
            self.tpl.hold(picking.name, reason="InvalidAddress")
            self.receive_webhooks()
            self.run_jobs(trap)
            self.assertEqual(picking.tpl_binding_ids.tpl_status, "OnHold")
            self.tpl.release_hold(picking.name)
            self.tpl.exception(picking.name, reason="OutOfStock")
            self.receive_webhooks()
            self.run_jobs(trap)
        self.assertEqual(picking.tpl_binding_ids.tpl_status, "Exception")
        self.assertEqual(picking.state, "assigned")

    def test_the_warehouse_clock_ships_what_was_released(self):
        """Released, picked, packed and shipped by the 3PL's own clock, in one
        or two parcels, sometimes short: Odoo ends with what the 3PL shipped."""
        with trap_jobs() as trap:
            pickings = [
                self.release({self.sku_a: 2, self.sku_b: 1}, trap),
                self.release({self.sku_a: 1}, trap),
                self.release({self.sku_b: 2}, trap),
            ]
            self.tpl.advance(4)
            self.receive_webhooks()
            self.run_jobs(trap)
        for picking in pickings:
            (order,) = self.tpl_orders(picking)
            (shipment,) = order["shipments"]
            self.assertEqual(picking.state, "done", picking.name)
            shipped = {}
            for package in shipment["packages"]:
                for line in package["products"]:
                    shipped[line["sku"]] = shipped.get(line["sku"], 0) + line["quantity"]
            self.assertEqual(
                {
                    m.product_id.default_code: m.quantity
                    for m in picking.move_ids
                    if m.state == "done"
                },
                shipped,
            )
            self.assertEqual(
                sorted(picking.tpl_parcel_ids.mapped("tracking_number")),
                sorted(p["tracking_number"] for p in shipment["packages"]),
            )

    def test_shipped_after_a_refused_cancel_goes_to_the_exception_queue(self):
        with trap_jobs() as trap:
            picking = self.release({self.sku_a: 1}, trap)
            self.tpl.pick(picking.name)
            picking.action_cancel()
            self.run_jobs(trap)
            self.tpl.ship(picking.name)
            (event,) = self.receive_webhooks("order.shipped")
            self.run_jobs(trap)
        self.assertEqual(event.state, "failed")
        self.assertIn("cancelled in Odoo", event.error_message)


@tagged("post_install", "-at_install")
class TestWebhookIntake(TplCaseMixin, HttpCase):
    """The 3PL's signed webhooks over HTTP: stored when signed, refused otherwise."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        connect_3pl(cls, sku_count=1)

    def post(self, raw, signature):
        headers = {
            "Content-Type": "application/json",
            "X-3pl-Signature": signature,
            "X-3pl-Message-Id": "msg-1",
            "X-3pl-Topic": "order.shipment.delivered",
        }
        address = f"/connector/3pl/{self.backend.id}/webhook"
        return self.url_open(address, data=raw, headers=headers, timeout=20)

    def test_signed_webhook_is_stored_and_a_wrong_signature_refused(self):
        raw = (
            b'{"topic": "order.shipment.delivered", "event_time": "2026-11-30T10:00:00Z", '
            b'"data": {"id": 5, "order_id": 9, "reference_id": "TPL/OUT/99999"}}'
        )
        refused = self.post(raw, hmac_sha256_base64("not-the-secret", raw))
        self.assertEqual(refused.status_code, 401)
        self.assertEqual(self.backend.webhook_rejected_count, 1)
        answer = self.post(raw, hmac_sha256_base64(WEBHOOK_SECRET, raw))
        self.assertEqual(answer.status_code, 200, answer.text)
        event = self.env["connector.event"].browse(answer.json()["event"])
        self.assertEqual(event.topic, "order.shipment.delivered")
        self.assertEqual(event.idempotency_key, "msg-1")
        self.assertEqual(event.state, "waiting", "no release of that reference")
        self.assertTrue(
            self.backend.webhook_address.endswith(f"/connector/3pl/{self.backend.id}/webhook")
        )


class TestPollSchedule(TplCaseMixin, TransactionCase):
    """The scheduled read of shipments: one job per running backend."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        connect_3pl(cls, sku_count=1)

    def test_cron_queues_one_read_per_running_backend_as_its_connector_user(self):
        with trap_jobs() as trap:
            self.env["connector.backend"]._cron_tpl_poll_shipments()
            self.env["connector.backend"]._cron_tpl_poll_shipments()
            jobs = [j for j in trap.enqueued_jobs if j.method_name == "_tpl_poll_shipments"]
            self.assertEqual(len(jobs), 1)
            self.assertEqual(jobs[0].recordset.env.uid, self.backend.connector_user_id.id)
            self.backend._policy("shipments_in").enabled = False
            trap.enqueued_jobs.clear()
            self.env["connector.backend"]._cron_tpl_poll_shipments()
            self.assertFalse(trap.enqueued_jobs)
