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

    def _compute_shopify_info(self):
        for order in self:
            binding = order.shopify_binding_ids[:1]
            order.shopify_order_name = binding.shopify_name
            order.shopify_financial_status = binding.financial_status

    def _search_shopify_name(self, operator, value):
        return [("shopify_binding_ids.shopify_name", operator, value)]

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
