from odoo import fields, models


class TplCarrier(models.Model):
    """Which Odoo carrier a 3PL's carrier (and service) is: the parcels it
    ships are recorded on the delivery with that carrier."""

    _name = "tpl.carrier"
    _description = "3PL Carrier Mapping"
    _order = "backend_id, carrier, service"

    backend_id = fields.Many2one(
        "connector.backend",
        required=True,
        ondelete="cascade",
        index=True,
        domain=[("backend_type", "=", "3pl")],
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    carrier = fields.Char(
        string="3PL carrier", required=True, help="As the 3PL names it: Colissimo, DHL, UPS..."
    )
    service = fields.Char(
        string="3PL service",
        help="The carrier's service as the 3PL names it; empty: every service of the carrier.",
    )
    delivery_carrier_id = fields.Many2one(
        "delivery.carrier", string="Odoo carrier", required=True, ondelete="restrict"
    )

    _carrier_service_uniq = models.Constraint(
        "UNIQUE NULLS NOT DISTINCT (backend_id, carrier, service)",
        "This 3PL carrier and service is already mapped.",
    )

    def _lookup(self, backend, carrier, service=None):
        """The Odoo carrier of a 3PL carrier and service: the row of that service,
        else the carrier's row for every service; an empty recordset when unmapped."""
        rows = self.search([("backend_id", "=", backend.id), ("carrier", "=ilike", carrier)])
        row = rows.filtered(lambda r: service and (r.service or "").lower() == service.lower())
        row = row or rows.filtered(lambda r: not r.service)
        return row[:1].delivery_carrier_id
