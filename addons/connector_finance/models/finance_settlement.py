"""Settlements: what a payment provider paid out, matched to Odoo's payments
and reconciled with the bank line the money arrived on.

Two sources share the model: the card acquirer's settlement batches (read
from its settlement detail reports) and the Shopify Payments payouts that
connector_shopify imports (read from its records, never from Shopify again).
Each line is a booking of the payout: a charge, a refund, a chargeback, a fee
or an adjustment, with its gross, the fee withheld and the net.

Matching finds, for each charge and refund, the Odoo payment of its
reference; fees go to the fee account. The payout is then reconciled with
its bank statement line by Odoo's own means: the statement line's suspense
line is replaced by the counterparts (each payment's outstanding line for
its gross, the fees to the fee account) and each counterpart is reconciled
with its payment's line. A payment received net of a fee is thereby
reconciled in full, the fee booked apart (OCA/account-reconcile#500 left
such payments partial).
"""

import re
from datetime import timedelta

from odoo import Command, api, fields, models
from odoo.exceptions import AccessError, UserError

SETTLEMENT_STATES = [
    ("to_match", "To match"),
    ("matched", "Matched"),
    ("reconciled", "Reconciled"),
    ("mismatch", "Mismatch"),
]
LINE_KINDS = [
    ("charge", "Charge"),
    ("refund", "Refund"),
    ("chargeback", "Chargeback"),
    ("fee", "Fee"),
    ("adjustment", "Adjustment"),
]
LINE_STATES = [
    ("to_match", "To match"),
    ("matched", "Matched"),
    ("unmatched", "Unmatched"),
]
SOURCES = [("acquirer", "Card acquirer"), ("shopify", "Shopify Payments")]
# How far from the payout's date its bank line is looked for.
BANK_DAYS_BEFORE = 3
BANK_DAYS_AFTER = 10


class FinanceSettlement(models.Model):
    _name = "finance.settlement"
    _description = "Payment Provider Settlement"
    _inherit = ["mail.thread"]
    _order = "date desc, id desc"

    name = fields.Char(required=True, readonly=True)
    backend_id = fields.Many2one(
        "connector.backend", required=True, ondelete="cascade", index=True, readonly=True
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    source = fields.Selection(SOURCES, required=True, readonly=True)
    external_key = fields.Char(
        required=True,
        readonly=True,
        help="The batch number of the acquirer, the payout id of Shopify: read twice, "
        "a settlement is stored once.",
    )
    batch_number = fields.Integer(readonly=True, index=True)
    payout_model = fields.Char(readonly=True)
    payout_res_id = fields.Many2oneReference(
        string="Payout record", model_field="payout_model", readonly=True
    )
    bank_reference = fields.Char(
        readonly=True, help="What the bank line of the payout says, to find it by."
    )
    date = fields.Date(readonly=True)
    currency_id = fields.Many2one("res.currency", required=True, readonly=True)
    net_amount = fields.Monetary(string="Payout", readonly=True, tracking=True)
    gross_total = fields.Monetary(string="Gross", compute="_compute_totals", store=True)
    fee_total = fields.Monetary(string="Fees", compute="_compute_totals", store=True)
    line_net_total = fields.Monetary(string="Lines net", compute="_compute_totals", store=True)
    line_ids = fields.One2many("finance.settlement.line", "settlement_id", readonly=True)
    line_count = fields.Integer(compute="_compute_totals", store=True)
    state = fields.Selection(
        SETTLEMENT_STATES, default="to_match", required=True, readonly=True, tracking=True
    )
    state_message = fields.Text(string="Why", readonly=True)
    bank_line_id = fields.Many2one(
        "account.bank.statement.line", string="Bank line", readonly=True, index="btree_not_null"
    )
    bank_amount = fields.Monetary(string="Bank amount", readonly=True)
    bank_move_id = fields.Many2one(related="bank_line_id.move_id", string="Bank entry")

    _source_uniq = models.Constraint(
        "UNIQUE (backend_id, source, external_key)", "This settlement is already stored."
    )

    @api.depends("line_ids.gross", "line_ids.fee", "line_ids.net")
    def _compute_totals(self):
        for settlement in self:
            lines = settlement.line_ids
            settlement.gross_total = sum(lines.mapped("gross"))
            settlement.fee_total = sum(lines.mapped("fee"))
            settlement.line_net_total = sum(lines.mapped("net"))
            settlement.line_count = len(lines)

    def action_view_payout(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.payout_model,
            "res_id": self.payout_res_id,
            "view_mode": "form",
        }

    def action_match(self):
        """Match and reconcile again, now (after a payment was recorded or the
        bank line imported), as the settlements job does."""
        if not (
            self.env.user.has_group("connector_base.group_connector_manager")
            or self.env.user.has_group("account.group_account_manager")
        ):
            raise AccessError(
                self.env._("Only connector managers and accounting managers match settlements.")
            )
        for backend, settlements in self.grouped("backend_id").items():
            # The connector's own run, whoever asks: see _finance_settle.
            backend.sudo()._finance_settle(settlements)
        return True

    # --- matching ---------------------------------------------------------------

    def _match_and_reconcile(self):
        """Match the lines, find the bank line, reconcile; each settlement ends
        reconciled, matched (its bank line not imported yet) or mismatch (with
        the reasons in ``state_message``)."""
        for settlement in self.filtered(lambda s: s.state != "reconciled"):
            settlement.line_ids._match()
            try:
                with self.env.cr.savepoint():
                    settlement._settle()
            except UserError as exc:
                # Odoo refused the reconciliation (a lock date, a journal
                # without suspense account): the settlement says why, the
                # others go on.
                settlement.write(
                    {
                        "state": "mismatch",
                        "state_message": self.env._(
                            "Odoo refused to reconcile the bank line: %(reason)s",
                            reason=exc.args[0] if exc.args else exc,
                        ),
                    }
                )

    def _settle(self):
        self.ensure_one()
        reasons = [
            self.env._(
                "%(what)s %(reference)s (%(amount)s): %(reason)s",
                what=line._kind_label(),
                reference=line.reference or line.psp_reference or "-",
                amount=self.currency_id.format(line.gross or line.net),
                reason=line.reason,
            )
            for line in self.line_ids.filtered(lambda ln: ln.state == "unmatched")
        ]
        currency = self.currency_id
        if currency.compare_amounts(self.line_net_total, self.net_amount):
            reasons.append(
                self.env._(
                    "The lines add up to %(lines)s net, the payout is %(payout)s.",
                    lines=currency.format(self.line_net_total),
                    payout=currency.format(self.net_amount),
                )
            )
        journal = self.backend_id._finance_settlement_journal(self.source)
        company_currency = self.company_id.currency_id
        if currency != (journal.currency_id or company_currency) or currency != company_currency:
            reasons.append(
                self.env._(
                    "The payout is in %(currency)s, the bank journal and the company in "
                    "%(company)s: reconcile it by hand.",
                    currency=currency.name,
                    company=company_currency.name,
                )
            )
        bank_line = self._find_bank_line(journal) if journal else self.bank_line_id
        values = {"bank_line_id": bank_line.id, "bank_amount": bank_line.amount}
        if bank_line and currency.compare_amounts(bank_line.amount, self.net_amount):
            reasons.append(
                self.env._(
                    "The bank received %(bank)s, the payout is %(payout)s (difference "
                    "%(difference)s).",
                    bank=currency.format(bank_line.amount),
                    payout=currency.format(self.net_amount),
                    difference=currency.format(bank_line.amount - self.net_amount),
                )
            )
        if bank_line and not reasons:
            _liquidity, suspense, other = bank_line._seek_for_lines()
            if len(suspense) != 1 or other:
                reasons.append(
                    self.env._(
                        "The bank line %(line)s is partly reconciled already: undo its "
                        "reconciliation, then match again.",
                        line=bank_line.display_name,
                    )
                )
        if reasons:
            self.write({**values, "state": "mismatch", "state_message": "\n".join(reasons)})
        elif not bank_line:
            self.write(
                {
                    **values,
                    "state": "matched",
                    "state_message": self.env._(
                        "Every line is matched; the bank line of %(amount)s is not in "
                        "%(journal)s yet.",
                        amount=currency.format(self.net_amount),
                        journal=journal.display_name if journal else "-",
                    )
                    if journal
                    else self.env._(
                        "Every line is matched; choose the bank journal the payouts land in "
                        "on the backend to reconcile it."
                    ),
                }
            )
        else:
            self.write(values)
            self._reconcile_bank_line()
            self.write({"state": "reconciled", "state_message": False})
            self._payout_done()

    def _payout_done(self):
        """The Shopify payout's entries are in the books: its finance state says so."""
        if self.payout_model and self.payout_model in self.env:
            payout = self.env[self.payout_model].browse(self.payout_res_id).exists()
            if payout and "finance_state" in payout._fields:
                payout.finance_state = "exported"

    def _find_bank_line(self, journal):
        """The unreconciled bank line of this payout in ``journal``: the one
        naming its reference, else the one of its amount nearest its date.
        A line naming the reference is taken whatever its amount (a
        difference is then listed with both figures)."""
        self.ensure_one()
        if self.bank_line_id and not self.bank_line_id.is_reconciled:
            return self.bank_line_id
        Line = self.env["account.bank.statement.line"]
        domain = [("journal_id", "=", journal.id), ("is_reconciled", "=", False)]
        if self.date:
            domain += [
                ("date", ">=", self.date - timedelta(days=BANK_DAYS_BEFORE)),
                ("date", "<=", self.date + timedelta(days=BANK_DAYS_AFTER)),
            ]
        taken = self.search(
            [("bank_line_id", "!=", False), ("id", "!=", self.id), ("state", "!=", "reconciled")]
        ).bank_line_id
        candidates = Line.search(domain, order="date, id") - taken
        if self.bank_reference:
            pattern = re.compile(rf"(?<![\w]){re.escape(self.bank_reference)}(?![\w])", re.I)
            named = candidates.filtered(
                lambda ln: pattern.search(f"{ln.payment_ref or ''} {ln.ref or ''}")
            )
            if named:
                return named[0]
        same = candidates.filtered(
            lambda ln: not self.currency_id.compare_amounts(ln.amount, self.net_amount)
        )
        if self.date:
            same = same.sorted(lambda ln: (abs((ln.date - self.date).days), ln.id))
        return same[:1]

    def _reconcile_bank_line(self):
        """Replace the suspense line of the bank line's entry by the payout's
        counterparts, then reconcile each with its payment's line (Odoo's
        reconcile)."""
        self.ensure_one()
        st_line = self.bank_line_id
        move = st_line.move_id
        _liquidity, suspense, other = st_line._seek_for_lines()
        counterparts = self.line_ids._counterparts()
        fees = self.line_ids.filtered(lambda ln: ln.fee)
        if fees:
            counterparts.append(
                (
                    {
                        "name": self.env._("Fees of %(name)s", name=self.name),
                        "account_id": self.backend_id._finance_fee_account(self.source).id,
                        "balance": sum(fees.mapped("fee")),
                    },
                    None,
                )
            )
        currency = self.currency_id
        commands = [Command.unlink(line.id) for line in suspense]
        for values, _target in counterparts:
            commands.append(
                Command.create(
                    {
                        **values,
                        "currency_id": currency.id,
                        "amount_currency": values["balance"],
                    }
                )
            )
        before = move.line_ids
        move.button_draft()
        move.with_context(skip_readonly_check=True).write({"line_ids": commands})
        move.action_post()
        created = (move.line_ids - before - other).sorted("id")
        by_target = {}
        for line, (_values, target) in zip(created, counterparts, strict=True):
            if target:
                by_target[target] = by_target.get(target, target) | line
        # One reconcile per payment line: a POS session's combined card
        # payment takes the day's charges and refunds of this payout at once.
        for lines in by_target.values():
            lines.reconcile()


class FinanceSettlementLine(models.Model):
    _name = "finance.settlement.line"
    _description = "Payment Provider Settlement Line"
    _order = "settlement_id, sequence, id"

    settlement_id = fields.Many2one(
        "finance.settlement", required=True, ondelete="cascade", index=True, readonly=True
    )
    company_id = fields.Many2one(related="settlement_id.company_id", store=True)
    currency_id = fields.Many2one(related="settlement_id.currency_id")
    sequence = fields.Integer(readonly=True)
    row_key = fields.Char(
        required=True,
        readonly=True,
        help="What tells this booking apart from the others of its payment (its type "
        "and its own reference): several bookings of one payment never collide.",
    )
    kind = fields.Selection(LINE_KINDS, required=True, readonly=True)
    reference = fields.Char(
        readonly=True,
        index=True,
        help="The payment's reference: the merchant reference typed at the till, the "
        "Shopify order name.",
    )
    psp_reference = fields.Char(string="Provider reference", readonly=True)
    modification_reference = fields.Char(readonly=True)
    payment_method = fields.Char(readonly=True)
    booked_at = fields.Char(
        string="Booked", readonly=True, help="As the provider gives it, in its time zone."
    )
    gross = fields.Monetary(readonly=True)
    fee = fields.Monetary(readonly=True)
    net = fields.Monetary(readonly=True)
    gross_currency = fields.Char(
        string="Paid in", readonly=True, help="The currency the customer paid in."
    )
    gross_original = fields.Float(
        string="Paid", readonly=True, help="The gross in the currency the customer paid in."
    )
    sale_order_name = fields.Char(
        string="Sale order", readonly=True, help="The Odoo order the payment is of, when known."
    )
    source_model = fields.Char(readonly=True)
    source_res_id = fields.Many2oneReference(
        string="Provider record",
        model_field="source_model",
        readonly=True,
        help="The record the line was read from (a Shopify balance transaction).",
    )
    state = fields.Selection(LINE_STATES, default="to_match", required=True, readonly=True)
    reason = fields.Char(readonly=True)
    payment_id = fields.Many2one(
        "account.payment", string="Odoo payment", readonly=True, index="btree_not_null"
    )
    matched_model = fields.Char(readonly=True)
    matched_res_id = fields.Many2oneReference(
        string="Matched record", model_field="matched_model", readonly=True
    )
    matched_name = fields.Char(string="Matched", readonly=True)
    move_line_id = fields.Many2one(
        "account.move.line",
        string="Payment journal item",
        readonly=True,
        help="The line of the payment's entry the settlement line is reconciled with.",
    )
    reconciled = fields.Boolean(related="move_line_id.reconciled")

    _row_uniq = models.Constraint(
        "UNIQUE (settlement_id, row_key)", "This booking is already stored in the settlement."
    )

    def _kind_label(self):
        return dict(self._fields["kind"]._description_selection(self.env))[self.kind]

    def _match(self):
        """Find what each line pays: the Odoo payment of its reference
        (charges and refunds), the account it is booked to (fees,
        chargebacks). Matched lines are left as they are."""
        for line in self.filtered(lambda ln: ln.state != "matched"):
            line.write(line._find_match())

    def _find_match(self):
        self.ensure_one()
        backend = self.settlement_id.backend_id
        currency = self.currency_id
        if self.kind == "fee":
            if backend._finance_fee_account(self.settlement_id.source):
                return {"state": "matched", "reason": False}
            return self._unmatched(
                self.env._("no fee account: choose it on the accounting system backend")
            )
        if self.kind == "chargeback":
            if backend.finance_chargeback_account_id:
                return {"state": "matched", "reason": False}
            return self._unmatched(
                self.env._("no chargeback account: choose it on the accounting system backend")
            )
        if self.kind == "adjustment":
            return self._unmatched(self.env._("an adjustment of the provider: book it by hand"))
        if not self.reference:
            return self._unmatched(self.env._("the provider gives no reference"))
        amount = abs(self.gross)
        inbound = self.kind == "charge"
        payment, reason = self._find_payment(amount, inbound)
        if payment:
            line = payment._seek_for_lines()[0][:1]
            return {
                "state": "matched",
                "reason": False,
                "payment_id": payment.id,
                "matched_model": "account.payment",
                "matched_res_id": payment.id,
                "matched_name": payment.display_name,
                "move_line_id": line.id,
            }
        pos_payment, pos_line, pos_reason = self._find_pos_payment(amount, inbound)
        if pos_line:
            return {
                "state": "matched",
                "reason": False,
                "matched_model": "pos.payment",
                "matched_res_id": pos_payment.id,
                "matched_name": pos_payment.display_name,
                "move_line_id": pos_line.id,
            }
        return self._unmatched(
            pos_reason
            or reason
            or self.env._(
                "no Odoo %(what)s of %(amount)s has the reference %(reference)s",
                what=self.env._("payment") if inbound else self.env._("refund"),
                amount=currency.format(amount),
                reference=self.reference,
            )
        )

    def _unmatched(self, reason):
        return {
            "state": "unmatched",
            "reason": reason,
            "payment_id": False,
            "matched_model": False,
            "matched_res_id": False,
            "matched_name": False,
            "move_line_id": False,
        }

    def _references(self):
        """The references an Odoo payment of this line may carry."""
        self.ensure_one()
        references = [self.reference]
        if self.settlement_id.source == "shopify" and self.sale_order_name:
            references.append(self.sale_order_name)
        return references

    def _find_payment(self, amount, inbound):
        """The posted Odoo payment of this reference, direction and amount,
        not reconciled yet; else None and why (a payment of another amount,
        one reconciled already)."""
        references = self._references()
        domain = [
            ("company_id", "=", self.company_id.id),
            ("payment_type", "=", "inbound" if inbound else "outbound"),
            ("state", "not in", ("draft", "canceled", "rejected")),
        ]
        payments = self.env["account.payment"].search(
            [*domain, "|", ("memo", "in", references), ("payment_reference", "in", references)],
            order="date, id",
        )
        linked = self._linked_payments(inbound)
        if linked:
            payments = linked.filtered_domain(domain).sorted(lambda p: (p.date, p.id)) | payments
        taken = (
            self.search([("payment_id", "in", payments.ids), ("id", "!=", self.id)]).payment_id
            if payments
            else payments
        )
        currency = self.currency_id
        reason = None
        for payment in payments - taken:
            line = payment._seek_for_lines()[0][:1]
            if currency.compare_amounts(payment.amount, amount):
                reason = self.env._(
                    "%(payment)s has the reference but is of %(theirs)s, the provider "
                    "settled %(ours)s",
                    payment=payment.display_name,
                    theirs=currency.format(payment.amount),
                    ours=currency.format(amount),
                )
                continue
            if not line or line.reconciled or not line.account_id.reconcile:
                reason = self.env._(
                    "%(payment)s has the reference but is reconciled already",
                    payment=payment.display_name,
                )
                continue
            return payment, None
        return None, reason

    def _linked_payments(self, inbound):
        """The payments the provider's own record leads to, read through the
        registry (connector_finance depends on no sales channel): a Shopify
        balance transaction's order pays with the order binding's payment,
        and refunds with its refund bindings' payments."""
        Payment = self.env["account.payment"]
        if not self.source_model or self.source_model not in self.env:
            return Payment
        record = self.env[self.source_model].browse(self.source_res_id).exists()
        binding = record["order_binding_id"] if "order_binding_id" in record._fields else None
        if not binding:
            return Payment
        if inbound:
            return binding["payment_id"] if "payment_id" in binding._fields else Payment
        if "shopify.refund.binding" not in self.env:
            return Payment
        refunds = self.env["shopify.refund.binding"].search([("order_binding_id", "=", binding.id)])
        return refunds.payment_ids

    def _find_pos_payment(self, amount, inbound):
        """A POS card payment whose transaction id is the reference (when the
        point of sale is installed), with the line of its session's entry to
        reconcile: ``(pos payment, line, reason)``."""
        if "pos.payment" not in self.env:
            return None, None, None
        PosPayment = self.env["pos.payment"]
        candidates = PosPayment.search(
            [
                ("transaction_id", "=", self.reference),
                ("company_id", "=", self.company_id.id),
                ("amount", ">" if inbound else "<", 0),
            ],
            order="id",
        )
        if not candidates:
            return None, None, None
        currency = self.currency_id
        # A card payment refunded in several returns: one reference, a POS
        # payment per return. Each row takes the one of its amount that no
        # other row took.
        taken = set(
            self.search(
                [
                    ("matched_model", "=", "pos.payment"),
                    ("matched_res_id", "in", candidates.ids),
                    ("id", "!=", self.id),
                ]
            ).mapped("matched_res_id")
        )
        free = candidates.filtered(lambda p: p.id not in taken)
        found = (
            free.filtered(lambda p: not currency.compare_amounts(abs(p.amount), amount))[:1]
            or free[:1]
            or candidates[:1]
        )
        if currency.compare_amounts(abs(found.amount), amount):
            return (
                found,
                None,
                self.env._(
                    "the POS payment %(payment)s is of %(theirs)s, the acquirer settled %(ours)s",
                    payment=found.display_name,
                    theirs=currency.format(abs(found.amount)),
                    ours=currency.format(amount),
                ),
            )
        line = _pos_payment_line(found, amount, currency)
        if not line:
            return (
                found,
                None,
                self.env._(
                    "the POS payment %(payment)s is not in the accounts yet: close its "
                    "session %(session)s",
                    payment=found.display_name,
                    session=found.session_id.name,
                ),
            )
        return found, line, None

    def _counterparts(self):
        """``[(line values, payment's line to reconcile with or None)]`` of
        the charges, refunds and chargebacks: each takes its gross off the
        suspense line."""
        result = []
        for line in self.filtered(lambda ln: ln.kind in ("charge", "refund", "chargeback")):
            if line.kind == "chargeback":
                account = line.settlement_id.backend_id.finance_chargeback_account_id
                target = None
            else:
                target = line.move_line_id
                account = target.account_id
            result.append(
                (
                    {
                        "name": f"{line._kind_label()} {line.reference or line.psp_reference}",
                        "account_id": account.id,
                        "partner_id": target.partner_id.id if target else False,
                        "balance": -line.gross,
                    },
                    target,
                )
            )
        return result


def _pos_payment_line(pos_payment, amount, currency):
    """The journal item a POS card payment is in: its own entry's when its
    method splits the transactions, else the session's combined payment of
    its method (one line for the day's card payments, reconciled in full once
    every one is settled)."""
    method = pos_payment.payment_method_id
    account = method.outstanding_account_id
    own = _open_line(pos_payment.account_move_id.line_ids, account, amount, currency)
    if own or pos_payment.account_move_id:
        return own
    combined = pos_payment.session_id.bank_payment_ids.filtered(
        lambda p: p.pos_payment_method_id == method and p.state != "canceled"
    )
    return _open_line(combined.move_id.line_ids, account, amount, currency)


def _open_line(lines, account, amount, currency):
    """The line of ``lines`` on ``account`` (any reconcilable one when
    empty) with ``amount`` (or more) left to reconcile."""
    return lines.filtered(
        lambda ln: (
            ln.account_id.reconcile
            and not ln.reconciled
            and (not account or ln.account_id == account)
            and currency.compare_amounts(abs(ln.amount_residual), amount) >= 0
        )
    )[:1]
