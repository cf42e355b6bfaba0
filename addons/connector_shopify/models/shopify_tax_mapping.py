from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import float_compare


def tax_label(title, rate):
    """How a Shopify tax is named to a person: 'VAT 7.7 %'."""
    return f"'{title} {rate:g} %'" if title else f"'{rate:g} %'"


class ShopifyTaxMapping(models.Model):
    """Which Odoo sale tax books one tax Shopify charged.

    The import never creates a tax: a tax made on the fly would have no
    accounts (the tax collected booked as revenue, missing from the tax
    report) and a tax group of chance. A Shopify tax line is known by its
    title and rate; the country of the order's shipping address picks a
    country's row before a row for every country, and a row with a title
    before a row for any title at its rate.
    """

    _name = "shopify.tax.mapping"
    _description = "Shopify Tax Mapping"
    _order = "backend_id, rate, name, country_id, id"
    _check_company_auto = True

    backend_id = fields.Many2one("connector.backend", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    name = fields.Char(
        string="Shopify tax title",
        help="The title Shopify gives the tax line, e.g. 'VAT' or 'NY State Tax'. Empty: "
        "any title at this rate.",
    )
    rate = fields.Float(
        string="Rate (%)",
        required=True,
        digits=(16, 4),
        help="The rate of the Shopify tax line as a percentage: 7.7 for Shopify's 0.077.",
    )
    country_id = fields.Many2one(
        "res.country",
        help="Only for orders shipped to this country. Empty: every country.",
    )
    tax_id = fields.Many2one(
        "account.tax",
        string="Odoo tax",
        required=True,
        check_company=True,
        ondelete="restrict",
        domain="[('type_tax_use', '=', 'sale'), ('amount_type', '=', 'percent')]",
        help="A sale tax of this rate, price-included when the shop's prices include taxes.",
    )
    price_include = fields.Boolean(related="tax_id.price_include", string="Price included")

    @api.constrains("rate", "tax_id")
    def _check_rate(self):
        """A mapping to a tax of another rate would book another amount than Shopify's."""
        for mapping in self:
            tax = mapping.tax_id
            if tax.amount_type != "percent" or tax.type_tax_use != "sale":
                raise ValidationError(
                    self.env._(
                        "Map the Shopify tax %(title)s to a sale tax computed as a percentage, "
                        "not %(tax)s.",
                        title=mapping._label(),
                        tax=tax.display_name,
                    )
                )
            if float_compare(tax.amount, mapping.rate, precision_digits=4):
                raise ValidationError(
                    self.env._(
                        "The Shopify tax %(title)s is %(rate)s %%: map it to a tax of that "
                        "rate, not %(tax)s (%(amount)s %%).",
                        title=mapping._label(),
                        rate=f"{mapping.rate:g}",
                        tax=tax.display_name,
                        amount=f"{tax.amount:g}",
                    )
                )

    def _label(self):
        self.ensure_one()
        return tax_label(self.name, self.rate)

    @api.model
    def _find(self, backend, title, rate, country, included):
        """The Odoo tax of one Shopify tax line, or an empty recordset.

        Only taxes price-included like the shop's prices qualify; among the
        rows of the rate, one of the order's country before one of every
        country, one of the title before one of any title.
        """
        title = (title or "").strip().casefold()
        candidates = self.search([("backend_id", "=", backend.id)]).filtered(
            lambda m: (
                not float_compare(m.rate, rate, precision_digits=4)
                and m.tax_id.price_include == included
                and (not m.name or m.name.strip().casefold() == title)
                and (not m.country_id or m.country_id == country)
            )
        )
        best = sorted(candidates, key=lambda m: (not m.country_id, not m.name, m.id))
        return best[0].tax_id if best else self.env["account.tax"]
