from simulators import FinanceSimulator

ACCESS_TOKEN = "finance_test_token_0123456789"


def start_finance(test_class, **options):
    """A finance simulator with the test credentials, stopped with the class."""
    finance = FinanceSimulator(**{"seed": 14, "access_token": ACCESS_TOKEN, **options}).start()
    test_class.addClassCleanup(finance.stop)
    return finance


def connect_finance(test_class, **options):
    """The accounting system and its backend set up as the configuration guide
    says: API URL, token and organisation id, running."""
    finance = test_class.finance = start_finance(test_class, **options)
    test_class.backend = test_class.env["connector.backend"].create(
        {
            "name": "Book of record",
            "backend_type": "finance",
            "base_url": finance.api_url,
            "api_token": ACCESS_TOKEN,
            "finance_tenant_id": finance.tenant_id,
            "state": "running",
        }
    )
    return test_class.backend


def odoo_account(env, code, name, account_type="expense"):
    """The company's account of ``code``, created when the chart has none."""
    account = env["account.account"].search(
        [("company_ids", "in", env.company.ids), ("code", "=", code)], limit=1
    )
    return account or env["account.account"].create(
        {"code": code, "name": name, "account_type": account_type}
    )
