from odoo import fields, models


class TestPartnerBinding(models.Model):
    """A partner as the test remote knows it."""

    _name = "test.partner.binding"
    _inherit = "connector.binding.mixin"
    _description = "Test Connector Partner Binding"

    odoo_id = fields.Many2one("res.partner", required=True, ondelete="cascade", index=True)

    _external_uniq = models.Constraint(
        "UNIQUE (backend_id, external_id)", "This remote partner is already bound."
    )
    _odoo_uniq = models.Constraint(
        "UNIQUE (backend_id, odoo_id)", "This partner is already bound to this backend."
    )
