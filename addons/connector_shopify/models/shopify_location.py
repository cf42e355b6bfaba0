from odoo import fields, models


class ShopifyLocation(models.Model):
    """A location of the Shopify store, and where it is in Odoo."""

    _name = "shopify.location"
    _description = "Shopify Location"
    _order = "backend_id, name"

    backend_id = fields.Many2one("connector.backend", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    external_id = fields.Char(string="Shopify ID", required=True, help="Location GID.")
    name = fields.Char(required=True)
    active = fields.Boolean(default=True)
    warehouse_id = fields.Many2one("stock.warehouse")
    location_id = fields.Many2one(
        "stock.location",
        string="Stock location",
        help="Odoo location whose stock Shopify sells at this location.",
    )

    _external_uniq = models.Constraint(
        "UNIQUE (backend_id, external_id)", "This Shopify location is already listed."
    )
