from odoo import fields, models


class TplParcel(models.Model):
    """One parcel the 3PL shipped for a delivery, with its own carrier and
    tracking number: a delivery shipped in two parcels has two rows, never
    the first parcel's tracking copied to the second."""

    _name = "tpl.parcel"
    _description = "3PL Parcel"
    _order = "picking_id, id"

    binding_id = fields.Many2one(
        "tpl.delivery.binding", required=True, ondelete="cascade", index=True, readonly=True
    )
    picking_id = fields.Many2one(
        "stock.picking", string="Delivery", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="binding_id.company_id", store=True, index=True)
    package_id = fields.Char(string="3PL parcel", required=True, readonly=True)
    carrier = fields.Char(string="3PL carrier", readonly=True)
    service = fields.Char(string="3PL service", readonly=True)
    delivery_carrier_id = fields.Many2one(
        "delivery.carrier",
        string="Carrier",
        readonly=True,
        help="The Odoo carrier the 3PL's carrier and service are mapped to.",
    )
    tracking_number = fields.Char(readonly=True)
    tracking_url = fields.Char(readonly=True)
    tracking_status = fields.Char(readonly=True)
    contents = fields.Char(readonly=True, help="What the 3PL put in it: SKU x quantity.")

    _package_uniq = models.Constraint(
        "UNIQUE (binding_id, package_id)", "This parcel is already recorded on the delivery."
    )
