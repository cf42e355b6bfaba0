from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..components.journal import idempotency_key

# The outbound topic the batches are sent on (the journals flow).
JOURNAL_TOPIC = "journal.export"

EXPORT_STATES = [
    ("waiting", "Waiting"),
    ("ready", "Queued"),
    ("held", "Held"),
    ("exported", "Exported"),
    ("cancelled", "Cancelled"),
]
HOLD_KINDS = [
    ("unbalanced", "Does not balance"),
    ("unmapped", "Unmapped account or tax"),
    ("locked", "Period locked"),
    ("refused", "Refused by the accounting system"),
]


class FinanceExport(models.Model):
    """One manual journal for the accounting system: a batch of posted Odoo
    journal entries of one journal (one entry, or one day's entries summed
    per account, tax and tracking), its lines, and where it stands.

    Its state is the audit trail: waiting (an earlier batch of its journal,
    the payment it refunds, its store day is not there yet), queued (in the
    outbound queue), held (refused, locally or by the accounting system, with
    the reason), exported (with the remote's journal id), cancelled. A batch
    is sent with an idempotency key of its own and revision: sent again after
    a lost answer, it makes no second journal.
    """

    _name = "finance.export"
    _description = "Journal Export to the Accounting System"
    _inherit = ["mail.thread"]
    _order = "date desc, id desc"

    name = fields.Char(required=True, readonly=True, copy=False, default="/", index=True)
    backend_id = fields.Many2one(
        "connector.backend",
        required=True,
        readonly=True,
        ondelete="restrict",
        index=True,
        domain=[("backend_type", "=", "finance")],
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    journal_id = fields.Many2one("account.journal", required=True, readonly=True, index=True)
    mode = fields.Selection(
        [("entry", "One entry"), ("summary", "Day summarised")], required=True, readonly=True
    )
    date = fields.Date(
        required=True,
        readonly=True,
        tracking=True,
        help="The date of the remote journal: the entries' date, unless a manager moved it "
        "to an open period.",
    )
    entry_date = fields.Date(
        string="Entries' date", required=True, readonly=True, help="The date of the entries."
    )
    state = fields.Selection(
        EXPORT_STATES, default="waiting", required=True, readonly=True, tracking=True, index=True
    )
    hold_kind = fields.Selection(HOLD_KINDS, string="Held for", readonly=True, tracking=True)
    reason = fields.Text(
        readonly=True,
        help="Why the batch waits or is held, in the accounting system's own words when it "
        "refused it.",
    )
    waiting_for_id = fields.Many2one(
        "finance.export",
        string="Waits for",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        help="The batch this one goes after: it is looked at again once that one is exported.",
    )
    locked_until = fields.Date(
        string="Locked until",
        readonly=True,
        help="The lock date the accounting system named when it refused the batch.",
    )
    revision = fields.Integer(
        default=1,
        readonly=True,
        help="Changes when the journal sent changes (a new date, a send after a refusal): "
        "the idempotency key follows it.",
    )
    sent_body = fields.Json(
        readonly=True,
        copy=False,
        help="The journal sent under the current revision: sent again as it was, whatever "
        "changed meanwhile, so that a lost answer is answered with the journal it made.",
    )
    idempotency_key = fields.Char(compute="_compute_idempotency_key")
    remote_id = fields.Char(string="Remote journal id", readonly=True, copy=False, index=True)
    exported_at = fields.Datetime(readonly=True, copy=False)
    line_ids = fields.One2many("finance.export.line", "export_id", string="Lines", readonly=True)
    link_ids = fields.One2many("finance.export.move", "export_id", readonly=True)
    move_ids = fields.Many2many(
        "account.move", compute="_compute_move_ids", string="Journal entries"
    )
    move_count = fields.Integer(compute="_compute_move_ids", string="Entries")
    debit_total = fields.Monetary(compute="_compute_totals", string="Debits")
    credit_total = fields.Monetary(compute="_compute_totals", string="Credits")
    outbound_id = fields.Many2one(
        "connector.outbound", compute="_compute_outbound_id", string="Outgoing change"
    )

    _name_uniq = models.Constraint(
        "UNIQUE (backend_id, name)", "This batch number is already used for this backend."
    )
    _held_has_kind = models.Constraint(
        "CHECK (state != 'held' OR hold_kind IS NOT NULL)", "A held batch says what holds it."
    )
    _exported_has_id = models.Constraint(
        "CHECK (state != 'exported' OR remote_id IS NOT NULL)",
        "An exported batch has the accounting system's journal id.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("name", "/") == "/":
                vals["name"] = self.env["ir.sequence"].next_by_code("finance.export") or "/"
        return super().create(vals_list)

    def _compute_idempotency_key(self):
        database = self.env["ir.config_parameter"].sudo().get_param("database.uuid", "")[:8]
        for batch in self:
            batch.idempotency_key = batch.id and idempotency_key(database, batch.id, batch.revision)

    @api.depends("link_ids.move_id")
    def _compute_move_ids(self):
        for batch in self:
            batch.move_ids = batch.link_ids.move_id
            batch.move_count = len(batch.link_ids)

    @api.depends("line_ids.amount")
    def _compute_totals(self):
        for batch in self:
            amounts = batch.line_ids.mapped("amount")
            batch.debit_total = sum(a for a in amounts if a > 0)
            batch.credit_total = -sum(a for a in amounts if a < 0)

    def _compute_outbound_id(self):
        for batch in self:
            batch.outbound_id = (
                self.env["connector.outbound"]
                .sudo()
                .search(
                    [
                        ("backend_id", "=", batch.backend_id.id),
                        ("res_model", "=", self._name),
                        ("res_id", "=", batch.id),
                    ],
                    order="id desc",
                    limit=1,
                )
            )

    # --- states --------------------------------------------------------------------

    def _hold(self, kind, reason, locked_until=None):
        """Held with ``reason``; returned for the outbound change's failure."""
        self.write(
            {
                "state": "held",
                "hold_kind": kind,
                "reason": reason,
                "locked_until": locked_until,
                "waiting_for_id": False,
            }
        )
        return reason

    def _wait(self, reason, blocker):
        """Waiting for ``blocker`` with ``reason``. A batch that waits already
        so is not written again: every export run looks at the waiting ones,
        and a write for nothing would clash with the sender's."""
        values = {
            "state": "waiting",
            "hold_kind": False,
            "reason": reason,
            "waiting_for_id": blocker.id,
        }
        for batch in self:
            seen = (batch.state, batch.hold_kind, batch.reason, batch.waiting_for_id)
            if seen != ("waiting", False, reason, blocker):
                batch.write(values)

    def _queue(self):
        """Into the outbound queue of the journals flow (a held batch's failed
        change is sent again)."""
        for batch in self:
            failed = batch.outbound_id.filtered(lambda o: o.state == "failed")
            batch.write(
                {"state": "ready", "hold_kind": False, "reason": False, "waiting_for_id": False}
            )
            if failed:
                failed.sudo().write({"state": "pending", "retry_count": 0, "error_message": False})
                failed.sudo()._audit(
                    "requeue", self.env._("Batch %(batch)s released.", batch=batch.name)
                )
                batch.backend_id._schedule_outbound_flush(JOURNAL_TOPIC)
            else:
                batch.backend_id._send_later_here(
                    JOURNAL_TOPIC, [(f"export:{batch.id}", {"export_id": batch.id}, batch)]
                )

    # --- actions of finance staff -------------------------------------------------

    def _check_manager(self):
        if not (
            self.env.user.has_group("connector_base.group_connector_manager")
            or self.env.user.has_group("account.group_account_manager")
        ):
            raise UserError(
                self.env._("Only a connector manager or an accounting manager may do this.")
            )

    def action_requeue(self):
        """Send held batches again (once the mapping or the cause is fixed), and
        look again whether waiting ones may go."""
        self._check_manager()
        batches = self.filtered(lambda b: b.state in ("held", "waiting"))
        if not batches:
            raise UserError(self.env._("Only held or waiting batches can be sent again."))
        for batch in batches:
            batch.message_post(body=self.env._("Sent again by %(user)s.", user=self.env.user.name))
        batches.sudo()._release()
        # The outbox is the framework's: an accounting manager only asks.
        for backend in batches.sudo().backend_id:
            backend._flush_pending(JOURNAL_TOPIC)
        return True

    def _release(self):
        """Queue the batches that may go now; the others wait with the reason."""
        for batch in self.sorted(lambda b: (b.date, b.id)):
            reason, blocker = batch._waiting_for()
            if reason:
                batch._wait(reason, blocker)
            else:
                batch._queue()

    def action_cancel(self):
        """Drop batches that were not exported: their entries go out again in
        the next run, built as they are then."""
        self._check_manager()
        batches = self.filtered(lambda b: b.state in ("waiting", "held"))
        if len(batches) != len(self):
            raise UserError(
                self.env._(
                    "Only waiting or held batches can be cancelled: a queued one may be "
                    "on its way, an exported one is reversed in Odoo instead."
                )
            )
        for batch in batches.sudo():
            batch.message_post(
                body=self.env._(
                    "Cancelled by %(user)s; its entries %(entries)s go out in the next run.",
                    user=self.env.user.name,
                    entries=", ".join(batch.move_ids.mapped("name")),
                )
            )
            failed = batch.outbound_id.filtered(lambda o: o.state == "failed")
            failed.write({"state": "cancelled"})
            batch.link_ids.unlink()
            batch.write({"state": "cancelled", "hold_kind": False})
        return True

    def action_move_to_open_date(self):
        """Date a batch held by a lock date on the first day both the
        accounting system and Odoo have open, and send it: the manager's
        release of a batch whose period stays closed. Audited in the chatter."""
        self._check_manager()
        # The backend and the outbox are the connector's: the manager asks.
        for batch in self.sudo():
            if batch.state != "held" or batch.hold_kind != "locked":
                raise UserError(
                    self.env._(
                        "%(batch)s is not held by a lock date: only such a batch is moved "
                        "to an open date.",
                        batch=batch.name,
                    )
                )
            backend = batch.backend_id.sudo()
            backend._finance_read_organisation()
            new_date = batch._first_open_date()
            old_date = batch.date
            batch.sudo().write(
                {"date": new_date, "revision": batch.revision + 1, "sent_body": False}
            )
            batch.message_post(
                body=self.env._(
                    "Moved by %(user)s from %(old)s to %(new)s, the first date open in the "
                    "accounting system and in Odoo.",
                    user=self.env.user.name,
                    old=old_date,
                    new=new_date,
                )
            )
            batch._release()
            backend._flush_pending(JOURNAL_TOPIC)
        return True

    def _first_open_date(self):
        """The first date after the accounting system's lock dates and Odoo's
        (fiscal, hard, the journal's sales or purchase lock, the tax lock when
        the batch carries taxes), and not before the batch's own."""
        self.ensure_one()
        locks = [self.backend_id._finance_lock_date(), *self._odoo_lock_dates()]
        latest = max(filter(None, locks), default=None)
        return max(self.date, latest + timedelta(days=1)) if latest else self.date

    def _odoo_lock_dates(self):
        company = self.company_id.with_context(ignore_exceptions=True)
        dates = [company._get_user_fiscal_lock_date(self.journal_id, ignore_exceptions=True)]
        if self.line_ids.tax_id:
            dates.append(company.user_tax_lock_date)
        return [d for d in dates if d and d > fields.Date.to_date("1900-01-01")]

    def action_view_moves(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Entries of %(batch)s", batch=self.name),
            "res_model": "account.move",
            "view_mode": "list,form",
            "domain": [("id", "in", self.move_ids.ids)],
        }

    # --- sequencing -------------------------------------------------------------------

    def _waiting_for(self):
        """``(reason, batch)``: why the batch may not go yet, and the batch it
        waits for when it is one (the batch just before it in its journal not
        exported, the batch of an entry it refunds); ``(None, empty)`` when it
        may go. Each batch waits for one other, so that an export wakes its
        follower only (a chain, not everyone waiting)."""
        self.ensure_one()
        none = self.browse()
        earlier = self.search(
            [
                ("backend_id", "=", self.backend_id.id),
                ("journal_id", "=", self.journal_id.id),
                ("state", "in", ("waiting", "ready", "held")),
                ("id", "!=", self.id),
                "|",
                ("date", "<", self.date),
                "&",
                ("date", "=", self.date),
                ("id", "<", self.id),
            ],
            order="date desc, id desc",
            limit=1,
        )
        if earlier:
            return self.env._(
                "Waits for %(batch)s of %(date)s, the earlier batch of journal %(journal)s "
                "(%(state)s): journals go to the accounting system in date order.",
                batch=earlier.name,
                date=earlier.date,
                journal=self.journal_id.name,
                state=dict(EXPORT_STATES)[earlier.state].lower(),
            ), earlier
        moves = self.move_ids
        for move in moves:
            for refunded in self.env["account.move"]._finance_refunded_moves(move) - moves:
                reason, blocker = self._not_exported(refunded)
                if reason:
                    return self.env._(
                        "Waits for %(entry)s, which %(refund)s refunds: %(why)s.",
                        entry=refunded.display_name,
                        refund=move.display_name,
                        why=reason,
                    ), blocker
            for session in self.env["account.move"]._finance_pos_sessions(move):
                if session.state != "closed":
                    return self.env._(
                        "Waits for the store day %(session)s to be closed: %(entry)s is of "
                        "that day.",
                        session=session.display_name,
                        entry=move.display_name,
                    ), none
        return None, none

    def _not_exported(self, move):
        """``(reason, batch)``: why the entry ``move`` is not in the accounting
        system yet and its batch, or ``(None, empty)`` when it is there (or
        never goes there through this backend)."""
        backend = self.backend_id
        none = self.browse()
        if (
            move.journal_id not in backend.finance_journal_ids
            or move.company_id != self.company_id
            or (backend.finance_export_from and move.date < backend.finance_export_from)
        ):
            return None, none
        link = self.env["finance.export.move"].search(
            [("backend_id", "=", backend.id), ("move_id", "=", move.id)], limit=1
        )
        if not link:
            return self.env._("it is not in a batch yet"), none
        if link.export_id.state != "exported":
            return self.env._(
                "its batch %(batch)s is %(state)s",
                batch=link.export_id.name,
                state=dict(EXPORT_STATES)[link.export_id.state].lower(),
            ), link.export_id
        return None, none

    def _release_followers(self):
        """After this batch is exported: the batches waiting for it (the next
        one of its journal, refunds of its entries) look again."""
        self.search([("waiting_for_id", "in", self.ids), ("state", "=", "waiting")])._release()


class FinanceExportLine(models.Model):
    """One line of a batch: an Odoo account, tax and tracking, the amount
    (debit positive), and what it became in the accounting system's chart."""

    _name = "finance.export.line"
    _description = "Journal Export Line"
    _order = "export_id, sequence, id"

    export_id = fields.Many2one("finance.export", required=True, ondelete="cascade", index=True)
    sequence = fields.Integer(default=10)
    currency_id = fields.Many2one(related="export_id.currency_id")
    account_id = fields.Many2one("account.account", string="Odoo account", required=True)
    tax_id = fields.Many2one("account.tax", string="Odoo tax")
    analytic_account_ids = fields.Many2many(
        "account.analytic.account",
        "finance_export_line_analytic_rel",
        "line_id",
        "analytic_id",
        string="Analytic accounts",
    )
    amount = fields.Monetary(help="Debit positive, credit negative, in the company's currency.")
    description = fields.Char()
    account_code = fields.Char(string="Remote account", readonly=True)
    tax_type = fields.Char(string="Remote tax type", readonly=True)
    tracking = fields.Char(string="Remote tracking", readonly=True)


class FinanceExportMove(models.Model):
    """Which batch an Odoo journal entry went out in: an entry is in one
    batch per accounting system, never two (the database says so)."""

    _name = "finance.export.move"
    _description = "Journal Entry of a Journal Export"

    export_id = fields.Many2one("finance.export", required=True, ondelete="cascade", index=True)
    backend_id = fields.Many2one("connector.backend", required=True, ondelete="cascade", index=True)
    move_id = fields.Many2one("account.move", required=True, ondelete="restrict", index=True)
    state = fields.Selection(related="export_id.state")

    _move_once = models.Constraint(
        "UNIQUE (backend_id, move_id)",
        "This journal entry is already in a batch for this accounting system: an entry is "
        "exported once.",
    )
