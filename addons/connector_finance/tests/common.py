from simulators import FinanceSimulator

from odoo import fields

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


def set_up_settlements(test_class):
    """The settlements side of the backend as the configuration guide says:
    the acquirer's report feed, the payouts' bank journal, the fee,
    chargeback and acquirer balance accounts."""
    env = test_class.env
    finance = test_class.finance
    test_class.payout_journal = env["account.journal"].create(
        {"name": "Payouts bank", "type": "bank", "code": "PAYB"}
    )
    test_class.fee_account = odoo_account(env, "405", "Card processing fees")
    test_class.chargeback_account = odoo_account(env, "406", "Chargeback losses")
    test_class.acquirer_balance_account = odoo_account(
        env, "407", "Card acquirer balance", account_type="liability_current"
    )
    test_class.acquirer_balance_account.reconcile = True
    test_class.backend.write(
        {
            "finance_report_url": f"{finance.url}/reports/download",
            "finance_merchant_account": finance.acquirer.merchant_account,
            "finance_report_api_key": finance.report_api_key,
            "finance_bank_journal_id": test_class.payout_journal.id,
            "finance_fee_account_id": test_class.fee_account.id,
            "finance_chargeback_account_id": test_class.chargeback_account.id,
            "finance_acquirer_balance_account_id": test_class.acquirer_balance_account.id,
        }
    )


def customer_payment(env, reference, amount, partner, *, outbound=False, journal=None):
    """A posted customer payment (or refund paid back) whose memo is ``reference``,
    as the shop and the tills record them."""
    values = {
        "payment_type": "outbound" if outbound else "inbound",
        "partner_type": "customer",
        "partner_id": partner.id,
        "amount": amount,
        "memo": reference,
    }
    if journal:
        values["journal_id"] = journal.id
    payment = env["account.payment"].create(values)
    payment.action_post()
    return payment


def bank_line(env, journal, amount, label, date=None):
    """A bank statement line as a bank statement import makes it."""
    return env["account.bank.statement.line"].create(
        {
            "journal_id": journal.id,
            "amount": amount,
            "payment_ref": label,
            "date": date or fields.Date.context_today(env.user),
        }
    )
