from odoo import fields, models


class ShopifyProductBinding(models.Model):
    """A product variant of the Shopify store, bound to an Odoo product."""

    _name = "shopify.product.binding"
    _inherit = "connector.binding.mixin"
    _description = "Shopify Product Binding"

    odoo_id = fields.Many2one("product.product", required=True, ondelete="cascade", index=True)
    inventory_item_id = fields.Char(string="Inventory item")
    shopify_product_id = fields.Char(
        string="Shopify product",
        index=True,
        help="Numeric id of the Shopify product this variant belongs to.",
    )
    shopify_product_hash = fields.Char(
        readonly=True,
        help="Hash of the product-level data (title) last sent for this variant's product.",
    )
    sku = fields.Char(related="odoo_id.default_code")

    _external_uniq = models.Constraint(
        "UNIQUE (backend_id, external_id)", "This Shopify variant is already bound."
    )
    _odoo_uniq = models.Constraint(
        "UNIQUE (backend_id, odoo_id)", "This product is already bound to this store."
    )
