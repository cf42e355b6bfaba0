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
    tender of the fleet's tickets.

    A row without a store is the fleet's; a row with a store is that store's
    own and wins over the fleet's. Cash needs one: Point of Sale gives each of
    its cash methods to one Point of Sale only, so each store counts its
    drawer in a cash method of its own.
    """

    _name = "connector.pos.tender"
    _description = "POS Tender Mapping"
    _order = "backend_id, tender_type, id"
    _check_company_auto = True

    backend_id = fields.Many2one("connector.backend", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    tender_type = fields.Selection(
        [(code, TENDER_LABELS[code]) for code in TENDER_TYPES], string="Tender", required=True
    )
    store_id = fields.Many2one(
        "connector.pos.store",
        ondelete="cascade",
        domain="[('backend_id', '=', backend_id)]",
        help="Only this store's tickets. Empty: every store without a row of its own "
        "for this tender.",
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
        "UNIQUE (backend_id, tender_type, store_id)",
        "This tender already has a payment method for this store.",
    )
    _fleet_tender_uniq = models.UniqueIndex(
        "(backend_id, tender_type) WHERE store_id IS NULL",
        "This tender already has a payment method for the fleet.",
    )

    @api.constrains("backend_id", "store_id")
    def _check_store(self):
        for tender in self:
            if tender.store_id and tender.store_id.backend_id != tender.backend_id:
                raise ValidationError(
                    self.env._(
                        "The store %(store)s is not one of fleet %(backend)s.",
                        store=tender.store_id.display_name,
                        backend=tender.backend_id.display_name,
                    )
                )

    @api.model
    def _methods_of(self, store):
        """``{tender type: payment method}`` for the tickets of ``store``: its
        own rows, else its fleet's. Looked up once per batch job of tickets."""
        memo = self.env["connector.event"]._batch_memo()
        key = ("connector_pos.methods", store.id)
        if key not in memo:
            methods = {}
            for row in self.search([("backend_id", "=", store.backend_id.id)]):
                if row.store_id == store or (not row.store_id and row.tender_type not in methods):
                    methods[row.tender_type] = row.payment_method_id.id
            memo[key] = methods
        Method = self.env["pos.payment.method"]
        return {kind: Method.browse(method_id) for kind, method_id in memo[key].items()}

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
