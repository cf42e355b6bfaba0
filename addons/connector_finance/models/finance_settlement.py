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

A store's day books its card payments as one combined payment, net of the
day's returns to cards: the rows of a payout that land on it (a charge and
the same day's refund) are matched and reconciled together, their net
against what the day's payment has left. A payout whose rows are more than
that (the refund came in the next batch) is not reconciled partly: it waits
for the payout that settles the rest, says so, and both are then reconciled
together.

A card acquirer's batch whose refunds, chargebacks and fees are more than
its charges pays nothing: its negative balance is carried to the next batch
(balance transfer rows, a credit in the batch that pays nothing and a debit
in the next one). Such a batch has no bank line; it is matched row by row as
any other and booked in an entry of its own (in the payouts bank journal,
beside the payouts, unless the backend names another journal), its
refunds reconciled with their payments, its fees on the fee account, and
what it owes the acquirer credited to the backend's acquirer balance
account. The next batch books its debit row on that account with its bank
line and reconciles the two: the acquirer balance account is back to zero
once the balance is paid back, and each row is booked once.
"""

import re
from collections import defaultdict
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
    ("transfer", "Balance transfer"),
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
    balance_move_id = fields.Many2one(
        "account.move",
        string="Entry without payout",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="A batch that pays nothing has no bank line: its rows are booked in this entry, "
        "what it owes the acquirer on the acquirer balance account.",
    )

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
        the reasons in ``state_message``). Every line is matched first: a
        payout may be reconciled together with another one of the run."""
        settlements = self.filtered(lambda s: s.state != "reconciled")
        for settlement in settlements:
            settlement.line_ids._match()
        for settlement in settlements:
            if settlement.state == "reconciled":
                continue  # reconciled together with an earlier one
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
        """Reconcile the payout, with the payouts it shares a payment's line
        with when its own rows alone are more than that line has left;
        otherwise say why it waits."""
        self.ensure_one()
        # A balance carried from the previous batch matches once that batch
        # is booked, which may have been a moment ago in this run.
        self.line_ids.filtered(lambda ln: ln.kind == "transfer")._match()
        group, short = self._reconciled_with()
        values, reasons = self._check()
        reasons += self._short_reasons(group, short)
        if reasons:
            self.write({**values, "state": "mismatch", "state_message": "\n".join(reasons)})
            return
        if not values["bank_line_id"] and self._has_payout():
            self.write({**values, "state": "matched", "state_message": self._no_bank_line()})
            return
        # Each payout's bank line, written as it is found: the next one's
        # search leaves it out.
        self.write(values)
        for other in group - self:
            other_values, other_reasons = other._check()
            other_reasons += other._short_reasons(group, short)
            other.write(other_values)
            if other_reasons or (not other_values["bank_line_id"] and other._has_payout()):
                self.write(
                    {
                        **values,
                        "state": "mismatch" if other_reasons else "matched",
                        "state_message": self.env._(
                            "Its rows of %(targets)s are reconciled together with %(other)s, "
                            "which cannot be yet: %(why)s",
                            targets=", ".join(_target_label(t) for t in self._target_totals()),
                            other=other.name,
                            why="\n".join(other_reasons) or other._no_bank_line(),
                        ),
                    }
                )
                return
        pairs = []
        for settlement in group:
            if settlement._has_payout():
                pairs += settlement._book_on_bank_line()
            else:
                pairs += settlement._book_without_payout()
        left = _reconcile_with_targets(pairs)
        for settlement in group:
            notes = settlement._transfer_notes() + [
                self.env._(
                    "%(target)s keeps %(left)s open: the rest of it is settled by a later payout.",
                    target=_target_label(target),
                    left=settlement.currency_id.format(abs(left[target])),
                )
                for target in settlement._target_totals()
                if target in left
            ]
            settlement.write({"state": "reconciled", "state_message": "\n".join(notes) or False})
            settlement._payout_done()

    def _check(self):
        """``(values, reasons)``: the bank line found (in ``values``) and why
        the payout cannot be reconciled as it is (unmatched lines, lines not
        adding up to the payout, another currency, another bank amount)."""
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
        if not self._has_payout():
            # Nothing paid, nothing on the bank: no bank line to look for.
            return {"bank_line_id": False, "bank_amount": 0.0}, reasons
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
        return values, reasons

    def _no_bank_line(self):
        journal = self.backend_id._finance_settlement_journal(self.source)
        if not journal:
            return self.env._(
                "Every line is matched; choose the bank journal the payouts land in on the "
                "backend to reconcile it."
            )
        return self.env._(
            "Every line is matched; the bank line of %(amount)s is not in %(journal)s yet.",
            amount=self.currency_id.format(self.net_amount),
            journal=journal.display_name,
        )

    # --- rows reconciled together on one payment's line ---------------------------

    def _target_totals(self):
        """``{payment's journal item: balance}``: what the charges and refunds
        of these settlements put on each payment's line (the opposite of
        their gross, summed: a charge and its refund on the day's card
        payment net out)."""
        totals = defaultdict(float)
        for line in self.line_ids:
            if line.kind in ("charge", "refund") and line.state == "matched" and line.move_line_id:
                totals[line.move_line_id] -= line.gross
        return {target: self.currency_id.round(amount) for target, amount in totals.items()}

    def _reconciled_with(self):
        """``(settlements, {line: balance})``: this settlement and the open
        ones it must be reconciled together with, and the payment lines their
        rows still do not fit on. A payout whose rows on a line are more than
        it has left (the day's card payment is net of a refund the acquirer
        booked in the next batch) is joined by the other open payouts with
        rows on that line, until every line fits or no payout is left."""
        self.ensure_one()
        group = self
        while True:
            totals = group._target_totals()
            short = {
                target: amount
                for target, amount in totals.items()
                if not _fits(target, amount, self.currency_id)
            }
            others = (
                self.search(
                    [
                        ("backend_id", "=", self.backend_id.id),
                        ("state", "!=", "reconciled"),
                        ("id", "not in", group.ids),
                        ("line_ids.move_line_id", "in", [t.id for t in short]),
                    ]
                )
                if short
                else self.browse()
            )
            if not others:
                return group, short
            group |= others

    def _short_reasons(self, group, short):
        """Why this settlement's rows on the lines of ``short`` wait."""
        mine = self._target_totals()
        return [
            self._short_reason(
                target, amount, (group - self).filtered(lambda s, t=target: t in s._target_totals())
            )
            for target, amount in short.items()
            if target in mine
        ]

    def _short_reason(self, target, amount, others):
        """Why the rows on ``target`` wait: what the line has left, what the
        rows settle, the difference a payout still to come should settle."""
        currency = self.currency_id
        residual = _residual(target, currency)
        sign = -1 if residual < 0 or (not residual and amount > 0) else 1
        left = sign * residual
        settled = -sign * amount
        return self.env._(
            "%(target)s has %(left)s left to settle; the charges and refunds on it of this "
            "payout%(others)s settle %(settled)s (difference %(difference)s). It waits for the "
            "payout that settles the difference (a refund or a charge the acquirer booked in "
            "another batch) and is then reconciled together with it. If none comes, the "
            "store's card payments and the acquirer's differ: check that day's card payments "
            "and returns.",
            target=_target_label(target),
            left=currency.format(left),
            others=self.env._(" and of %(names)s", names=", ".join(others.mapped("name")))
            if others
            else "",
            settled=currency.format(settled),
            difference=currency.format(settled - left),
        )

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

    def _has_payout(self):
        """Whether money reached the bank: an acquirer batch that pays
        nothing (negative, carried to the next batch, or netting to zero)
        has no bank line to reconcile with."""
        self.ensure_one()
        return self.source != "acquirer" or not self.currency_id.is_zero(self.net_amount)

    def _fees_counterpart(self):
        """``[(line values, None)]``: the fees of the payout on the fee account."""
        fees = self.line_ids.filtered(lambda ln: ln.fee)
        if not fees:
            return []
        return [
            (
                {
                    "name": self.env._("Fees of %(name)s", name=self.name),
                    "account_id": self.backend_id._finance_fee_account(self.source).id,
                    "balance": sum(fees.mapped("fee")),
                },
                None,
            )
        ]

    def _book_without_payout(self):
        """Book a batch that pays nothing in an entry of its own, as its bank
        line would have been: each row's counterpart (a refund against its
        payment, a charge against its payment), the fees on the fee account,
        the balance carried to the next batch on the acquirer balance
        account. ``[(counterpart line, payment's line)]`` to reconcile. The
        entry is made once: a batch booked already is not booked again."""
        self.ensure_one()
        if self.balance_move_id:
            raise UserError(
                self.env._(
                    "%(name)s is booked in %(entry)s already.",
                    name=self.name,
                    entry=self.balance_move_id.display_name,
                )
            )
        journal = self.backend_id._finance_balance_journal()
        counterparts = self.line_ids._counterparts() + [
            (values, target, None) for values, target in self._fees_counterpart()
        ]
        currency = self.currency_id
        move = self.env["account.move"].create(
            {
                "move_type": "entry",
                "journal_id": journal.id,
                "date": self.date or fields.Date.context_today(self),
                "ref": self.env._("%(name)s: no payout", name=self.name),
                "line_ids": [
                    Command.create(
                        {**values, "currency_id": currency.id, "amount_currency": values["balance"]}
                    )
                    for values, _target, _line in counterparts
                ],
            }
        )
        move.action_post()
        self.balance_move_id = move
        return self._booked(move.line_ids.sorted("id"), counterparts)

    def _booked(self, created, counterparts):
        """The pairs to reconcile of the counterparts just ``created``; a
        balance carried to the next batch keeps its journal item on its row,
        for the next batch to reconcile with."""
        pairs = []
        for move_line, (_values, target, row) in zip(created, counterparts, strict=True):
            if target:
                pairs.append((move_line, target))
            elif row and row.kind == "transfer":
                row.move_line_id = move_line
        return pairs

    def _transfer_notes(self):
        """What the settlement says of the balances it carries, for finance staff."""
        self.ensure_one()
        currency = self.currency_id
        notes = []
        for row in self.line_ids.filtered(lambda ln: ln.kind == "transfer"):
            if row.net > 0:
                notes.append(
                    self.env._(
                        "No payout: the refunds, chargebacks and fees of this batch are more "
                        "than its charges. Its rows are booked in %(entry)s, each reconciled "
                        "as a payout's would be; the %(amount)s it owes the acquirer is on "
                        "%(account)s until batch %(next)s takes it off its payout.",
                        entry=self.balance_move_id.name,
                        amount=currency.format(row.net),
                        account=row.move_line_id.account_id.display_name,
                        next=row.transfer_batch,
                    )
                )
            else:
                notes.append(
                    self.env._(
                        "The %(amount)s carried from %(other)s (a batch without payout) is "
                        "taken off this batch, reconciled with that batch's on %(account)s.",
                        amount=currency.format(-row.net),
                        other=row.matched_name or row.transfer_batch,
                        account=row.move_line_id.account_id.display_name,
                    )
                )
        if not notes and not self._has_payout() and self.balance_move_id:
            notes.append(
                self.env._(
                    "No payout: the rows of this batch net to nothing. They are booked in "
                    "%(entry)s, each reconciled as a payout's would be.",
                    entry=self.balance_move_id.name,
                )
            )
        return notes

    def _book_on_bank_line(self):
        """Replace the suspense line of the bank line's entry by the payout's
        counterparts: ``[(counterpart line, payment's line)]`` to reconcile."""
        self.ensure_one()
        st_line = self.bank_line_id
        move = st_line.move_id
        _liquidity, suspense, other = st_line._seek_for_lines()
        counterparts = self.line_ids._counterparts() + [
            (values, target, None) for values, target in self._fees_counterpart()
        ]
        currency = self.currency_id
        commands = [Command.unlink(line.id) for line in suspense]
        for values, _target, _row in counterparts:
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
        return self._booked(created, counterparts)


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
    transfer_batch = fields.Integer(
        string="Carried to / from batch",
        readonly=True,
        help="A balance transfer: the acquirer's batch the balance goes to (a credit) or comes "
        "from (a debit).",
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

    def _counterpart_label(self):
        """The label of the line's counterpart in the books."""
        self.ensure_one()
        if self.kind == "transfer":
            return self.env._(
                "Balance carried %(way)s batch %(batch)s",
                way=self.env._("to") if self.net > 0 else self.env._("from"),
                batch=self.transfer_batch,
            )
        return f"{self._kind_label()} {self.reference or self.psp_reference}"

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
        if self.kind == "transfer":
            return self._find_transfer()
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

    def _find_transfer(self):
        """A balance carried between two batches, booked on the backend's
        acquirer balance account: carried to the next batch, it is matched
        (its journal item is made when the batch is booked); carried from
        the previous batch, it is matched to that batch's row once it is
        booked, to reconcile with it."""
        self.ensure_one()
        account = self.settlement_id.backend_id.finance_acquirer_balance_account_id
        if not account:
            return self._unmatched(
                self.env._(
                    "a balance carried between batches and no acquirer balance account: "
                    "choose it on the accounting system backend"
                )
            )
        if not account.reconcile:
            return self._unmatched(
                self.env._(
                    "the acquirer balance account %(account)s does not allow reconciliation: "
                    "allow it",
                    account=account.display_name,
                )
            )
        if self.net > 0:
            return {"state": "matched", "reason": False}
        settlement = self.settlement_id
        previous = self.search(
            [
                ("settlement_id.backend_id", "=", settlement.backend_id.id),
                ("settlement_id.source", "=", settlement.source),
                ("settlement_id.batch_number", "=", self.transfer_batch),
                ("kind", "=", "transfer"),
                ("transfer_batch", "=", settlement.batch_number),
            ],
            limit=1,
        )
        currency = self.currency_id
        if not previous or currency.compare_amounts(previous.net, -self.net):
            return self._unmatched(
                self.env._(
                    "batch %(batch)s carries no balance of %(amount)s to this batch "
                    "(not read yet, or of another amount)",
                    batch=self.transfer_batch,
                    amount=currency.format(-self.net),
                )
            )
        if not previous.move_line_id:
            return self._unmatched(
                self.env._(
                    "the balance carried from %(other)s is not booked yet: it is booked once "
                    "its rows are matched (%(why)s)",
                    other=previous.settlement_id.name,
                    why=previous.settlement_id.state_message or previous.settlement_id.state,
                )
            )
        if previous.move_line_id.reconciled:
            return self._unmatched(
                self.env._(
                    "the balance carried from %(other)s is reconciled already",
                    other=previous.settlement_id.name,
                )
            )
        return {
            "state": "matched",
            "reason": False,
            "payment_id": False,
            "matched_model": self._name,
            "matched_res_id": previous.id,
            "matched_name": previous.settlement_id.name,
            "move_line_id": previous.move_line_id.id,
        }

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
        line, reason = _pos_payment_line(found)
        return found, line, reason

    def _counterparts(self):
        """``[(line values, payment's line to reconcile with or None, row)]``
        of the charges, refunds, chargebacks and balance transfers: each
        takes its gross off the suspense line (a balance carried to the next
        batch is credited to the acquirer balance account, one carried from
        the previous batch debited to it and reconciled with that batch's
        credit)."""
        result = []
        kinds = ("charge", "refund", "chargeback", "transfer")
        for line in self.filtered(lambda ln: ln.kind in kinds):
            if line.kind == "transfer":
                account = line.settlement_id.backend_id.finance_acquirer_balance_account_id
                target = line.move_line_id if line.net < 0 else None
            elif line.kind == "chargeback":
                account = line.settlement_id.backend_id.finance_chargeback_account_id
                target = None
            else:
                target = line.move_line_id
                account = target.account_id
            result.append(
                (
                    {
                        "name": line._counterpart_label(),
                        "account_id": account.id,
                        "partner_id": target.partner_id.id if target else False,
                        "balance": -line.gross,
                    },
                    target,
                    line,
                )
            )
        return result


def _pos_payment_line(pos_payment):
    """``(journal item, reason)``: the line a POS card payment is in, open
    to reconcile: its own entry's when its method splits the transactions,
    else the session's combined payment of its method (one line for the
    day's card payments and returns to cards, reconciled in full once every
    one is settled); else why there is none. What the line has left is
    weighed against all the rows that land on it (see ``_target_totals``)."""
    env = pos_payment.env
    method = pos_payment.payment_method_id
    account = method.outstanding_account_id
    session = pos_payment.session_id
    if pos_payment.account_move_id:
        lines, entry = pos_payment.account_move_id.line_ids, pos_payment.account_move_id
    else:
        combined = session.bank_payment_ids.filtered(
            lambda p: p.pos_payment_method_id == method and p.state != "canceled"
        )
        lines, entry = combined.move_id.line_ids, combined.move_id
    lines = lines.filtered(
        lambda ln: ln.account_id.reconcile and (not account or ln.account_id == account)
    )
    if not lines:
        if session.state != "closed":
            return None, env._(
                "the POS payment %(payment)s is not in the accounts yet: close its "
                "session %(session)s",
                payment=pos_payment.display_name,
                session=session.name,
            )
        return None, env._(
            "the store day %(session)s is closed but books no %(method)s payment to "
            "reconcile with (its card payments net to nothing?): reconcile this row by hand",
            session=session.name,
            method=method.name,
        )
    line = lines.filtered(lambda ln: not ln.reconciled)[:1]
    if not line:
        return None, env._(
            "%(entry)s, where the POS payment %(payment)s is booked, is reconciled in full already",
            entry=entry[:1].display_name,
            payment=pos_payment.display_name,
        )
    return line, None


def _residual(line, currency):
    """What ``line`` has left to reconcile, in ``currency`` when it is its own."""
    if line.currency_id == currency:
        return currency.round(line.amount_residual_currency)
    return currency.round(line.amount_residual)


def _fits(target, amount, currency):
    """Whether a balance of ``amount`` settles ``target`` in full or in part
    without going past it: the same size or less, the other way."""
    if currency.is_zero(amount):
        return True  # a charge and its refund on one line: they cancel out
    residual = _residual(target, currency)
    if target.reconciled or currency.is_zero(residual) or (amount > 0) == (residual > 0):
        return False
    return currency.compare_amounts(abs(amount), abs(residual)) <= 0


def _target_label(target):
    """A payment's line as finance staff know it: the store day's card
    payment by its session, else the payment's entry."""
    move = target.move_id
    payment = move.origin_payment_id
    session = payment["pos_session_id"] if payment and "pos_session_id" in payment._fields else None
    if session:
        return target.env._(
            "%(method)s payment %(payment)s of the store day %(session)s",
            method=payment.pos_payment_method_id.name,
            payment=payment.display_name,
            session=session.name,
        )
    return move.display_name


def _reconcile_with_targets(pairs):
    """Reconcile each payment's line with the counterparts booked for it on
    the payouts' bank lines, all at once; returns ``{line: residual}`` of
    the payment lines left open (the rest of a day settled later).

    The counterparts are reconciled among themselves first (a charge with
    its same-day refund), then what remains with the payment's line: no
    counterpart is left open beside a line that was partly reconciled."""
    left = {}
    if not pairs:
        return left
    Line = pairs[0][0].browse()
    by_target = {}
    for line, target in pairs:
        by_target[target] = by_target.get(target, Line) | line
    for target, lines in by_target.items():
        plan = [lines] if target.reconciled else [[lines, target]]
        Line._reconcile_plan(plan)
        if not target.reconciled:
            left[target] = target.amount_residual
    return left
