import random
from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.sql_db import db_connect
from odoo.tests import new_test_user

from odoo.addons.connector_base.components.topics import InboundTopic
from odoo.addons.connector_base.tests.common import perform_trapped_jobs
from odoo.addons.queue_job.job import Job

from .common import ConnectorCase, trap_jobs

T0 = datetime(2026, 11, 2, 9, 0, 0)
TOPIC = "ticket.sale"


class TestBatchedInbox(ConnectorCase):
    """A batched topic: one job applies up to batch_size events of one key space
    (a store's register), each with the outcome it would have alone."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Ticket = cls.env["test.ticket"]

    def ticket(self, seq, register=1, store="S1", key=None, **values):
        """Receive the sale ``seq`` of a register, as the store uploads it."""
        payload = {
            "uuid": f"{store}-{register}-{seq}",
            "store": store,
            "register": register,
            "seq": seq,
            "amount": 10.0,
            **values,
        }
        return self.receive(
            TOPIC, payload, key or payload["uuid"], occurred_at=T0 + timedelta(seconds=seq)
        )

    def batch_key_job(self, register=1, store="S1", retry=False):
        """The identity key of the job of a register."""
        kind = "batch-retry" if retry else "batch"
        return f"connector.event.{kind}-{self.backend.id}-{TOPIC}:{store}/{register}"

    def drain(self, trap, rounds=20):
        """Perform the trapped jobs round after round; the results of the batch
        jobs, per register, in the order they ran."""
        results = {}
        for _ in range(rounds):
            jobs = list(trap.enqueued_jobs)
            if not jobs:
                return results
            perform_trapped_jobs(self.env, trap)
            for job in jobs:
                self.assertEqual(job.method_name, "_process_batch", "no job of a single event")
                results.setdefault(job.args[2], []).append(job.result)
        raise AssertionError(f"jobs still queued after {rounds} rounds")

    def queue(self, trap):
        """What the dispatcher does; its own job is left out."""
        trap.enqueued_jobs.clear()
        self.dispatch()

    def slow_vouchers(self, clock):
        """Each voucher check takes 1.5 s of a batch job's 2 s."""
        self.remote.on_request = lambda _path: clock.tick(1.5)
        self.addCleanup(setattr, self.remote, "on_request", None)

    def assert_applied_in_order(self, events, order, message):
        """``events`` all done, the tickets made as ``[(register, seq)]`` in ``order``."""
        self.assertEqual({event.state for event in events}, {"done"})
        tickets = self.Ticket.search([("backend_id", "=", self.backend.id)], order="id")
        self.assertEqual([(ticket.register, ticket.seq) for ticket in tickets], order, message)

    def bind_customer(self, remote_id, partner=None):
        partner = partner or self.env["res.partner"].create({"name": f"Customer {remote_id}"})
        return self.Binding._bind(self.backend, remote_id, partner)

    # --- a burst ----------------------------------------------------------------------

    def test_a_burst_is_applied_in_few_jobs_in_sequence_order(self):
        sales = list(range(1, 251))
        random.Random(12).shuffle(sales)  # uploaded out of order
        with trap_jobs() as trap:
            events = self.Event.browse()
            for seq in sales:
                events |= self.ticket(seq)
            for seq in (1, 2, 3):
                events |= self.ticket(seq, register=2)
            self.queue(trap)
            self.assertEqual(
                sorted(job.identity_key for job in trap.enqueued_jobs),
                [self.batch_key_job(1), self.batch_key_job(2)],
                "one job per register for the whole burst",
            )
            # The clock stands still: each job takes its batch_size, however
            # slow the machine (the time budget has a test of its own).
            with freeze_time(fields.Datetime.now()):
                results = self.drain(trap)
        self.assertEqual(
            results["S1/1"],
            [
                "100 applied, 0 failed, 0 waiting; next batch queued",
                "100 applied, 0 failed, 0 waiting; next batch queued",
                "50 applied, 0 failed, 0 waiting",
            ],
        )
        self.assertEqual(results["S1/2"], ["3 applied, 0 failed, 0 waiting"])
        self.assertEqual(set(events.mapped("state")), {"done"})
        self.assertEqual(set(events.mapped("attempts")), {1}, "each applied once")
        tickets = self.Ticket.search([("backend_id", "=", self.backend.id), ("register", "=", 1)])
        self.assertEqual(tickets.mapped("seq"), list(range(1, 251)), "applied in sale order")
        self.assertEqual(len(self.Ticket.search([("register", "=", 2)])), 3)
        self.assertEqual(events[0]._produced_record().uuid, f"S1-1-{sales[0]}")

    def test_a_malformed_ticket_fails_alone_with_its_reason(self):
        with trap_jobs() as trap:
            good = self.ticket(1) | self.ticket(2) | self.ticket(4) | self.ticket(5)
            bad = self.ticket(3, amount="twelve euros")
            self.queue(trap)
            results = self.drain(trap)
        self.assertEqual(results["S1/1"], ["4 applied, 1 failed, 0 waiting"])
        self.assertEqual(set(good.mapped("state")), {"done"})
        self.assertEqual((bad.state, bad.error_kind), ("failed", "validation"))
        self.assertIn("amount", bad.error_message)
        self.assertEqual(self.Ticket.search([("store", "=", "S1")]).mapped("seq"), [1, 2, 4, 5])

    def test_a_ticket_unreadable_for_its_key_space_fails_in_the_default_one(self):
        with trap_jobs() as trap:
            event = self.receive(TOPIC, {"uuid": "lost", "seq": 1}, "lost")
            self.assertFalse(event.batch_key)
            self.queue(trap)
            results = self.drain(trap)
        self.assertEqual(results[None], ["0 applied, 1 failed, 0 waiting"])
        self.assertEqual(event.error_kind, "validation")
        self.assertIn("store", event.error_message)

    def test_a_duplicate_delivery_counts_once(self):
        with trap_jobs() as trap:
            first = self.ticket(1)
            again = self.ticket(1)  # the same upload sent twice
            other = self.ticket(2)
            self.queue(trap)
            results = self.drain(trap)
            late = self.ticket(1)  # and once more, after it was applied
            self.drain(trap)
        self.assertEqual(results["S1/1"], ["2 applied, 0 failed, 0 waiting"])
        self.assertEqual((first.state, other.state), ("done", "done"))
        self.assertEqual((again.state, late.state), ("duplicate", "duplicate"))
        self.assertEqual(first.duplicate_count, 2)
        self.assertEqual(len(self.Ticket.search([("uuid", "=", "S1-1-1")])), 1)

    # --- transient faults --------------------------------------------------------------

    def test_a_clash_with_another_transaction_retries_that_ticket_alone(self):
        # A customer's row held by another transaction (a person saving the
        # contact) the moment the batch adds a ticket to the customer's total.
        customer = self.env.ref("base.partner_admin")
        total = customer.test_store_total
        self.bind_customer(501, customer)
        other = db_connect(self.env.cr.dbname).cursor()
        self.addCleanup(other.close)
        self.addCleanup(other.rollback)
        other.execute("SET lock_timeout = '5s'")
        other.execute("UPDATE res_partner SET write_date = write_date WHERE id = %s", [customer.id])
        self.env.cr.execute("SET LOCAL lock_timeout = '300ms'")
        start = fields.Datetime.now()
        with trap_jobs() as trap:
            clashing = self.ticket(1, customer_id=501, amount=7.0)
            plain = self.ticket(2) | self.ticket(3)
            later = self.ticket(4, customer_id=501, amount=3.0)
            self.queue(trap)
            perform_trapped_jobs(self.env, trap)
            self.assertEqual(plain.mapped("state"), ["done", "done"], "the others are applied")
            self.assertEqual((clashing.state, clashing.retry_count), ("queued", 1))
            self.assertIn("clash", clashing.error_message)
            self.assertEqual((later.state, later.error_kind), ("waiting", "sequence"))
            self.assertEqual(customer.test_store_total, total, "nothing half-applied")
            [retry] = trap.enqueued_jobs
            self.assertEqual(retry.identity_key, self.batch_key_job(retry=True))
            other.rollback()  # the person's save is done
            with freeze_time(start + timedelta(seconds=61)):
                results = self.drain(trap)
        self.assertEqual(
            results["S1/1"],
            [
                # The retry applies it and queues the ticket that waited for it.
                "1 applied, 0 failed, 0 waiting; next batch queued",
                "1 applied, 0 failed, 0 waiting",
            ],
        )
        self.assertEqual((clashing | later).mapped("state"), ["done", "done"])
        self.assertEqual(clashing.retry_count, 1)
        self.assertEqual(customer.test_store_total, total + 10.0, "each ticket added once")
        self.assertEqual(len(self.Ticket.search([("store", "=", "S1")])), 4)

    def test_the_waiters_behind_a_retried_ticket_are_released_together(self):
        # A register's first ticket clashes (two registers opening the store's
        # day at once): the batch's later tickets of its key wait for it. Once
        # it is applied they are all queued again, and one job applies them,
        # not one job each.
        customer = self.env.ref("base.partner_admin")
        self.bind_customer(502, customer)
        other = db_connect(self.env.cr.dbname).cursor()
        self.addCleanup(other.close)
        self.addCleanup(other.rollback)
        other.execute("SET lock_timeout = '5s'")
        other.execute("UPDATE res_partner SET write_date = write_date WHERE id = %s", [customer.id])
        self.env.cr.execute("SET LOCAL lock_timeout = '300ms'")
        start = fields.Datetime.now()
        with trap_jobs() as trap:
            clashing = self.ticket(1, customer_id=502)
            waiters = self.Event.browse()
            for seq in range(2, 7):
                waiters |= self.ticket(seq, customer_id=502)
            self.queue(trap)
            perform_trapped_jobs(self.env, trap)
            self.assertEqual(clashing.state, "queued")
            self.assertEqual(set(waiters.mapped("state")), {"waiting"})
            other.rollback()
            with freeze_time(start + timedelta(seconds=61)):
                results = self.drain(trap)
        self.assertEqual(
            results["S1/1"],
            [
                "1 applied, 0 failed, 0 waiting; next batch queued",
                "5 applied, 0 failed, 0 waiting",
            ],
        )
        self.assertEqual(set(waiters.mapped("state")), {"done"})
        self.assertEqual(
            self.Ticket.search([("store", "=", "S1")], order="id").mapped("seq"),
            [1, 2, 3, 4, 5, 6],
            "applied in order",
        )

    def test_a_remote_fault_retries_that_ticket_alone_when_the_remote_asks(self):
        self.remote.script("/vouchers/V-2", (429, {"Retry-After": "7"}, {"errors": "throttled"}))
        start = fields.Datetime.now()
        with trap_jobs() as trap:
            first = self.ticket(1, voucher="V-1")
            throttled = self.ticket(2, voucher="V-2")
            third = self.ticket(3)
            self.queue(trap)
            perform_trapped_jobs(self.env, trap)
            self.assertEqual((first.state, third.state), ("done", "done"))
            # Asked to wait: no attempt used up.
            self.assertEqual((throttled.state, throttled.retry_count), ("queued", 0))
            self.assertIn("HTTP 429", throttled.error_message)
            [retry] = trap.enqueued_jobs
            self.assertEqual(retry.identity_key, self.batch_key_job(retry=True))
            with freeze_time(start + timedelta(seconds=30)):
                results = self.drain(trap)
        self.assertEqual(results["S1/1"], ["1 applied, 0 failed, 0 waiting"])
        self.assertEqual(throttled.state, "done")
        self.assertEqual(len(self.remote.calls("/vouchers/V-1")), 1, "the others not redone")
        self.assertEqual(len(self.remote.calls("/vouchers/V-2")), 2)
        self.assertEqual(self.Ticket.search([("seq", "=", 2)]).voucher_value, 5.0)

    def test_a_backlog_yields_its_slot_to_another_key_space_past_the_time_budget(self):
        """A register's backlog is applied BATCH_BUDGET_SECONDS at a time: the
        job of another register queued meanwhile runs before the rest."""
        with trap_jobs() as trap:
            backlog = [self.ticket(seq, voucher=f"V-{seq}") for seq in range(1, 6)]
            other = self.ticket(1, register=2)
            self.queue(trap)
            with freeze_time(fields.Datetime.now()) as clock:
                self.slow_vouchers(clock)
                results = self.drain(trap)
        self.assertEqual(
            results["S1/1"],
            [
                "2 applied, 0 failed, 0 waiting; next batch queued",
                "2 applied, 0 failed, 0 waiting; next batch queued",
                "1 applied, 0 failed, 0 waiting",
            ],
        )
        self.assertEqual(results["S1/2"], ["1 applied, 0 failed, 0 waiting"])
        self.assert_applied_in_order(
            [*backlog, other],
            [(1, 1), (1, 2), (2, 1), (1, 3), (1, 4), (1, 5)],
            "the other register's sale applied before the backlog's third",
        )

    def test_fresh_work_goes_before_the_rest_of_a_backlog(self):
        """The job of a backlog's rest is queued behind fresh work: another
        register's sale, uploaded once that job was queued, is applied first."""
        with trap_jobs() as trap:
            backlog = [self.ticket(seq, voucher=f"V-{seq}") for seq in range(1, 6)]
            self.queue(trap)
            with freeze_time(fields.Datetime.now()) as clock:
                self.slow_vouchers(clock)
                [first] = trap.enqueued_jobs
                perform_trapped_jobs(self.env, trap)
                self.assertEqual(first.result, "2 applied, 0 failed, 0 waiting; next batch queued")
                other = self.ticket(1, register=2)
                # What the dispatcher does, its own job left out (as ``queue``).
                trap.enqueued_jobs[:] = [
                    job for job in trap.enqueued_jobs if job.method_name == "_process_batch"
                ]
                self.dispatch()
                self.assertEqual(
                    [job.identity_key for job in trap.enqueued_jobs],
                    [self.batch_key_job(1), self.batch_key_job(2)],
                    "the backlog's next job queued first",
                )
                results = self.drain(trap)
        self.assertEqual(results["S1/2"], ["1 applied, 0 failed, 0 waiting"])
        self.assert_applied_in_order(
            [*backlog, other],
            [(1, 1), (1, 2), (2, 1), (1, 3), (1, 4), (1, 5)],
            "the other register's sale applied before the rest of the backlog",
        )

    def test_the_result_of_a_batch_with_a_retry_says_when_it_is_tried_again(self):
        self.remote.script("/vouchers/V-9", (429, {"Retry-After": "7"}, {"errors": "throttled"}))
        with trap_jobs() as trap:
            self.ticket(1)
            self.ticket(2, voucher="V-9")
            self.queue(trap)
            [job] = trap.enqueued_jobs
            perform_trapped_jobs(self.env, trap)
        self.assertEqual(job.result, "1 applied, 0 failed, 0 waiting, 1 to retry; next try in 7 s")

    def test_a_second_job_of_a_register_waits_for_the_one_applying_it(self):
        other = db_connect(self.env.cr.dbname).cursor()
        self.addCleanup(other.close)
        other.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [self.batch_key_job()])
        with trap_jobs() as trap:
            event = self.ticket(1)
            self.queue(trap)
            retry = self.expect_retry(lambda: perform_trapped_jobs(self.env, trap))
            self.assertTrue(retry.ignore_retry, "waiting its turn spends no retry")
            self.assertIn("Another job is applying these events", str(retry))
            self.assertEqual(event.state, "queued")
            other.execute("SELECT pg_advisory_unlock_all()")
            event._enqueue(from_states=("queued",))
            self.drain(trap)
        self.assertEqual(event.state, "done")

    # --- waiting --------------------------------------------------------------------

    def test_a_ticket_waiting_for_its_customer_in_a_batch_is_woken_when_it_arrives(self):
        self.backend.action_pause()  # stored while paused: nothing checked at intake
        with trap_jobs() as trap:
            plain = self.ticket(1) | self.ticket(3)
            waiting = self.ticket(2, customer_id=601)
            self.assertEqual(set((plain | waiting).mapped("state")), {"received"})
            self.backend.action_start()
            results = self.drain(trap)
            self.assertEqual(results["S1/1"], ["2 applied, 0 failed, 1 waiting"])
            self.assertEqual((waiting.state, waiting.error_kind), ("waiting", "prerequisite"))
            self.assertIn("Customer 601 is not imported yet", waiting.error_message)
            self.assertFalse(trap.enqueued_jobs, "a waiting ticket has no job")
            partner_event = self.receive("partner.upsert", {"id": 601, "name": "Grace"}, "p-601")
            self.run_jobs(trap)
        self.assertEqual(partner_event.state, "done")
        self.assertEqual(waiting.state, "done", waiting.error_message)
        self.assertEqual(self.Ticket.search([("seq", "=", 2)]).partner_id, self.partners(601))

    def test_a_ticket_whose_customer_is_missing_at_intake_waits_without_a_job(self):
        with trap_jobs() as trap:
            waiting = self.ticket(1, customer_id=602)
            self.assertEqual(waiting.state, "waiting")
            self.receive("partner.upsert", {"id": 602, "name": "Ada"}, "p-602")
            self.run_jobs(trap)
        self.assertEqual(waiting.state, "done", waiting.error_message)
        self.assertEqual(self.partners(602).test_store_total, 10.0)

    def test_a_waiting_ticket_is_rechecked_by_the_cron_when_its_check_is_due(self):
        with trap_jobs() as trap:
            waiting = self.ticket(1, customer_id=603)
            self.assertEqual(waiting.state, "waiting")
            # The customer is bound by hand: no event wakes the ticket.
            self.bind_customer(603)
            with freeze_time(fields.Datetime.now() + timedelta(minutes=11)):
                self.assertEqual(self.Event._cron_recheck_waiting(), "1 released, 0 still waiting")
            results = self.drain(trap)
        self.assertEqual(results["S1/1"], ["1 applied, 0 failed, 0 waiting"])
        self.assertEqual(waiting.state, "done")

    # --- support staff ------------------------------------------------------------------

    def test_requeue_of_a_failed_ticket_after_the_cause_is_fixed(self):
        support = new_test_user(
            self.env, login="rs_batch_sup", groups="connector_base.group_connector_user"
        )
        self.remote.script("/vouchers/V-404", (404, {}, {"error": "unknown voucher"}))
        with trap_jobs() as trap:
            failed = self.ticket(1, voucher="V-404")
            done = self.ticket(2)
            self.queue(trap)
            self.drain(trap)
            self.assertEqual((failed.state, failed.error_kind), ("failed", "remote"))
            self.assertIn("404", failed.error_message)
            self.assertEqual(done.state, "done")
            # The voucher is created on the remote; support staff requeue the sale.
            failed.with_user(support).action_requeue()
            results = self.drain(trap)
        self.assertEqual(results["S1/1"], ["1 applied, 0 failed, 0 waiting"])
        self.assertEqual(failed.state, "done")
        self.assertEqual(failed.audit_ids.mapped("action"), ["requeue"])
        self.assertEqual(len(self.Ticket.search([("store", "=", "S1")])), 2)

    def test_replay_of_applied_tickets_changes_nothing(self):
        with trap_jobs() as trap:
            events = self.ticket(1) | self.ticket(2)
            self.queue(trap)
            self.drain(trap)
            events.action_replay("check")
            results = self.drain(trap)
        self.assertEqual(results["S1/1"], ["2 applied, 0 failed, 0 waiting"])
        self.assertEqual(len(self.Ticket.search([("store", "=", "S1")])), 2)

    # --- jobs -------------------------------------------------------------------------

    def test_batched_events_share_the_job_of_their_register(self):
        events = self.ticket(1) | self.ticket(2)
        self.dispatch()
        job = events.job_ids
        self.assertEqual(len(job), 1)
        self.assertEqual(job.identity_key, self.batch_key_job())
        self.assertEqual(job.channel, f"root.connector.backend_{self.backend.id}.partners_in")
        self.assertEqual(job.state, "pending")
        # More of the same upload, before the job ran: the same job.
        events |= self.ticket(3)
        self.dispatch()
        self.assertEqual(events.job_ids, job)
        self.assertFalse(events._enqueue(), "a queued event is not queued again")
        result = Job.load(self.env, job.uuid).perform()
        self.assertEqual(result, "3 applied, 0 failed, 0 waiting")
        self.assertEqual(set(events.mapped("state")), {"done"})
        self.assertEqual(events.job_ids, job)

    def test_the_timeline_of_a_customer_shows_the_jobs_of_the_register(self):
        self.bind_customer(701)
        first = self.ticket(1, customer_id=701)
        self.dispatch()
        Job.load(self.env, first.job_ids.uuid).perform()
        first.job_ids.state = "done"  # as queue_job records it
        second = self.ticket(2, customer_id=701)
        self.dispatch()
        # Its job applied other tickets of the register, and queued the next.
        second.job_ids.state = "done"
        self.Event._enqueue_batch_job(self.backend, TOPIC, "S1/1", eta=0)
        timeline = self.env["connector.correlation"].browse(second.action_follow()["res_id"])
        jobs = timeline.line_ids.filtered(lambda line: line.kind == "job")
        self.assertEqual(
            sorted((line.name, line.state) for line in jobs),
            [
                (f"{self.backend.name}: {TOPIC} S1/1", "Done"),
                (f"{self.backend.name}: {TOPIC} S1/1", "Done"),
                (f"{self.backend.name}: {TOPIC} S1/1", "Pending"),
            ],
        )
        self.assertEqual((first.state, second.state), ("done", "queued"))

    def test_a_job_found_waiting_that_started_before_the_commit_is_followed_by_another(self):
        first = self.ticket(1)
        self.dispatch()
        job = first.job_ids
        second = self.ticket(2)
        second._enqueue(from_states=("received",))
        self.assertEqual(second.job_ids, job, "found waiting: the same job")
        # That job started before this transaction was committed, on a
        # snapshot without the second ticket, and ended.
        job.state = "done"
        self.env.flush_all()
        self.env.cr.postcommit.run()  # once committed
        later = self.env["queue.job"].search(
            [("identity_key", "=", self.batch_key_job()), ("state", "=", "pending")]
        )
        self.assertEqual(len(later), 1, "another job applies the ticket")
        self.assertEqual(Job.load(self.env, later.uuid).perform(), "2 applied, 0 failed, 0 waiting")
        self.assertEqual((first | second).mapped("state"), ["done", "done"])

    def test_a_queued_ticket_waiting_for_a_later_job_of_its_register_is_not_stuck(self):
        events = self.ticket(1) | self.ticket(2)
        self.dispatch()
        first = events.job_ids
        first.state = "done"  # it applied other tickets of the register, not these
        self.Event._enqueue_batch_job(self.backend, TOPIC, "S1/1", eta=0)
        later = self.env["queue.job"].search(
            [("identity_key", "=", self.batch_key_job()), ("state", "=", "pending")]
        )
        self.assertTrue(later)
        with freeze_time(fields.Datetime.now() + timedelta(minutes=40)):
            self.assertEqual(self.Event._cron_reset_stuck(), "0 stuck events requeued")
            later.state = "cancelled"  # lost: now they are stuck
            self.assertEqual(self.Event._cron_reset_stuck(), "2 stuck events requeued")
        self.assertEqual(set(events.mapped("state")), {"queued"})

    def test_without_a_job_runner_a_ticket_is_applied_at_once(self):
        payload = {"uuid": "S1-1-1", "store": "S1", "register": 1, "seq": 1, "amount": 4.0}
        event = self.Event.with_context(queue_job__no_delay=True)._receive(
            self.backend, TOPIC, payload, "S1-1-1"
        )
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(event._produced_record().amount, 4.0)

    def test_a_topic_batched_with_another_is_applied_in_its_jobs_in_order(self):
        amendment = {"uuid": "S1-1-2", "store": "S1", "register": 1, "amount": 7.5}
        with trap_jobs() as trap:
            # The correction overtakes the sale it corrects, in one upload.
            amend = self.receive(
                "ticket.amend", amendment, "amend-2", occurred_at=T0 + timedelta(seconds=5)
            )
            sales = self.ticket(1) | self.ticket(2)
            self.queue(trap)
            self.assertEqual(
                [job.identity_key for job in trap.enqueued_jobs],
                [self.batch_key_job(1)],
                "the register's job, not one of the amendments beside it",
            )
            results = self.drain(trap)
        self.assertEqual(results["S1/1"], ["3 applied, 0 failed, 0 waiting"])
        self.assertEqual(set((sales | amend).mapped("state")), {"done"})
        self.assertEqual(amend._produced_record().amount, 7.5, "applied after the sale")

    def test_a_topic_declares_a_sensible_batch(self):
        with self.assertRaisesRegex(ValueError, "batch_size must be a whole number of at least 1"):
            InboundTopic(flow="f", schema={}, handler="h", batch_size=0)
        with self.assertRaisesRegex(ValueError, "batch_key must be a function of the payload"):
            InboundTopic(flow="f", schema={}, handler="h", batch_size=5, batch_key="store")
        with self.assertRaisesRegex(ValueError, "a batch_key needs a batch_size above 1"):
            InboundTopic(flow="f", schema={}, handler="h", batch_key=lambda p: p["store"])
        with self.assertRaisesRegex(ValueError, "batch_with needs a batch_size above 1"):
            InboundTopic(flow="f", schema={}, handler="h", batch_with="ticket.sale")
        with self.assertRaisesRegex(ValueError, "wakes must be a function of the payload"):
            InboundTopic(flow="f", schema={}, handler="h", wakes="ticket:")
        topic = InboundTopic(
            flow="f",
            schema={},
            handler="h",
            batch_size=200,
            batch_key=lambda payload: f"{payload['store']}/{payload['register']}",
        )
        self.assertTrue(topic.batched)
        self.assertEqual(topic.batch_key({"store": "12", "register": 1}), "12/1")

    def test_a_batch_costs_a_few_queries_per_ticket(self):
        with trap_jobs() as trap:
            for seq in range(1, 101):
                self.ticket(seq)
            self.queue(trap)
            self.env.flush_all()
            before = self.env.cr.sql_log_count
            results = self.drain(trap)
            queries = self.env.cr.sql_log_count - before
        self.assertEqual(results["S1/1"], ["100 applied, 0 failed, 0 waiting"])
        # About 7 a ticket (take it, read it, look it up, create it, record the
        # outcome, savepoints), none that grows with the size of the batch; a
        # job per ticket would add queue_job's own and a commit.
        self.assertLess(queries, 100 * 10)
