from odoo import api, fields, models

from ..components.contact import normalize_phone


class ResPartner(models.Model):
    """A contact's phone in the one form connectors compare phones in.

    Odoo keeps a phone as it was typed (``07700 900123``, ``+44 7700
    900123``); a customer arriving from a till or a web shop with either must
    find that contact. Kept and indexed like ``email_normalized``, so the
    look-up of each order is one index probe, not a scan of every contact.
    """

    _inherit = "res.partner"

    connector_phone_normalized = fields.Char(
        string="Normalized phone",
        compute="_compute_connector_phone_normalized",
        store=True,
        index="btree_not_null",
        help="The phone as + and digits, with the country's calling code; what connectors "
        "match customers on.",
    )

    # The company's country is not searchable (a related field of its own
    # contact): a contact is recomputed when its phone, country or company
    # changes, not when a company moves country.
    @api.depends("phone", "country_id", "company_id")
    def _compute_connector_phone_normalized(self):
        for partner in self:
            # A national number is dialled from the contact's country, else its
            # company's, else the company the contact was saved in.
            country = (
                partner.country_id or partner.company_id.country_id or self.env.company.country_id
            )
            partner.connector_phone_normalized = normalize_phone(
                partner.phone, country.phone_code, country.code
            )
