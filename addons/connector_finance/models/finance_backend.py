from odoo import fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.conflicts import expected_conflicts
from odoo.addons.connector_base.components.http_client import RateLimiter

from ..components.client import TENANT_HEADER, FinanceClient, parse_date

# The remote's own limit is 60 calls a minute per organisation: a backend
# left at "no limit" paces itself to it rather than learning it from 429s.
DEFAULT_RATE_PER_SECOND = 1.0


class ConnectorBackend(models.Model):
    """An external accounting system, the retailer's book of record: the
    organisation the journals go to, the mappings of accounts, taxes and
    analytic accounts to its chart, and the lock dates it enforces."""

    _inherit = "connector.backend"

    backend_type = fields.Selection(
        selection_add=[("finance", "Accounting system")], ondelete={"finance": "cascade"}
    )
    finance_tenant_id = fields.Char(
        string="Organisation id",
        help="The accounting system's id of the retailer's organisation (its tenant id), "
        "sent with every request.",
    )
    finance_organisation = fields.Char(
        string="Organisation", readonly=True, help="Read from the accounting system."
    )
    finance_currency_id = fields.Many2one(
        "res.currency",
        string="Base currency",
        readonly=True,
        help="The organisation's base currency, read from the accounting system: manual "
        "journals are in it, so it must be the company's currency.",
    )
    finance_period_lock_date = fields.Date(
        string="Period lock date",
        readonly=True,
        help="Read from the accounting system: nothing dated on or before it can be posted.",
    )
    finance_year_lock_date = fields.Date(
        string="Year-end lock date",
        readonly=True,
        help="Read from the accounting system: nothing dated on or before it can be posted.",
    )
    finance_lock_read_at = fields.Datetime(string="Lock dates read at", readonly=True)
    finance_chart_read_at = fields.Datetime(string="Chart read at", readonly=True)
    finance_remote_account_ids = fields.One2many(
        "finance.remote.account", "backend_id", string="Remote accounts"
    )
    finance_remote_tax_ids = fields.One2many(
        "finance.remote.tax", "backend_id", string="Remote tax types"
    )
    finance_remote_tracking_ids = fields.One2many(
        "finance.remote.tracking", "backend_id", string="Remote tracking options"
    )
    finance_account_map_ids = fields.One2many(
        "finance.account.map", "backend_id", string="Account mappings"
    )
    finance_tax_map_ids = fields.One2many("finance.tax.map", "backend_id", string="Tax mappings")
    finance_tracking_map_ids = fields.One2many(
        "finance.tracking.map", "backend_id", string="Analytic mappings"
    )

    _finance_company_uniq = models.UniqueIndex(
        "(company_id) WHERE backend_type = 'finance' AND active",
        "This company already has an accounting system backend: its entries have one book of "
        "record.",
    )

    # --- declarations ---------------------------------------------------------

    def _connector_flows(self):
        if self.backend_type != "finance":
            return super()._connector_flows()
        return [
            # Closed days go out once a day, after the stores have closed.
            {
                "code": "journals_out",
                "name": "Journals out",
                "mode": "scheduled",
                "interval_minutes": 24 * 60,
                "sla_lag_minutes": 48 * 60,
            },
            {
                "code": "settlements_in",
                "name": "Settlements in",
                "mode": "scheduled",
                "interval_minutes": 60,
                "sla_lag_minutes": 48 * 60,
            },
        ]

    # --- connection -------------------------------------------------------------

    def _finance_client(self, correlation_id=None):
        self.ensure_one()
        token = self.sudo().api_token
        if not (self.base_url and token and self.finance_tenant_id):
            raise UserError(
                self.env._(
                    "Enter the accounting system's API URL, its access token and the "
                    "organisation id first."
                )
            )
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            TENANT_HEADER: self.finance_tenant_id,
        }
        http = self._http_client(correlation_id=correlation_id, headers=headers)
        if http.rate_limiter is None:
            http.rate_limiter = RateLimiter.for_key(
                (self.env.cr.dbname, self.id), DEFAULT_RATE_PER_SECOND
            )
        return FinanceClient(http)

    def _test_connection(self):
        if self.backend_type != "finance":
            return super()._test_connection()
        organisation = self._finance_read_organisation()
        return self.env._(
            "Connected to %(name)s (base currency %(currency)s).",
            name=organisation.get("Name") or "?",
            currency=organisation.get("BaseCurrency") or "?",
        )

    def _finance_read_organisation(self, client=None):
        """Read the organisation: its name, base currency and lock dates, kept on
        the backend. A base currency other than the company's is refused: the
        remote's manual journals carry no currency."""
        self.ensure_one()
        organisation = (client or self._finance_client()).organisation()
        code = organisation.get("BaseCurrency")
        currency = (
            self.env["res.currency"]
            .with_context(active_test=False)
            .search([("name", "=", code)], limit=1)
        )
        if code and currency != self.company_id.currency_id:
            raise UserError(
                self.env._(
                    "The organisation %(name)s keeps its books in %(remote)s while %(company)s "
                    "keeps them in %(ours)s: manual journals carry no currency, so the "
                    "accounting system must have the company's currency.",
                    name=organisation.get("Name") or "?",
                    remote=code,
                    company=self.company_id.name,
                    ours=self.company_id.currency_id.name,
                )
            )
        # Another transaction may write the backend's row at the same moment
        # (a job of this backend recording its circuit, the scheduled export
        # beside the manager's): the conflict fails this transaction, which
        # its caller runs again (queue_job a job, Odoo a request).
        with expected_conflicts():
            self.write(
                {
                    "finance_organisation": organisation.get("Name"),
                    "finance_currency_id": currency.id,
                    "finance_period_lock_date": parse_date(organisation.get("PeriodLockDate")),
                    "finance_year_lock_date": parse_date(organisation.get("EndOfYearLockDate")),
                    "finance_lock_read_at": fields.Datetime.now(),
                }
            )
            self.flush_recordset()
        return organisation

    def _finance_lock_date(self):
        """The last date the accounting system refuses: the later of its lock dates."""
        self.ensure_one()
        dates = [d for d in (self.finance_period_lock_date, self.finance_year_lock_date) if d]
        return max(dates) if dates else None

    # --- chart ------------------------------------------------------------------

    def action_finance_read_chart(self):
        """Read the remote's accounts, tax types and tracking options, and map
        the Odoo accounts, taxes and analytic accounts whose code or name is the
        remote's (existing mappings are kept)."""
        self.ensure_one()
        if self.backend_type != "finance":
            raise UserError(self.env._("Only an accounting system backend has a chart to read."))
        client = self._finance_client()
        self._finance_read_organisation(client)
        counts = self.env["finance.remote.account"]._read_chart(self, client)
        mapped = self.env["finance.account.map"]._map_by_code(self)
        mapped += self.env["finance.tax.map"]._map_by_name(self)
        mapped += self.env["finance.tracking.map"]._map_by_name(self)
        self.finance_chart_read_at = fields.Datetime.now()
        return self._notify(
            self.env._("Chart read"),
            self.env._(
                "%(accounts)d accounts, %(taxes)d tax types and %(options)d tracking options "
                "read; %(mapped)d new mappings where the codes or names agree.",
                **counts,
                mapped=mapped,
            ),
            kind="success",
        )

    # --- health -------------------------------------------------------------------

    def _connector_health_checks(self):
        checks = super()._connector_health_checks()
        for backend in self.filtered(lambda b: b.backend_type == "finance" and b.id in checks):
            if not backend.finance_account_map_ids:
                checks[backend.id].append(
                    (
                        "finance_setup",
                        self.env._(
                            "%(backend)s maps no account: read the chart and map the accounts "
                            "of the exported journals, or every batch is held.",
                            backend=backend.display_name,
                        ),
                    )
                )
        return checks

    def _health_check_labels(self):
        return {
            **super()._health_check_labels(),
            "finance_setup": self.env._("Accounting system backend not set up"),
        }
