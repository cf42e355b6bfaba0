"""The 3PL simulator held to what it promises: the ShipBob-like API, the warehouse clock,
webhooks, returns, inventory, limits and faults.

Plain unittest, no Odoo: ``cd tests && python3 -m unittest simulators.test_tpl``.
Everything goes over HTTP with urllib as a connector would; signatures are
checked with a HMAC computed here, webhooks seen by a receiver standing in
for Odoo.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from datetime import datetime, timezone

from simulators import ShopifySimulator, ThirdPartyLogisticsSimulator
from simulators.base import WebhookFaults
from simulators.testing import WebhookReceiver, json_call
from simulators.tpl import SlidingWindowLimiter

EPOCH = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
SECRET = "tpl-webhook-secret"


def recipient():
    return {
        "name": "Camille Martin",
        "email": "camille@example.com",
        "address": {
            "address1": "12 rue de la Paix",
            "city": "Paris",
            "zip_code": "75002",
            "country": "FR",
        },
    }


class TplCase(unittest.TestCase):
    """A started simulator with stock on two SKUs, and a small HTTP client."""

    options = {}

    def setUp(self):
        super().setUp()
        self.tpl = ThirdPartyLogisticsSimulator(seed=42, epoch=EPOCH, **self.options).start()
        self.addCleanup(self.tpl.stop)
        skus = sorted(self.tpl.inventory())
        self.sku_a, self.sku_b = skus[0], skus[1]
        self.tpl.set_on_hand(self.sku_a, 50)
        self.tpl.set_on_hand(self.sku_b, 50)

    def call(self, method, path, body=None, *, headers=None, token=True, query=None, raw=None):
        """``(status, JSON answer, headers)`` of one request to the API."""
        sent = dict(self.tpl.headers) if token else {"Content-Type": "application/json"}
        sent.update(headers or {})
        return json_call(
            f"{self.tpl.api_url}{path}", method, body, headers=sent, query=query, raw=raw
        )

    def release(self, reference, lines=None, **extra):
        body = {
            "reference_id": reference,
            "order_number": reference,
            "shipping_method": "Standard",
            "recipient": recipient(),
            "products": [
                {"reference_id": sku, "name": f"Product {sku}", "quantity": quantity}
                for sku, quantity in (lines or [(self.sku_a, 1)])
            ],
            **extra,
        }
        return self.call("POST", "/order", body)


class TestRelease(TplCase):
    def test_a_release_sent_again_returns_the_existing_order_and_creates_nothing(self):
        status, first, _headers = self.release("WH/OUT/00001", [(self.sku_a, 2)])
        self.assertEqual(status, 201)
        self.assertEqual(first["status"], "Processing")
        self.assertEqual(first["reference_id"], "WH/OUT/00001")
        self.assertEqual(first["shipments"][0]["status"], "Processing")
        # The answer was lost: the connector sends the same release again.
        status, again, _headers = self.release("WH/OUT/00001", [(self.sku_a, 2)])
        self.assertEqual(status, 200)
        self.assertEqual(again["id"], first["id"])
        self.assertEqual(len(self.tpl.orders()), 1)
        self.assertEqual(self.tpl.inventory(self.sku_a)["committed"], 2)
        # Another order under the same reference is a conflict, named.
        status, answer, _headers = self.release("WH/OUT/00001", [(self.sku_b, 1)])
        self.assertEqual(status, 422)
        self.assertEqual(answer["title"], "Duplicate reference ID")
        self.assertIn("reference_id", answer["errors"])
        self.assertEqual(len(self.tpl.orders()), 1)

    def test_strict_duplicates_as_shipbob_documents_them(self):
        self.tpl.stop()
        self.tpl = ThirdPartyLogisticsSimulator(seed=42, epoch=EPOCH, resend="422").start()
        self.addCleanup(self.tpl.stop)
        self.assertEqual(self.release("R-1")[0], 201)
        status, answer, _headers = self.release("R-1")
        self.assertEqual(status, 422, answer)
        self.assertEqual(len(self.tpl.orders()), 1)
        with self.assertRaisesRegex(ValueError, "resend is"):
            ThirdPartyLogisticsSimulator(resend="ignore")

    def test_a_release_of_an_inactive_product_is_rejected_with_the_reason(self):
        self.tpl.set_active(self.sku_b, False)
        status, answer, _headers = self.release("WH/OUT/00004", [(self.sku_a, 1), (self.sku_b, 1)])
        self.assertEqual(status, 400)
        self.assertEqual(
            answer["errors"],
            {
                "products[1].reference_id": [
                    f"Product '{self.sku_b}' is inactive and cannot be fulfilled."
                ]
            },
        )
        self.assertEqual(self.tpl.orders(), [])

    def test_order_read_by_id_and_by_reference(self):
        _status, order, _headers = self.release("WH/OUT/00002")
        status, read, _headers = self.call("GET", f"/order/{order['id']}")
        self.assertEqual((status, read["reference_id"]), (200, "WH/OUT/00002"))
        status, found, _headers = self.call("GET", "/order", query={"ReferenceIds": "WH/OUT/00002"})
        self.assertEqual([o["id"] for o in found], [order["id"]])
        status, answer, _headers = self.call("GET", "/order/1")
        self.assertEqual((status, answer["title"]), (404, "Not Found"))

    def test_the_warehouse_holds_the_shops_skus_for_the_same_seed(self):
        shop = ShopifySimulator(seed=42)
        self.assertEqual(set(self.tpl.inventory()), {v["sku"] for v in shop.catalog()})

    def test_unknown_product_with_a_name_is_created_without_stock_and_waits(self):
        status, _order, _headers = self.call(
            "POST",
            "/order",
            {
                "reference_id": "WH/OUT/00003",
                "shipping_method": "Standard",
                "recipient": recipient(),
                "products": [{"reference_id": "NEW-SKU-1", "name": "New thing", "quantity": 1}],
            },
        )
        self.assertEqual(status, 201)
        self.tpl.advance(hours=2)
        shipment = self.tpl.order("WH/OUT/00003")["shipments"][0]
        self.assertEqual(shipment["status"], "Exception")
        self.assertEqual(shipment["status_details"][0]["name"], "OutOfStock")
        self.assertEqual(self.tpl.order("WH/OUT/00003")["status"], "Exception")
        self.tpl.set_on_hand("NEW-SKU-1", 3)
        self.tpl.advance(hours=3)
        self.assertEqual(self.tpl.order("WH/OUT/00003")["status"], "Fulfilled")
        self.assertEqual(self.tpl.inventory("NEW-SKU-1")["onhand"], 2)


class TestCancel(TplCase):
    def test_cancel_before_pick_cancels_and_frees_the_stock(self):
        _status, order, _headers = self.release("WH/OUT/00010", [(self.sku_a, 3)])
        status, answer, _headers = self.call("POST", f"/order/{order['id']}:cancel")
        self.assertEqual(status, 200)
        self.assertEqual(answer["canceled_shipment_results"][0]["is_success"], True)
        self.assertEqual(answer["order"]["status"], "Cancelled")
        self.assertEqual(self.tpl.inventory(self.sku_a)["committed"], 0)
        topics = [m["topic"] for m in self.tpl.webhook_messages()]
        self.assertEqual(topics, ["order.shipment.cancelled"])
        # A retried cancel after a lost answer: still cancelled, still a success.
        _status, answer, _headers = self.call("POST", f"/order/{order['id']}:cancel")
        self.assertTrue(answer["canceled_shipment_results"][0]["is_success"])
        self.tpl.advance(hours=10)
        self.assertEqual(self.tpl.inventory(self.sku_a)["onhand"], 50, "nothing picked")

    def test_cancel_after_pick_is_refused_with_the_reason(self):
        _status, order, _headers = self.release("WH/OUT/00011", [(self.sku_a, 1)])
        self.tpl.advance(hours=1)  # picked
        self.assertEqual(
            self.tpl.order(order["id"])["shipments"][0]["status_details"][0]["name"], "Picked"
        )
        status, answer, _headers = self.call("POST", f"/order/{order['id']}:cancel")
        self.assertEqual(status, 200, "ShipBob answers the refusal per shipment")
        result = answer["canceled_shipment_results"][0]
        self.assertFalse(result["is_success"])
        self.assertIn("already been picked", result["reason"])
        self.assertEqual(answer["order"]["status"], "Processing")
        self.tpl.advance(hours=2)
        self.assertEqual(self.tpl.order(order["id"])["status"], "Fulfilled")

    def test_a_held_order_can_be_cancelled_and_the_hold_is_notified(self):
        _status, order, _headers = self.release("WH/OUT/00012")
        self.tpl.hold("WH/OUT/00012")
        self.tpl.advance(hours=10)
        shipment = self.tpl.order(order["id"])["shipments"][0]
        self.assertEqual(
            (shipment["status"], shipment["status_details"][0]["name"]),
            ("OnHold", "InvalidAddress"),
        )
        _status, answer, _headers = self.call("POST", f"/order/{order['id']}:cancel")
        self.assertTrue(answer["canceled_shipment_results"][0]["is_success"])
        self.assertEqual(
            [m["topic"] for m in self.tpl.webhook_messages()],
            ["order.shipment.on_hold", "order.shipment.cancelled"],
        )


class TestMerchantHold(TplCase):
    def hold(self, order, action="hold"):
        status, answer, _headers = self.call("POST", f"/order/{order['id']}:{action}")
        self.assertEqual(status, 200)
        return answer["hold_results"][0], answer["order"]["shipments"][0]

    def test_a_hold_before_pick_stops_the_clock_until_it_is_lifted(self):
        _status, order, _headers = self.release("WH/OUT/00020", [(self.sku_a, 1)])
        result, shipment = self.hold(order)
        self.assertTrue(result["is_success"])
        self.assertEqual(
            (shipment["status"], shipment["status_details"][0]["name"]), ("OnHold", "MerchantHold")
        )
        self.assertEqual(
            [m["topic"] for m in self.tpl.webhook_messages()], ["order.shipment.on_hold"]
        )
        # Asked again after a lost answer: a success that changes nothing.
        result, _shipment = self.hold(order)
        self.assertTrue(result["is_success"])
        self.tpl.advance(hours=10)
        self.assertEqual(self.tpl.order(order["id"])["status"], "Processing", "nothing picked")
        result, shipment = self.hold(order, "releaseHold")
        self.assertTrue(result["is_success"])
        self.assertEqual(shipment["status"], "Processing")
        self.tpl.advance(hours=3)
        self.assertEqual(self.tpl.order(order["id"])["status"], "Fulfilled")

    def test_a_hold_after_pick_is_refused_with_the_reason(self):
        _status, order, _headers = self.release("WH/OUT/00021", [(self.sku_a, 1)])
        self.tpl.advance(hours=1)  # picked
        result, shipment = self.hold(order)
        self.assertFalse(result["is_success"])
        self.assertIn("already been picked", result["reason"])
        self.assertEqual(shipment["status"], "Processing")

    def test_the_warehouses_own_hold_is_not_the_shops_to_lift(self):
        _status, order, _headers = self.release("WH/OUT/00022")
        self.tpl.hold("WH/OUT/00022")  # the address could not be validated
        result, shipment = self.hold(order, "releaseHold")
        self.assertFalse(result["is_success"])
        self.assertIn("on hold by the warehouse", result["reason"])
        self.assertEqual(shipment["status_details"][0]["name"], "InvalidAddress")

    def test_an_unknown_order_is_404(self):
        status, _answer, _headers = self.call("POST", "/order/999999:hold")
        self.assertEqual(status, 404)


class TestShipments(TplCase):
    def test_two_parcels_each_with_its_carrier_tracking_and_lines(self):
        self.release("WH/OUT/00020", [(self.sku_a, 2), (self.sku_b, 1)])
        self.tpl.ship(
            "WH/OUT/00020",
            parcels=[{self.sku_a: 1}, {self.sku_a: 1, self.sku_b: 1}],
            carriers=["Colissimo", "UPS"],
        )
        order = self.tpl.order("WH/OUT/00020")
        self.assertEqual(order["status"], "Fulfilled")
        shipment = order["shipments"][0]
        self.assertEqual(shipment["status"], "Completed")
        first, second = shipment["packages"]
        self.assertEqual((first["carrier"], second["carrier"]), ("Colissimo", "UPS"))
        self.assertNotEqual(first["tracking_number"], second["tracking_number"])
        self.assertTrue(first["tracking_number"].startswith("6A"))
        self.assertTrue(second["tracking_number"].startswith("1Z"))
        self.assertEqual(
            [(line["sku"], line["quantity"]) for line in first["products"]], [(self.sku_a, 1)]
        )
        self.assertEqual(
            sorted((line["sku"], line["quantity"]) for line in second["products"]),
            sorted([(self.sku_a, 1), (self.sku_b, 1)]),
        )
        # ShipBob's one tracking per shipment is the first parcel's only.
        self.assertEqual(shipment["tracking"]["tracking_number"], first["tracking_number"])
        self.assertEqual(self.tpl.inventory(self.sku_a)["onhand"], 48)
        self.assertEqual(self.tpl.inventory(self.sku_b)["onhand"], 49)

    def test_short_shipment_is_partially_fulfilled_and_the_rest_stays_on_the_shelf(self):
        self.release("WH/OUT/00021", [(self.sku_a, 3)])
        self.tpl.ship_short("WH/OUT/00021", {self.sku_a: 2})
        order = self.tpl.order("WH/OUT/00021")
        self.assertEqual(order["status"], "PartiallyFulfilled")
        self.assertEqual(order["shipments"][0]["products"][0]["quantity"], 2)
        self.assertEqual(self.tpl.inventory(self.sku_a)["onhand"], 48)
        with self.assertRaisesRegex(ValueError, "nothing left to ship"):
            self.tpl.ship("WH/OUT/00021")
        self.tpl.deliver("WH/OUT/00021")
        with self.assertRaisesRegex(ValueError, "is delivered"):
            self.tpl.track("WH/OUT/00021", "InTransit")
        self.release("WH/OUT/00023", [(self.sku_a, 1)])
        with self.assertRaisesRegex(ValueError, "more than order"):
            self.tpl.pick("WH/OUT/00023", {self.sku_a: 2})

    def test_the_clock_picks_packs_ships_carries_and_delivers(self):
        self.release("WH/OUT/00022", [(self.sku_a, 1)])
        stages = []
        for _hour in range(3):
            self.tpl.advance(hours=1)
            shipment = self.tpl.order("WH/OUT/00022")["shipments"][0]
            stages.append((shipment["status"], shipment["status_details"][0]["name"]))
        self.assertEqual(
            stages,
            [("Processing", "Picked"), ("Processing", "Packed"), ("Completed", "LabeledCreated")],
        )
        self.tpl.advance(hours=6)
        self.assertEqual(
            self.tpl.order("WH/OUT/00022")["shipments"][0]["packages"][0]["tracking_status"],
            "InTransit",
        )
        self.tpl.advance(hours=24)
        order = self.tpl.order("WH/OUT/00022")
        self.assertIsNotNone(order["shipments"][0]["delivery_date"])
        messages = self.tpl.webhook_messages()
        self.assertEqual(
            [m["topic"] for m in messages],
            [
                "order.shipped",
                "order.shipment.tracking.updated",
                "order.shipment.delivered",
                "order.delivered",
            ],
        )
        times = [m["payload"]["event_time"] for m in messages]
        self.assertEqual(times[0], "2026-11-30T11:00:00Z")
        self.assertEqual(times, sorted(times))

    def test_the_warehouse_splits_and_ships_short_now_and_then_the_same_for_the_same_seed(self):
        def run(seed):
            tpl = ThirdPartyLogisticsSimulator(seed=seed, epoch=EPOCH)
            skus = sorted(tpl.inventory())[:3]
            for sku in skus:
                tpl.set_on_hand(sku, 500)
            for number in range(60):
                tpl.warehouse.create_order(
                    {
                        "reference_id": f"R{number}",
                        "shipping_method": "Standard",
                        "recipient": recipient(),
                        "products": [
                            {"reference_id": sku, "quantity": 2} for sku in skus[: 1 + number % 3]
                        ],
                    }
                )
            tpl.advance(hours=3)
            return [
                [
                    (p["carrier"], p["tracking_number"], p["products"])
                    for p in o["shipments"][0]["packages"]
                ]
                for o in tpl.orders()
            ], Counter(o["status"] for o in tpl.orders())

        parcels, statuses = run(3)
        self.assertEqual(run(3)[0], parcels, "the same seed replays the same warehouse")
        self.assertNotEqual(run(4)[0], parcels)
        counts = Counter(len(p) for p in parcels)
        self.assertTrue(counts[1] and counts[2], counts)
        self.assertEqual(set(statuses), {"Fulfilled", "PartiallyFulfilled"})
        self.assertLess(statuses["PartiallyFulfilled"], 12)


class TestPollingAndAcknowledgement(TplCase):
    def test_unacknowledged_shipments_page_by_next_page_then_leave_once_acknowledged(self):
        for number in range(7):
            self.release(f"WH/OUT/{number:05d}")
        self.release("WH/OUT/NOT-SHIPPED")
        for number in range(7):
            self.tpl.ship(f"WH/OUT/{number:05d}")
        query = {"HasTracking": "true", "IsTrackingUploaded": "false", "Limit": 3}
        status, page, headers = self.call("GET", "/order", query=query)
        seen = [o["reference_id"] for o in page]
        self.assertEqual((status, headers["total-count"], headers["total-pages"]), (200, "7", "3"))
        while headers.get("next-page"):
            self.assertTrue(headers["next-page"].startswith("/2026-01/order?"))
            request = urllib.request.Request(
                self.tpl.url + headers["next-page"], headers=self.tpl.headers
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                page, headers = json.loads(response.read()), response.headers
            seen += [o["reference_id"] for o in page]
        self.assertEqual(seen, [f"WH/OUT/{n:05d}" for n in range(7)])
        # Acknowledge the first three and an unknown shipment.
        status, orders, _headers = self.call("GET", "/order", query={**query, "Limit": 250})
        ids = [o["shipments"][0]["id"] for o in orders[:3]]
        status, answer, _headers = self.call(
            "POST",
            "/shipment:batchUpdateTrackingUpload",
            {"is_tracking_uploaded": True, "shipment_ids": [*ids, 1]},
        )
        self.assertEqual(status, 200)
        self.assertEqual(answer["summary"], {"failed": 1, "successful": 3, "total": 4})
        self.assertEqual(answer["results"][-1]["error"]["code"], "NotFound")
        status, orders, headers = self.call("GET", "/order", query=query)
        self.assertEqual(
            [o["reference_id"] for o in orders], [f"WH/OUT/{n:05d}" for n in range(3, 6)]
        )
        self.assertEqual(headers["total-count"], "4")
        # Acknowledging again is harmless; a shipment not shipped is refused.
        not_shipped = self.tpl.order("WH/OUT/NOT-SHIPPED")["shipments"][0]["id"]
        status, answer, _headers = self.call(
            "POST",
            "/shipment:batchUpdateTrackingUpload",
            {"is_tracking_uploaded": True, "shipment_ids": [ids[0], not_shipped]},
        )
        self.assertEqual([r["isSuccess"] for r in answer["results"]], [True, False])
        self.assertEqual(answer["results"][1]["error"]["code"], "InvalidState")

    def test_paging_parameters_are_checked(self):
        for query, field in (
            ({"Limit": 251}, "Limit"),
            ({"Limit": 0}, "Limit"),
            ({"Page": "x"}, "Page"),
            ({"HasTracking": "yes"}, "HasTracking"),
        ):
            status, answer, _headers = self.call("GET", "/order", query=query)
            self.assertEqual(status, 400, query)
            self.assertIn(field, answer["errors"])


class TestWebhooks(unittest.TestCase):
    def setUp(self):
        super().setUp()
        self.receiver = WebhookReceiver().__enter__()
        self.addCleanup(self.receiver.__exit__, None, None, None)
        self.tpl = ThirdPartyLogisticsSimulator(
            seed=42, epoch=EPOCH, webhook_url=self.receiver.url, webhook_secret=SECRET
        ).start()
        self.addCleanup(self.tpl.stop)
        self.sku = sorted(self.tpl.inventory())[0]
        self.tpl.set_on_hand(self.sku, 20)

    def order(self, reference):
        self.tpl.warehouse.create_order(
            {
                "reference_id": reference,
                "shipping_method": "Standard",
                "recipient": recipient(),
                "products": [{"reference_id": self.sku, "quantity": 1}],
            }
        )

    def test_signed_with_a_hmac_of_the_raw_body_and_named_by_a_message_id(self):
        self.order("WH/OUT/00030")
        self.tpl.ship("WH/OUT/00030")
        self.assertTrue(self.tpl.wait_webhooks())
        delivery = self.receiver.wait_for(1)[0]
        expected = base64.b64encode(
            hmac.new(SECRET.encode(), delivery["body"], hashlib.sha256).digest()
        ).decode()
        self.assertEqual(delivery["headers"]["X-3pl-Signature"], expected)
        self.assertEqual(delivery["headers"]["X-3pl-Topic"], "order.shipped")
        payload = json.loads(delivery["body"])
        self.assertEqual(payload["topic"], "order.shipped")
        self.assertEqual(payload["data"]["reference_id"], "WH/OUT/00030")
        self.assertEqual(len(payload["data"]["packages"]), 1)
        message_id = delivery["headers"]["X-3pl-Message-Id"]
        self.assertEqual(self.tpl.webhook_messages()[0]["message_id"], message_id)

    def test_duplicates_keep_their_message_id_and_out_of_order_overtakes(self):
        self.tpl.webhooks.faults = WebhookFaults(duplicate=1.0)
        self.order("WH/OUT/00031")
        self.tpl.ship("WH/OUT/00031")
        self.assertTrue(self.tpl.wait_webhooks())
        received = self.receiver.wait_for(2)
        self.assertEqual(len({r["headers"]["X-3pl-Message-Id"] for r in received}), 1)
        self.assertEqual(received[0]["body"], received[1]["body"])
        self.receiver.clear()
        self.tpl.webhooks.faults = WebhookFaults(out_of_order=1.0)
        self.tpl.track("WH/OUT/00031", "InTransit")
        self.tpl.deliver("WH/OUT/00031")
        self.assertTrue(self.tpl.wait_webhooks())
        topics = [r["headers"]["X-3pl-Topic"] for r in self.receiver.wait_for(3)]
        self.assertLess(
            topics.index("order.shipment.delivered"),
            topics.index("order.shipment.tracking.updated"),
        )

    def test_a_late_shipped_replayed_after_delivered(self):
        self.order("WH/OUT/00032")
        self.tpl.ship("WH/OUT/00032")
        self.tpl.deliver("WH/OUT/00032")
        shipped = self.tpl.webhook_messages("order.shipped")[0]["message_id"]
        again = self.tpl.replay_webhook(shipped)
        renamed = self.tpl.replay_webhook(shipped, new_id=True)
        self.assertEqual(again, shipped)
        self.assertNotEqual(renamed, shipped)
        self.assertTrue(self.tpl.wait_webhooks())
        topics = [r["headers"]["X-3pl-Topic"] for r in self.receiver.wait_for(5)]
        self.assertEqual(
            topics,
            [
                "order.shipped",
                "order.shipment.delivered",
                "order.delivered",
                "order.shipped",
                "order.shipped",
            ],
        )

    def test_control_api_drives_the_warehouse_from_another_process(self):
        self.order("WH/OUT/00033")

        def trigger(**body):
            request = urllib.request.Request(
                f"{self.tpl.url}/_sim/events/trigger", data=json.dumps(body).encode(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())["result"]

        trigger(event="clock.advance", hours=3)
        self.assertEqual(self.tpl.order("WH/OUT/00033")["status"], "Fulfilled")
        trigger(event="order.deliver", order="WH/OUT/00033")
        trigger(event="inventory.set", sku=self.sku, on_hand=7)
        self.assertEqual(self.tpl.inventory(self.sku)["onhand"], 7)


class TestReturns(TplCase):
    def announce(self, reference, items, **extra):
        ids = self.tpl.inventory_ids()
        body = {
            "reference_id": reference,
            "fulfillment_center": {"id": 7},
            "inventory": [
                {"id": ids[sku], "quantity": quantity, "requested_action": action}
                for sku, quantity, action in items
            ],
            **extra,
        }
        return self.call("POST", "/return", body)

    def test_return_completed_with_mixed_dispositions_per_item(self):
        status, record, _headers = self.announce(
            "RMA-0001", [(self.sku_a, 3, "Default"), (self.sku_b, 1, "Restock")]
        )
        self.assertEqual((status, record["status"]), (201, "AwaitingArrival"))
        status, again, _headers = self.announce(
            "RMA-0001", [(self.sku_a, 3, "Default"), (self.sku_b, 1, "Restock")]
        )
        self.assertEqual((status, again["id"]), (200, record["id"]))
        self.tpl.complete_return(
            "RMA-0001",
            [
                (self.sku_a, 2, "Restock", "SELLABLE"),
                (self.sku_a, 1, "Dispose", "DEFECTIVE"),
                # The second item did not come back: a partial return.
            ],
        )
        status, done, _headers = self.call("GET", f"/return/{record['id']}")
        self.assertEqual(done["status"], "Completed")
        item_a, item_b = done["inventory"]
        self.assertEqual(
            [
                (t["action"], t["action_reason"], t["quantity_processed"])
                for t in item_a["action_taken"]
            ],
            [("Restock", "SELLABLE", 2), ("Dispose", "DEFECTIVE", 1)],
        )
        self.assertEqual(item_b["action_taken"], [])
        self.assertEqual(self.tpl.inventory(self.sku_a)["onhand"], 52, "only what was restocked")
        completed = self.tpl.webhook_messages("return.completed")
        self.assertEqual(completed[0]["payload"]["data"]["reference_id"], "RMA-0001")
        with self.assertRaisesRegex(ValueError, "already completed"):
            self.tpl.complete_return("RMA-0001", [(self.sku_a, 1, "Restock", "SELLABLE")])
        with self.assertRaisesRegex(ValueError, "condition is one of"):
            self.announce("RMA-0002", [(self.sku_a, 1, "Default")])
            self.tpl.complete_return("RMA-0002", [(self.sku_a, 1, "Restock", "BROKEN")])

    def test_the_clock_receives_and_processes_returns(self):
        self.announce("RMA-0003", [(self.sku_a, 4, "Default")])
        self.tpl.advance(hours=24)
        self.assertEqual(self.tpl.return_order("RMA-0003")["status"], "Arrived")
        self.tpl.advance(hours=24)
        record = self.tpl.return_order("RMA-0003")
        self.assertEqual(record["status"], "Completed")
        processed = sum(t["quantity_processed"] for t in record["inventory"][0]["action_taken"])
        self.assertEqual(processed, 4)
        _status, found, _headers = self.call("GET", "/return", query={"ReferenceIds": "RMA-0003"})
        self.assertEqual([r["reference_id"] for r in found], ["RMA-0003"])

    def test_malformed_returns_name_the_field(self):
        ids = self.tpl.inventory_ids()
        status, answer, _headers = self.call(
            "POST",
            "/return",
            {
                "reference_id": "RMA-0004",
                "fulfillment_center": {"id": 99},
                "inventory": [
                    {"id": ids[self.sku_a], "quantity": 0, "requested_action": "Default"},
                    {"id": ids[self.sku_a], "quantity": 1, "requested_action": "Refund"},
                    {"id": 1, "quantity": 1},
                ],
            },
        )
        self.assertEqual(status, 400)
        self.assertEqual(
            set(answer["errors"]),
            {
                "fulfillment_center.id",
                "inventory[0].quantity",
                "inventory[1].id",
                "inventory[1].requested_action",
                "inventory[2].id",
            },
        )
        self.assertEqual(self.tpl.returns(), [])


class TestInventory(TplCase):
    def test_inventory_pages_per_sku(self):
        items, page = [], 1
        while True:
            status, chunk, headers = self.call(
                "GET", "/inventory", query={"Page": page, "Limit": 40}
            )
            self.assertEqual(status, 200)
            items += chunk
            if not headers.get("next-page"):
                break
            page += 1
        self.assertEqual(len(items), int(headers["total-count"]))
        self.assertEqual({i["sku"] for i in items}, set(self.tpl.inventory()))
        by_sku = {i["sku"]: i for i in items}
        self.assertEqual(by_sku[self.sku_a]["total_onhand_quantity"], 50)
        self.release("WH/OUT/00040", [(self.sku_a, 5)])
        _status, chunk, _headers = self.call("GET", "/inventory", query={"Limit": 250})
        item = next(i for i in chunk if i["sku"] == self.sku_a)
        self.assertEqual(
            (
                item["total_onhand_quantity"],
                item["total_committed_quantity"],
                item["total_fulfillable_quantity"],
            ),
            (50, 5, 45),
        )
        self.assertEqual(item["fulfillable_quantity_by_fulfillment_center"][0]["id"], 7)

    def test_picked_units_stay_on_hand_until_they_ship(self):
        """ShipBob's on hand is what is in the building: a unit picked for an
        order is committed to it, and leaves the count when the order ships."""

        def figures():
            counts = self.tpl.inventory(self.sku_a)
            return counts["onhand"], counts["committed"], counts["fulfillable"]

        self.release("WH/OUT/00041", [(self.sku_a, 3)])
        self.assertEqual(figures(), (50, 3, 47))
        self.tpl.pick("WH/OUT/00041", {self.sku_a: 3})
        self.assertEqual(figures(), (50, 3, 47), "picked, not shipped: still in the building")
        self.tpl.ship("WH/OUT/00041")
        self.assertEqual(figures(), (47, 0, 47))


class TestLimitsAndErrors(TplCase):
    options = {"rate_limit": 5}

    def test_past_150_a_minute_429_with_retry_after_and_the_message(self):
        self.assertEqual(ThirdPartyLogisticsSimulator().limiter.limit, 150)
        for _ in range(5):
            status, _body, headers = self.call("GET", "/channel")
            self.assertEqual(status, 200)
        self.assertEqual(headers["x-remaining-calls"], "0")
        status, body, headers = self.call("GET", "/channel")
        self.assertEqual(status, 429)
        wait = int(headers["x-retry-after"])
        self.assertTrue(1 <= wait <= 60)
        self.assertEqual(
            body,
            {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {wait} seconds."},
        )
        self.tpl.limiter.reset()
        self.assertEqual(self.call("GET", "/channel")[0], 200)

    def test_sliding_window(self):
        now = [0.0]
        limiter = SlidingWindowLimiter(3, 60.0, clock=lambda: now[0])
        for at in (0, 10, 20):
            now[0] = at
            self.assertIsNone(limiter.take()[0])
        now[0] = 30
        self.assertEqual(limiter.take()[0], 30, "the oldest leaves the window at 60 s")
        now[0] = 60.5
        self.assertIsNone(limiter.take()[0])
        self.assertEqual(limiter.take()[0], 10)

    def test_token_required_and_unauthorized_requests_do_not_count(self):
        for _ in range(8):
            status, body, headers = self.call("GET", "/order", token=False)
            self.assertEqual(status, 401)
        self.assertEqual(body, {"message": "Authorization has been denied for this request."})
        self.assertIn("Bearer", headers["WWW-Authenticate"])
        status, _body, _headers = self.call(
            "GET", "/order", headers={"Authorization": "Bearer wrong"}
        )
        self.assertEqual(status, 401)
        self.assertEqual(self.call("GET", "/order")[0], 200)

    def test_malformed_release_names_each_field(self):
        status, answer, _headers = self.call(
            "POST",
            "/order",
            {
                "shipping_method": "",
                "recipient": {"name": "X", "address": {"address1": "1 rue", "country": "FR"}},
                "products": [
                    {"reference_id": self.sku_a, "quantity": 0},
                    {"reference_id": self.sku_a, "quantity": "2"},
                    {"reference_id": "NOT-KNOWN", "quantity": 1},
                ],
            },
        )
        self.assertEqual(status, 400)
        self.assertEqual(answer["title"], "One or more validation errors occurred.")
        self.assertEqual(
            set(answer["errors"]),
            {
                "reference_id",
                "shipping_method",
                "recipient.address.city",
                "products[0].quantity",
                "products[1].quantity",
                "products[2].name",
            },
        )
        self.assertEqual(self.tpl.orders(), [])

    def test_envelope_errors(self):
        status, answer, _headers = self.call("POST", "/order", raw=b"{not json")
        self.assertEqual((status, list(answer["errors"])), (400, ["$"]))
        status, _answer, _headers = self.call(
            "POST", "/order", raw=b"{}", headers={"Content-Type": "text/plain"}
        )
        self.assertEqual(status, 415)
        status, answer, _headers = self.call(
            "POST", "/order", {"products": []}, headers={"shipbob_channel_id": ""}
        )
        self.assertEqual(status, 403)
        request = urllib.request.Request(
            f"{self.tpl.api_url}/order",
            data=b"{}",
            headers={
                "Authorization": f"Bearer {self.tpl.access_token}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        self.assertEqual(caught.exception.code, 400)
        self.assertIn("shipbob_channel_id", json.loads(caught.exception.read())["errors"])


class TestFaults(TplCase):
    def test_5xx_latency_and_throttle_faults_on_request(self):
        self.tpl.faults.add("error", endpoint="order_create", limit=1)
        status, _answer, _headers = self.release("WH/OUT/00050")
        self.assertEqual(status, 503)
        self.assertEqual(self.tpl.orders(), [], "a 5xx processes nothing")
        self.assertEqual(self.release("WH/OUT/00050")[0], 201)
        self.tpl.faults.add("throttle", endpoint="order_list", retry_after=2, limit=1)
        status, body, headers = self.call("GET", "/order")
        self.assertEqual((status, headers["x-retry-after"]), (429, "2"))
        self.assertEqual(body["message"], "Rate limit is exceeded. Try again in 2 seconds.")
        self.tpl.faults.add("latency", endpoint="inventory_list", latency=0.3, limit=1)
        self.assertEqual(self.call("GET", "/inventory")[0], 200)
        entry = self.tpl.requests.entries()[-1]
        self.assertEqual(entry["faults"], ["latency"])
        self.assertGreaterEqual(entry["duration_ms"], 300)
        self.tpl.faults.add("drop", endpoint="order_create", apply=True, limit=1)
        with self.assertRaises((urllib.error.URLError, ConnectionError, OSError)):
            self.release("WH/OUT/00051")
        # Applied, answer lost: the release sent again finds the order.
        self.assertEqual(self.release("WH/OUT/00051")[0], 200)

    def test_a_retrying_client_releases_200_orders_exactly_once_under_faults(self):
        self.tpl.limiter.limit = 10_000
        self.tpl.faults.add("throttle", endpoint="order_create", rate=0.1, retry_after=0)
        self.tpl.faults.add("error", endpoint="order_create", rate=0.05)
        self.tpl.faults.add("drop", endpoint="order_create", rate=0.03, apply=True)
        attempts = Counter()
        for number in range(200):
            reference = f"WH/OUT/{number:05d}"
            while True:
                attempts[reference] += 1
                try:
                    status = self.release(reference)[0]
                except (urllib.error.URLError, ConnectionError, OSError):
                    continue
                if status in (200, 201):
                    break
                self.assertIn(status, (429, 503))
        self.assertEqual(len(self.tpl.orders()), 200)
        self.assertGreater(sum(attempts.values()), 220, "faults were met")
        statuses = Counter(entry["status"] for entry in self.tpl.requests.entries())
        self.assertTrue(statuses[429] and statuses[503] and statuses[200], statuses)

    def test_real_time_drives_the_clock_when_asked_and_stop_joins_it(self):

        tpl = ThirdPartyLogisticsSimulator(seed=42, epoch=EPOCH, clock_rate=2.0).start()
        try:
            time.sleep(1.3)
            self.assertGreaterEqual(tpl.now, EPOCH.replace(hour=10))
        finally:
            tpl.stop()
        self.assertNotIn("simulator-3pl-clock", [t.name for t in threading.enumerate()])

    def test_reset_starts_afresh(self):
        self.release("WH/OUT/00052")
        self.tpl.advance(hours=5)
        self.tpl.reset(42)
        self.assertEqual(self.tpl.orders(), [])
        self.assertEqual(self.tpl.now, EPOCH)
        self.assertEqual(self.tpl.webhook_messages(), [])


if __name__ == "__main__":
    unittest.main()
