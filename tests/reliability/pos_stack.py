"""A POS fleet wired to a harness database, as an administrator sets it up.

:func:`wire_pos_fleet` runs one ``odoo shell`` on the stack's database before
its server starts (a :class:`~reliability.harness.Stack` wiring): the POS
catalogue's products, the POS's tax codes as price-included taxes, cash,
card and other payment methods, a running push fleet backend with its
tenders and tax codes mapped, a Point of Sale per store with its upload key
generated, as the configuration guide and ``connector_pos``'s tests do.
``reference_tills`` adds as many Points of Sale of no store, each with its
session opened as a cashier opens it: what Odoo's own POS syncs its orders
into, the benchmarks' reference. ``stock_policy`` is the fleet's (and the
reference sessions'): ``real_time`` (a delivery per order) or ``closing``.

The shell writes what the POS and the benchmark need (upload keys, ids by
SKU, tax code and tender) to a JSON file; :func:`wire_pos_fleet` returns it.
"""

import json
import subprocess

import devtool

from .harness import ScenarioFailed

# Runs inside ``odoo shell`` (``env`` is given); CONFIG is filled in below.
WIRING = r"""
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
taxes = {
    code: env["account.tax"].create({
        "name": f"POS {code}",
        "type_tax_use": "sale",
        "amount_type": "percent",
        "amount": rate,
        "price_include_override": "tax_included",
        "company_id": company.id,
        "tax_group_id": group.id,
        "country_id": country.id,
    })
    for code, rate in config["taxes"].items()
}
# The Shopify wiring may have made products of the same SKUs (one catalogue).
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
    products |= product
bank_journal = env["account.journal"].search(
    [("company_id", "=", company.id), ("type", "=", "bank")], limit=1
)
Method = env["pos.payment.method"]


# A cash method of its own journal: Point of Sale takes one cash method per
# cash journal, and one Point of Sale per cash method.
def cash_method(name, code):
    journal = env["account.journal"].create(
        {"name": name, "code": code, "type": "cash", "company_id": company.id}
    )
    return Method.create({"name": name, "journal_id": journal.id})


cash = cash_method("Store cash", "SCSH")
card = Method.create({"name": "POS card", "journal_id": bank_journal.id})
other = Method.create({"name": "POS gift cards and vouchers", "journal_id": bank_journal.id})
methods = {"cash": cash, "card": card, "gift_card": other, "voucher": other, "store_credit": other}
backend = env["connector.backend"].create({
    "name": "POS fleet",
    "backend_type": "pos",
    "pos_fleet_code": config["fleet"],
    "pos_tax_rounding": config["rounding"],
    "pos_stock_policy": config["stock_policy"],
    "pos_tender_ids": [
        Command.create({"tender_type": kind, "payment_method_id": method.id})
        for kind, method in methods.items()
    ],
    "pos_tax_ids": [
        Command.create({"code": code, "tax_id": tax.id}) for code, tax in taxes.items()
    ],
})
backend.action_start()
keys = {}
for index, code in enumerate(config["stores"]):
    # The fleet maps cash to one method, which Point of Sale lets one Point
    # of Sale take: the first store's; the others take cards and vouchers.
    taken = (cash | card | other) if index == 0 else (card | other)
    pos_config = env["pos.config"].create({
        "name": f"Store {code}",
        "payment_method_ids": [Command.set(taken.ids)],
    })
    store = env["connector.pos.store"].create({
        "backend_id": backend.id, "code": code, "name": f"Store {code}",
        "config_id": pos_config.id,
    })
    store.action_generate_upload_key()
    keys[code] = store.sudo().upload_key
raw = []
for number in range(1, config["reference_tills"] + 1):
    # Odoo's own POS, a Point of Sale per till as Odoo advises: its session
    # opened by a cashier, its own cash method (the cash tender goes there).
    till_cash = cash_method(f"Reference cash {number}", f"RC{number:02d}")
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
        "methods": {**{kind: method.id for kind, method in methods.items()}, "cash": till_cash.id},
    })
env.cr.commit()
with open(config["output"], "w") as out:
    json.dump({
        "backend_id": backend.id,
        "keys": keys,
        "products": {p.default_code: [p.id, p.display_name] for p in products},
        "taxes": {code: tax.id for code, tax in taxes.items()},
        "methods": {kind: method.id for kind, method in methods.items()},
        "raw": raw,
    }, out)
print("POS wiring done:", backend.name, len(keys), "stores")
"""


def wire_pos_fleet(
    stack, pos, *, stores, reference_tills=0, rounding="round_per_line", stock_policy="real_time"
):
    """Connect the stack's database to the fleet of the POS simulator ``pos``
    (one odoo shell run, before the server starts); the stores' keys are
    typed into the POS. Returns the ids the shell wrote (see the module)."""
    output = stack.workdir / "pos_wiring.json"
    config = {
        "fleet": pos.fleet.code,
        "rounding": rounding,
        "stores": list(stores),
        "reference_tills": reference_tills,
        "stock_policy": stock_policy,
        "taxes": {code: float(rate * 100) for code, rate in pos.fleet.tax_rates.items()},
        "catalogue": [{key: str(value) for key, value in item.items()} for item in pos.catalog()],
        "output": str(output),
    }
    script = f"CONFIG = {json.dumps(json.dumps(config))}\n{WIRING}"
    proc = subprocess.run(
        devtool.odoo_command("shell", *stack.server.base_args(), "--log-level=warn", "--no-http"),
        input=script,
        text=True,
        capture_output=True,
        env=devtool.python_env(),
        check=False,
    )
    with open(stack.server.log_path, "a") as out:
        out.write(proc.stdout + proc.stderr)
    if proc.returncode or not output.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ScenarioFailed(
            f"the database could not be connected to the POS simulator (odoo shell exit "
            f"{proc.returncode}):\n{tail}"
        )
    wiring = json.loads(output.read_text())
    pos.push_url = stack.server.url
    for code, key in wiring["keys"].items():
        pos.set_key(code, key)
    return wiring
