import json
import uuid
from decimal import Decimal

from odoo.tests import HttpCase

from odoo.addons.connector_base.components.signature import hmac_sha256_base64
from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job as QueueJob

FLEET = "test-fleet"
STORE = "S01"
BUSINESS_DAY = "2026-11-30"


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
    Sale per store with cash and card methods, the tenders and tax codes
    mapped, the company rounding taxes as the POS does. Returns the backend,
    its stores and their upload keys ``{code: key}``."""
    ensure_chart_of_accounts(env)
    env.company.tax_calculation_rounding_method = rounding
    company = env.company
    # A cash journal of its own: Point of Sale gives each cash journal one method.
    cash_journal = env["account.journal"].create(
        {"name": "Store cash", "code": "SCSH", "type": "cash", "company_id": company.id}
    )
    bank_journal = env["account.journal"].search(
        [("company_id", "=", company.id), ("type", "=", "bank")], limit=1
    )
    cash = env["pos.payment.method"].create(
        {"name": "POS cash", "journal_id": cash_journal.id, "company_id": company.id}
    )
    card = env["pos.payment.method"].create(
        {"name": "POS card", "journal_id": bank_journal.id, "company_id": company.id}
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
                (0, 0, {"tender_type": "cash", "payment_method_id": cash.id}),
                (0, 0, {"tender_type": "card", "payment_method_id": card.id}),
            ],
            "pos_tax_ids": [
                (0, 0, {"code": "VAT20", "tax_id": make_tax(env, 20.0, "VAT20").id}),
                (0, 0, {"code": "VAT55", "tax_id": make_tax(env, 5.5, "VAT55").id}),
            ],
        }
    )
    keys = {}
    for code in stores:
        config = env["pos.config"].create(
            {
                "name": f"Store {code}",
                "payment_method_ids": [(6, 0, (cash | card).ids)],
            }
        )
        store = env["connector.pos.store"].create(
            {"backend_id": backend.id, "code": code, "name": f"Store {code}", "config_id": config.id}
        )
        store.action_generate_upload_key()
        keys[code] = store.sudo().upload_key
    return backend, backend.pos_store_ids, keys


def make_products(env, skus):
    """Storable products with these SKUs (internal references) and a barcode each."""
    return env["product.product"].create(
        [
            {
                "name": f"Product {sku}",
                "default_code": sku,
                "barcode": f"376000000{index:04d}",
                "is_storable": True,
                "available_in_pos": True,
                "list_price": 10.0,
                "taxes_id": [(5, 0, 0)],
            }
            for index, sku in enumerate(skus)
        ]
    )


def money(value):
    return f"{Decimal(value).quantize(Decimal('0.01'))}"


def sale(sequence, lines, *, tenders=None, day=BUSINESS_DAY, rates=None, **changes):
    """A sale ticket of the contract: ``lines`` are (sku, quantity, unit price
    incl. tax, discount amount, tax code); totals as the POS prints them,
    rounding tax per line; paid in cash unless ``tenders`` says otherwise."""
    rates = rates or {"VAT20": Decimal("20"), "VAT55": Decimal("5.5")}
    ticket_lines, total, total_tax = [], Decimal(0), Decimal(0)
    for sku, quantity, price, discount, tax_code in lines:
        net = Decimal(quantity) * Decimal(price) - Decimal(discount)
        rate = rates[tax_code]
        tax = (net - net / (1 + rate / 100)).quantize(Decimal("0.01"))
        total += net
        total_tax += tax
        ticket_lines.append(
            {
                "line_uuid": str(uuid.uuid4()),
                "sku": sku,
                "quantity": str(quantity),
                "unit_price": str(price),
                "discount": str(discount),
                "tax_code": tax_code,
            }
        )
    ticket = {
        "uuid": str(uuid.uuid4()),
        "sequence": sequence,
        "type": "sale",
        "business_day": day,
        "opened_at": f"{day}T10:{sequence % 60:02d}:00+01:00",
        "closed_at": f"{day}T10:{sequence % 60:02d}:30+01:00",
        "cashier": "C07",
        "lines": ticket_lines,
        "tenders": tenders or [{"type": "cash", "amount": money(total)}],
        "total": money(total),
        "total_tax": money(total_tax),
    }
    ticket.update(changes)
    return ticket


def return_of(original, sequence, lines=None, **changes):
    """A return of ``original``'s lines (all of them unless ``lines`` gives
    ``{line_uuid: quantity}``), paid back in cash."""
    chosen = lines or {line["line_uuid"]: line["quantity"] for line in original["lines"]}
    ticket_lines, total = [], Decimal(0)
    for line in original["lines"]:
        if line["line_uuid"] not in chosen:
            continue
        quantity = Decimal(chosen[line["line_uuid"]])
        share = quantity / Decimal(line["quantity"])
        net = quantity * Decimal(line["unit_price"]) - Decimal(line["discount"]) * share
        total += net
        ticket_lines.append(
            {
                **line,
                "line_uuid": str(uuid.uuid4()),
                "quantity": str(-quantity),
                "discount": str(-Decimal(line["discount"]) * share),
                "return_of_line": line["line_uuid"],
            }
        )
    ticket = {
        "uuid": str(uuid.uuid4()),
        "sequence": sequence,
        "type": "return",
        "original_uuid": original["uuid"],
        "business_day": original["business_day"],
        "closed_at": original["closed_at"].replace("T10:", "T11:"),
        "lines": ticket_lines,
        "tenders": [{"type": "cash", "amount": money(-total)}],
        "total": money(-total),
    }
    ticket.update(changes)
    return ticket


def void_of(original, sequence):
    return {
        "uuid": str(uuid.uuid4()),
        "sequence": sequence,
        "type": "void",
        "original_uuid": original["uuid"],
        "business_day": original["business_day"],
        "closed_at": original["closed_at"].replace("T10:", "T12:"),
        "lines": [],
        "tenders": [],
    }


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
    """A fleet with one store, products by SKU, and how its POS uploads."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.backend, cls.store, cls.keys = make_fleet(cls.env)
        cls.products = make_products(cls.env, ["TSH-BLK-M", "MUG-WHT", "CAP-RED"])

    def upload(self, body, *, store=STORE, key=None, raw=None, fleet=FLEET):
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

    def run_jobs(self, rounds=20):
        """Run the pending jobs of the connector (the dispatcher's, the events'),
        and those they queue in turn; a job asking for a retry runs again."""
        Job = self.env["queue.job"]
        for _ in range(rounds):
            jobs = Job.search(
                [
                    ("state", "=", "pending"),
                    ("method_name", "in", ("_dispatch_received", "_process")),
                ],
                order="id",
            )
            if not jobs:
                return
            for record in jobs:
                job = QueueJob.load(self.env, record.uuid)
                try:
                    job.perform()
                except RetryableJobError:
                    continue
                job.set_done()
                job.store()
        self.fail("jobs still pending after the last round")
