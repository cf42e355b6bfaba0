from odoo import fields, models


class ShopifyPaymentMethod(models.Model):
    """Which Odoo journal the money of one Shopify payment gateway goes through."""

    _name = "shopify.payment.method"
    _description = "Shopify Payment Method"
    _order = "backend_id, gateway"
    _check_company_auto = True

    backend_id = fields.Many2one("connector.backend", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    gateway = fields.Char(
        required=True,
        help="The gateway name Shopify gives the transactions, e.g. shopify_payments, "
        "paypal, manual.",
    )
    journal_id = fields.Many2one(
        "account.journal",
        required=True,
        check_company=True,
        domain="[('type', 'in', ('bank', 'cash'))]",
        ondelete="restrict",
    )

    _gateway_uniq = models.Constraint(
        "UNIQUE (backend_id, gateway)", "This Shopify gateway already has a journal."
    )
