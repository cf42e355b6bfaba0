from odoo import fields, models


class ConnectorOutboundAudit(models.Model):
    """Who sent an outbound change again or cancelled it, and when."""

    _name = "connector.outbound.audit"
    _inherit = ["connector.audit.mixin"]
    _description = "Connector Outbound Audit"
    _order = "id desc"
    _audited_field = "outbound_id"

    outbound_id = fields.Many2one(
        "connector.outbound", string="Change", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="outbound_id.company_id", store=True)
    action = fields.Selection(
        [
            ("requeue", "Sent again"),
            ("cancel", "Cancelled"),
        ],
        required=True,
    )
