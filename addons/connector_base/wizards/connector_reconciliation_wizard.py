from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError


class ConnectorReconciliationWizard(models.TransientModel):
    """Start a reconciliation of a backend now: which kind, which day."""

    _name = "connector.reconciliation.wizard"
    _description = "Reconcile a Connector Backend"

    backend_id = fields.Many2one("connector.backend", required=True)
    kind = fields.Selection(selection="_kind_selection", string="Reconciliation", required=True)
    daily = fields.Boolean(compute="_compute_daily")
    day = fields.Date(
        default=fields.Date.context_today,
        help="The day compared, for a reconciliation of a day (UTC).",
    )

    @api.model
    def _kind_selection(self):
        """Every reconciliation the connectors installed declare."""
        kinds = {}
        Backend = self.env["connector.backend"]
        for backend_type, _label in Backend._fields["backend_type"].selection:
            backend = Backend.new({"backend_type": backend_type})
            for kind, declaration in backend._connector_reconciliations().items():
                kinds.setdefault(kind, declaration.label)
        return sorted(kinds.items())

    @api.depends("backend_id", "kind")
    def _compute_daily(self):
        for wizard in self:
            declaration = (
                wizard.backend_id
                and wizard.kind
                and wizard.backend_id._connector_reconciliations().get(wizard.kind)
            )
            wizard.daily = bool(declaration and declaration.period == "day")

    def action_run(self):
        """Queue the run and open it: its counts fill in when the job is done."""
        self.ensure_one()
        if not self.env.user.has_group("connector_base.group_connector_user"):
            raise AccessError(self.env._("Only connector users may start a reconciliation."))
        if self.daily and not self.day:
            raise UserError(self.env._("Pick the day to compare."))
        run = self.backend_id._reconcile_later(self.kind, self.day if self.daily else None)
        return {
            "type": "ir.actions.act_window",
            "res_model": run._name,
            "res_id": run.id,
            "view_mode": "form",
        }
