"""P2b: Shopify order import at flash-sale volume, in batch jobs, beside
plain ORM create + confirm of each order on its own.

Runs inside ``odoo shell`` (``env`` given) on a database with
connector_shopify installed; ``setup/bench order_batch`` does all that. Both
sides make the same orders (3 storable lines taxed alike, a new customer,
confirmed, stock reserved) in the same process, in rounds that alternate so
that the machine's noise hits both alike:

- raw: ``res.partner.create``, ``sale.order.create``, ``action_confirm``,
  each order committed on its own (P2's raw side: the naive ERP path);
- batched: a flash sale's ``orders/create`` events stored by the intake
  (untimed), then queued as the dispatcher queues them (one job per key
  space of the topic) and each job run as queue_job's runner runs it: taken
  (started, committed), performed, done, committed; the jobs a job queues
  in turn run after it. The runner's HTTP round trip to its worker is left
  out, as in P2.
"""

import collections
import cProfile
import json
import os
import pstats
import time

from perf.shopify_orders import bench_store, order_payload

from odoo.fields import Command

from odoo.addons.connector_shopify.models.shopify_backend import ORDER_SHARDS, ORDERS_PER_JOB
from odoo.addons.queue_job.job import Job

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
# Not paid yet, so that both sides do the same work, QUALITY's P2: a paid
# order also gets its posted customer payment, which the raw side does not
# make (BENCH_FINANCIAL_STATUS=paid measures that too).
FINANCIAL_STATUS = os.environ.get("BENCH_FINANCIAL_STATUS", "pending")
# A round is a flash sale's burst: full batches in every key space.
PER_ROUND = int(os.environ.get("BENCH_ORDERS", str(ORDER_SHARDS * ORDERS_PER_JOB)))
RAW = "raw ORM create+confirm, one by one"
BATCHED = "stored events -> batch jobs (P2b)"


class Sides:
    """The two ways of making a round of orders."""

    def __init__(self, env):
        self.env = env
        self.warehouse, self.products, self.backend = bench_store(env, 100_000)
        self.counter = iter(range(1_000_000))
        # Both sides tax the lines alike: Odoo by the products' default sale
        # tax, the connector by Shopify's tax lines of the same rate.
        sale_tax = self.products[0].taxes_id[:1]
        self.tax_rate = sale_tax.amount / 100 if sale_tax.amount_type == "percent" else 0.0

    def raw_round(self):
        env = self.env
        for _ in range(PER_ROUND):
            n = next(self.counter)
            partner = env["res.partner"].create(
                {"name": f"Raw #{n}", "email": f"raw{n}@example.com"}
            )
            order = env["sale.order"].create(
                {
                    "partner_id": partner.id,
                    "warehouse_id": self.warehouse.id,
                    "client_order_ref": f"R{n}",
                    "order_line": [
                        Command.create({"product_id": p.id, "product_uom_qty": 1, "price_unit": 25})
                        for p in self.products
                    ],
                }
            )
            order.action_confirm()
            env.cr.commit()
        return PER_ROUND

    def stored_events(self):
        """A flash sale's events as the webhook intake leaves them (stored,
        not applied yet): the untimed preparation of a batched round."""
        env, backend = self.env, self.backend
        Event = env["connector.event"]
        backend.state = "paused"  # a paused backend keeps what it receives
        backend.flush_recordset()  # the intake's INSERTs do not flush the ORM
        skus = self.products.mapped("default_code")
        stored = Event.browse()
        for _ in range(PER_ROUND):
            n = next(self.counter)
            payload = order_payload(
                env.company.currency_id.name, n, skus, self.tax_rate, FINANCIAL_STATUS
            )
            stored |= Event._receive(backend, "orders/create", payload, f"bench-{n}")
        # Running again without the resume that would queue them all at once.
        env.cr.execute("UPDATE connector_backend SET state = 'running' WHERE id = %s", [backend.id])
        backend.invalidate_recordset(["state"])
        env.cr.commit()
        return stored

    def batched_round(self, events):
        """Queue the stored events as the dispatcher does, then run every job
        as the runner would, each committed, until none is left."""
        env = self.env
        events._enqueue()
        env.cr.commit()
        jobs = 0
        while uuids := self.pending_jobs():
            for uuid in uuids:
                run_job(env, uuid)
                jobs += 1
        env.invalidate_all()
        not_done = events.filtered(lambda e: e.state != "done")
        assert not not_done, not_done[:1].error_message or not_done[:1].state
        return jobs

    def pending_jobs(self):
        self.env.cr.execute(
            "SELECT uuid FROM queue_job WHERE model_name = 'connector.event' "
            "AND method_name = '_process_batch' AND state = 'pending' ORDER BY id"
        )
        return [row[0] for row in self.env.cr.fetchall()]


def run_job(env, uuid):
    """One job as queue_job's runner and its controller run it."""
    job = Job.load(env, uuid)
    job.set_started()
    job.store()
    env.cr.commit()
    job.lock()
    with env.cr.savepoint():
        job.perform()
    job.set_done()
    job.store()
    env.flush_all()
    env.cr.commit()


def measure(env, sides):
    """Rounds of each side in turn; prints and returns the orders/s of each."""
    timings = dict.fromkeys((RAW, BATCHED), 0.0)
    queries = dict.fromkeys((RAW, BATCHED), 0)
    jobs = 0
    for _ in range(ROUNDS):
        for label in (RAW, BATCHED):
            prepared = sides.stored_events() if label == BATCHED else None
            started = time.perf_counter()
            counted = env.cr.sql_log_count
            if label == RAW:
                sides.raw_round()
            else:
                jobs += sides.batched_round(prepared)
            timings[label] += time.perf_counter() - started
            queries[label] += env.cr.sql_log_count - counted
    count = ROUNDS * PER_ROUND
    rates = {label: count / seconds for label, seconds in timings.items()}
    for label, rate in rates.items():
        print(
            f"{label:36} {count} orders  {rate:6.2f} orders/s  {1000 / rate:6.1f} ms/order  "
            f"{queries[label] / count:5.1f} SQL queries/order"
        )
    print(f"{jobs} batch jobs: {count / jobs:.1f} orders a job ({ORDER_SHARDS} key spaces)")
    return rates


def print_result(rates):
    raw, batched = rates[RAW], rates[BATCHED]
    ratio = batched / raw
    print(f"ratio batched connector / raw ORM: {ratio:.2f}  (P2b target >= 1.00)")
    summary = (
        f"{ROUNDS * PER_ROUND} orders a side ({FINANCIAL_STATUS}): batch jobs "
        f"{batched:.1f} orders/s, raw ORM one by one {raw:.1f} orders/s"
    )
    result = {"bench": "order_batch", "bar": "P2b", "summary": summary, "ratio": round(ratio, 2)}
    result.update(ratio_label="batched connector / raw ORM", target=">= 1.00", met=ratio >= 1.0)
    print("RESULT " + json.dumps(result))


def profile(env, sides):
    """Where a batched round's time goes: the connector's own functions."""
    events = sides.stored_events()
    stats = cProfile.Profile()
    stats.runcall(sides.batched_round, events)
    report = pstats.Stats(stats).sort_stats("cumulative")
    report.print_stats(r"connector_(base|shopify)", 30)


def queries_of_one_job(env, sides):
    """The SQL of one batch job, grouped by statement shape."""
    events = sides.stored_events()
    statements = collections.Counter()
    cursor = env.cr
    execute = cursor.execute

    def spy(query, params=None, log_exceptions=True):
        text = query.code if hasattr(query, "code") else str(query)
        statements[" ".join(text.split())[:100]] += 1
        return execute(query, params, log_exceptions)

    cursor.execute = spy
    try:
        sides.batched_round(events)
    finally:
        del cursor.execute
    for statement, times in statements.most_common(40):
        print(f"{times / len(events):7.2f}/order  {statement}")


def main(env):
    sides = Sides(env)
    rates = measure(env, sides)
    if os.environ.get("BENCH_PROFILE"):
        profile(env, sides)
    if os.environ.get("BENCH_QUERIES"):
        queries_of_one_job(env, sides)
    print_result(rates)


main(env)  # noqa: F821 - given by odoo shell
