from odoo import fields, models


class ConnectorPosTax(models.Model):
    """Which Odoo sale tax is one tax code of the fleet's POS (``VAT20``).

    The intake never creates a tax: one made on the fly would have no
    accounts and no place in the tax report.
    """

    _name = "connector.pos.tax"
    _description = "POS Tax Code Mapping"
    _order = "backend_id, code"
    _check_company_auto = True

    backend_id = fields.Many2one("connector.backend", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    code = fields.Char(string="POS tax code", required=True)
    tax_id = fields.Many2one(
        "account.tax",
        string="Odoo tax",
        required=True,
        check_company=True,
        ondelete="restrict",
        domain="[('type_tax_use', '=', 'sale')]",
        help="Price-included when the stores' prices include taxes.",
    )
    price_include = fields.Boolean(related="tax_id.price_include", string="Price included")

    _code_uniq = models.Constraint(
        "UNIQUE (backend_id, code)", "This POS tax code already has an Odoo tax."
    )
