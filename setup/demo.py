"""Demo wiring of the run command: Odoo connected to the simulated remote systems.

Before Odoo serves, one ``odoo shell`` run connects the demo database to the
Shopify simulator the way an administrator would in the UI: products for the
store's SKUs (with stock), a Shopify backend with the simulator's URL and
credentials, its locations imported, its variants bound by SKU, started, its
webhooks registered to this Odoo. The reliability suite wires its databases
the same way (without the registration: its simulator sends to Odoo directly).
While Odoo serves, a traffic thread places orders in the simulated store
now and then; their webhooks flow into Odoo, whose reservations flow back
out to Shopify as stock levels.
"""

import itertools
import json
import random
import subprocess
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import devtool
from simulators.retail_data import SHOP_CURRENCY, TAX_REGIONS

# Runs inside ``odoo shell`` (``env`` is given); CONFIG is filled in below.
WIRING = r"""
import json
config = json.loads(CONFIG)
company = env.company
if not company.country_id:
    company.country_id = env.ref("base.be")
warehouse = env["stock.warehouse"].search([("company_id", "=", company.id)], limit=1)
# Invoices, credit notes and payments of the store's orders need accounts.
if not company.chart_template:
    env["account.chart.template"].try_loading("generic_coa", company=company, install_demo=False)
# The books in the shop's currency (the finance system's too), set while
# the company has no entry yet.
currency = env.ref(f"base.{config['currency']}")
if company.currency_id != currency and not env["account.move.line"].search_count(
    [("company_id", "=", company.id)], limit=1
):
    currency.active = True
    company.currency_id = currency
# Taxes as the configuration guide asks: rounded per line as Shopify rounds
# them, one sale tax per rate the store charges (a copy of the company's
# default sale tax, so it books to its accounts), price-included like the
# shop's prices; the backend's tax mapping is filled from them.
company.tax_calculation_rounding_method = "round_per_line"
# Shopify tells the customer of each fulfillment (and there are no SMS
# credits): Odoo sends no SMS of its own when an order's delivery is
# validated, e.g. one the store fulfilled itself, imported by the backfill.
company.stock_text_confirmation = False
Tax = env["account.tax"].with_company(company)
sale_taxes = [("company_id", "=", company.id), ("type_tax_use", "=", "sale"),
              ("amount_type", "=", "percent")]
template = company.account_sale_tax_id or Tax.search(sale_taxes, limit=1)
included = config["taxes_included"]
for title, rate in config["taxes"]:
    same = Tax.search(sale_taxes + [("amount", "=", rate)]).filtered(
        lambda t: t.price_include == included)
    if not same:
        template.copy({
            "name": f"{rate:g}% ({title})",
            "amount": rate,
            "price_include_override": "tax_included" if included else "tax_excluded",
        })
Product = env["product.product"]
for sku in config["skus"]:
    if Product.search_count([("default_code", "=", sku)]):
        continue
    product = Product.create(
        {"name": f"Demo {sku}", "default_code": sku, "is_storable": True, "list_price": 25}
    )
    env["stock.quant"].create(
        {"product_id": product.id, "location_id": warehouse.lot_stock_id.id,
         "inventory_quantity": 40}
    ).action_apply_inventory()
Backend = env["connector.backend"]
backend = Backend.search([("backend_type", "=", "shopify")], limit=1)
values = {
    "name": "Demo Shopify store",
    "backend_type": "shopify",
    "base_url": config["url"],
    "shopify_shop_domain": config["domain"],
    "api_token": config["token"],
    "webhook_secret": config["secret"],
    "shopify_warehouse_id": warehouse.id,
    "shopify_webhook_url": config["webhook_url"],
}
if backend:
    backend.write(values)
else:
    backend = Backend.create(values)
backend._shopify_fill_tax_mapping()
backend.action_shopify_import_locations()
backend.action_shopify_bind_products()
if backend.state != "running":
    backend.action_start()
if config["register_webhooks"]:
    backend.action_shopify_register_webhooks()
if config["push_stock"]:
    # The store's quantities set from Odoo's, the administrator's last step
    # (Push stock now): the reconciliation then finds only what drifts. The
    # push keeps its task and its changes in transactions of their own, which
    # must see the backend: committed first, as it is when a user clicks.
    env.cr.commit()
    backend.action_shopify_push_stock()
env.cr.commit()
print("wiring done:", backend.name, len(backend.shopify_location_ids), "locations;",
      backend.shopify_webhook_note or "no webhook registered")
"""


def store_skus(shop):
    return sorted({row["sku"] for row in shop.inventory() if row["sku"]})


def new_in_store_sku(shop):
    """The SKU the demo store sells and Odoo has no product for yet: the
    demo's orders of it fail, an exception for support to work on."""
    return store_skus(shop)[-1]


def wire_shopify(
    shop,
    base_args,
    webhook_url,
    *,
    register_webhooks=True,
    output=None,
    leave_out=(),
    push_stock=False,
):
    """Connect a database to the Shopify simulator ``shop`` (one odoo shell run).

    ``register_webhooks``: subscribe the store's webhooks to ``webhook_url``, as
    the backend's Register webhooks button does (otherwise the backend only
    knows the address). ``output``: a file for the shell's output (default:
    this terminal). ``leave_out``: store SKUs given no Odoo product.
    ``push_stock``: queue the push of every bound product's quantity.
    """
    config = {
        "webhook_url": webhook_url,
        "url": shop.url,
        "domain": shop.shop_domain,
        "token": shop.access_token,
        "secret": shop.webhooks.secret,
        "skus": [sku for sku in store_skus(shop) if sku not in leave_out],
        "register_webhooks": register_webhooks,
        "push_stock": push_stock,
        "currency": SHOP_CURRENCY,
        # The taxes the store charges (title, rate in percent) and how its prices hold them.
        "taxes": sorted(
            {(title, float(rate * 100)) for _p, title, rate, _c in TAX_REGIONS.values()}
        ),
        "taxes_included": shop.store.shop["taxesIncluded"],
    }
    script = f"CONFIG = {json.dumps(json.dumps(config))}\n{WIRING}"
    if output is None:
        devtool.say("== Connecting the demo database to the Shopify simulator")
    proc = subprocess.run(
        devtool.odoo_command("shell", *base_args, "--log-level=warn", "--no-http"),
        input=script,
        text=True,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        env=devtool.python_env(),
        check=False,
    )
    if proc.returncode:
        devtool.fail(
            f"The database could not be connected to the Shopify simulator "
            f"(odoo shell exit {proc.returncode})."
        )


class OrderTraffic(threading.Thread):
    """Places an order in the simulated store every ``interval`` seconds.

    Every NEW_SKU_EVERY-th order also sells ``new_sku`` (when given), a
    product the store has and Odoo does not know yet; every TPL_SKU_EVERY-th
    order one of ``tpl_skus`` (when given), which the 3PL ships. Every
    ``payout_every`` seconds (when given: the demo's day), Shopify Payments
    pays out what the store's customers paid, as it does once a day.
    """

    NEW_SKU_EVERY = 10
    # One of the SKUs the 3PL ships in every few orders: among the store's
    # hundred-odd SKUs, drawn at random, they are sold too seldom for the
    # demo to show the 3PL's flow in its first minutes.
    TPL_SKU_EVERY = 3

    def __init__(
        self, shop, interval=8.0, seed=42, new_sku=None, *, tpl_skus=(), payout_every=None
    ):
        super().__init__(name="demo-order-traffic", daemon=True)
        self.shop = shop
        self.interval = interval
        self.payout_every = payout_every
        self.rng = random.Random(seed)
        self.stopping = threading.Event()
        self.new_sku = new_sku
        self.skus = [sku for sku in store_skus(shop) if sku != new_sku]
        self.tpl_skus = list(tpl_skus)

    def run(self):
        paid_out = time.monotonic()
        for placed in itertools.count(1):
            if self.stopping.wait(self.interval):
                return
            if self.payout_every and time.monotonic() - paid_out >= self.payout_every:
                paid_out = time.monotonic()
                count = len(self.shop.create_payout())
                devtool.say(
                    f"   (demo Shopify: {count} payout{'' if count == 1 else 's'} paid to the bank)"
                )
            lines = [
                (sku, self.rng.randint(1, 3))
                for sku in self.rng.sample(self.skus, k=min(len(self.skus), 3))
            ]
            # The order of the new SKU is paid by bank transfer, not through
            # Shopify Payments: until support has it imported, it has no
            # payment in Odoo, and every payout of its day would wait for it.
            paid = True
            if self.new_sku and placed % self.NEW_SKU_EVERY == 3:
                lines.append((self.new_sku, 1))
                paid = False
            if self.tpl_skus and placed % self.TPL_SKU_EVERY == 1:
                sku = self.rng.choice(self.tpl_skus)
                if sku not in dict(lines):
                    lines.append((sku, 1))
            try:
                self.shop.create_order(lines, paid=paid)
            except (KeyError, ValueError, StopIteration) as exc:
                devtool.say(f"   (demo traffic: order not placed: {exc})")

    def stop(self):
        self.stopping.set()
        self.join()


# --- the 3PL's warehouse ----------------------------------------------------------------

# The store's SKUs the 3PL ships: stocked only in its warehouse, and carrying
# a route that delivers them from there.
TPL_SKUS = 4
TPL_CARRIERS = ("Colissimo", "DHL", "UPS", "Chronopost")

# Runs inside ``odoo shell`` (``env`` is given); CONFIG is filled in below. Run
# again on the same database, it finds what it made and makes only what lacks.
TPL_WIRING = r"""
import json
from odoo.fields import Command
config = json.loads(CONFIG)
company = env.company
main = env["stock.warehouse"].search([("company_id", "=", company.id)], limit=1)
Warehouse = env["stock.warehouse"]
warehouse = Warehouse.search([("code", "=", "TPL"), ("company_id", "=", company.id)], limit=1)
if not warehouse:
    warehouse = Warehouse.create({"name": "3PL Lyon", "code": "TPL", "company_id": company.id})
customers = env.ref("stock.stock_location_customers")
Route = env["stock.route"]
route = Route.search([("name", "=", "Shipped by 3PL Lyon")], limit=1)
if not route:
    # A rule of no warehouse: sale orders of the main warehouse find it on the
    # product, and their delivery is made in the 3PL's warehouse.
    route = Route.create({
        "name": "Shipped by 3PL Lyon",
        "product_selectable": True,
        "company_id": company.id,
        "rule_ids": [Command.create({
            "name": "3PL Lyon: Stock -> Customers",
            "action": "pull",
            "location_src_id": warehouse.lot_stock_id.id,
            "location_dest_id": customers.id,
            "picking_type_id": warehouse.out_type_id.id,
            "procure_method": "make_to_stock",
            "company_id": company.id,
        })],
    })
Quant = env["stock.quant"]
for sku in config["skus"]:
    product = env["product.product"].search([("default_code", "=", sku)], limit=1)
    if not product or route in product.route_ids:
        continue
    product.route_ids = [Command.link(route.id)]
    # Its stock moves to the 3PL's shelves: the main warehouse has none left.
    for location, quantity in ((main.lot_stock_id, 0), (warehouse.lot_stock_id, config["stock"])):
        Quant.with_context(inventory_mode=True).create(
            {"product_id": product.id, "location_id": location.id,
             "inventory_quantity": quantity}
        ).action_apply_inventory()
service = env["product.product"].search([("default_code", "=", "DEMO-3PL-SHIPPING")], limit=1)
service = service or env["product.product"].create(
    {"name": "3PL shipping", "default_code": "DEMO-3PL-SHIPPING", "type": "service"}
)
Backend = env["connector.backend"]
values = {
    "name": "3PL Lyon",
    "backend_type": "3pl",
    "base_url": config["url"],
    "api_token": config["token"],
    "webhook_secret": config["secret"],
    "tpl_warehouse_id": warehouse.id,
    "tpl_channel_id": config["channel"],
}
backend = Backend.search([("backend_type", "=", "3pl")], limit=1)
if backend:
    backend.write(values)
else:
    backend = Backend.create(values)
for name in config["carriers"]:
    if not backend.tpl_carrier_ids.filtered(lambda row, name=name: row.carrier == name):
        carrier = env["delivery.carrier"].search([("name", "=", name)], limit=1)
        carrier = carrier or env["delivery.carrier"].create(
            {"name": name, "product_id": service.id}
        )
        backend.tpl_carrier_ids = [
            Command.create({"carrier": name, "delivery_carrier_id": carrier.id})
        ]
# Shopify tells the customer of each fulfillment (and the demo has no SMS
# credits): Odoo sends no SMS of its own when a delivery is validated.
company.stock_text_confirmation = False
if backend.state != "running":
    backend.action_start()
env.cr.commit()
print("3PL wiring done:", backend.name, "on", warehouse.name, len(config["skus"]), "products;",
      "BACKEND_ID", backend.id)
"""


def wire_tpl(tpl, shop, base_args, odoo_url, stock=40):
    """Connect a database to the 3PL simulator ``tpl`` (one odoo shell run,
    after the Shopify wiring made the store's products): a second warehouse
    the 3PL operates, a route that delivers the first TPL_SKUS store SKUs from
    it (their stock moved there, ``stock`` units each, and as many on the
    3PL's shelves), the 3PL's carriers mapped, a running backend, and the
    simulator's webhooks sent to that backend's address."""
    skus = store_skus(shop)[:TPL_SKUS]
    config = {
        "skus": skus,
        "stock": stock,
        "url": tpl.api_url,
        "token": tpl.access_token,
        "secret": tpl.webhooks.secret,
        "channel": tpl.headers["shipbob_channel_id"],
        "carriers": list(TPL_CARRIERS),
    }
    proc = _run_wiring(base_args, config, TPL_WIRING)
    found = [line for line in proc.stdout.splitlines() if "BACKEND_ID" in line]
    if proc.returncode or not found:
        raise _wiring_failed("the 3PL simulator", proc)
    devtool.say(found[-1].split(" BACKEND_ID")[0])
    backend_id = int(found[-1].split("BACKEND_ID")[1])
    for sku in skus:
        tpl.set_on_hand(sku, stock, name=f"Demo {sku}")
    tpl.webhook_url = f"{odoo_url}/connector/3pl/{backend_id}/webhook"
    return skus


# --- the book of record -----------------------------------------------------------------

# The demo company's accounts (Odoo's generic chart) and the finance
# simulator's accounts they post to: receivables on the clearing account of
# the way they are paid (the remote keeps its own receivables account for
# its invoices), taxes on its VAT account, fees on card processing fees.
FINANCE_ACCOUNTS = {
    "101401": "090",  # Bank
    "101402": "090",  # Bank suspense: the bank's lines not reconciled yet
    "101403": "092",  # Outstanding receipts: Shopify's payments on their way
    "101404": "092",  # Outstanding payments: Shopify's refunds on their way
    "121000": "092",  # Receivables of the shop's orders
    "101300": "091",  # Receivables of the stores' days (card and other tenders)
    "400000": "200",  # Product sales
    "251000": "820",  # Tax received
    "620000": "405",  # Bank fees: the acquirer's commission
    "442000": "260",  # Cash difference gain, at a store's close
    "642000": "404",  # Cash difference loss, at a store's close
    "209100": "091",  # Card acquirer balance: a batch without payout, carried to the next
}
# The stores' tax codes (the POS wiring's taxes) and the finance system's
# rates they are; the shop's taxes, "20% (FR TVA)", are named by their title.
FINANCE_POS_TAXES = {"POS VAT20": "FR TVA", "POS VAT10": "FR TVA 10%", "POS VAT5_5": "FR TVA 5.5%"}

FINANCE_WIRING = r"""
import json
from odoo import fields
config = json.loads(CONFIG)
company = env.company
Backend = env["connector.backend"]
values = {
    "name": "Book of record",
    "backend_type": "finance",
    "company_id": company.id,
    "base_url": config["url"],
    "api_token": config["token"],
    "finance_tenant_id": config["tenant"],
    "finance_report_url": config["report_url"],
    "finance_merchant_account": config["merchant"],
    "finance_report_api_key": config["report_key"],
    # The simulated store is seeded anew each run, its history paid out
    # before today: as on the day a store is connected, its payouts are
    # settled from today (the backend's default on its first run).
    "finance_settle_from": fields.Date.context_today(Backend),
}
backend = Backend.search(
    [("backend_type", "=", "finance"), ("company_id", "=", company.id)], limit=1
)
if backend:
    backend.write(values)
else:
    backend = Backend.create(values)
backend.action_finance_read_chart()
Account = env["account.account"]
# What the card acquirer owes or is owed between a store day whose returns to
# cards are more than its card sales (a batch that pays nothing) and the next.
acquirer_balance = Account.search(
    [("company_ids", "in", company.ids), ("code", "=", "209100")], limit=1
) or Account.create(
    {"code": "209100", "name": "Card acquirer balance", "account_type": "liability_current",
     "reconcile": True}
)
remote = {a.code: a for a in backend.finance_remote_account_ids}
mapped = set(backend.finance_account_map_ids.account_id.ids)
for code, remote_code in config["accounts"].items():
    account = Account.search([("company_ids", "in", company.ids), ("code", "=", code)], limit=1)
    if account and account.id not in mapped:
        env["finance.account.map"].create(
            {"backend_id": backend.id, "account_id": account.id,
             "remote_account_id": remote[remote_code].id}
        )
        mapped.add(account.id)
bank = env["account.journal"].search(
    [("company_id", "=", company.id), ("type", "=", "bank")], limit=1
)
fees = Account.search([("company_ids", "in", company.ids), ("code", "=", "620000")], limit=1)
remote_taxes = {t.name: t for t in backend.finance_remote_tax_ids}
taxed = set(backend.finance_tax_map_ids.tax_id.ids)
sale_taxes = env["account.tax"].search(
    [("company_id", "=", company.id), ("type_tax_use", "=", "sale")]
)
for tax in sale_taxes:
    title = config["pos_taxes"].get(tax.name) or tax.name.partition("(")[2].rstrip(")")
    if title in remote_taxes and tax.id not in taxed:
        env["finance.tax.map"].create(
            {"backend_id": backend.id, "tax_id": tax.id, "remote_tax_id": remote_taxes[title].id}
        )
# Sales and refunds, payments and payouts, the stores' cash, the stores' days.
journals = env["account.journal"].search(
    [("company_id", "=", company.id), ("type", "in", ("sale", "bank", "cash"))]
)
if "pos.config" in env:
    journals |= env["pos.config"].search([("company_id", "=", company.id)]).journal_id
store_cash = remote["093"]
for journal in journals.filtered(lambda j: j.type == "cash"):
    if journal.default_account_id.id not in mapped:
        env["finance.account.map"].create(
            {"backend_id": backend.id, "account_id": journal.default_account_id.id,
             "remote_account_id": store_cash.id}
        )
        mapped.add(journal.default_account_id.id)
backend.write({
    # Each entry as it is posted: the demo's days are minutes, a summarised
    # day would go out tomorrow.
    "finance_export_mode": "entry",
    "finance_journal_ids": [(6, 0, journals.ids)],
    "finance_bank_journal_id": bank.id,
    "finance_fee_account_id": fees.id,
    "finance_acquirer_balance_account_id": acquirer_balance.id,
})
# A demo day is minutes: the export and the settlements run every two.
for policy in backend.policy_ids:
    if policy.flow in ("journals_out", "settlements_in"):
        policy.interval_minutes = 2
for cron in ("cron_finance_export", "cron_finance_settlements"):
    env.ref(f"connector_finance.{cron}").write({"interval_number": 2, "interval_type": "minutes"})
# And Shopify's payouts, which it settles, are read from the store as often.
if "shopify.payout" in env:
    shops = Backend.search([("backend_type", "=", "shopify"), ("company_id", "=", company.id)])
    for shop in shops:
        shop._policy("payouts_in").interval_minutes = 2
    env.ref("connector_shopify.cron_shopify_import_payouts").write(
        {"interval_number": 2, "interval_type": "minutes"}
    )
if backend.state != "running":
    backend.action_start()
env.cr.commit()
# The bank journal each provider's payouts are looked for in.
payout_journals = {
    source: backend._finance_settlement_journal(source).id for source in ("acquirer", "shopify")
}
print(
    "finance wiring done:", backend.name, len(backend.finance_account_map_ids),
    "accounts mapped,", len(journals), "journals exported; PAYOUT_JOURNALS",
    json.dumps(payout_journals),
)
"""


def wire_finance(finance, base_args):
    """Connect a database to the finance simulator ``finance`` (one odoo shell
    run): an accounting system backend with its URL, token and organisation,
    its chart read and the demo company's accounts mapped, its sales and bank
    journals exported entry by entry, the acquirer's settlement reports read,
    the payouts landing in the bank journal. Returns the id of the bank
    journal each provider's payouts land in, by source (``acquirer``,
    ``shopify``)."""
    config = {
        "url": finance.api_url,
        "token": finance.access_token,
        "tenant": finance.tenant_id,
        "report_url": f"{finance.url}/reports/download",
        "merchant": finance.acquirer.merchant_account,
        "report_key": finance.report_api_key,
        "accounts": FINANCE_ACCOUNTS,
        "pos_taxes": FINANCE_POS_TAXES,
    }
    proc = _run_wiring(base_args, config, FINANCE_WIRING)
    found = [line for line in proc.stdout.splitlines() if "PAYOUT_JOURNALS" in line]
    if proc.returncode or not found:
        raise _wiring_failed("the finance simulator", proc)
    devtool.say(found[-1].split(";")[0])
    return json.loads(found[-1].split("PAYOUT_JOURNALS")[1])


class BankFeed:
    """The retailer's bank: each payout of the card acquirer and of Shopify
    Payments lands on the bank account as a statement line in Odoo (as a bank
    statement import would make it), in the journal the finance backend
    looks for that provider's payouts in, labelled as the bank prints it:
    the acquirer's batch, Shopify's payout number.

    ``journals``: the bank journal's id by source (``acquirer``, ``shopify``).
    Its methods are the simulators' listeners: :meth:`acquirer_batch` of the
    acquirer's closed batches, :meth:`shopify_payout` of Shopify's paid payouts.
    """

    def __init__(self, odoo_url, db, journals, login="admin", password="admin"):
        self.url = odoo_url
        self.db = db
        self.journals = journals
        self.login = login
        self.password = password
        self.failures = 0

    def acquirer_batch(self, batch):
        if batch.get("payout"):
            self._book(
                "acquirer",
                batch["closed_at"].date(),
                batch["payout"],
                f"ADYEN PAYOUT BATCH {batch['number']}",
            )

    def shopify_payout(self, payout):
        # A withdrawal takes the money back from the account.
        sign = -1 if payout["transaction_type"] == "WITHDRAWAL" else 1
        self._book(
            "shopify",
            datetime.fromisoformat(payout["issued_at"]).date(),
            sign * Decimal(payout["net"]),
            f"SHOPIFY PAYMENTS PAYOUT {payout['legacy_id']}",
        )

    def _book(self, source, day, amount, label):
        try:
            devtool.Rpc(self.url, self.db, self.login, self.password)(
                "account.bank.statement.line",
                "create",
                [
                    {
                        "journal_id": self.journals[source],
                        "date": day.isoformat(),
                        "amount": float(amount),
                        "payment_ref": label,
                    }
                ],
            )
        except (OSError, devtool.RpcError) as exc:
            self.failures += 1
            if self.failures in (1, 10, 100):
                devtool.say(f"   (demo bank: {label} not booked: {exc})")


# --- the store POS fleet --------------------------------------------------------------

# Runs inside ``odoo shell`` (``env`` is given); CONFIG is filled in below. Run
# again on the same database, it finds what it made and makes only what lacks.
POS_WIRING = r"""
import json
from odoo.fields import Command
config = json.loads(CONFIG)
company = env.company
if not company.chart_template:
    env["account.chart.template"].try_loading("generic_coa", company=company, install_demo=False)
# The company rounds taxes as the stores' POS does (the fleet checks it).
company.tax_calculation_rounding_method = config["rounding"]
country = company.account_fiscal_country_id or company.country_id
group = env["account.tax.group"].search([("company_id", "=", company.id)], limit=1)
Tax = env["account.tax"]
taxes = {}
for code, rate in config["taxes"].items():
    name = f"POS {code}"
    taxes[code] = Tax.search(
        [("name", "=", name), ("company_id", "=", company.id), ("type_tax_use", "=", "sale")],
        limit=1,
    ) or Tax.create({
        "name": name,
        "type_tax_use": "sale",
        "amount_type": "percent",
        "amount": rate,
        "price_include_override": "tax_included",
        "company_id": company.id,
        "tax_group_id": group.id,
        "country_id": country.id,
    })
# The Shopify wiring may have made products of the same SKUs (one catalogue).
warehouse = env["stock.warehouse"].search([("company_id", "=", company.id)], limit=1)
Product = env["product.product"]
products = Product
for item in config["catalogue"]:
    values = {
        "barcode": item["barcode"],
        "is_storable": True,
        "available_in_pos": True,
        "taxes_id": [Command.clear()],
    }
    product = Product.search([("default_code", "=", item["sku"])], limit=1)
    if product:
        product.write(values)
    else:
        product = Product.create(
            {**values, "name": item["name"], "default_code": item["sku"],
             "list_price": float(item["price"])}
        )
        if config["stock"]:
            env["stock.quant"].create(
                {"product_id": product.id, "location_id": warehouse.lot_stock_id.id,
                 "inventory_quantity": config["stock"]}
            ).action_apply_inventory()
    products |= product
bank_journal = env["account.journal"].search(
    [("company_id", "=", company.id), ("type", "=", "bank")], limit=1
)
Method = env["pos.payment.method"]


# A journal's code is unique in its company: another fleet's store may have taken it.
def free_journal_code(code):
    Journal, number = env["account.journal"], 0
    while Journal.search_count([("code", "=", code), ("company_id", "=", company.id)]):
        number += 1
        code = f"C{number:04d}"
    return code


def method(name, journal=None, cash_code=None):
    found = Method.search([("name", "=", name), ("company_id", "=", company.id)], limit=1)
    if found:
        return found
    if cash_code:
        # A cash method of its own journal: Point of Sale takes one cash
        # method per cash journal, and one Point of Sale per cash method.
        journal = env["account.journal"].create(
            {"name": name, "code": free_journal_code(cash_code), "type": "cash",
             "company_id": company.id}
        )
    return Method.create({"name": name, "journal_id": journal.id, "company_id": company.id})


card = method("POS card", bank_journal)
other = method("POS gift cards and vouchers", bank_journal)
# Cash is mapped per store (below), the other tenders once for the fleet.
methods = {"card": card, "gift_card": other, "voucher": other, "store_credit": other}
Backend = env["connector.backend"]
values = {
    # A backend's name is unique in its company: one per fleet wired here.
    "name": f"POS fleet {config['fleet']}",
    "backend_type": "pos",
    "pos_fleet_code": config["fleet"],
    "pos_tax_rounding": config["rounding"],
    "pos_stock_policy": config["stock_policy"],
}
backend = Backend.search(
    [("backend_type", "=", "pos"), ("pos_fleet_code", "=", config["fleet"])], limit=1
)
if backend:
    backend.write(values)
else:
    backend = Backend.create(values)
Tender = env["connector.pos.tender"]
for kind, payment_method in methods.items():
    if not Tender.search_count(
        [("backend_id", "=", backend.id), ("tender_type", "=", kind), ("store_id", "=", False)]
    ):
        Tender.create(
            {"backend_id": backend.id, "tender_type": kind, "payment_method_id": payment_method.id}
        )
for code, tax in taxes.items():
    if not backend.pos_tax_ids.filtered(lambda row, code=code: row.code == code):
        backend.pos_tax_ids = [Command.create({"code": code, "tax_id": tax.id})]
if backend.state != "running":
    backend.action_start()
keys = {}
resume = {"day": None, "sequences": {}}
for code in config["stores"]:
    store = env["connector.pos.store"].search(
        [("backend_id", "=", backend.id), ("code", "=", code)], limit=1
    )
    if not store:
        # Each store's drawer is counted in its own cash method, on its own row.
        # Its own per fleet too: a database may hold several fleets of stores S01...
        cash = method(f"Store cash {code} ({config['fleet']})", cash_code=f"C{code}"[:5])
        pos_config = env["pos.config"].create({
            "name": f"Store {code}",
            "payment_method_ids": [Command.set((cash | card | other).ids)],
        })
        store = env["connector.pos.store"].create({
            "backend_id": backend.id, "code": code, "name": f"Store {code}",
            "config_id": pos_config.id,
        })
        Tender.create({
            "backend_id": backend.id, "store_id": store.id, "tender_type": "cash",
            "payment_method_id": cash.id,
        })
    # A new key each run: the simulated POS starts without one.
    store.action_generate_upload_key()
    keys[code] = store.sudo().upload_key
# A day a demo run stopped before its close left open: its Z reports went with
# that run's simulated POS. Closed as a manager closes it in Point of Sale, the
# drawer counted as Odoo expects it, so that the stores' next day can start.
left_open = env["pos.session"].search(
    [("connector_pos_store_id.backend_id", "=", backend.id), ("state", "!=", "closed")]
)
for session in left_open:
    session._connector_pos_close(session.cash_register_balance_end)
if left_open:
    print("POS days left open by an earlier run closed:", ", ".join(left_open.mapped("name")))
# Where the fleet left off in this database (a demo run before): its last
# business day, each register's last ticket number received.
env.cr.execute(
    "SELECT greatest(("
    "  SELECT max(connector_pos_business_day) FROM pos_session s"
    "    JOIN connector_pos_store st ON st.config_id = s.config_id WHERE st.backend_id = %s"
    "), ("
    "  SELECT max((payload->>'business_day')::date) FROM connector_event"
    "   WHERE backend_id = %s AND topic = 'ticket'"
    "     AND payload->>'business_day' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'"
    "))",
    (backend.id, backend.id),
)
day = env.cr.fetchone()[0]
resume["day"] = day and day.isoformat()
env.cr.execute(
    "SELECT payload->>'store', payload->>'register', max((payload->>'sequence')::int) "
    "FROM connector_event WHERE backend_id = %s AND topic = 'ticket' "
    "AND payload->>'sequence' ~ '^[0-9]{1,9}$' GROUP BY 1, 2",
    (backend.id,),
)
for store_code, register, last in env.cr.fetchall():
    resume["sequences"].setdefault(store_code, {})[register] = last
raw = []
for number in range(1, config["reference_tills"] + 1):
    # Odoo's own POS, a Point of Sale per till as Odoo advises: its session
    # opened by a cashier, its own cash method (the cash tender goes there).
    till_cash = method(f"Reference cash {number}", cash_code=f"RC{number:02d}")
    pos_config = env["pos.config"].create({
        "name": f"Odoo POS (reference till {number})",
        "payment_method_ids": [Command.set((till_cash | card | other).ids)],
    })
    session = env["pos.session"].create({"config_id": pos_config.id})
    session.update_stock_at_closing = config["stock_policy"] == "closing"
    session.set_opening_control(session.cash_register_balance_start, "")
    raw.append({
        "config_id": pos_config.id,
        "session_id": session.id,
        "pricelist_id": pos_config.pricelist_id.id,
        "methods": {**{kind: m.id for kind, m in methods.items()}, "cash": till_cash.id},
    })
env.cr.commit()
with open(config["output"], "w") as out:
    json.dump({
        "backend_id": backend.id,
        "keys": keys,
        "resume": resume,
        "products": {p.default_code: [p.id, p.display_name] for p in products},
        "taxes": {code: tax.id for code, tax in taxes.items()},
        "methods": {kind: m.id for kind, m in methods.items()},
        "raw": raw,
    }, out)
print("POS wiring done:", backend.name, len(keys), "stores")
"""


class WiringFailed(Exception):
    """The database could not be connected to a simulator; the message says why."""


def _run_wiring(base_args, config, script):
    """Run a wiring ``script`` (it reads ``CONFIG``) in ``odoo shell``; the
    finished process, its output captured."""
    return subprocess.run(
        devtool.odoo_command("shell", *base_args, "--log-level=warn", "--no-http"),
        input=f"CONFIG = {json.dumps(json.dumps(config))}\n{script}",
        text=True,
        capture_output=True,
        env=devtool.python_env(),
        check=False,
    )


def _wiring_failed(simulator, proc):
    """WiringFailed saying which simulator and the end of the shell's output."""
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    return WiringFailed(
        f"the database could not be connected to {simulator} (odoo shell exit "
        f"{proc.returncode}):\n{tail}"
    )


def wire_pos(
    pos,
    base_args,
    odoo_url,
    output_path,
    *,
    stores=None,
    reference_tills=0,
    rounding="round_per_line",
    stock_policy="real_time",
    stock=0,
    log=None,
):
    """Connect a database to the fleet of the POS simulator ``pos`` (one odoo
    shell run, before Odoo serves), as the configuration guide says: the
    catalogue's products (``stock`` units of each new one in the warehouse),
    the tax codes as price-included taxes, the payment methods, a running push
    fleet backend with its tenders (cash per store) and tax codes mapped, a
    Point of Sale per store, its upload key typed into the simulated POS. A
    fleet this database knew already carries on where it left off (its next
    business day, its registers' next numbers).

    ``reference_tills`` adds as many Points of Sale of no store, each with its
    session opened as a cashier opens it: the benchmarks' reference path.
    ``log``: a file for the shell's output (default: this terminal). Returns
    what the shell wrote (upload keys, ids by SKU, tax code and tender);
    raises :class:`WiringFailed` naming the shell's last lines.
    """
    config = {
        "fleet": pos.fleet.code,
        "rounding": rounding,
        "stores": list(stores or [store.code for store in pos.fleet.stores.values()]),
        "reference_tills": reference_tills,
        "stock_policy": stock_policy,
        "stock": stock,
        "taxes": {code: float(rate * 100) for code, rate in pos.fleet.tax_rates.items()},
        "catalogue": [{key: str(value) for key, value in item.items()} for item in pos.catalog()],
        "output": str(output_path),
    }
    proc = _run_wiring(base_args, config, POS_WIRING)
    if log is not None:
        log.write(proc.stdout + proc.stderr)
    else:
        devtool.say(proc.stdout.strip())
    if proc.returncode or not Path(output_path).is_file():
        raise _wiring_failed("the POS simulator", proc)
    wiring = json.loads(Path(output_path).read_text())
    pos.resume(wiring["resume"]["day"], wiring["resume"]["sequences"])
    pos.push_url = odoo_url
    for code, key in wiring["keys"].items():
        pos.set_key(code, key)
    return wiring


def settle_card_tenders(fleet, acquirer, ticket):
    """The card terminal's side of a POS ticket at the acquirer: a sale's
    card tenders captured, a return's refunded, a void's sale refunded."""
    at = datetime.fromisoformat(ticket["closed_at"])
    if ticket["type"] == "void":
        original = fleet.ticket(ticket["original_uuid"])
        for tender in original["tenders"]:
            if tender["type"] == "card":
                acquirer.refund(tender["reference"], at=at)
        return
    for tender in ticket["tenders"]:
        if tender["type"] != "card" or not tender.get("reference"):
            continue
        if ticket["type"] == "sale":
            acquirer.capture(tender["reference"], tender["amount"], at=at)
        elif ticket["type"] == "return":
            acquirer.refund(tender["reference"], tender["amount"].lstrip("-"), at=at)


class PosTraffic(threading.Thread):
    """The stores' days in the POS simulator while Odoo serves.

    Every ``interval`` seconds a register of a store rings up a ticket (the
    simulator's mix: sales with several tenders and discounts, returns of
    earlier tickets, voids, no-sales) and the online stores upload what they
    have. The last store loses its connection for the middle third of each
    day and uploads what it kept in bulk when back. Every ``day`` seconds,
    each register's Z report goes up after its tickets (Odoo reconciles the
    day and closes it) and the stores start their next business day.

    With an ``acquirer`` (the finance simulator's), the stores' card payments
    are captured there as the terminals would: sales captured, returns to a
    card refunded, voids of card sales refunded whole; each day's close
    closes the acquirer's settlement batch.
    """

    def __init__(self, pos, interval=5.0, day=240.0, seed=42, acquirer=None):
        super().__init__(name="demo-pos-traffic", daemon=True)
        self.pos = pos
        self.interval = interval
        self.day = day
        self.rng = random.Random(seed)
        self.stopping = threading.Event()
        self.stores = sorted(pos.fleet.stores)
        self.offline_store = self.stores[-1]
        self.failures = 0
        self.acquirer = acquirer
        if acquirer is not None:
            pos.fleet.listeners.append(self._settle_cards)

    def _settle_cards(self, _register, ticket):
        """The card terminal's side of a ticket, at the acquirer."""
        try:
            self._settle(ticket)
        except (KeyError, ValueError) as exc:
            # A return of a sale an earlier run rang up: that run's acquirer settled it.
            self.failures += 1
            if self.failures in (1, 10, 100):
                devtool.say(f"   (demo POS: card payment not settled: {exc})")

    def _settle(self, ticket):
        settle_card_tenders(self.pos.fleet, self.acquirer, ticket)

    def run(self):
        started = time.monotonic()
        while not self.stopping.wait(self.interval):
            elapsed = time.monotonic() - started
            try:
                if elapsed >= self.day:
                    self._close_day()
                    started = time.monotonic()
                    continue
                self._offline(self.day / 3 <= elapsed < 2 * self.day / 3)
                store = self.rng.choice(self.stores)
                register = self.rng.choice(sorted(self.pos.fleet.store(store).registers))
                self.pos.ring(store, register)
                self.pos.push()
            except (OSError, ValueError) as exc:
                # Odoo restarting, a refused batch: the POS keeps its tickets
                # and sends them with its next upload.
                self.failures += 1
                if self.failures in (1, 10, 100):
                    devtool.say(f"   (demo POS: upload not done: {exc})")

    def _offline(self, offline):
        store = self.pos.fleet.store(self.offline_store)
        if offline and store.online:
            self.pos.set_offline(self.offline_store)
            devtool.say(f"   (demo POS: store {self.offline_store} lost its connection)")
        elif not offline and not store.online:
            uploads = self.pos.set_online(self.offline_store)
            devtool.say(
                f"   (demo POS: store {self.offline_store} back online, "
                f"{sum(len(u.get('tickets') or ()) for u in uploads)} tickets uploaded)"
            )

    def _close_day(self):
        self._offline(False)
        day = self.pos.business_day
        for store in self.stores:
            self.pos.close(store)
        self.pos.push()
        devtool.say(f"   (demo POS: {day} closed in every store, Z reports sent)")
        if self.acquirer is not None:
            self.acquirer.close_batch()
        self.pos.next_day()

    def stop(self):
        self.stopping.set()
        self.join()
