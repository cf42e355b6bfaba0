from odoo import api, fields, models

from .tpl_delivery_binding import HOLD_STATES, RELEASE_STATES


class StockPicking(models.Model):
    _inherit = "stock.picking"

    tpl_binding_ids = fields.One2many(
        "tpl.delivery.binding", "odoo_id", string="3PL releases", readonly=True
    )
    tpl_parcel_ids = fields.One2many(
        "tpl.parcel", "picking_id", string="3PL parcels", readonly=True
    )
    tpl_release_state = fields.Selection(
        RELEASE_STATES,
        string="3PL release",
        compute="_compute_tpl_release",
        help="Where the delivery is with the 3PL that runs its warehouse.",
    )
    tpl_message = fields.Text(string="3PL says", compute="_compute_tpl_release")
    tpl_hold = fields.Selection(HOLD_STATES, string="3PL hold", compute="_compute_tpl_release")

    @api.depends(
        "tpl_binding_ids.release_state", "tpl_binding_ids.tpl_message", "tpl_binding_ids.tpl_hold"
    )
    def _compute_tpl_release(self):
        for picking in self:
            binding = picking.tpl_binding_ids[:1]
            picking.tpl_release_state = binding.release_state
            picking.tpl_message = binding.tpl_message
            picking.tpl_hold = binding.tpl_hold

    def action_tpl_hold(self):
        """Keep the delivery back at the 3PL (refused once its goods are picked)."""
        self.env["tpl.release.sync"]._ask_hold(self, hold=True)

    def action_tpl_release_hold(self):
        """Let the 3PL ship the delivery held in Odoo."""
        self.env["tpl.release.sync"]._ask_hold(self, hold=False)


class StockMove(models.Model):
    _inherit = "stock.move"

    def _action_assign(self, *args, **kwargs):
        result = super()._action_assign(*args, **kwargs)
        # A delivery becomes ready when its goods are reserved: released then.
        self.env["tpl.release.sync"]._pickings_ready(self.picking_id)
        return result

    def _action_cancel(self):
        pickings = self.picking_id
        result = super()._action_cancel()
        self.env["tpl.release.sync"]._pickings_cancelled(
            pickings.filtered(lambda p: p.state == "cancel")
        )
        return result
