import copy
import json

from simulators import ShopifySimulator

from odoo.addons.connector_base.components.signature import hmac_sha256_base64
from odoo.addons.queue_job.exception import RetryableJobError

from .test_mapper_order import ORDER

SHOP_DOMAIN = "retail-sync-test.myshopify.com"
ACCESS_TOKEN = "shpat_test_token_0123456789"
WEBHOOK_SECRET = "shopify-test-webhook-secret"


def ensure_chart_of_accounts(env):
    """A chart of accounts on the company: refunds become credit notes and
    payments, which need accounts (a test database may have none)."""
    if not env.company.chart_template:
        env["account.chart.template"].try_loading(
            "generic_coa", company=env.company, install_demo=False
        )


def start_shop(test_class, **options):
    """A Shopify simulator with the test credentials, stopped with the class."""
    shop = ShopifySimulator(
        **{
            "access_token": ACCESS_TOKEN,
            "webhook_secret": WEBHOOK_SECRET,
            "shop_domain": SHOP_DOMAIN,
            "orders": 0,
            "locations": 1,
            **options,
        }
    )
    shop.start()
    test_class.addClassCleanup(shop.stop)
    return shop


def connect_store(test_class, sku_count, on_hand, **shop_options):
    """A simulated store and a backend connected to it as an administrator
    would: Odoo products for ``sku_count`` of its SKUs (``on_hand`` in stock),
    its locations imported, its variants bound by SKU."""
    test_class.shop = start_shop(test_class, **shop_options)
    test_class.backend = make_backend(test_class.env, base_url=test_class.shop.url)
    test_class.skus = sorted({row["sku"] for row in test_class.shop.inventory()})[:sku_count]
    test_class.products = make_products(test_class.env, test_class.skus, on_hand=on_hand)
    test_class.backend.action_shopify_import_locations()
    test_class.backend.action_shopify_bind_products()


# The rates the simulated store charges (its TAX_REGIONS) and the fixture order's 20 %.
STORE_TAX_RATES = (4.0, 19.0, 20.0, 21.0, 22.0)


def make_tax(env, rate, included=True, company=None):
    """The company's sale tax of ``rate`` percent, price-included or not: found, else made."""
    company = company or env.company
    Tax = env["account.tax"].with_company(company)
    tax = Tax.search(
        [
            ("company_id", "=", company.id),
            ("type_tax_use", "=", "sale"),
            ("amount_type", "=", "percent"),
            ("amount", "=", rate),
        ]
    ).filtered(lambda t: t.price_include == included)[:1]
    if tax:
        return tax
    # A company without a chart of accounts has no tax group yet.
    group = env["account.tax.group"].search([("company_id", "=", company.id)], limit=1)
    group = group or env["account.tax.group"].create({"name": "VAT", "company_id": company.id})
    return Tax.create(
        {
            "name": f"VAT {rate:g}%{' incl.' if included else ''}",
            "type_tax_use": "sale",
            "amount_type": "percent",
            "amount": rate,
            "price_include_override": "tax_included" if included else "tax_excluded",
            "company_id": company.id,
            "tax_group_id": group.id,
            "country_id": (company.account_fiscal_country_id or company.country_id).id,
        }
    )


def make_backend(env, **values):
    """A running Shopify backend with test credentials and a warehouse.

    Set up as the configuration guide says: the company rounds tax per line
    as Shopify does, and has the price-included sale taxes the store charges,
    which the backend's tax mapping is filled from on creation, and a chart
    of accounts with a bank journal, which paid orders register their
    payment in.
    """
    if not env.company.country_id:
        env.company.country_id = env.ref("base.uk")
    ensure_chart_of_accounts(env)
    env.company.tax_calculation_rounding_method = "round_per_line"
    for rate in STORE_TAX_RATES:
        make_tax(env, rate)
    return env["connector.backend"].create(
        {
            "name": "Shopify test store",
            "backend_type": "shopify",
            "shopify_shop_domain": SHOP_DOMAIN,
            "base_url": "http://127.0.0.1:9",
            "api_token": ACCESS_TOKEN,
            "webhook_secret": WEBHOOK_SECRET,
            "shopify_warehouse_id": env.ref("stock.warehouse0").id,
            "state": "running",
            **values,
        }
    )


def make_products(env, skus=("TEE-BLUE-M",), on_hand=10):
    """Storable products with these SKUs and some stock in the main warehouse."""
    products = env["product.product"]
    stock = env.ref("stock.warehouse0").lot_stock_id
    for sku in skus:
        product = env["product.product"].create(
            {"name": f"Product {sku}", "default_code": sku, "is_storable": True, "list_price": 50.0}
        )
        env["stock.quant"]._update_available_quantity(product, stock, on_hand)
        products |= product
    return products


def order_payload(**changes):
    payload = copy.deepcopy(ORDER)
    payload.update(changes)
    return payload


def signed(payload, secret=WEBHOOK_SECRET):
    raw = json.dumps(payload).encode()
    return raw, hmac_sha256_base64(secret, raw)


def run_jobs(test, trap, limit=2000):
    """Run queued jobs one by one until none is left; a job asking for a retry
    runs again later, as queue_job's runner would. Returns the method names of
    the jobs run (once each) and how many retries were asked."""
    done, retries = [], 0
    for _ in range(limit):
        if not trap.enqueued_jobs:
            return done, retries
        job = trap.enqueued_jobs.pop(0)
        if job.env.cr is not test.env.cr:
            # Queued from a transaction of the framework's own, closed since.
            job.recordset = job.recordset.with_env(job.env(cr=test.env.cr))
        try:
            job.perform()
        except RetryableJobError:
            retries += 1
            trap.enqueued_jobs.append(job)
        else:
            done.append(job.method_name)
    test.fail("jobs still queued after the limit")
