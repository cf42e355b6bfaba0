from odoo import fields, models


class ShopifyPartnerBinding(models.Model):
    """A customer of the Shopify store, bound to an Odoo contact."""

    _name = "shopify.partner.binding"
    _inherit = "connector.binding.mixin"
    _description = "Shopify Customer Binding"

    odoo_id = fields.Many2one("res.partner", required=True, ondelete="cascade", index=True)
    accepts_marketing = fields.Boolean(string="Accepts email marketing")

    _external_uniq = models.Constraint(
        "UNIQUE (backend_id, external_id)", "This Shopify customer is already bound."
    )
    _odoo_uniq = models.Constraint(
        "UNIQUE (backend_id, odoo_id)", "This contact is already bound to this store."
    )
