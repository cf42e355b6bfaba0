import json
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from unittest.mock import patch

from simulators import PosSimulator

from odoo import fields
from odoo.tests import HttpCase, tagged

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job as QueueJob

from ..components.ticket import pos_time
from ..models.pos_pull import ConnectorBackend as PullBackend
from .common import FLEET, make_fleet, make_products

# The POS has two outlets; the fleet maps S01's to its store. S02's outlet has
# no store until a test gives it one.
STORES = ("S01",)
JOB_METHODS = ("_pos_pull", "_dispatch_received", "_process", "_process_batch")


class PullCase(HttpCase):
    """A fleet in pull mode reading the legacy API of the POS simulator."""

    rounding = "round_per_line"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pos = PosSimulator(
            seed=11,
            fleet_code=FLEET,
            stores=2,
            registers=2,
            rounding="line" if cls.rounding == "round_per_line" else "ticket",
        )
        cls.pos.start()
        cls.addClassCleanup(cls.pos.stop)
        cls.backend, cls.stores, _keys = make_fleet(cls.env, rounding=cls.rounding, stores=STORES)
        cls.backend.write(
            {
                "pos_mode": "pull",
                "base_url": cls.pos.legacy_url,
                "api_token": cls.pos.access_token,
                "pos_page_size": 25,
            }
        )
        cls.products = make_products(cls.env, cls.pos.catalog())

    def setUp(self):
        super().setUp()
        self.retries = []  # (HTTP status, seconds, spends no attempt) of each retry
        self.pos.reset(11)
        self.poll()  # the outlets, registers, payment types... of the POS
        self.map_legacy()

    # --- helpers ---------------------------------------------------------------------

    def map_legacy(self, outlets=STORES):
        """Each outlet its store, each payment type its tender, as the
        configuration guide says."""
        ids = self.pos.legacy_ids()
        Record = self.env["connector.pos.legacy.record"]
        for code in outlets:
            Record.search(
                [("legacy_id", "=", ids["outlets"][code])]
            ).store_id = self.stores.filtered(lambda s, c=code: s.code == c)
        for tender, legacy_id in ids["payment_types"].items():
            Record.search([("legacy_id", "=", legacy_id)]).tender_type = tender

    def poll(self, rounds=2000):
        """Start a poll as the flow's schedule does, then run the jobs it
        queues (pages, tickets, closings) as queue_job's runner would: each
        in a transaction of its own (a savepoint), a retried one again.
        Returns the failures ``{job: message}`` and the retries."""
        self.backend._pos_start_pull()
        return self.run_jobs(rounds)

    def run_jobs(self, rounds=2000):
        Job = self.env["queue.job"]
        retried = Counter()
        failed = {}
        for _ in range(rounds):
            jobs = Job.search(
                [("state", "=", "pending"), ("method_name", "in", JOB_METHODS)], order="id"
            )
            if not jobs:
                return failed, retried
            for record in jobs:
                job = QueueJob.load(self.env, record.uuid)
                job.set_started()
                job.store()
                try:
                    with self.env.cr.savepoint():
                        job.perform()
                except RetryableJobError as exc:
                    retried[record.method_name] += 1
                    cause = getattr(exc.__cause__, "status", None)
                    self.retries.append((cause, exc.seconds, exc.ignore_retry))
                    job.set_pending(reset_retry=False)
                    job.store()
                    continue
                except Exception as exc:
                    job.set_failed(exc_info=str(exc))
                    job.store()
                    failed[record.uuid] = str(exc)
                    continue
                job.set_done()
                job.store()
        self.fail("jobs still pending after the last round")

    def orders(self):
        return self.env["pos.order"].search([("connector_pos_store_id", "in", self.stores.ids)])

    def legacy_sales(self, outlets=STORES):
        """The POS's sales (of the outlets mapped to a store, by default)."""
        ids = {self.pos.legacy_ids()["outlets"][code] for code in outlets}
        return [
            sale
            for sale in self.pos.snapshot(["legacy_sales"])["legacy_sales"]
            if sale["outlet_id"] in ids
        ]

    def ticket_events(self):
        return self.env["connector.event"].search(
            [("backend_id", "=", self.backend.id), ("topic", "=", "ticket")]
        )

    def assert_every_sale_applied_once(self):
        """Odoo's orders are the legacy POS's sales: one per closed or voided
        sale, one refund per void, none for a parked one; totals to the cent."""
        sales = self.legacy_sales()
        done = [s for s in sales if s["status"] in ("CLOSED", "VOIDED")]
        voided = [s for s in sales if s["status"] == "VOIDED"]
        orders = self.orders()
        self.assertEqual(len(orders), len(done) + len(voided), "one order per ticket")
        self.assertEqual(len(set(orders.mapped("uuid"))), len(orders))
        by_uuid = {order.uuid: order for order in orders}
        for sale in done:
            order = by_uuid.get(sale["id"])
            self.assertTrue(order, f"sale {sale['receipt_number']} has its order")
            self.assertEqual(
                Decimal(str(order.amount_total)).quantize(Decimal("0.01")),
                (Decimal(str(sale["total_price"])) + Decimal(str(sale["total_tax"]))).quantize(
                    Decimal("0.01")
                ),
            )
        for sale in voided:
            self.assertTrue(by_uuid.get(f"{sale['id']}:void"), "a void reverses its sale")
        # The tickets as the registers rang them up (the push ground truth).
        status = {sale["id"]: sale["status"] for sale in sales}
        for ticket in self.pos.tickets(store="S01"):
            if ticket["type"] in ("sale", "return") and status[ticket["uuid"]] != "SAVED":
                order = by_uuid[ticket["uuid"]]
                self.assertEqual(
                    (order.connector_pos_register, order.connector_pos_sequence),
                    (self.pos.ticket_meta(ticket["uuid"])["register"], ticket["sequence"]),
                )
                self.assertFalse(
                    order.currency_id.compare_amounts(order.amount_total, float(ticket["total"]))
                )
            elif ticket["type"] == "void":
                self.assertIn(f"{ticket['original_uuid']}:void", by_uuid)
        closed = sum(
            Decimal(str(s["total_price"])) + Decimal(str(s["total_tax"]))
            for s in sales
            if s["status"] == "CLOSED"
        )
        self.assertEqual(
            Decimal(str(sum(orders.mapped("amount_total")))).quantize(Decimal("0.01")),
            closed.quantize(Decimal("0.01")),
            "the day's takings are the POS's",
        )
        self.assertFalse(
            self.ticket_events().filtered(lambda e: e.state not in ("done", "duplicate")),
            "every ticket applied",
        )


@tagged("post_install", "-at_install")
class TestPosPull(PullCase):
    """A fleet in pull mode: Odoo reads the legacy POS's sales and register
    closures by cursor, and applies them as the stores' uploads are."""

    def test_a_day_polled_applies_every_ticket_once_and_closes_the_days(self):
        self.pos.trade_day("S01", tickets=30, push_every=0)
        failed, _retried = self.poll()
        self.assertFalse(failed)
        self.assert_every_sale_applied_once()
        kinds = Counter(e.payload["type"] for e in self.ticket_events() if e.payload)
        self.assertGreater(kinds["return"], 0, "the day has returns of earlier tickets")
        closings = self.env["connector.pos.closing"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(len(closings), 2, "a closing per register")
        self.assertEqual(
            set(closings.mapped("state")), {"closed"}, closings.mismatch_ids.mapped("what")
        )
        self.assertEqual(set(closings.session_id.mapped("state")), {"closed"})
        self.assertEqual(set(closings.session_id.move_id.mapped("state")), {"posted"})
        # Polled again: nothing new, nothing twice.
        count = len(self.orders())
        failed, _retried = self.poll()
        self.assertFalse(failed)
        self.assertEqual(len(self.orders()), count)

    def test_pull_under_429_and_5xx_reads_every_ticket_once(self):
        self.pos.trade_day("S01", tickets=40, push_every=0)
        self.backend.pos_page_size = 3  # many requests: many faults
        self.pos.requests.clear()
        self.pos.faults.add("throttle", rate=0.1, retry_after=3, endpoint="/api/2.0/*")
        self.pos.faults.add("error", rate=0.05, status=502, endpoint="/api/2.0/*")
        failed, retried = self.poll()
        self.assertFalse(failed)
        statuses = Counter(entry["status"] for entry in self.pos.requests.entries())
        self.assertGreaterEqual(statuses[429], 2, statuses)
        self.assertGreaterEqual(statuses[200], 30, statuses)
        self.assertEqual(retried["_pos_pull"], statuses[429] + statuses[502])
        # A throttled read waits what the POS asks and spends no attempt; a
        # failing POS's read is retried with back-off, an attempt spent.
        self.assertEqual(
            {(seconds, free) for status, seconds, free in self.retries if status == 429},
            {(3, True)},
        )
        self.assertEqual(
            {free for status, _seconds, free in self.retries if status == 502}, {False}
        )
        self.assert_every_sale_applied_once()
        closings = self.env["connector.pos.closing"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(set(closings.mapped("state")), {"closed"})

    def test_a_page_read_again_counts_once(self):
        self.pos.trade_day("S01", tickets=10, push_every=0, close=False)
        state = self.backend._pos_pull_state()
        # The first page of sales is stored, then the job dies before its
        # end: all of it is rolled back, the cursor with it.
        real = PullBackend._pos_set_pull_state
        crashed = []

        def crash_once(backend, **values):
            if "sales" in values and not crashed:
                crashed.append(values)
                raise RuntimeError("worker killed")
            return real(backend, **values)

        with patch.object(PullBackend, "_pos_set_pull_state", crash_once):
            failed, _retried = self.poll()
        self.assertTrue(crashed)
        self.assertIn("worker killed", "".join(failed.values()))
        self.assertEqual(self.backend._pos_pull_state().get("sales"), state.get("sales"))
        self.assertFalse(self.orders(), "nothing of the crashed page kept")
        failed, _retried = self.poll()
        self.assertFalse(failed)
        self.assert_every_sale_applied_once()
        # The cursor goes back (a restore, a lost commit): the pages come again.
        self.backend._pos_set_pull_state(sales=state.get("sales", 0))
        count = len(self.orders())
        failed, _retried = self.poll()
        self.assertFalse(failed)
        self.assertEqual(len(self.orders()), count)
        duplicates = self.env["connector.event"].search_count(
            [("backend_id", "=", self.backend.id), ("state", "=", "duplicate")]
        )
        self.assertGreaterEqual(duplicates, count)
        self.assert_every_sale_applied_once()

    def test_void_and_parked_sale(self):
        legacy = self.pos.legacy
        sold = self.pos.sale("S01", "R1", tenders=["card"])
        voided_unseen = self.pos.sale("S01", "R2", tenders=["cash"])
        self.pos.void("S01", "R2", voided_unseen)
        legacy.parked_share = 1.0
        parked = self.pos.sale("S01", "R1", tenders=["cash"])
        legacy.parked_share = 0.0
        failed, _retried = self.poll()
        self.assertFalse(failed)
        self.assertTrue(self.env["pos.order"].search([("uuid", "=", sold["uuid"])]))
        self.assertEqual(
            self.env["pos.order"].search_count(
                [("uuid", "in", (voided_unseen["uuid"], f"{voided_unseen['uuid']}:void"))]
            ),
            2,
            "a sale voided before it was read: the sale and its void",
        )
        self.assertFalse(
            self.env["pos.order"].search([("uuid", "=", parked["uuid"])]), "parked: no ticket yet"
        )
        # The register's next ticket closes the parked sale; the first sale is voided.
        after = self.pos.sale("S01", "R1", tenders=["card"])
        self.pos.void("S01", "R1", sold)
        failed, _retried = self.poll()
        self.assertFalse(failed)
        for ticket in (parked, after):
            self.assertTrue(self.env["pos.order"].search([("uuid", "=", ticket["uuid"])]))
        void = self.env["pos.order"].search([("uuid", "=", f"{sold['uuid']}:void")])
        self.assertTrue(void.is_refund)
        self.assertFalse(
            void.currency_id.compare_amounts(
                void.amount_total,
                -self.env["pos.order"].search([("uuid", "=", sold["uuid"])]).amount_total,
            )
        )
        self.assert_every_sale_applied_once()

    def test_unmapped_outlet_fails_alone_and_applies_once_mapped(self):
        """The sales of an outlet without a store fail alone, naming it; the
        read and the other store go on; mapped and requeued, they apply."""
        self.pos.ring("S01", count=3)
        card_only = [self.pos.sale("S02", register, tenders=["card"]) for register in ("R1", "R2")]
        self.pos.close("S02")
        failed, _retried = self.poll()
        self.assertFalse(failed, "the read goes on")
        self.assert_every_sale_applied_once()  # S01's
        self.assertEqual(
            self.backend._pos_pull_state()["sales"],
            max(sale["version"] for sale in self.legacy_sales(("S01", "S02"))),
        )
        kept = self.env["connector.event"].search(
            [("backend_id", "=", self.backend.id), ("topic", "=", "legacy.record")]
        )
        self.assertEqual(
            sorted(kept.mapped(lambda e: e.payload["collection"])),
            ["register_closures", "register_closures", "sales", "sales"],
        )
        self.assertEqual(set(kept.mapped("state")), {"failed"})
        self.assertIn("has no store", kept[0].error_message)
        self.assertIn(self.pos.legacy_ids()["outlets"]["S02"], kept[0].error_message)
        self.assertNotIn(
            "pos_pull",
            [code for code, _message in self.backend._connector_health_checks()[self.backend.id]],
            "the POS is read",
        )
        # The administrator gives the outlet its store; support requeues.
        card = self.env["connector.pos.tender"].search(
            [("backend_id", "=", self.backend.id), ("tender_type", "=", "card")]
        )
        store = self.env["connector.pos.store"].create(
            {
                "backend_id": self.backend.id,
                "code": "S02",
                "name": "Store S02",
                "config_id": self.env["pos.config"]
                .create(
                    {
                        "name": "Store S02",
                        "payment_method_ids": [(6, 0, card.payment_method_id.ids)],
                    }
                )
                .id,
            }
        )
        self.env["connector.pos.legacy.record"].search(
            [("legacy_id", "=", self.pos.legacy_ids()["outlets"]["S02"])]
        ).store_id = store
        kept.action_requeue()
        failed, _retried = self.run_jobs()
        self.assertFalse(failed)
        self.assertEqual(set(kept.mapped("state")), {"done"}, kept.mapped("error_message"))
        orders = self.env["pos.order"].search([("uuid", "in", [t["uuid"] for t in card_only])])
        self.assertEqual(len(orders), 2)
        closings = self.env["connector.pos.closing"].search([("store_id", "=", store.id)])
        self.assertEqual(set(closings.mapped("state")), {"closed"})
        # Read again, nothing twice.
        self.backend._pos_set_pull_state(sales=0, register_closures=0)
        failed, _retried = self.poll()
        self.assertFalse(failed)
        self.assertEqual(
            self.env["pos.order"].search_count([("connector_pos_store_id", "=", store.id)]), 2
        )

    def test_closure_differing_from_the_tickets_keeps_the_day_open(self):
        self.pos.ring("S01", "R1", count=4)
        self.pos.close("S01", "R1")
        # The POS counted 10.00 more card than its sales took.
        with self.pos.lock:
            (closure,) = self.pos.legacy.records["register_closures"].values()
            card = self.pos.legacy_ids()["payment_types"]["card"]
            for payment in closure["payments"]:
                if payment["payment_type_id"] == card:
                    payment["total"] = f"{Decimal(payment['total']) + 10:.2f}"
        failed, _retried = self.poll()
        closing = self.env["connector.pos.closing"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(closing.state, "mismatch", failed)
        self.assertTrue(closing.mismatch_ids)
        self.assertNotEqual(self.orders().session_id.state, "closed")

    def test_cursors_are_shown(self):
        self.pos.ring("S01", count=2)
        self.poll()
        state = json.loads(self.backend._policy("tickets_poll").watermark)
        self.assertIn("sales", state)
        self.assertIn("sales:", self.backend.pos_pull_cursors)

    def test_webhook_is_a_hint_to_poll_sooner(self):
        """The POS's sale.update webhook queues a poll at once (whatever its
        body says); many webhooks, one poll waiting."""
        self.assertEqual(
            self.backend.webhook_address,
            f"{self.backend.get_base_url()}/connector/pos/v1/fleets/{FLEET}/legacy-webhooks",
        )
        self.pos.webhook_url = f"{self.base_url()}/connector/pos/v1/fleets/{FLEET}/legacy-webhooks"
        self.addCleanup(setattr, self.pos, "webhook_url", None)
        Job = self.env["queue.job"]
        before = Job.search_count([("method_name", "=", "_pos_pull")])
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            sales = [self.pos.sale("S01", "R1", tenders=["card"]) for _ in range(3)]
            self.assertTrue(self.pos.wait_webhooks(20))
        deliveries = [entry for entry in self.pos.webhooks.log() if entry["topic"] == "sale.update"]
        self.assertEqual([entry["status"] for entry in deliveries], [200] * 3)
        self.env.invalidate_all()
        self.assertEqual(
            Job.search_count([("method_name", "=", "_pos_pull"), ("state", "=", "pending")]),
            1,
            "one poll queued",
        )
        self.assertEqual(Job.search_count([("method_name", "=", "_pos_pull")]), before + 1)
        failed, _retried = self.run_jobs()
        self.assertFalse(failed)
        for sale in sales:
            self.assertTrue(self.env["pos.order"].search([("uuid", "=", sale["uuid"])]))

    def test_webhook_of_an_unknown_fleet_is_refused(self):
        response = self.url_open(
            "/connector/pos/v1/fleets/nope/legacy-webhooks", data={"type": "sale.update"}
        )
        self.assertEqual(response.status_code, 404)

    def test_schedule_polls_at_the_flow_interval(self):
        Job = self.env["queue.job"]
        policy = self.backend._policy("tickets_poll")
        policy.interval_minutes = 5

        def starts():
            return Job.search_count([("method_name", "=", "_pos_pull"), ("state", "=", "pending")])

        self.env["connector.backend"]._cron_pos_pull()
        self.assertEqual(starts(), 0, "polled by setUp a moment ago")
        state = self.backend._pos_pull_state()  # polled by setUp
        self.backend._pos_set_pull_state(polled_at="2020-01-01 00:00:00")
        self.env["connector.backend"]._cron_pos_pull()
        self.assertEqual(starts(), 1)
        self.assertGreaterEqual(self.backend._pos_pull_state()["polled_at"], state["polled_at"])
        policy.enabled = False
        self.backend._pos_set_pull_state(polled_at="2020-01-01 00:00:00")
        self.run_jobs()
        self.env["connector.backend"]._cron_pos_pull()
        self.assertEqual(starts(), 0, "a disabled flow is not polled")

    def test_history_before_the_start_is_read_not_applied(self):
        before = self.pos.ring("S01", count=3)
        last = max(pos_time(ticket["closed_at"]) for ticket in before)
        self.backend.pos_pull_since = last + timedelta(seconds=1)
        after = [t for t in self.pos.ring("S01", count=2) if t["type"] in ("sale", "return")]
        failed, _retried = self.poll()
        self.assertFalse(failed)
        self.assertFalse(
            self.env["pos.order"].search([("uuid", "in", [t["uuid"] for t in before])])
        )
        applied = self.env["pos.order"].search([("uuid", "in", [t["uuid"] for t in after])])
        self.assertEqual(len(applied), len(after))
        self.assertEqual(
            self.backend._pos_pull_state()["sales"],
            max(sale["version"] for sale in self.legacy_sales(("S01", "S02"))),
            "read past the history",
        )

    def test_a_return_of_a_sale_before_the_start_fails_saying_why(self):
        """A return of a sale rung up before "Read sales from" does not wait
        for a sale that is never read: it fails naming the sale, its date and
        what to do, and the register's later tickets apply. A void of such a
        sale is the sale's own record, read past with it."""
        old = self.pos.sale("S01", "R1", tenders=["card"])
        voided = self.pos.sale("S01", "R1", tenders=["cash"])
        self.backend.pos_pull_since = pos_time(voided["closed_at"]) + timedelta(seconds=1)
        failed, _retried = self.poll()  # the history, read past
        self.assertFalse(failed)
        returned = self.pos.return_of("S01", "R1", old)
        self.pos.void("S01", "R1", voided)
        later = self.pos.sale("S01", "R1", tenders=["card"])
        failed, _retried = self.poll()
        self.assertFalse(failed)
        event = self.ticket_events().filtered(lambda e: e.idempotency_key == returned["uuid"])
        self.assertEqual((event.state, event.error_kind), ("failed", "business"))
        sale = self.pos.sale_record(old["uuid"])
        for said in (
            sale["receipt_number"],
            old["uuid"],
            fields.Datetime.to_string(pos_time(sale["sale_date"])),
            f'"Read sales from" ({fields.Datetime.to_string(self.backend.pos_pull_since)} UTC)',
            "Record the refund by hand in Point of Sale, then Ignore this event",
        ):
            self.assertIn(said, event.error_message)
        self.assertTrue(
            self.env["pos.order"].search([("uuid", "=", later["uuid"])]),
            "the register's next ticket is applied",
        )
        self.assertFalse(
            self.env["pos.order"].search(
                [
                    (
                        "uuid",
                        "in",
                        [old["uuid"], returned["uuid"], voided["uuid"], f"{voided['uuid']}:void"],
                    )
                ]
            )
        )
        self.assertFalse(
            self.ticket_events().filtered(lambda e: e.state not in ("done", "duplicate", "failed")),
            "nothing waits",
        )

    def test_a_return_of_a_sale_not_read_yet_waits_then_applies(self):
        """The sale a return refunds is after "Read sales from" but not read as
        a ticket yet (parked when the return is read): the return waits for
        it, and applies once the POS closes it and it is read."""
        self.pos.legacy.parked_share = 1.0
        parked = self.pos.sale("S01", "R1", tenders=["card"])
        self.pos.legacy.parked_share = 0.0
        returned = self.pos.return_of("S01", "R2", parked)
        # Each register has its clock: both tickets are from "Read sales from" on.
        self.backend.pos_pull_since = min(
            pos_time(ticket["opened_at"]) for ticket in (parked, returned)
        )
        failed, _retried = self.poll()
        self.assertFalse(failed)
        event = self.ticket_events().filtered(lambda e: e.idempotency_key == returned["uuid"])
        self.assertEqual(event.state, "waiting")
        self.assertIn(parked["uuid"], event.error_message)
        self.pos.sale("S01", "R1", tenders=["cash"])  # the register's next ticket closes it
        failed, _retried = self.poll()
        self.assertFalse(failed)
        event.invalidate_recordset()
        self.assertEqual(event.state, "done")
        refund = self.env["pos.order"].search([("uuid", "=", returned["uuid"])])
        self.assertTrue(refund.is_refund)
        self.assertEqual(
            refund.lines.refunded_orderline_id.order_id.uuid, parked["uuid"], "refunds its sale"
        )


@tagged("post_install", "-at_install")
class TestPosPullRoundedPerTicket(PullCase):
    """A POS that rounds taxes once per ticket, polled: Odoo's totals are its own."""

    rounding = "round_globally"

    def test_a_day_polled_equals_the_pos_to_the_cent(self):
        self.pos.trade_day("S01", tickets=20, push_every=0)
        failed, _retried = self.poll()
        self.assertFalse(failed)
        self.assert_every_sale_applied_once()
        sales = {sale["id"]: sale for sale in self.legacy_sales()}
        for order in self.orders().filtered(lambda o: not o.uuid.endswith(":void")):
            sale = sales[order.uuid]
            self.assertFalse(
                order.currency_id.compare_amounts(order.amount_tax, sale["total_tax"]),
                f"tax of {sale['receipt_number']}",
            )
        closings = self.env["connector.pos.closing"].search([("backend_id", "=", self.backend.id)])
        self.assertEqual(set(closings.mapped("state")), {"closed"})
