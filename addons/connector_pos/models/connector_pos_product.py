from odoo import fields, models


class ConnectorPosProduct(models.Model):
    """A product as one store's POS last received it from Odoo.

    One per store and product: the SKU the POS knows it by (its available
    quantity is set under that SKU) and the hash of the row last sent, so
    that a catalog run sends only the products whose row changed (a price of
    the store's pricelist, a name, a barcode, a tax), whatever made them
    change.
    """

    _name = "connector.pos.product"
    _inherit = "connector.binding.mixin"
    _description = "POS Store Product"
    _order = "store_id, external_id"

    store_id = fields.Many2one(
        "connector.pos.store", required=True, ondelete="cascade", index=True, readonly=True
    )
    odoo_id = fields.Many2one(
        "product.product",
        string="Product",
        required=True,
        ondelete="cascade",
        readonly=True,
        index=True,
    )
    external_id = fields.Char(string="SKU", readonly=True)
    price = fields.Char(
        string="Price sent", readonly=True, help="Tax included, as the POS shows it."
    )

    _store_product_uniq = models.Constraint(
        "UNIQUE (store_id, odoo_id)", "A product is sent once per store."
    )
