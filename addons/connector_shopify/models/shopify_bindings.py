from odoo import fields, models
from odoo.exceptions import UserError


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


class ShopifyOrderBinding(models.Model):
    """An order of the Shopify store, and the sale order it became."""

    _name = "shopify.order.binding"
    _inherit = "connector.binding.mixin"
    _description = "Shopify Order Binding"

    odoo_id = fields.Many2one("sale.order", required=True, ondelete="cascade", index=True)
    shopify_name = fields.Char(string="Shopify order", help="The order number shown in Shopify.")
    financial_status = fields.Char(string="Payment status")
    shopify_total = fields.Float(string="Total in Shopify")

    _external_uniq = models.Constraint(
        "UNIQUE (backend_id, external_id)", "This Shopify order is already imported."
    )
    _odoo_uniq = models.Constraint(
        "UNIQUE (backend_id, odoo_id)", "This sale order is already bound to this store."
    )

    def _cancel_in_odoo(self, reason=None):
        """Cancel the sale order when nothing irreversible happened to it yet."""
        self.ensure_one()
        order = self.odoo_id
        if order.state == "cancel":
            return
        done = order.picking_ids.filtered(lambda p: p.state == "done")
        # A credit note (Shopify refunds the order it cancels) does not hold it back.
        posted = order.invoice_ids.filtered(
            lambda m: m.state == "posted" and m.move_type == "out_invoice"
        )
        if done or posted:
            raise UserError(
                self.env._(
                    "Shopify cancelled order %(name)s, but %(order)s cannot be cancelled in "
                    "Odoo: %(why)s. Handle the return or credit note by hand, then ignore "
                    "this event.",
                    name=self.shopify_name,
                    order=order.name,
                    why=self.env._("goods already delivered")
                    if done
                    else self.env._("invoice already posted"),
                )
            )
        order._action_cancel()
        order.message_post(
            body=self.env._(
                "Cancelled in Shopify%(reason)s.", reason=f" ({reason})" if reason else ""
            )
        )


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
