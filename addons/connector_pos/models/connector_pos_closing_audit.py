from odoo import fields, models


class ConnectorPosClosingAudit(models.Model):
    """Who accepted the difference of a store close or had it compared again, and when."""

    _name = "connector.pos.closing.audit"
    _inherit = ["connector.audit.mixin"]
    _description = "POS Closing Audit"
    _order = "id desc"
    _audited_field = "closing_id"

    closing_id = fields.Many2one(
        "connector.pos.closing", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="closing_id.company_id", store=True)
    action = fields.Selection(
        [
            ("accept", "Difference accepted"),
            ("recheck", "Compared again"),
        ],
        required=True,
    )
