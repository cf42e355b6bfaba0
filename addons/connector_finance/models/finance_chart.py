from odoo import api, fields, models

# The remote's control accounts of its own invoices and bills: no manual journal on them.
CONTROL_ACCOUNTS = ("DEBTORS", "CREDITORS")
REMOTE_STATUSES = [("active", "Active"), ("archived", "Archived")]


def _status(value):
    return "active" if (value or "ACTIVE").upper() == "ACTIVE" else "archived"


class FinanceRemoteChartMixin(models.AbstractModel):
    """What every row of the remote's chart has: its backend, its company and
    whether the remote still takes it."""

    _name = "finance.remote.chart.mixin"
    _description = "Accounting System Chart Row"

    backend_id = fields.Many2one(
        "connector.backend",
        required=True,
        ondelete="cascade",
        index=True,
        domain=[("backend_type", "=", "finance")],
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    status = fields.Selection(REMOTE_STATUSES, default="active", required=True, readonly=True)

    def _sync_rows(self, backend, rows, keys):
        """Create or update the rows read (``{key values: values}``, ``keys`` the
        names of the key fields); rows the remote no longer lists are archived,
        never deleted (mappings point at them). Returns how many were read."""
        existing = {
            tuple(record[name] for name in keys): record
            for record in self.search([("backend_id", "=", backend.id)])
        }
        to_create = []
        for key, values in rows.items():
            record = existing.pop(key, None)
            if record is None:
                to_create.append(
                    {**values, **dict(zip(keys, key, strict=True)), "backend_id": backend.id}
                )
            elif any(record[name] != new for name, new in values.items()):
                record.write(values)
        for record in existing.values():
            record.status = "archived"
        self.create(to_create)
        return len(rows)


class FinanceRemoteAccount(models.Model):
    """An account of the accounting system's chart, as read from it."""

    _name = "finance.remote.account"
    _inherit = "finance.remote.chart.mixin"
    _description = "Accounting System Account"
    _order = "backend_id, code"
    _rec_names_search = ["code", "name"]

    code = fields.Char(required=True, readonly=True)
    name = fields.Char(readonly=True)
    account_type = fields.Char(string="Type", readonly=True)
    tax_type = fields.Char(
        string="Default tax type", readonly=True, help="What a line without a tax type takes."
    )
    system_account = fields.Char(
        readonly=True,
        help="Set on the remote's system accounts (receivables, payables, VAT, retained "
        "earnings...).",
    )
    takes_journals = fields.Boolean(
        string="Takes manual journals",
        compute="_compute_takes_journals",
        store=True,
        help="The remote keeps its receivables and payables control accounts for its own "
        "invoices and bills, and refuses manual journals on them; its other accounts, VAT "
        "included, take them.",
    )
    remote_id = fields.Char(string="Remote id", readonly=True)

    _code_uniq = models.Constraint(
        "UNIQUE (backend_id, code)", "This account code is already read for this backend."
    )

    @api.depends("system_account")
    def _compute_takes_journals(self):
        for account in self:
            account.takes_journals = account.system_account not in CONTROL_ACCOUNTS

    def _compute_display_name(self):
        for account in self:
            account.display_name = f"{account.code} {account.name or ''}".strip()

    def _read_chart(self, backend, client):
        """Read the remote's accounts, tax types and tracking options into
        their tables; returns the counts read."""
        accounts = {
            (row["Code"],): {
                "name": row.get("Name"),
                "account_type": row.get("Type"),
                "tax_type": row.get("TaxType"),
                "system_account": row.get("SystemAccount"),
                "remote_id": row.get("AccountID"),
                "status": _status(row.get("Status")),
            }
            for row in client.accounts()
            if row.get("Code")
        }
        taxes = {
            (row["TaxType"],): {
                "name": row.get("Name"),
                "rate": float(row.get("EffectiveRate") or 0.0),
                "status": _status(row.get("Status")),
            }
            for row in client.tax_rates()
            if row.get("TaxType")
        }
        options = {}
        for category in client.tracking_categories():
            for option in category.get("Options") or []:
                archived = "archived" in (
                    _status(category.get("Status")),
                    _status(option.get("Status")),
                )
                options[(category.get("Name"), option.get("Name"))] = {
                    "status": "archived" if archived else "active",
                }
        return {
            "accounts": self._sync_rows(backend, accounts, ("code",)),
            "taxes": self.env["finance.remote.tax"]._sync_rows(backend, taxes, ("tax_type",)),
            "options": self.env["finance.remote.tracking"]._sync_rows(
                backend, options, ("category", "option")
            ),
        }


class FinanceRemoteTax(models.Model):
    """A tax type of the accounting system, as read from it."""

    _name = "finance.remote.tax"
    _inherit = "finance.remote.chart.mixin"
    _description = "Accounting System Tax Type"
    _order = "backend_id, tax_type"
    _rec_names_search = ["tax_type", "name"]

    tax_type = fields.Char(string="Tax type", required=True, readonly=True)
    name = fields.Char(readonly=True)
    rate = fields.Float(string="Rate (%)", readonly=True)

    _tax_type_uniq = models.Constraint(
        "UNIQUE (backend_id, tax_type)", "This tax type is already read for this backend."
    )

    def _compute_display_name(self):
        for tax in self:
            tax.display_name = f"{tax.name or tax.tax_type} ({tax.tax_type})"


class FinanceRemoteTracking(models.Model):
    """A tracking option (within its category) of the accounting system."""

    _name = "finance.remote.tracking"
    _inherit = "finance.remote.chart.mixin"
    _description = "Accounting System Tracking Option"
    _order = "backend_id, category, option"
    _rec_names_search = ["category", "option"]

    category = fields.Char(required=True, readonly=True)
    option = fields.Char(required=True, readonly=True)

    _option_uniq = models.Constraint(
        "UNIQUE (backend_id, category, option)",
        "This tracking option is already read for this backend.",
    )

    def _compute_display_name(self):
        for tracking in self:
            tracking.display_name = f"{tracking.category}: {tracking.option}"
