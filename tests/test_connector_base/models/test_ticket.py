from odoo import fields, models


class TestTicket(models.Model):
    """A store sale as the test connector records it: the batched topic's record."""

    _name = "test.ticket"
    _description = "Test Connector Store Ticket"
    _order = "id"

    backend_id = fields.Many2one("connector.backend", required=True, ondelete="cascade")
    uuid = fields.Char(required=True)
    store = fields.Char(required=True)
    register = fields.Integer(required=True)
    seq = fields.Integer(required=True, help="The ticket's number on its register.")
    amount = fields.Float()
    partner_id = fields.Many2one("res.partner", string="Customer")
    voucher_value = fields.Float()

    _uuid_uniq = models.Constraint(
        "UNIQUE (backend_id, uuid)", "This ticket is already recorded for this backend."
    )


class ResPartner(models.Model):
    _inherit = "res.partner"

    test_store_total = fields.Float(help="What the customer spent in the test stores.")
