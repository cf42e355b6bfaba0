from odoo import api, fields, models

# Writes on these fields of an urgent rule change the prices it gives.
PRICE_FIELDS = {
    "active",
    "applied_on",
    "base",
    "base_pricelist_id",
    "categ_id",
    "compute_price",
    "connector_pos_urgent",
    "date_end",
    "date_start",
    "fixed_price",
    "min_quantity",
    "percent_price",
    "price_discount",
    "price_markup",
    "price_max_margin",
    "price_min_margin",
    "price_round",
    "price_surcharge",
    "product_id",
    "product_tmpl_id",
}


class ProductPricelistItem(models.Model):
    _inherit = "product.pricelist.item"

    connector_pos_urgent = fields.Boolean(
        string="Urgent for the stores",
        help="A change of this rule reaches the stores' POS within the 'Urgent prices "
        "out' flow's SLA (a recall, a wrong price on the shelf), instead of at the next "
        "scheduled catalog run.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        items = super().create(vals_list)
        items._connector_pos_urgent_changed()
        return items

    def write(self, vals):
        watched = PRICE_FIELDS & vals.keys()
        # The products the rule priced before the change get their new price too.
        before = self.filtered("connector_pos_urgent") if watched else self.browse()
        affected = before._connector_pos_affected() if before else {}
        result = super().write(vals)
        if watched:
            self._connector_pos_urgent_changed(affected)
        return result

    def unlink(self):
        affected = self.filtered("connector_pos_urgent")._connector_pos_affected()
        result = super().unlink()
        self.env["connector.pos.catalog.sync"]._queue_urgent(affected)
        return result

    def _connector_pos_urgent_changed(self, also=None):
        affected = dict(also or {})
        for key, products in (
            self.filtered("connector_pos_urgent")._connector_pos_affected().items()
        ):
            affected[key] = affected.get(key, products) | products
        self.env["connector.pos.catalog.sync"]._queue_urgent(affected)

    def _connector_pos_affected(self):
        """``{store: products}`` the stores' POS sell at these rules' prices."""
        if not self or self.env.context.get("connector_no_export"):
            return {}
        return self.env["connector.pos.catalog.sync"]._urgent_targets(self)
