from odoo import fields, models
from odoo.exceptions import UserError


class AccountMove(models.Model):
    _inherit = "account.move"

    finance_export_link_ids = fields.One2many(
        "finance.export.move", "move_id", string="Accounting system batches", readonly=True
    )
    finance_export_id = fields.Many2one(
        "finance.export",
        string="Exported in",
        compute="_compute_finance_export_id",
        help="The batch this entry went (or goes) to the accounting system in.",
    )
    finance_export_state = fields.Char(string="Export state", compute="_compute_finance_export_id")

    def _compute_finance_export_id(self):
        for move in self:
            batch = move.sudo().finance_export_link_ids[:1].export_id
            move.finance_export_id = batch
            move.finance_export_state = batch and dict(
                batch._fields["state"]._description_selection(self.env)
            ).get(batch.state)

    def action_view_finance_export(self):
        """The batch this entry went to the accounting system in."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "finance.export",
            "res_id": self.finance_export_id.id,
            "view_mode": "form",
        }

    def button_draft(self):
        """An entry in a batch for the accounting system is not changed under
        it: an exported one is corrected by a reversal (exported as an entry
        of its own), one waiting to go by cancelling its batch first."""
        for move in self:
            batch = move.sudo().finance_export_link_ids[:1].export_id
            if not batch:
                continue
            if batch.state == "exported":
                raise UserError(
                    self.env._(
                        "%(entry)s was exported to the accounting system in %(batch)s: "
                        "reverse it (the reversal is exported as an entry of its own) instead "
                        "of changing it.",
                        entry=move.display_name,
                        batch=batch.name,
                    )
                )
            raise UserError(
                self.env._(
                    "%(entry)s is in %(batch)s (%(state)s) for the accounting system: cancel "
                    "that batch first, then change the entry; it goes out again in the next "
                    "run.",
                    entry=move.display_name,
                    batch=batch.name,
                    state=batch.state,
                )
            )
        return super().button_draft()

    def _finance_refunded_moves(self, move):
        """The entries ``move`` refunds or reverses, which the accounting system
        must have first: the entry a reversal or a credit note reverses, and
        for a refund paid out to a customer, the payments of the invoices its
        credit notes refund."""
        refunded = move.reversed_entry_id
        payment = move.origin_payment_id
        if payment and payment.payment_type == "outbound" and payment.partner_type == "customer":
            credit_notes = move._get_reconciled_invoices().filtered(
                lambda m: m.move_type == "out_refund"
            )
            invoices = credit_notes.reversed_entry_id
            refunded |= credit_notes | invoices
            refunded |= invoices._get_reconciled_amls().move_id.filtered(
                lambda m: m.origin_payment_id and m.origin_payment_id.payment_type == "inbound"
            )
        return refunded.filtered(lambda m: m.state == "posted")

    def _finance_pos_sessions(self, move):
        """The store days (POS sessions) ``move`` belongs to, when the Point of
        Sale is installed (this module does not depend on it)."""
        sessions = None
        for field, path in (
            ("pos_session_ids", "pos_session_ids"),
            ("pos_order_ids", "pos_order_ids.session_id"),
            ("pos_payment_ids", "pos_payment_ids.session_id"),
            ("pos_session_id", "pos_session_id"),
        ):
            if field in move._fields:
                found = move.mapped(path)
                sessions = found if sessions is None else sessions | found
        return sessions if sessions is not None else []
