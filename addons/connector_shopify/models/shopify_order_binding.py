from odoo import fields, models
from odoo.exceptions import UserError


class ShopifyOrderBinding(models.Model):
    """An order of the Shopify store, and the sale order it became."""

    _name = "shopify.order.binding"
    _inherit = "connector.binding.mixin"
    _description = "Shopify Order Binding"

    odoo_id = fields.Many2one("sale.order", required=True, ondelete="cascade", index=True)
    # Indexed: support staff follow an order by the number Shopify shows.
    shopify_name = fields.Char(
        string="Shopify order", index=True, help="The order number shown in Shopify."
    )
    financial_status = fields.Char(string="Payment status")
    shopify_total = fields.Float(string="Total in Shopify")
    payment_id = fields.Many2one(
        "account.payment",
        string="Customer payment",
        readonly=True,
        copy=False,
        index="btree_not_null",
        # A payment a Shopify order was paid with stays: a cancelled one is
        # never made again.
        ondelete="restrict",
        help="The money Shopify captured for the order, registered once when it was paid. "
        "Refunds have their own payments.",
    )

    _external_uniq = models.Constraint(
        "UNIQUE (backend_id, external_id)", "This Shopify order is already imported."
    )
    _odoo_uniq = models.Constraint(
        "UNIQUE (backend_id, odoo_id)", "This sale order is already bound to this store."
    )
    _payment_uniq = models.Constraint(
        "UNIQUE (payment_id)", "This payment already pays another Shopify order."
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
