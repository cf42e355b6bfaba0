from odoo import fields, models
from odoo.exceptions import AccessError, UserError

MISMATCH_STATES = [
    ("open", "Open"),
    ("resolved", "Resolved"),
    ("accepted", "Accepted"),
]


class ConnectorReconciliationMismatch(models.Model):
    """One business key on which Odoo and a remote disagree, and what was done.

    Open until fixed (the reconciliation's fix, e.g. push Odoo's quantity),
    accepted (a person decides the difference is right), or resolved by a
    later run that no longer finds it. Read-only to every group: support
    staff act through the actions, which record who, when and how in the
    fields below and in the chatter.
    """

    _name = "connector.reconciliation.mismatch"
    _description = "Connector Reconciliation Mismatch"
    _inherit = ["mail.thread"]
    _order = "id desc"
    _rec_name = "business_key"

    run_id = fields.Many2one(
        "connector.reconciliation.run",
        string="Found by",
        required=True,
        ondelete="cascade",
        index=True,
        readonly=True,
    )
    last_run_id = fields.Many2one(
        "connector.reconciliation.run",
        string="Last seen by",
        ondelete="set null",
        readonly=True,
    )
    backend_id = fields.Many2one(
        "connector.backend", required=True, ondelete="cascade", index=True, readonly=True
    )
    backend_type = fields.Selection(related="backend_id.backend_type")
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    kind = fields.Char(required=True, readonly=True)
    kind_label = fields.Char(string="Reconciliation", readonly=True)
    window_start = fields.Datetime(string="Day", readonly=True)
    business_key = fields.Char(
        string="Business key",
        required=True,
        readonly=True,
        index="trigram",
        help="What the mismatch is about: a SKU at a location, an order number...",
    )
    what = fields.Char(string="Difference", readonly=True)
    odoo_value = fields.Char(string="Odoo", readonly=True)
    remote_value = fields.Char(string="Remote", readonly=True)
    fix_data = fields.Json(readonly=True)
    state = fields.Selection(
        MISMATCH_STATES, default="open", required=True, readonly=True, tracking=True, index=True
    )
    resolution = fields.Char(readonly=True, tracking=True)
    resolved_by_id = fields.Many2one("res.users", string="Resolved by", readonly=True)
    resolved_at = fields.Datetime(readonly=True)
    fixed = fields.Boolean(readonly=True, help="Resolved by the reconciliation's fix.")
    fix_label = fields.Char(string="Fix", compute="_compute_fix_label")

    _open_key_uniq = models.UniqueIndex(
        "(backend_id, kind, business_key, COALESCE(window_start, '1970-01-01')) "
        "WHERE state != 'resolved'",
        "This mismatch is already open.",
    )
    _backend_state_index = models.Index("(backend_id, state)")

    def _compute_fix_label(self):
        for mismatch in self:
            declaration = mismatch.backend_id._connector_reconciliations().get(mismatch.kind)
            mismatch.fix_label = declaration.fix_label if declaration and declaration.fix else False

    def _check_user(self):
        if not self.env.user.has_group("connector_base.group_connector_user"):
            raise AccessError(self.env._("Only connector users may act on mismatches."))

    def _resolve(self, how, fixed, by_run=False):
        """Close mismatches with how it was done; the acting user is recorded
        (the framework's own runs close them in their name)."""
        if not self:
            return
        self.sudo().write(
            {
                "state": "resolved",
                "resolution": how,
                "fixed": fixed,
                "resolved_by_id": False if by_run else self.env.user.id,
                "resolved_at": fields.Datetime.now(),
            }
        )
        if not by_run:
            for mismatch in self.sudo():
                mismatch.message_post(
                    body=self.env._("%(how)s, by %(user)s.", how=how, user=self.env.user.name)
                )

    # --- what support staff do -------------------------------------------------

    def action_fix(self):
        """Apply the reconciliation's fix to these mismatches (one or many)."""
        self._check_user()
        mismatches = self.filtered(lambda m: m.state == "open")
        if not mismatches:
            raise UserError(self.env._("Only open mismatches can be fixed."))
        fixed = refused = 0
        first_reason = None
        for (backend, kind), group in mismatches.grouped(lambda m: (m.backend_id, m.kind)).items():
            if backend.state not in ("running", "circuit_open"):
                raise UserError(
                    self.env._(
                        "Backend %(backend)s is not running: start it to fix its mismatches.",
                        backend=backend.display_name,
                    )
                )
            declaration = backend._get_reconciliation(kind)
            if not declaration.fix:
                raise UserError(
                    self.env._(
                        "%(label)s has no automatic fix: correct the data by hand, then accept "
                        "the mismatch or reconcile again.",
                        label=declaration.label,
                    )
                )
            # The framework's rights: support staff only read mismatches and
            # bindings; what they may do is this action.
            reasons = getattr(backend.sudo(), declaration.fix)(group.sudo()) or {}
            done = group.filtered(lambda m, r=reasons: m.id not in r)
            done._resolve(declaration.fix_label, fixed=True)
            for mismatch in group - done:
                first_reason = first_reason or reasons[mismatch.id]
                mismatch.sudo().message_post(
                    body=self.env._(
                        "%(fix)s failed: %(reason)s",
                        fix=declaration.fix_label,
                        reason=reasons[mismatch.id],
                    )
                )
            fixed += len(done)
            refused += len(group) - len(done)
        if refused and not fixed:
            raise UserError(
                self.env._(
                    "The fix failed for every mismatch: %(reason)s",
                    reason=first_reason,
                )
            )
        action = self.env["connector.backend"]._notify(
            self.env._("Mismatches fixed"),
            self.env._(
                "%(fixed)s fixed, %(refused)s refused (see their messages).",
                fixed=fixed,
                refused=refused,
            ),
            kind="warning" if refused else "success",
        )
        # Then show the mismatches as they are now.
        action["params"]["next"] = {"type": "ir.actions.client", "tag": "soft_reload"}
        return action

    def action_accept(self):
        """The difference is right (or will be fixed elsewhere): stop showing it."""
        self._check_user()
        mismatches = self.filtered(lambda m: m.state == "open")
        if not mismatches:
            raise UserError(self.env._("Only open mismatches can be accepted."))
        mismatches.sudo().write(
            {
                "state": "accepted",
                "resolution": self.env._("Accepted by %(user)s", user=self.env.user.name),
                "resolved_by_id": self.env.user.id,
                "resolved_at": fields.Datetime.now(),
            }
        )
        for mismatch in mismatches.sudo():
            mismatch.message_post(
                body=self.env._("Difference accepted by %(user)s.", user=self.env.user.name)
            )
        return True

    def action_reopen(self):
        """An accepted mismatch shown again, to be fixed after all."""
        self._check_user()
        mismatches = self.filtered(lambda m: m.state == "accepted")
        if not mismatches:
            raise UserError(self.env._("Only accepted mismatches can be reopened."))
        mismatches.sudo().write(
            {"state": "open", "resolution": False, "resolved_by_id": False, "resolved_at": False}
        )
        for mismatch in mismatches.sudo():
            mismatch.message_post(body=self.env._("Reopened by %(user)s.", user=self.env.user.name))
        return True
