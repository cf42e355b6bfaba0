import psycopg2

from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tests.common import TransactionCase
from odoo.tools import mute_logger

from .common import connect_finance, odoo_account


@tagged("post_install", "-at_install")
class TestFinanceBackend(TransactionCase):
    """An administrator connects the accounting system and maps its chart."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.currency_id = cls.env.ref("base.EUR")
        connect_finance(cls, period_lock_date="2026-10-31")

    def test_connection_reads_organisation_and_lock_dates(self):
        message = self.backend._test_connection()
        self.assertIn("base currency EUR", message)
        self.assertEqual(str(self.backend.finance_period_lock_date), "2026-10-31")
        self.assertEqual(self.backend.finance_currency_id, self.env.ref("base.EUR"))
        self.assertEqual(str(self.backend._finance_lock_date()), "2026-10-31")

    def test_other_base_currency_is_refused(self):
        self.env.company.currency_id = self.env.ref("base.USD")
        with self.assertRaisesRegex(UserError, "keeps its books in EUR .* in USD"):
            self.backend._test_connection()

    def test_wrong_token_says_so(self):
        self.backend.api_token = "not-the-token"
        with self.assertRaisesRegex(Exception, "401"):
            self.backend._test_connection()

    def test_read_chart_fills_choices_and_maps_agreeing_codes(self):
        fees = odoo_account(self.env, "405", "Card processing fees")
        receivable = odoo_account(self.env, "610", "Receivables (system)", "asset_current")
        vat = odoo_account(self.env, "820", "VAT (system)", "liability_current")
        self.backend.action_finance_read_chart()
        remote = self.backend.finance_remote_account_ids
        self.assertIn("405", remote.mapped("code"))
        self.assertEqual(remote.filtered(lambda a: a.code == "499").status, "archived")
        maps = self.backend.finance_account_map_ids
        self.assertEqual(
            maps.filtered(lambda m: m.account_id == fees).remote_account_id.code, "405"
        )
        # The remote's receivables control account takes no manual journal: not mapped.
        self.assertFalse(maps.filtered(lambda m: m.account_id == receivable))
        # Its VAT account is a system account too, which takes manual journals.
        self.assertEqual(maps.filtered(lambda m: m.account_id == vat).remote_account_id.code, "820")
        self.assertIn("OUTPUT", self.backend.finance_remote_tax_ids.mapped("tax_type"))
        self.assertIn("Channel", self.backend.finance_remote_tracking_ids.mapped("category"))
        # A second read changes nothing and keeps the mappings.
        self.backend.action_finance_read_chart()
        self.assertEqual(self.backend.finance_account_map_ids, maps)

    def test_account_archived_remotely_is_shown_archived(self):
        self.backend.action_finance_read_chart()
        self.finance.archive_account("405")
        self.addCleanup(self.finance.archive_account, "405", False)
        self.backend.action_finance_read_chart()
        account = self.backend.finance_remote_account_ids.filtered(lambda a: a.code == "405")
        self.assertEqual(account.status, "archived")

    def test_one_accounting_system_per_company(self):
        with (
            self.assertRaisesRegex(psycopg2.IntegrityError, "finance_company_uniq"),
            mute_logger("odoo.sql_db"),
            self.cr.savepoint(),
        ):
            self.env["connector.backend"].create(
                {"name": "Second book", "backend_type": "finance", "finance_tenant_id": "x"}
            )
