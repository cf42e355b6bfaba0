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

import devtool
from simulators.retail_data import TAX_REGIONS

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
# Taxes as the configuration guide asks: rounded per line as Shopify rounds
# them, one sale tax per rate the store charges (a copy of the company's
# default sale tax, so it books to its accounts), price-included like the
# shop's prices; the backend's tax mapping is filled from them.
company.tax_calculation_rounding_method = "round_per_line"
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
    product the store has and Odoo does not know yet.
    """

    NEW_SKU_EVERY = 10

    def __init__(self, shop, interval=8.0, seed=42, new_sku=None):
        super().__init__(name="demo-order-traffic", daemon=True)
        self.shop = shop
        self.interval = interval
        self.rng = random.Random(seed)
        self.stopping = threading.Event()
        self.new_sku = new_sku
        self.skus = [sku for sku in store_skus(shop) if sku != new_sku]

    def run(self):
        for placed in itertools.count(1):
            if self.stopping.wait(self.interval):
                return
            lines = [
                (sku, self.rng.randint(1, 3))
                for sku in self.rng.sample(self.skus, k=min(len(self.skus), 3))
            ]
            if self.new_sku and placed % self.NEW_SKU_EVERY == 3:
                lines.append((self.new_sku, 1))
            try:
                self.shop.create_order(lines)
            except (KeyError, ValueError, StopIteration) as exc:
                devtool.say(f"   (demo traffic: order not placed: {exc})")

    def stop(self):
        self.stopping.set()
        self.join()
