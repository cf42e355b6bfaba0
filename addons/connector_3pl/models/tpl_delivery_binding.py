from odoo import fields, models

from ..components.release import ORDER_STATUSES

RELEASE_STATES = [
    ("queued", "To release"),
    ("released", "Released"),
    ("rejected", "Refused by the 3PL"),
    ("cancelling", "Cancellation sent"),
    ("cancelled", "Cancelled"),
    ("cancel_refused", "Cancellation refused"),
]


HOLD_STATES = [
    ("asked", "Hold asked"),
    ("held", "On hold"),
    ("lifting", "Release asked"),
    ("refused", "Hold refused"),
]


class TplDeliveryBinding(models.Model):
    """A delivery released to a 3PL: the shop's reference it was released
    under, the 3PL's order id and status, and what the 3PL refused.

    Made when the delivery is queued for release, before the 3PL numbers it:
    the external id (the 3PL's order id) is filled once the 3PL accepted it.
    """

    _name = "tpl.delivery.binding"
    _inherit = "connector.binding.mixin"
    _description = "3PL Delivery Binding"
    _order = "id desc"
    _rec_name = "reference"

    odoo_id = fields.Many2one(
        "stock.picking", string="Delivery", required=True, ondelete="cascade", index=True
    )
    external_id = fields.Char(
        string="3PL order", required=False, index=True, help="The 3PL's id of the order."
    )
    reference = fields.Char(
        required=True,
        readonly=True,
        help="The delivery's reference the 3PL knows it by (unique): a release sent again "
        "under it is recognised, never made twice.",
    )
    release_state = fields.Selection(
        RELEASE_STATES, string="Release", default="queued", required=True, readonly=True
    )
    tpl_status = fields.Selection(ORDER_STATUSES, string="3PL status", readonly=True)
    tpl_hold = fields.Selection(
        HOLD_STATES,
        string="Hold",
        readonly=True,
        help="A hold asked in Odoo: the 3PL keeps the delivery back until it is released "
        "in Odoo; refused once the goods are picked.",
    )
    tpl_message = fields.Text(
        string="3PL says", readonly=True, help="The 3PL's reason when it refused something."
    )
    released_at = fields.Datetime(readonly=True)
    tpl_status_at = fields.Datetime(
        string="Status of",
        readonly=True,
        help="When the status shown happened at the 3PL: an older message never replaces it.",
    )
    tracking_status = fields.Char(
        readonly=True, help="Where the parcels are: in transit, delivered..."
    )
    parcel_ids = fields.One2many("tpl.parcel", "binding_id", string="Parcels", readonly=True)

    _reference_uniq = models.Constraint(
        "UNIQUE (backend_id, reference)", "This delivery reference was already released."
    )
    _odoo_uniq = models.Constraint(
        "UNIQUE (backend_id, odoo_id)", "This delivery is already bound to this 3PL."
    )
    _external_uniq = models.Constraint(
        "UNIQUE (backend_id, external_id)", "This 3PL order is already bound to a delivery."
    )
