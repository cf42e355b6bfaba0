import json
import uuid

from simulators import PosSimulator

from odoo.tests import HttpCase

from odoo.addons.connector_base.components.signature import hmac_sha256_base64
from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job as QueueJob

FLEET = "test-fleet"
STORE = "S01"


def ensure_chart_of_accounts(env):
    """A chart of accounts on the company: Point of Sale needs journals and
    accounts (a test database may have none)."""
    if not env.company.chart_template:
        env["account.chart.template"].try_loading(
            "generic_coa", company=env.company, install_demo=False
        )


def make_tax(env, rate, code):
    """A price-included sale tax of ``rate`` percent, as EU stores print prices."""
    group = env["account.tax.group"].search([("company_id", "=", env.company.id)], limit=1)
    return env["account.tax"].create(
        {
            "name": f"POS {code}",
            "type_tax_use": "sale",
            "amount_type": "percent",
            "amount": rate,
            "price_include_override": "tax_included",
            "company_id": env.company.id,
            "tax_group_id": group.id,
            "country_id": (env.company.account_fiscal_country_id or env.company.country_id).id,
        }
    )


def make_fleet(env, rounding="round_per_line", stores=(STORE,)):
    """A running POS fleet set up as the configuration guide says: a Point of
    Sale per store with cash and card methods, the tenders (cash per store)
    and tax codes mapped, the company rounding taxes as the POS does. Returns the backend,
    its stores and their upload keys ``{code: key}``."""
    ensure_chart_of_accounts(env)
    env.company.tax_calculation_rounding_method = rounding
    company = env.company
    bank_journal = env["account.journal"].search(
        [("company_id", "=", company.id), ("type", "=", "bank")], limit=1
    )
    card = env["pos.payment.method"].create(
        {"name": "POS card", "journal_id": bank_journal.id, "company_id": company.id}
    )
    other = env["pos.payment.method"].create(
        {
            "name": "POS gift cards and vouchers",
            "journal_id": bank_journal.id,
            "company_id": company.id,
        }
    )
    backend = env["connector.backend"].create(
        {
            "name": "Test POS fleet",
            "backend_type": "pos",
            "pos_fleet_code": FLEET,
            "pos_tax_rounding": rounding,
            "pos_stock_policy": "real_time",
            "state": "running",
            "pos_tender_ids": [
                (0, 0, {"tender_type": "card", "payment_method_id": card.id}),
                *[
                    (0, 0, {"tender_type": kind, "payment_method_id": other.id})
                    for kind in ("gift_card", "voucher", "store_credit")
                ],
            ],
            "pos_tax_ids": [
                (0, 0, {"code": "VAT20", "tax_id": make_tax(env, 20.0, "VAT20").id}),
                (0, 0, {"code": "VAT5_5", "tax_id": make_tax(env, 5.5, "VAT5_5").id}),
            ],
        }
    )
    keys = {}
    for code in stores:
        # Point of Sale gives a cash method, and its cash journal, to one Point
        # of Sale: each store counts its drawer in its own, mapped on its row.
        suffix = "" if code == STORE else f" {code}"
        cash_journal = env["account.journal"].create(
            {
                "name": f"Store cash{suffix}",
                "code": f"C{code}"[:5],
                "type": "cash",
                "company_id": company.id,
            }
        )
        cash = env["pos.payment.method"].create(
            {"name": f"POS cash{suffix}", "journal_id": cash_journal.id, "company_id": company.id}
        )
        config = env["pos.config"].create(
            {
                "name": f"Store {code}",
                "payment_method_ids": [(6, 0, (cash | card | other).ids)],
            }
        )
        store = env["connector.pos.store"].create(
            {
                "backend_id": backend.id,
                "code": code,
                "name": f"Store {code}",
                "config_id": config.id,
            }
        )
        env["connector.pos.tender"].create(
            {
                "backend_id": backend.id,
                "store_id": store.id,
                "tender_type": "cash",
                "payment_method_id": cash.id,
            }
        )
        store.action_generate_upload_key()
        keys[code] = store.sudo().upload_key
    return backend, backend.pos_store_ids, keys


def make_products(env, catalog):
    """The POS catalogue's products in Odoo: storable, by SKU (internal
    reference) and barcode."""
    return env["product.product"].create(
        [
            {
                "name": product["name"],
                "default_code": product["sku"],
                "barcode": product["barcode"],
                "is_storable": True,
                "available_in_pos": True,
                "list_price": float(product["price"]),
                "taxes_id": [(5, 0, 0)],
            }
            for product in catalog
        ]
    )


def batch(tickets, *, store=STORE, register="R1", batch_id=None):
    return {
        "contract": 1,
        "batch_id": batch_id or str(uuid.uuid4()),
        "store": store,
        "register": register,
        "prices_include_tax": True,
        "sent_at": "2026-11-30T10:42:07+01:00",
        "tickets": tickets,
    }


class PosCase(HttpCase):
    """A fleet with one store of two registers played by the POS simulator,
    the catalogue's products in Odoo, the store's key typed into its POS."""

    rounding = "round_per_line"
    stores = (STORE,)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pos = PosSimulator(
            seed=7,
            fleet_code=FLEET,
            stores=len(cls.stores),
            registers=2,
            rounding="line" if cls.rounding == "round_per_line" else "ticket",
        )
        cls.pos.start()
        cls.addClassCleanup(cls.pos.stop)
        cls.backend, cls.store, cls.keys = make_fleet(
            cls.env, rounding=cls.rounding, stores=cls.stores
        )
        cls.products = make_products(cls.env, cls.pos.catalog())

    def setUp(self):
        super().setUp()
        self.pos.reset(7)  # each test rings up its own tickets
        self.pos.push_url = self.base_url()
        for code, key in self.keys.items():
            self.pos.set_key(code, key)

    def push(self, **kwargs):
        """The simulated registers upload what they rang up, to Odoo's HTTP
        server; then the jobs it queued run. Returns the uploads."""
        # The POS is another program: let its requests in without the
        # session cookie Odoo's test server otherwise demands. It reads what
        # this test wrote: flushed first, as a commit would.
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            uploads = self.pos.push(**kwargs)
        self.run_jobs()
        return uploads

    def post_batch(self, register, tickets, **kwargs):
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            upload = self.pos.post_batch(STORE, register, tickets, **kwargs)
        self.run_jobs()
        return upload

    def event(self, ticket):
        return self.events().filtered(lambda e: e.idempotency_key == ticket["uuid"])

    def upload(self, body, *, store=STORE, key=None, raw=None, fleet=FLEET):
        """POST a batch as given, signed with the store's key (or ``key``)."""
        self.env.flush_all()
        raw = raw if raw is not None else json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Pos-Store": store,
            "X-Pos-Signature": hmac_sha256_base64(key or self.keys.get(store, "x"), raw),
        }
        return self.url_open(
            f"/connector/pos/v1/fleets/{fleet}/batches", data=raw, headers=headers, timeout=60
        )

    def events(self):
        return self.env["connector.event"].search(
            [("backend_id", "=", self.backend.id)], order="id"
        )

    def order(self, ticket):
        return self.env["pos.order"].search([("uuid", "=", ticket["uuid"])])

    def apply(self, body, **kwargs):
        """Upload ``body`` and run the jobs it queued, as queue_job's runner would."""
        response = self.upload(body, **kwargs)
        self.assertEqual(response.status_code, 200, response.text)
        self.run_jobs()
        return response.json()

    def run_jobs(self, rounds=500):
        """Run the pending jobs of the connector (the dispatcher's, the events'),
        and those they queue in turn; a job asking for a retry runs again.

        Rounds, as a runner's passes: a ticket that waited for an earlier one
        of its register gets a new job when that one is applied."""
        Job = self.env["queue.job"]
        retried = {}
        for _ in range(rounds):
            jobs = Job.search(
                [
                    ("state", "=", "pending"),
                    ("method_name", "in", ("_dispatch_received", "_process", "_process_batch")),
                ],
                order="id",
            )
            if not jobs:
                return
            for record in jobs:
                job = QueueJob.load(self.env, record.uuid)
                # Started while it runs, as the runner marks it: what it
                # queues meanwhile gets a job of its own.
                job.set_started()
                job.store()
                try:
                    job.perform()
                except RetryableJobError as exc:
                    retried[record.uuid] = str(exc)
                    job.set_pending(reset_retry=False)
                    job.store()
                    continue
                job.set_done()
                job.store()
        self.fail(f"jobs still pending after the last round: {retried}")
