from datetime import timedelta
from decimal import Decimal

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import mute_logger

from odoo.addons.connector_base.components.payload import payload_hash
from odoo.addons.queue_job.exception import RetryableJobError

from ..components import mapper_payout
from ..components.mapper_payout import OPEN_STATUSES
from .shopify_backend import _parse_time

PAYOUT_STATUSES = [
    ("scheduled", "Scheduled"),
    ("in_transit", "In transit"),
    ("paid", "Paid"),
    ("failed", "Failed"),
    ("canceled", "Canceled"),
]
TRANSACTION_CATEGORIES = [
    ("charge", "Charge"),
    ("refund", "Refund"),
    ("dispute", "Dispute"),
    ("adjustment", "Adjustment"),
    ("reserved_funds", "Reserved funds"),
    ("other", "Other"),
]
# The first read of a store goes back this far.
FIRST_READ_DAYS = 90
# A payout read as paid can still fail at the bank a few days later: the
# scheduled read goes back this far before the newest payout it has seen.
LOOKBACK_DAYS = 7


class ShopifyPayout(models.Model):
    """A Shopify Payments payout: money moved from the store's Shopify
    balance to the retailer's bank, with the balance transactions it pays.

    Kept as Shopify reports it (amounts never recomputed) for the finance
    connector, which matches payouts to payments and fees and exports them;
    ``finance_state`` is that connector's to set. The import flags a payout
    whose transactions do not add up to its net amount.
    """

    _name = "shopify.payout"
    _inherit = ["connector.binding.mixin", "mail.thread"]
    _description = "Shopify Payout"
    _order = "date desc, id desc"

    name = fields.Char(compute="_compute_name", store=True)
    shopify_payout_id = fields.Char(
        string="Shopify payout", readonly=True, index=True, help="The payout number in Shopify."
    )
    date = fields.Datetime(string="Issued at", readonly=True, index=True)
    status = fields.Selection(PAYOUT_STATUSES, readonly=True, tracking=True, index=True)
    shopify_status = fields.Char(
        string="Status in Shopify", readonly=True, help="The payout status as Shopify names it."
    )
    transaction_type = fields.Selection(
        [("deposit", "Deposit"), ("withdrawal", "Withdrawal")],
        readonly=True,
        help="Deposit: money to the bank account. Withdrawal: money taken back from it.",
    )
    currency_id = fields.Many2one("res.currency", required=True, readonly=True)
    net_amount = fields.Monetary(string="Net", readonly=True, tracking=True)

    # Shopify's summary of the payout, per kind of transaction.
    charges_gross = fields.Monetary(readonly=True)
    charges_fee = fields.Monetary(string="Charges fees", readonly=True)
    refunds_gross = fields.Monetary(readonly=True)
    refunds_fee = fields.Monetary(string="Refunds fees", readonly=True)
    adjustments_gross = fields.Monetary(readonly=True)
    adjustments_fee = fields.Monetary(string="Adjustments fees", readonly=True)
    reserved_funds_gross = fields.Monetary(readonly=True)
    reserved_funds_fee = fields.Monetary(string="Reserved funds fees", readonly=True)
    retried_payouts_gross = fields.Monetary(readonly=True)
    retried_payouts_fee = fields.Monetary(string="Retried payouts fees", readonly=True)
    fee_total = fields.Monetary(
        string="Fees", compute="_compute_fee_total", store=True, help="All fees of the summary."
    )

    transaction_ids = fields.One2many(
        "shopify.payout.transaction", "payout_id", string="Transactions", readonly=True
    )
    transaction_count = fields.Integer(compute="_compute_transaction_totals", store=True)
    transaction_amount_total = fields.Monetary(
        string="Transactions gross", compute="_compute_transaction_totals", store=True
    )
    transaction_fee_total = fields.Monetary(
        string="Transactions fees", compute="_compute_transaction_totals", store=True
    )
    transaction_net_total = fields.Monetary(
        string="Transactions net", compute="_compute_transaction_totals", store=True
    )
    transactions_complete = fields.Boolean(
        string="Transactions read",
        readonly=True,
        copy=False,
        help="Every balance transaction of the payout has been read from Shopify.",
    )
    amount_mismatch = fields.Boolean(
        string="Mismatch",
        compute="_compute_amount_mismatch",
        store=True,
        tracking=True,
        help="The net amounts of the payout's transactions do not add up to its net amount.",
    )
    mismatch_message = fields.Char(compute="_compute_amount_mismatch", store=True)
    finance_state = fields.Selection(
        [("to_export", "To settle"), ("exported", "Settled")],
        string="Finance",
        default="to_export",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
        help="Set by the finance connector: Settled once it has matched the payout's "
        "transactions to Odoo's payments and reconciled the payout with its bank line.",
    )

    _external_uniq = models.Constraint(
        "UNIQUE (backend_id, external_id)", "This Shopify payout is already imported."
    )

    @api.depends("shopify_payout_id", "date")
    def _compute_name(self):
        for payout in self:
            payout.name = self.env._(
                "Payout %(number)s of %(date)s",
                number=payout.shopify_payout_id or "?",
                date=fields.Date.to_string(payout.date) if payout.date else "?",
            )

    @api.depends(
        "charges_fee", "refunds_fee", "adjustments_fee", "reserved_funds_fee", "retried_payouts_fee"
    )
    def _compute_fee_total(self):
        for payout in self:
            payout.fee_total = (
                payout.charges_fee
                + payout.refunds_fee
                + payout.adjustments_fee
                + payout.reserved_funds_fee
                + payout.retried_payouts_fee
            )

    @api.depends("transaction_ids.amount", "transaction_ids.fee", "transaction_ids.net_amount")
    def _compute_transaction_totals(self):
        for payout in self:
            transactions = payout.transaction_ids
            payout.transaction_count = len(transactions)
            payout.transaction_amount_total = sum(transactions.mapped("amount"))
            payout.transaction_fee_total = sum(transactions.mapped("fee"))
            payout.transaction_net_total = sum(transactions.mapped("net_amount"))

    @api.depends("transactions_complete", "transaction_net_total", "net_amount", "currency_id")
    def _compute_amount_mismatch(self):
        for payout in self:
            currency = payout.currency_id
            differs = (
                payout.transactions_complete
                and currency
                and currency.compare_amounts(payout.transaction_net_total, payout.net_amount)
            )
            payout.amount_mismatch = bool(differs)
            payout.mismatch_message = (
                self.env._(
                    "The transactions add up to %(transactions)s net, the payout is %(payout)s "
                    "(difference %(difference)s).",
                    transactions=currency.format(payout.transaction_net_total),
                    payout=currency.format(payout.net_amount),
                    difference=currency.format(payout.net_amount - payout.transaction_net_total),
                )
                if differs
                else False
            )

    # --- import -----------------------------------------------------------------

    @api.model
    def _read_since(self, backend):
        """Where the next scheduled read of ``backend``'s payouts starts.

        Payouts have no update time in Shopify, and their status moves on
        after they are issued (in transit, then paid or failed): the read goes
        back a few days before the newest payout seen, and further back to
        the oldest payout still on its way.
        """
        watermark = _parse_time(backend._policy("payouts_in").watermark)
        if watermark:
            start = watermark - timedelta(days=LOOKBACK_DAYS)
        else:
            start = fields.Datetime.now() - timedelta(days=FIRST_READ_DAYS)
        oldest_open = self.search(
            [("backend_id", "=", backend.id), ("status", "in", OPEN_STATUSES)],
            order="date",
            limit=1,
        )
        if oldest_open.date and oldest_open.date < start:
            start = oldest_open.date
        return start.strftime("%Y-%m-%dT%H:%M:%SZ")

    @api.model
    def _currency(self, code):
        currency = (
            self.env["res.currency"]
            .with_context(active_test=False)
            .search([("name", "=", code)], limit=1)
        )
        if not currency:
            raise UserError(
                self.env._(
                    "Shopify pays out in %(code)s, a currency unknown to Odoo: add it in the "
                    "currencies, then requeue the job.",
                    code=code,
                )
            )
        return currency

    @api.model
    def _import_page(self, backend, nodes):
        """Create or update the payouts of one page of Shopify's answer.

        A payout read again unchanged (same payload hash) is left as it is;
        a changed one (its status, mostly) is updated in place. Returns the
        payouts whose transactions are to be read: new ones, those not fully
        read yet, and mismatched ones (Shopify may have corrected them).
        """
        new_values = []
        payouts = self.browse()
        for node in nodes:
            values = mapper_payout.payout_values(node)
            currency = self._currency(values.pop("currency_code"))
            values = _rounded(values, currency)
            values.update(
                currency_id=currency.id,
                date=_parse_time(values.pop("issued_at")),
                payload_hash=payload_hash(node),
                sync_date=fields.Datetime.now(),
            )
            payout = self._find(backend, values["external_id"])
            if not payout:
                new_values.append(values)
            elif not payout._is_unchanged(values["payload_hash"]):
                _write_changes(payout, values)
            payouts |= payout
        payouts |= _create_once(self, backend, new_values)
        return payouts.filtered(lambda p: not p.transactions_complete or p.amount_mismatch)

    def _import_transactions_page(self, nodes, last_page):
        """Create (or update) the balance transactions of one page of this payout."""
        self.ensure_one()
        Transaction = self.env["shopify.payout.transaction"]
        backend = self.backend_id
        rows = [mapper_payout.transaction_values(node) for node in nodes]
        # A search Shopify did not narrow to this payout is not trusted blindly.
        rows = [row for row in rows if row.pop("payout_external_id") == self.external_id]
        order_ids = [row["shopify_order_id"] for row in rows if row["shopify_order_id"]]
        orders = {
            binding.external_id: binding
            for binding in self.env["shopify.order.binding"].search(
                [("backend_id", "=", backend.id), ("external_id", "in", order_ids)]
            )
        }
        new_values = []
        for row in rows:
            row.pop("currency_code")  # a payout pays out in one currency
            values = _rounded(row, self.currency_id)
            values.update(
                payout_id=self.id,
                processed_at=_parse_time(values["processed_at"]),
                order_binding_id=orders.get(values["shopify_order_id"], Transaction).id,
            )
            transaction = Transaction._find(backend, values["external_id"])
            if transaction:
                _write_changes(transaction, values)
            else:
                new_values.append(values)
        _create_once(Transaction, backend, new_values)
        if last_page and not self.transactions_complete:
            self.transactions_complete = True

    # --- actions ----------------------------------------------------------------

    def action_view_transactions(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_shopify.action_shopify_payout_transaction"
        )
        action["domain"] = [("payout_id", "=", self.id)]
        action["context"] = {"search_default_group_category": 1}
        return action


class ShopifyPayoutTransaction(models.Model):
    """A Shopify Payments balance transaction paid out by a payout: a charge,
    a refund, a dispute, an adjustment... with its gross amount, fee and net,
    and the sale order it came from when that order is imported."""

    _name = "shopify.payout.transaction"
    _inherit = "connector.binding.mixin"
    _description = "Shopify Payout Transaction"
    _order = "processed_at, id"

    payout_id = fields.Many2one(
        "shopify.payout", required=True, ondelete="cascade", index=True, readonly=True
    )
    currency_id = fields.Many2one(related="payout_id.currency_id", store=True)
    payout_status = fields.Selection(related="payout_id.status", string="Payout status")
    category = fields.Selection(TRANSACTION_CATEGORIES, string="Type", readonly=True, index=True)
    shopify_type = fields.Char(
        string="Shopify type", readonly=True, help="The transaction type as Shopify names it."
    )
    source_type = fields.Char(readonly=True)
    adjustment_reason = fields.Char(readonly=True)
    processed_at = fields.Datetime(readonly=True)
    test = fields.Boolean(readonly=True, help="Made in Shopify's test mode: no real money.")
    amount = fields.Monetary(string="Gross", readonly=True)
    fee = fields.Monetary(readonly=True)
    net_amount = fields.Monetary(string="Net", readonly=True)
    shopify_order_id = fields.Char(string="Shopify order id", readonly=True, index=True)
    shopify_order_name = fields.Char(string="Shopify order", readonly=True)
    order_binding_id = fields.Many2one(
        "shopify.order.binding", readonly=True, ondelete="set null", index="btree_not_null"
    )
    sale_order_id = fields.Many2one(
        related="order_binding_id.odoo_id", store=True, string="Sale order", index=True
    )

    _external_uniq = models.Constraint(
        "UNIQUE (backend_id, external_id)", "This Shopify balance transaction is already imported."
    )


class ShopifyOrderBinding(models.Model):
    _inherit = "shopify.order.binding"

    @api.model_create_multi
    def create(self, vals_list):
        """An order imported after its payout: its payout transactions now
        point to it."""
        bindings = super().create(vals_list)
        by_key = {(b.backend_id.id, b.external_id): b for b in bindings}
        waiting = (
            self.env["shopify.payout.transaction"]
            .sudo()
            .search(
                [
                    ("order_binding_id", "=", False),
                    ("backend_id", "in", bindings.backend_id.ids),
                    ("shopify_order_id", "in", bindings.mapped("external_id")),
                ]
            )
        )
        for transaction in waiting:
            binding = by_key.get((transaction.backend_id.id, transaction.shopify_order_id))
            if binding:
                transaction.order_binding_id = binding
        return bindings


def _rounded(values, currency):
    """Shopify's decimal amounts as floats in the currency's precision."""
    return {
        key: currency.round(float(value)) if isinstance(value, Decimal) else value
        for key, value in values.items()
    }


def _write_changes(record, values):
    """Write only what differs: reading the same data again changes nothing."""
    changes = {}
    for name, value in values.items():
        current = record[name]
        if isinstance(current, models.BaseModel):
            current = current.id
        if current != value:
            changes[name] = value
    if changes:
        record.write(changes)


def _create_once(model, backend, vals_list):
    """Create records of ``backend`` unless a concurrent job just did.

    Jobs do not read the same page twice at once (identity keys), but a
    manual import can meet the scheduled one: the database's unique key on
    (backend, external id) decides, and the job that lost runs again later
    and finds the records there.
    """
    if not vals_list:
        return model.browse()
    try:
        with mute_logger("odoo.sql_db"), model.env.cr.savepoint():
            return model.create([{"backend_id": backend.id, **vals} for vals in vals_list])
    except psycopg2.errors.UniqueViolation as exc:
        raise RetryableJobError(
            f"{model._description}: another job is importing the same records", seconds=10
        ) from exc
