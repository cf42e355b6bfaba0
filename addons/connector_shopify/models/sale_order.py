from odoo import fields, models


class SaleOrder(models.Model):
    _inherit = "sale.order"

    shopify_binding_ids = fields.One2many("shopify.order.binding", "odoo_id", readonly=True)
    shopify_order_name = fields.Char(
        string="Shopify order", compute="_compute_shopify_info", search="_search_shopify_name"
    )
    shopify_financial_status = fields.Char(
        string="Shopify payment", compute="_compute_shopify_info"
    )
    shopify_payment_id = fields.Many2one(
        "account.payment", string="Paid in Shopify", compute="_compute_shopify_info"
    )

    def _compute_shopify_info(self):
        for order in self:
            binding = order.shopify_binding_ids[:1]
            order.shopify_order_name = binding.shopify_name
            order.shopify_financial_status = binding.financial_status
            order.shopify_payment_id = binding.payment_id

    def _search_shopify_name(self, operator, value):
        return [("shopify_binding_ids.shopify_name", operator, value)]

    def _prepare_confirmation_values(self):
        """An order confirmed by the import keeps its date: the date Shopify
        says it was placed (confirming dates an order now in Odoo). Dated
        before its moves are planned, the order and every later procurement of
        it (a refund lowering a quantity) plan on the same date, so Odoo's
        moves of one line merge instead of a return beside the delivery."""
        values = super()._prepare_confirmation_values()
        if self.env.context.get("shopify_keep_date_order"):
            values.pop("date_order", None)
        return values

    def action_view_shopify_events(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_base.action_connector_event"
        )
        action["domain"] = [
            ("backend_id", "in", self.shopify_binding_ids.backend_id.ids),
            ("sequence_key", "in", [f"order:{b.external_id}" for b in self.shopify_binding_ids]),
        ]
        return action

    def action_follow_shopify_order(self):
        """This order's story across Odoo and Shopify, in time order: its
        messages, jobs, records and fulfillments (the correlation view)."""
        self.ensure_one()
        binding = self.shopify_binding_ids[:1]
        return self.env["connector.correlation"].action_follow(
            binding.shopify_name or self.name, binding.backend_id
        )


class SaleOrderLine(models.Model):
    _inherit = "sale.order.line"

    shopify_line_item_id = fields.Char(
        string="Shopify line item", readonly=True, copy=False, index="btree_not_null"
    )
    shopify_quantity = fields.Float(
        string="Quantity sold in Shopify",
        digits="Product Unit",
        readonly=True,
        copy=False,
        help="As the Shopify order had it; refunds may lower the ordered quantity, not this.",
    )
    shopify_refunded_qty = fields.Float(
        string="Quantity refunded in Shopify",
        digits="Product Unit",
        default=0.0,
        readonly=True,
        copy=False,
    )
