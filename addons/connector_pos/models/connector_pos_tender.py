from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..components.ticket import TENDER_TYPES

TENDER_LABELS = {
    "cash": "Cash",
    "card": "Card",
    "gift_card": "Gift card",
    "voucher": "Voucher",
    "store_credit": "Store credit",
}


class ConnectorPosTender(models.Model):
    """Which Odoo payment method (and so which journal) takes one kind of
    tender of the fleet's tickets."""

    _name = "connector.pos.tender"
    _description = "POS Tender Mapping"
    _order = "backend_id, tender_type"
    _check_company_auto = True

    backend_id = fields.Many2one("connector.backend", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    tender_type = fields.Selection(
        [(code, TENDER_LABELS[code]) for code in TENDER_TYPES], string="Tender", required=True
    )
    payment_method_id = fields.Many2one(
        "pos.payment.method",
        required=True,
        check_company=True,
        ondelete="restrict",
        help="Add it to each store's Point of Sale too: Odoo takes a payment of a "
        "Point of Sale's own methods only.",
    )

    _tender_uniq = models.Constraint(
        "UNIQUE (backend_id, tender_type)", "This tender already has a payment method."
    )

    @api.constrains("tender_type", "payment_method_id")
    def _check_cash(self):
        """Cash counted in the drawer must go to a cash method, and only cash."""
        for tender in self:
            if (tender.tender_type == "cash") != tender.payment_method_id.is_cash_count:
                raise ValidationError(
                    self.env._(
                        "Map the %(tender)s tender to a payment method %(what)s, not %(method)s.",
                        tender=TENDER_LABELS[tender.tender_type],
                        what=self.env._("of type Cash")
                        if tender.tender_type == "cash"
                        else self.env._("other than cash"),
                        method=tender.payment_method_id.display_name,
                    )
                )
