from odoo import fields, models


class ShopifyRefundBinding(models.Model):
    """A refund of the Shopify store, and what it became in Odoo: the credit
    note, the customer payments and the return of the goods.

    One binding per Shopify refund and backend: a refund delivered twice (or
    read again) finds it and changes nothing.
    """

    _name = "shopify.refund.binding"
    _inherit = "connector.binding.mixin"
    _description = "Shopify Refund Binding"
    _order = "id desc"

    odoo_id = fields.Many2one(
        "account.move",
        string="Credit note",
        ondelete="set null",
        index="btree_not_null",
        help="Empty when the refund returned no money (goods only).",
    )
    order_binding_id = fields.Many2one(
        "shopify.order.binding", string="Shopify order binding", required=True, ondelete="cascade"
    )
    sale_order_id = fields.Many2one(
        related="order_binding_id.odoo_id", string="Sale order", store=True, index=True
    )
    shopify_order_name = fields.Char(related="order_binding_id.shopify_name")
    amount = fields.Float(string="Refunded amount", help="Money Shopify gave back.")
    currency_id = fields.Many2one(related="sale_order_id.currency_id")
    note = fields.Char()
    payment_ids = fields.Many2many("account.payment", string="Payments", readonly=True)
    picking_ids = fields.Many2many("stock.picking", string="Returns", readonly=True)

    _external_uniq = models.Constraint(
        "UNIQUE (backend_id, external_id)", "This Shopify refund is already imported."
    )
