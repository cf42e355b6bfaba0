from odoo import fields, models


class PosOrder(models.Model):
    """A store POS ticket, where it was rung up: store, register, number."""

    _inherit = "pos.order"

    connector_pos_store_id = fields.Many2one(
        "connector.pos.store", string="POS store", readonly=True, index="btree_not_null"
    )
    connector_pos_register = fields.Char(string="Register", readonly=True)
    connector_pos_sequence = fields.Integer(string="Ticket number", readonly=True)
