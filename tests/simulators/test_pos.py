"""The POS simulator held to what it promises: tickets, totals, uploads, the legacy API.

Plain unittest, no Odoo: ``cd tests && python3 -m unittest simulators.test_pos``.
Checks are independent of the simulator's code where it matters: totals
recomputed here, signatures with a HMAC computed here, uploads seen by a
receiver standing in for Odoo, the legacy API read over HTTP with urllib.
"""

import base64
import hashlib
import hmac
import json
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from simulators import PosSimulator, ShopifySimulator
from simulators.pos import PushFaults, ticket_totals
from simulators.testing import WebhookReceiver

KEYS = {"S01": "key-of-s01", "S02": "key-of-s02", "S03": "key-of-s03"}
DAY = date(2026, 11, 30)
RATES = {"VAT20": Decimal("0.20"), "VAT10": Decimal("0.10"), "VAT5_5": Decimal("0.055")}


def cents(value):
    return Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def expected_totals(ticket, rounding):
    """The ticket's total and tax, recomputed from its lines without the simulator's code."""
    amounts = []
    for line in ticket.get("lines", []):
        amount = cents(Decimal(line["quantity"]) * Decimal(line["unit_price"])) - Decimal(
            line["discount"]
        )
        amounts.append((amount, RATES[line["tax_code"]]))
    total = sum((a for a, _r in amounts), Decimal(0))
    if rounding == "line":
        tax = sum((cents(a * r / (1 + r)) for a, r in amounts), Decimal(0))
    else:
        by_rate = {}
        for amount, rate in amounts:
            by_rate[rate] = by_rate.get(rate, Decimal(0)) + amount
        tax = sum((cents(a * r / (1 + r)) for r, a in by_rate.items()), Decimal(0))
    return cents(total), cents(tax)


def signature(key, body):
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


class TestTickets(unittest.TestCase):
    """The tickets a fleet rings up: shapes, numbering, totals, returns, voids, Z reports."""

    def setUp(self):
        super().setUp()
        self.pos = PosSimulator(seed=42, business_day=DAY)

    def test_default_fleet_is_three_stores_of_two_registers(self):
        fleet = self.pos.snapshot(["fleet"])["fleet"]
        self.assertEqual([s["code"] for s in fleet["stores"]], ["S01", "S02", "S03"])
        self.assertEqual(
            {tuple(r["code"] for r in s["registers"]) for s in fleet["stores"]}, {("R1", "R2")}
        )
        self.assertEqual(fleet["rounding"], "line")

    def test_catalogue_is_the_web_shops_for_the_same_seed(self):
        shop = ShopifySimulator(seed=42)
        web = {(v["sku"], v["barcode"], Decimal(v["price"])) for v in shop.catalog()}
        pos = {(p["sku"], p["barcode"], p["price"]) for p in self.pos.catalog()}
        self.assertEqual(pos, web)
        self.assertEqual({p["tax_code"] for p in self.pos.catalog()}, {"VAT20", "VAT5_5"})

    def test_same_seed_same_tickets_other_seed_other_tickets(self):
        def day(seed):
            pos = PosSimulator(seed=seed, business_day=DAY)
            pos.ring(count=5)
            return pos.tickets()

        self.assertEqual(day(7), day(7))
        self.assertNotEqual([t["uuid"] for t in day(7)], [t["uuid"] for t in day(8)])

    def test_tickets_follow_the_contract(self):
        self.pos.ring(count=40)
        tickets = self.pos.tickets()
        self.assertEqual(
            set(Counter(t["type"] for t in tickets)), {"sale", "return", "void", "no_sale"}
        )
        for ticket in tickets:
            self.assertEqual(ticket["business_day"], "2026-11-30")
            self.assertLess(ticket["opened_at"], ticket["closed_at"])
            for line in ticket.get("lines", []):
                for key in ("quantity", "unit_price", "discount"):
                    self.assertIsInstance(line[key], str, key)
                self.assertIn(line["tax_code"], RATES)
                self.assertEqual(self.pos.catalog(line["sku"])["barcode"], line["barcode"])
            paid = sum((Decimal(t["amount"]) for t in ticket.get("tenders", [])), Decimal(0))
            if ticket["type"] in ("sale", "return"):
                self.assertEqual(paid, Decimal(ticket["total"]), "tenders pay the total")
            else:
                self.assertEqual((ticket["lines"], ticket["tenders"]), ([], []))
        with_customer = [t for t in tickets if t.get("customer")]
        self.assertTrue(with_customer, "some sales name a customer")
        self.assertTrue(any(len(t.get("tenders", [])) > 1 for t in tickets), "split tenders")
        self.assertTrue(
            any(Decimal(line["discount"]) for t in tickets for line in t.get("lines", []))
        )

    def test_sequence_grows_by_one_per_register(self):
        self.pos.ring(count=15)
        for store in ("S01", "S02", "S03"):
            for register in ("R1", "R2"):
                numbers = [t["sequence"] for t in self.pos.tickets(store, register)]
                self.assertEqual(numbers, list(range(numbers[0], numbers[0] + 15)))

    def test_totals_are_the_pos_totals_in_both_rounding_modes(self):
        for rounding in ("line", "ticket"):
            pos = PosSimulator(seed=5, rounding=rounding, business_day=DAY)
            pos.ring(count=30)
            for ticket in pos.tickets():
                total, tax = expected_totals(ticket, rounding)
                self.assertEqual(Decimal(ticket["total"]), total, ticket["uuid"])
                self.assertEqual(Decimal(ticket["total_tax"]), tax, ticket["uuid"])

    def test_rounding_per_line_and_per_ticket_differ_by_the_cent(self):
        # 3 lines at 19.90 tax included, 20 %: 3.3167 each, rounded 3.32, so 9.96
        # per line; 59.70 / 6 = 9.95 per ticket. The total is the same.
        lines = [
            {"quantity": "1", "unit_price": "19.90", "discount": "0.00", "tax_code": "VAT20"}
        ] * 3
        self.assertEqual(ticket_totals(lines, "line"), (Decimal("59.70"), Decimal("9.96")))
        self.assertEqual(ticket_totals(lines, "ticket"), (Decimal("59.70"), Decimal("9.95")))
        with self.assertRaisesRegex(ValueError, "rounding must be one of line, ticket"):
            ticket_totals(lines, "global")
        sku = next(p["sku"] for p in self.pos.catalog() if p["tax_code"] == "VAT20")
        taxes = {}
        for rounding in ("line", "ticket"):
            pos = PosSimulator(seed=42, rounding=rounding, business_day=DAY)
            ticket = pos.sale("S01", "R1", [(sku, 1, "0"), (sku, 1, "0"), (sku, 1, "0")])
            taxes[rounding] = ticket["total_tax"]
            price = self.pos.catalog(sku)["price"]
            self.assertEqual(ticket["total"], f"{price * 3:.2f}")
        self.assertEqual(
            {k: Decimal(v) for k, v in taxes.items()},
            {
                "line": 3 * cents(price / 6),
                "ticket": cents(3 * price / 6),
            },
        )

    def test_given_sale_lines_discount_tenders_and_customer(self):
        sku = self.pos.catalog()[0]["sku"]
        price = self.pos.catalog(sku)["price"]
        ticket = self.pos.sale(
            "S02",
            "R2",
            [(sku, 2, "5.00")],
            tenders=[("gift_card", "10.00"), ("card", f"{2 * price - 15:.2f}")],
            customer={"loyalty_id": "L-00001"},
        )
        self.assertEqual(ticket["total"], f"{2 * price - 5:.2f}")
        self.assertEqual([t["type"] for t in ticket["tenders"]], ["gift_card", "card"])
        self.assertEqual(ticket["customer"], {"loyalty_id": "L-00001"})
        plain = self.pos.sale("S02", "R2", [(sku, 1)], customer=False)
        self.assertEqual(plain["lines"][0]["discount"], "0.00", "given lines: no discount drawn")
        self.assertNotIn("customer", plain)
        with self.assertRaisesRegex(ValueError, "tenders add up to"):
            self.pos.sale("S02", "R2", [(sku, 1, "0")], tenders=[("cash", "1.00")])
        with self.assertRaisesRegex(ValueError, "no SKU 'NOPE'"):
            self.pos.sale("S02", "R2", [("NOPE", 1)])
        with self.assertRaisesRegex(ValueError, "no store 'S09'"):
            self.pos.sale("S09", "R1")
        with self.assertRaisesRegex(ValueError, "unknown tender 'cheque'"):
            self.pos.sale("S02", "R2", [(sku, 1, "0")], tenders=["cheque"])

    def test_return_names_the_lines_it_returns_with_negative_amounts(self):
        sku = self.pos.catalog()[3]["sku"]
        sale = self.pos.sale("S01", "R1", [(sku, 3, "3.00")], tenders=["card"])
        line = sale["lines"][0]["line_uuid"]
        self.pos.next_day()
        back = self.pos.return_of("S03", "R2", sale, [(line, 2)])
        self.assertEqual(back["type"], "return")
        self.assertEqual(back["business_day"], "2026-12-01")
        self.assertEqual(back["original_uuid"], sale["uuid"])
        self.assertEqual(back["lines"][0]["return_of_line"], line)
        self.assertEqual(back["lines"][0]["quantity"], "-2")
        self.assertEqual(back["lines"][0]["discount"], "-2.00", "the discount given back pro rata")
        self.assertEqual(
            Decimal(back["total"]),
            -(Decimal(sale["total"]) + 1 - Decimal(sale["lines"][0]["unit_price"])),
        )
        # Money back to the card paid with: the refund names that card payment.
        card = sale["tenders"][0]["reference"]
        self.assertRegex(card, r"^S01-R1-\d+-\d{6}$", "the terminal's reference, unique")
        self.assertEqual(
            back["tenders"], [{"type": "card", "amount": back["total"], "reference": card}]
        )
        self.assertEqual(
            expected_totals(back, "line"), (Decimal(back["total"]), Decimal(back["total_tax"]))
        )
        with self.assertRaisesRegex(ValueError, "1 returnable, not 2"):
            self.pos.return_of("S01", "R1", sale, [(line, 2)])
        with self.assertRaisesRegex(ValueError, "it cannot be voided"):
            self.pos.void("S01", "R1", sale)

    def test_void_and_no_sale(self):
        sale = self.pos.sale("S01", "R1")
        no_sale = self.pos.no_sale("S01", "R1")
        void = self.pos.void("S01", "R1", sale)
        self.assertEqual(void["original_uuid"], sale["uuid"])
        self.assertEqual(
            [no_sale["sequence"], void["sequence"]], [sale["sequence"] + 1, sale["sequence"] + 2]
        )
        for ticket in (no_sale, void):
            self.assertEqual((ticket["total"], ticket["total_tax"]), ("0.00", "0.00"))
        with self.assertRaisesRegex(ValueError, "voided already"):
            self.pos.void("S01", "R1", sale)
        with self.assertRaisesRegex(ValueError, "was voided: nothing to return"):
            self.pos.return_of("S01", "R1", sale)
        yesterday = self.pos.sale("S01", "R2")
        self.pos.next_day()
        with self.assertRaisesRegex(
            ValueError, "is of 2026-11-30: a void cancels a sale of the day"
        ):
            self.pos.void("S01", "R2", yesterday)

    def test_resume_carries_on_after_the_last_day_and_numbers_known(self):
        first = self.pos.sale("S01", "R1")
        self.pos.resume("2026-12-02", {"S01": {"R1": first["sequence"] + 40}, "S09": {"R1": 7}})
        self.assertEqual(self.pos.business_day, date(2026, 12, 3))
        after = self.pos.sale("S01", "R1")
        self.assertEqual(after["sequence"], first["sequence"] + 41)
        self.assertEqual(after["business_day"], "2026-12-03")
        self.pos.resume("2026-11-01", {"S01": {"R2": 12}})
        self.assertEqual(self.pos.business_day, date(2026, 12, 3), "an earlier day changes nothing")
        self.assertEqual(self.pos.sale("S01", "R2")["sequence"], 13, "numbers go on, no gap")

    def test_closing_is_computed_from_the_registers_tickets(self):
        self.pos.ring("S01", "R1", count=20)
        self.pos.void("S01", "R1", self.pos.sale("S01", "R1"))
        self.pos.ring("S01", "R1", count=8)
        tickets = self.pos.tickets("S01", "R1")
        voided = {t["original_uuid"] for t in tickets if t["type"] == "void"}
        totals = Counter()
        for ticket in tickets:
            if ticket["uuid"] not in voided:
                for tender in ticket.get("tenders", []):
                    totals[tender["type"]] += Decimal(tender["amount"])
        closing = self.pos.closing("S01", "R1")
        self.assertEqual(closing["closing_id"], "Z-S01-R1-2026-11-30")
        self.assertEqual(closing["ticket_count"], 30)
        self.assertEqual(
            (closing["first_sequence"], closing["last_sequence"]),
            (tickets[0]["sequence"], tickets[-1]["sequence"]),
        )
        self.assertEqual(
            {t["tender"]: Decimal(t["amount"]) for t in closing["totals"]}, dict(totals)
        )
        with self.assertRaisesRegex(ValueError, "S01 R2 has no ticket on 2026-11-30"):
            self.pos.closing("S01", "R2")


class PushCase(unittest.TestCase):
    """A POS fleet pushing to a receiver that stands in for Odoo's intake."""

    receiver_statuses = ()

    def setUp(self):
        super().setUp()
        self.receiver = WebhookReceiver(statuses=list(self.receiver_statuses)).__enter__()
        self.addCleanup(self.receiver.__exit__, None, None, None)
        self.pos = PosSimulator(seed=42, keys=KEYS, batch_size=10, business_day=DAY)
        self.pos.push_url = self.receiver.url.rsplit("/", 1)[0]

    def received(self, count=None):
        requests = (
            self.receiver.wait_for(count or len(self.pos.uploads))
            if count
            else list(self.receiver.received)
        )
        return [(r["path"].rsplit("/", 1)[1], json.loads(r["body"]), r) for r in requests]

    def batches(self):
        return [body for kind, body, _r in self.received() if kind == "batches"]


class TestPush(PushCase):
    def test_batches_are_signed_with_the_stores_key(self):
        self.pos.ring("S01", count=3)
        uploads = self.pos.push("S01")
        self.assertEqual([u["status"] for u in uploads], [200, 200])
        for _kind, body, request in self.received():
            self.assertEqual(request["path"], "/connector/pos/v1/fleets/FLEET1/batches")
            self.assertEqual(request["headers"]["X-Pos-Store"], "S01")
            self.assertEqual(request["headers"]["Content-Type"], "application/json")
            self.assertEqual(
                request["headers"]["X-Pos-Signature"], signature("key-of-s01", request["body"])
            )
            self.assertEqual(body["store"], "S01")
            self.assertEqual((body["contract"], body["prices_include_tax"]), (1, True))

    def test_raw_uploads_for_envelopes_the_client_would_never_send(self):
        answer = self.pos.post_raw("batches", "S99", {"batch_id": "x"})
        self.assertEqual(answer["status"], 200)
        request = self.receiver.received[0]
        self.assertEqual(request["headers"]["X-Pos-Store"], "S99")
        self.assertNotIn("X-Pos-Signature", request["headers"], "no key, no signature")
        self.pos.post_raw("closings", "S01", b"not json")
        request = self.receiver.received[1]
        self.assertEqual(request["body"], b"not json")
        self.assertEqual(
            request["headers"]["X-Pos-Signature"], signature("key-of-s01", b"not json")
        )

    def test_a_key_set_from_outside_signs_the_next_batches(self):
        self.pos.set_key("S02", "generated-by-odoo")
        self.pos.ring("S02", "R1")
        self.pos.push("S02")
        request = self.receiver.received[0]
        self.assertEqual(
            request["headers"]["X-Pos-Signature"], signature("generated-by-odoo", request["body"])
        )

    def test_trading_day_uploads_every_ticket_once_in_micro_batches_then_the_z_reports(self):
        uploads = self.pos.trade_day("S01", tickets=40, push_every=5)
        self.assertTrue(all(u["status"] == 200 for u in uploads))
        received = self.received()
        kinds = [kind for kind, _body, _r in received]
        self.assertEqual(kinds[-2:], ["closings", "closings"], "closings come last")
        batches = self.batches()
        self.assertTrue(all(len(b["tickets"]) <= 10 for b in batches))
        self.assertGreater(len(batches), 8, "micro-batches, not the day at once")
        sent = [t["uuid"] for b in batches for t in b["tickets"]]
        self.assertEqual(sorted(sent), sorted(t["uuid"] for t in self.pos.tickets("S01")))
        for batch in batches:
            numbers = [t["sequence"] for t in batch["tickets"]]
            self.assertEqual(numbers, sorted(numbers), "a batch is in sequence order")
            self.assertEqual(
                {self.pos.ticket_meta(t["uuid"])["register"] for t in batch["tickets"]},
                {batch["register"]},
            )
        closings = {body["register"]: body for kind, body, _r in received if kind == "closings"}
        self.assertEqual(closings["R1"], self.pos.closing("S01", "R1"))
        self.assertEqual(closings["R1"]["ticket_count"], 40)

    def test_offline_store_keeps_its_tickets_then_uploads_in_batches_of_500(self):
        self.pos.set_offline("S03")
        self.pos.trade_day("S03", tickets=600, push_every=5)
        self.pos.trade_day("S01", tickets=3, push_every=5, close=False)
        self.assertEqual({b["store"] for b in self.batches()}, {"S01"}, "S03 sends nothing")
        self.receiver.clear()
        uploads = self.pos.set_online("S03")
        sizes = [(u["register"], len(u["tickets"])) for u in uploads if u["kind"] == "batches"]
        self.assertEqual(sizes, [("R1", 500), ("R1", 100), ("R2", 500), ("R2", 100)])
        self.assertEqual([u["kind"] for u in uploads].count("closings"), 2)
        self.pos.ring("S03", "R1")
        self.assertEqual(len(self.pos.push("S03")[0]["tickets"]), 1, "micro-batches again")

    def test_a_held_ticket_leaves_a_gap_until_released(self):
        sale = self.pos.sale("S01", "R1")
        self.pos.ring("S01", "R1", count=3)
        self.pos.hold(sale)
        self.pos.close("S01", "R1")
        self.pos.push("S01", "R1")
        kinds = [kind for kind, _body, _r in self.received()]
        self.assertEqual(kinds, ["batches", "closings"], "the Z report goes with a gap")
        self.assertNotIn(sale["uuid"], [t["uuid"] for t in self.pos.delivered()])
        self.assertEqual(self.pos.push("S01", "R1"), [], "held until released")
        self.pos.release(sale)
        self.assertEqual(self.pos.push("S01", "R1")[0]["tickets"], [sale["uuid"]])
        self.assertEqual(len(self.pos.delivered("S01", "R1")), 4)
        with self.assertRaisesRegex(ValueError, "not waiting for upload any more"):
            self.pos.hold(sale)

    def test_closings_wait_behind_the_tickets(self):
        self.pos.set_offline("S02")
        self.pos.trade_day("S02", tickets=5)
        self.assertEqual(self.received(), [])
        self.pos.set_online("S02")
        kinds = [(kind, body["register"]) for kind, body, _r in self.received()]
        self.assertEqual(
            kinds, [("batches", "R1"), ("closings", "R1"), ("batches", "R2"), ("closings", "R2")]
        )


class TestPushRetries(PushCase):
    receiver_statuses = (503, 503)

    def test_unanswered_batch_is_sent_again_with_the_same_id(self):
        self.pos.ring("S01", "R1", count=3)
        first = self.pos.push("S01", "R1")
        self.assertEqual([u["status"] for u in first], [503])
        self.pos.ring("S01", "R1", count=2)
        self.assertEqual([u["status"] for u in self.pos.push("S01", "R1")], [503])
        second = self.pos.push("S01", "R1")
        self.assertEqual([u["status"] for u in second], [200, 200])
        ids = [body["batch_id"] for body in self.batches()]
        self.assertEqual(ids[:3], [first[0]["id"]] * 3, "same batch, same id")
        bodies = {request["body"] for request in self.receiver.received[:3]}
        self.assertEqual(len(bodies), 1, "the very same body")
        self.assertEqual([len(b["tickets"]) for b in self.batches()], [3, 3, 3, 2])

    def test_no_odoo_listening_is_a_failed_upload_kept_for_later(self):
        self.pos.push_url = "http://127.0.0.1:9"
        self.pos.ring("S01", "R1")
        upload = self.pos.push("S01", "R1")[0]
        self.assertIsNone(upload["status"])
        self.assertIn("ConnectionRefusedError", upload["attempts"][0]["error"])
        self.assertEqual(
            self.pos.snapshot(["fleet"])["fleet"]["stores"][0]["registers"][0]["pending_batches"], 1
        )


class TestPushFaults(PushCase):
    def test_lost_answer_resends_the_same_batch(self):
        self.pos.push_faults = PushFaults(lost_answer=1.0)
        self.pos.ring("S01", "R1", count=2)
        upload = self.pos.push("S01", "R1")[0]
        self.assertEqual([a.get("lost", False) for a in upload["attempts"]], [True, False])
        first, second = self.received(2)
        self.assertEqual(first[2]["body"], second[2]["body"], "the very same batch again")

    def test_gap_holds_a_ticket_back_until_the_next_push(self):
        self.pos.push_faults = PushFaults(gap=0.2)
        self.pos.ring("S01", "R1", count=20)
        self.pos.push("S01", "R1")
        sent = {t["sequence"] for b in self.batches() for t in b["tickets"]}
        numbers = {t["sequence"] for t in self.pos.tickets("S01", "R1")}
        missing = numbers - sent
        self.assertTrue(missing, "a gap in the register's sequence")
        self.assertTrue(
            all(
                self.pos.ticket_meta(t["uuid"]).get("held")
                for t in self.pos.tickets("S01", "R1")
                if t["sequence"] in missing
            )
        )
        self.pos.push_faults = PushFaults()
        self.pos.push("S01", "R1")
        late = {t["sequence"] for t in self.batches()[-1]["tickets"]}
        self.assertEqual(late, missing, "the late tickets arrive with the next push")

    def test_out_of_order_batches(self):
        self.pos.push_faults = PushFaults(out_of_order=1.0)
        self.pos.ring("S01", "R1", count=30)
        self.pos.push("S01", "R1")
        firsts = [b["tickets"][0]["sequence"] for b in self.batches()]
        self.assertEqual(len(firsts), 3)
        self.assertNotEqual(firsts, sorted(firsts))
        self.assertEqual(sorted(firsts), [firsts[1], firsts[0], firsts[2]])

    def test_malformed_tickets_are_corrupted_in_the_upload_only(self):
        self.pos.push_faults = PushFaults(malformed=0.5)
        self.pos.ring("S01", "R1", count=20)
        self.pos.push("S01", "R1")
        truth = {t["uuid"]: t for t in self.pos.tickets()}
        broken = {}
        for ticket in (t for b in self.batches() for t in b["tickets"]):
            how = self.pos.ticket_meta(ticket["uuid"]).get("malformed")
            if how:
                broken[how] = ticket
            else:
                self.assertEqual(ticket, truth[ticket["uuid"]])
        self.assertEqual(set(broken), {"line without product", "quantity not a number"})
        line = broken["line without product"]["lines"][0]
        self.assertNotIn("sku", line)
        self.assertNotIn("barcode", line)
        self.assertEqual(broken["quantity not a number"]["lines"][0]["quantity"], "abc")
        self.assertIn("sku", truth[broken["line without product"]["uuid"]]["lines"][0])

    def test_duplicate_ticket_rides_in_the_next_batch(self):
        self.pos.push_faults = PushFaults(duplicate=0.1)
        self.pos.ring("S01", "R1", count=30)
        self.pos.push("S01", "R1")
        seen = Counter(t["uuid"] for b in self.batches() for t in b["tickets"])
        twice = {uuid for uuid, count in seen.items() if count == 2}
        self.assertTrue(twice)
        self.assertEqual(
            twice,
            {
                t["uuid"]
                for t in self.pos.tickets()
                if self.pos.ticket_meta(t["uuid"]).get("duplicated")
            },
        )
        for uuid in twice:
            holders = [
                i
                for i, b in enumerate(self.batches())
                if any(t["uuid"] == uuid for t in b["tickets"])
            ]
            self.assertEqual(holders[1], holders[0] + 1, "in two batches, one after the other")

    def test_fault_draws_replay_with_the_seed(self):
        def run():
            self.receiver.clear()
            self.pos.reset(42)
            self.pos.push_faults = PushFaults(
                gap=0.1, duplicate=0.1, malformed=0.1, out_of_order=0.3
            )
            self.pos.ring("S01", count=25)
            self.pos.push("S01")
            return [[t["uuid"] for t in b["tickets"]] for b in self.batches()], [
                (u["id"], u["register"]) for u in self.pos.uploads
            ]

        self.assertEqual(run(), run())


class LegacyCase(unittest.TestCase):
    options = {}

    def setUp(self):
        super().setUp()
        self.pos = PosSimulator(seed=42, business_day=DAY, **self.options).start()
        self.addCleanup(self.pos.stop)

    def get(self, path, token=True, **params):
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(
            f"{self.pos.legacy_url}{path}{query}", headers=self.pos.headers if token else {}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response), response.headers
        except urllib.error.HTTPError as error:
            return error.code, json.load(error), error.headers

    def read_all(self, collection, page_size=7, after=0, retry=False):
        """Every record after ``after``, page by page, as a client would; and the pages' cursors."""
        records, cursors = [], []
        while True:
            status, body, _headers = self.get(f"/{collection}", after=after, page_size=page_size)
            if retry and status in (429, 500, 502, 503):
                continue
            self.assertEqual(status, 200, body)
            if not body["data"]:
                self.assertNotIn("version", body)
                return records, cursors
            records.extend(body["data"])
            self.assertEqual(body["version"]["min"], body["data"][0]["version"])
            after = body["version"]["max"]
            cursors.append(after)


class TestLegacyApi(LegacyCase):
    def test_token_is_required(self):
        status, body, _headers = self.get("/sales", token=False)
        self.assertEqual(status, 401)
        self.assertEqual(body["error"], "Unauthorized")

    def test_sales_page_by_version_and_match_the_tickets(self):
        self.pos.trade_day(tickets=12)
        sales, cursors = self.read_all("sales")
        self.assertEqual(cursors, sorted(set(cursors)))
        versions = [s["version"] for s in sales]
        self.assertEqual(versions, sorted(set(versions)))
        latest = {s["id"]: s for s in sales}
        tickets = {t["uuid"]: t for t in self.pos.tickets() if t["type"] in ("sale", "return")}
        self.assertEqual(set(latest), set(tickets), "every sale and return, no-sales left out")
        voided = {t["original_uuid"] for t in self.pos.tickets(kind="void")}
        self.assertTrue(voided)
        ids = self.pos.legacy_ids()
        for uuid, ticket in tickets.items():
            sale = latest[uuid]
            self.assertEqual(sale["status"], "VOIDED" if uuid in voided else "CLOSED")
            paid = Decimal(str(sale["total_price"])) + Decimal(str(sale["total_tax"]))
            self.assertEqual(paid, Decimal(ticket["total"]), "the customer paid the POS total")
            self.assertEqual(Decimal(str(sale["total_tax"])), Decimal(ticket["total_tax"]))
            self.assertEqual(sale["outlet_id"], ids["outlets"][self.pos.ticket_meta(uuid)["store"]])
            self.assertEqual(
                [line["product_id"] for line in sale["line_items"]],
                [ids["products"][line["sku"]] for line in ticket["lines"]],
            )
            if ticket["type"] == "return":
                self.assertEqual(sale["return_for"], ticket["original_uuid"])
                self.assertTrue(all(line["quantity"] < 0 for line in sale["line_items"]))
        status, body, _h = self.get("/sales", after=max(versions))
        self.assertEqual((status, body), (200, {"data": []}))

    def test_a_void_sends_the_sale_again_voided_with_a_new_version(self):
        sale = self.pos.sale("S03", "R1")
        self.pos.ring("S03", count=3)
        sales, cursors = self.read_all("sales")
        self.assertEqual(next(s for s in sales if s["id"] == sale["uuid"])["status"], "CLOSED")
        self.pos.void("S03", "R1", sale)
        again, _cursors = self.read_all("sales", after=cursors[-1])
        self.assertEqual([(s["id"], s["status"]) for s in again], [(sale["uuid"], "VOIDED")])
        self.assertGreater(again[0]["version"], cursors[-1])

    def test_reference_collections(self):
        for collection, count in (
            ("outlets", 3),
            ("registers", 6),
            ("products", 104),
            ("taxes", 3),
            ("payment_types", 5),
        ):
            records, _cursors = self.read_all(collection, page_size=50)
            self.assertEqual(len(records), count, collection)
        status, body, _h = self.get("/refunds")
        self.assertEqual((status, body["error"]), (404, "Not Found"))
        status, body, _h = self.get("/sales", page_size=0)
        self.assertEqual(
            (status, body["error_description"]), (400, "page_size is 1 to 10000, after 0 or more")
        )
        status, body, _h = self.get("/sales", after="abc")
        self.assertEqual(
            (status, body["error_description"]), (400, "after, before and page_size are integers")
        )

    def test_register_closure_totals_per_payment_type(self):
        self.pos.trade_day("S02", tickets=15, push_every=0)
        closures, _cursors = self.read_all("register_closures")
        self.assertEqual(len(closures), 2)
        names = {
            "cash": "Cash",
            "card": "Credit Card",
            "gift_card": "Gift Card",
            "voucher": "Voucher",
            "store_credit": "Store Credit",
        }
        for closure in closures:
            register = next(
                k
                for k, v in self.pos.legacy_ids()["registers"].items()
                if v == closure["register_id"]
            )
            z = self.pos.closing(*register.split("/"))
            expected = {names[t["tender"]]: t["amount"] for t in z["totals"]}
            got = {
                p["payment_type_name"]: p["total"]
                for p in closure["payments"]
                if p["total"] != "0.00"
            }
            self.assertEqual(got, expected)
            self.assertIsInstance(closure["register_closure_sequence_number"], int)
        register_id = closures[0]["register_id"]
        status, body, _h = self.get(f"/registers/{register_id}/payments_summary")
        self.assertEqual(status, 200)
        self.assertEqual(
            body["data"]["register_closure_sequence_number"],
            closures[0]["register_closure_sequence_number"] + 1,
        )
        self.assertEqual({p["total"] for p in body["data"]["payments"]}, {"0.00"}, "a new period")


class TestParkedSales(LegacyCase):
    options = {"parked_share": 1.0}

    def test_parked_sale_comes_again_closed_with_its_payments(self):
        first = self.pos.sale("S01", "R1")
        sales, _c = self.read_all("sales")
        self.assertEqual([(s["status"], s["payments"]) for s in sales], [("SAVED", [])])
        self.pos.no_sale("S01", "R1")
        later, _c = self.read_all("sales", after=sales[-1]["version"])
        self.assertEqual([(s["id"], s["status"]) for s in later], [(first["uuid"], "CLOSED")])
        self.assertEqual(len(later[0]["payments"]), len(first["tenders"]))


class TestRateLimit(LegacyCase):
    options = {"rate_limit": 5, "rate_window": 0.6}

    def test_default_limit_is_300_per_register_plus_50(self):
        self.assertEqual(PosSimulator().limiter.limit, 300 * 6 + 50)
        self.assertEqual(PosSimulator(stores=1, registers=1).limiter.limit, 350)

    def test_past_the_limit_429_with_retry_after_then_served_again(self):
        statuses = [self.get("/outlets")[0] for _ in range(5)]
        status, _body, headers = self.get("/outlets")
        self.assertEqual((statuses, status), ([200] * 5, 429))
        self.assertEqual(headers["Retry-After"], "1")
        time.sleep(0.65)
        self.assertEqual(self.get("/outlets")[0], 200)
        self.assertTrue(self.pos.requests.entries()[5]["rate_limited"])

    def test_unauthorized_requests_do_not_count(self):
        for _ in range(8):
            self.assertEqual(self.get("/outlets", token=False)[0], 401)
        self.assertEqual(self.get("/outlets")[0], 200)


class TestLegacyFaults(LegacyCase):
    def test_a_client_retrying_429_and_5xx_reads_every_sale_once(self):
        self.pos.ring(count=10)
        self.pos.faults.add("throttle", rate=0.1, retry_after=1, endpoint="/api/2.0/sales")
        self.pos.faults.add("error", rate=0.05, status=502, endpoint="/api/2.0/sales")
        sales, _cursors = self.read_all("sales", page_size=1, retry=True)
        statuses = Counter(e["status"] for e in self.pos.requests.entries())
        self.assertGreater(statuses[429], 0)
        self.assertEqual(
            Counter(s["id"] for s in sales if s["status"] == "CLOSED").most_common(1)[0][1], 1
        )
        self.assertEqual(
            len({s["id"] for s in sales}),
            len(self.pos.tickets(kind="sale")) + len(self.pos.tickets(kind="return")),
        )


class TestLegacyWebhooks(unittest.TestCase):
    def test_sale_update_is_a_form_with_the_sale_as_json_in_payload(self):
        with WebhookReceiver() as receiver, PosSimulator(seed=42, business_day=DAY) as pos:
            pos.webhook_url = receiver.url
            sale = pos.sale("S01", "R1", tenders=["cash"])
            self.assertTrue(pos.wait_webhooks(10))
            delivery = receiver.wait_for(1)[0]
        self.assertEqual(delivery["headers"]["Content-Type"], "application/x-www-form-urlencoded")
        form = urllib.parse.parse_qs(delivery["body"].decode())
        self.assertEqual(form["type"], ["sale.update"])
        self.assertEqual(json.loads(form["payload"][0])["id"], sale["uuid"])


if __name__ == "__main__":
    unittest.main()
