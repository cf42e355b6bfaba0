from odoo import api, fields, models
from odoo.exceptions import ValidationError


class FinanceMappingMixin(models.AbstractModel):
    """A row mapping an Odoo record to a row of the remote's chart, per backend."""

    _name = "finance.mapping.mixin"
    _description = "Accounting System Mapping"

    backend_id = fields.Many2one(
        "connector.backend",
        required=True,
        ondelete="cascade",
        index=True,
        domain=[("backend_type", "=", "finance")],
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)

    def _remote_values(self, backend, odoo_field, remote_field, value_field):
        """``{Odoo record id: remote value}`` of a backend's mappings."""
        return {
            row[odoo_field].id: row[remote_field][value_field]
            for row in self.search([("backend_id", "=", backend.id)])
        }

    def _check_remote_backend(self, remote_field):
        for row in self:
            if row[remote_field].backend_id != row.backend_id:
                raise ValidationError(
                    self.env._(
                        "%(remote)s was read from another accounting system than %(backend)s.",
                        remote=row[remote_field].display_name,
                        backend=row.backend_id.display_name,
                    )
                )


class FinanceAccountMap(models.Model):
    """Which account of the remote's chart an Odoo account posts to."""

    _name = "finance.account.map"
    _inherit = "finance.mapping.mixin"
    _description = "Accounting System Account Mapping"
    _order = "backend_id, account_id"

    account_id = fields.Many2one(
        "account.account", string="Odoo account", required=True, ondelete="cascade", index=True
    )
    remote_account_id = fields.Many2one(
        "finance.remote.account",
        string="Remote account",
        required=True,
        ondelete="restrict",
        domain="[('backend_id', '=', backend_id), ('status', '=', 'active'), "
        "('takes_journals', '=', True)]",
    )

    _account_uniq = models.Constraint(
        "UNIQUE (backend_id, account_id)", "This Odoo account is already mapped."
    )

    @api.constrains("remote_account_id", "backend_id")
    def _check_remote(self):
        self._check_remote_backend("remote_account_id")

    def _codes(self, backend):
        """``{Odoo account id: remote account code}``."""
        return self._remote_values(backend, "account_id", "remote_account_id", "code")

    def _map_by_code(self, backend):
        """Map the company's unmapped accounts whose code is a remote account's;
        returns how many were mapped."""
        remote = {
            account.code: account
            for account in backend.finance_remote_account_ids
            if account.status == "active" and account.takes_journals
        }
        mapped = set(self._codes(backend))
        accounts = self.env["account.account"].search(
            [("company_ids", "in", backend.company_id.ids), ("code", "in", list(remote))]
        )
        rows = [
            {
                "backend_id": backend.id,
                "account_id": account.id,
                "remote_account_id": remote[account.code].id,
            }
            for account in accounts
            if account.id not in mapped
        ]
        self.create(rows)
        return len(rows)


class FinanceTaxMap(models.Model):
    """Which tax type of the remote an Odoo tax is."""

    _name = "finance.tax.map"
    _inherit = "finance.mapping.mixin"
    _description = "Accounting System Tax Mapping"
    _order = "backend_id, tax_id"

    tax_id = fields.Many2one(
        "account.tax", string="Odoo tax", required=True, ondelete="cascade", index=True
    )
    remote_tax_id = fields.Many2one(
        "finance.remote.tax",
        string="Remote tax type",
        required=True,
        ondelete="restrict",
        domain="[('backend_id', '=', backend_id), ('status', '=', 'active')]",
    )

    _tax_uniq = models.Constraint("UNIQUE (backend_id, tax_id)", "This Odoo tax is already mapped.")

    @api.constrains("remote_tax_id", "backend_id")
    def _check_remote(self):
        self._check_remote_backend("remote_tax_id")

    def _tax_types(self, backend):
        """``{Odoo tax id: remote tax type}``."""
        return self._remote_values(backend, "tax_id", "remote_tax_id", "tax_type")

    def _map_by_name(self, backend):
        """Map the company's unmapped taxes named as a remote tax type is."""
        remote = {
            (tax.name or "").casefold(): tax
            for tax in backend.finance_remote_tax_ids
            if tax.status == "active" and tax.name
        }
        mapped = set(self._tax_types(backend))
        taxes = self.env["account.tax"].search([("company_id", "=", backend.company_id.id)])
        rows = [
            {"backend_id": backend.id, "tax_id": tax.id, "remote_tax_id": remote[key].id}
            for tax in taxes
            if tax.id not in mapped and (key := (tax.name or "").casefold()) in remote
        ]
        self.create(rows)
        return len(rows)


class FinanceTrackingMap(models.Model):
    """Which tracking option of the remote an Odoo analytic account is."""

    _name = "finance.tracking.map"
    _inherit = "finance.mapping.mixin"
    _description = "Accounting System Analytic Mapping"
    _order = "backend_id, analytic_account_id"

    analytic_account_id = fields.Many2one(
        "account.analytic.account",
        string="Analytic account",
        required=True,
        ondelete="cascade",
        index=True,
    )
    remote_tracking_id = fields.Many2one(
        "finance.remote.tracking",
        string="Tracking option",
        required=True,
        ondelete="restrict",
        domain="[('backend_id', '=', backend_id), ('status', '=', 'active')]",
    )

    _analytic_uniq = models.Constraint(
        "UNIQUE (backend_id, analytic_account_id)", "This analytic account is already mapped."
    )

    @api.constrains("remote_tracking_id", "backend_id")
    def _check_remote(self):
        self._check_remote_backend("remote_tracking_id")

    def _options(self, backend):
        """``{analytic account id: (category, option)}``."""
        return {
            row.analytic_account_id.id: (
                row.remote_tracking_id.category,
                row.remote_tracking_id.option,
            )
            for row in self.search([("backend_id", "=", backend.id)])
        }

    def _map_by_name(self, backend):
        """Map the unmapped analytic accounts named as a remote tracking option is
        (when one category has that option name)."""
        by_name = {}
        for tracking in backend.finance_remote_tracking_ids.filtered(
            lambda t: t.status == "active"
        ):
            by_name.setdefault(tracking.option.casefold(), []).append(tracking)
        mapped = set(self._options(backend))
        analytics = self.env["account.analytic.account"].search(
            [("company_id", "in", [False, backend.company_id.id])]
        )
        rows = [
            {
                "backend_id": backend.id,
                "analytic_account_id": analytic.id,
                "remote_tracking_id": by_name[key][0].id,
            }
            for analytic in analytics
            if analytic.id not in mapped
            and len(by_name.get(key := (analytic.name or "").casefold(), [])) == 1
        ]
        self.create(rows)
        return len(rows)
