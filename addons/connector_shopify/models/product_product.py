from odoo import models


class ProductProduct(models.Model):
    _inherit = "product.product"

    def action_follow_sku(self):
        """The story of this variant's SKU: stock and catalog changes sent,
        messages about it (the correlation view)."""
        self.ensure_one()
        return self.env["connector.correlation"].action_follow(self.default_code)
