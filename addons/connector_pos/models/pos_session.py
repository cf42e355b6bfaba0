from odoo import fields, models

from .pos_backend import day_key


class PosSession(models.Model):
    """A store's business day, when the connector opened the session for it."""

    _inherit = "pos.session"

    connector_pos_store_id = fields.Many2one(
        "connector.pos.store", string="POS store", readonly=True, index="btree_not_null"
    )
    connector_pos_business_day = fields.Date(string="Business day", readonly=True)

    def _validate_session(self, *args, **kwargs):
        """Closing a store's day lets the tickets of its next day be applied."""
        res = super()._validate_session(*args, **kwargs)
        for session in self.filtered(lambda s: s.state == "closed" and s.connector_pos_store_id):
            store = session.connector_pos_store_id
            store.backend_id._pos_wake([day_key(store)])
        return res
