import logging

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..components.http_client import RemoteError
from ..components.reconciliation import Comparison

_logger = logging.getLogger(__name__)

RUN_STATES = [
    ("queued", "Queued"),
    ("running", "Running"),
    ("done", "Done"),
    ("failed", "Failed"),
]


class ConnectorReconciliationRun(models.Model):
    """One comparison of Odoo with a backend's remote: which kind, which
    window, when, and what it found.

    Read-only to every group: runs are started through the backend's
    actions (and the daily cron) and recorded by the framework.
    """

    _name = "connector.reconciliation.run"
    _description = "Connector Reconciliation Run"
    _order = "id desc"
    _rec_name = "display_name"

    backend_id = fields.Many2one(
        "connector.backend", required=True, ondelete="cascade", index=True, readonly=True
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    kind = fields.Char(required=True, readonly=True, index=True)
    kind_label = fields.Char(string="Reconciliation", readonly=True)
    window_start = fields.Datetime(
        readonly=True, help="Start of the period compared (UTC); empty: a snapshot of now."
    )
    window_end = fields.Datetime(readonly=True, help="End of the period compared (excluded).")
    started_at = fields.Datetime(readonly=True)
    finished_at = fields.Datetime(readonly=True)
    state = fields.Selection(RUN_STATES, default="queued", required=True, readonly=True)
    error_message = fields.Text(readonly=True)
    compared_count = fields.Integer(string="Compared", readonly=True)
    matched_count = fields.Integer(string="Matched", readonly=True)
    mismatched_count = fields.Integer(string="Mismatched", readonly=True)
    fixed_count = fields.Integer(
        string="Fixed",
        compute="_compute_fixed_count",
        help="Mismatches this run found that were fixed since.",
    )
    mismatch_ids = fields.One2many("connector.reconciliation.mismatch", "run_id", readonly=True)

    _backend_kind_index = models.Index("(backend_id, kind, id DESC)")

    @api.depends("kind_label", "backend_id", "window_start", "started_at")
    def _compute_display_name(self):
        for run in self:
            when = run.window_start.date() if run.window_start else run.started_at
            run.display_name = (
                f"{run.kind_label or run.kind}: {run.backend_id.name} ({when or '-'})"
            )

    def _compute_fixed_count(self):
        counts = dict(
            self.env["connector.reconciliation.mismatch"]._read_group(
                [("run_id", "in", self.ids), ("fixed", "=", True)], ["run_id"], ["__count"]
            )
        )
        for run in self:
            run.fixed_count = counts.get(run, 0)

    def action_view_mismatches(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_base.action_connector_reconciliation_mismatch"
        )
        action["domain"] = [("run_id", "=", self.id)]
        action["context"] = {}
        return action

    # --- the job ----------------------------------------------------------------

    def _job_identity(self):
        return f"connector.reconcile-{self.id}"

    def _job_alive(self):
        """Whether the job of this queued or running run may still run it."""
        self.ensure_one()
        return bool(
            self.env["queue.job"]
            .sudo()
            .search_count(
                [
                    ("identity_key", "=", self._job_identity()),
                    ("state", "in", ("wait_dependencies", "pending", "enqueued", "started")),
                ],
                limit=1,
            )
        )

    def _execute(self):
        """Compare both sides and record what differs (the queue job).

        A refusal the job cannot retry (the backend stopped, the remote said
        no, a mapping is missing) fails the run with its reason, for support
        staff; a transient remote fault retries the job.
        """
        self.ensure_one()
        run = self.sudo()
        if run.state in ("done", "failed"):
            return "already run"
        backend = self.backend_id
        run.write({"state": "running", "started_at": fields.Datetime.now()})
        try:
            if backend.state not in ("running", "circuit_open"):
                raise UserError(
                    self.env._(
                        "Backend %(backend)s is not running: start it, then reconcile again.",
                        backend=backend.display_name,
                    )
                )
            declaration = backend._get_reconciliation(run.kind)
            with backend._retry_on_remote_fault():
                comparison = getattr(backend, declaration.compare)(self)
        except (UserError, RemoteError) as exc:
            run.write(
                {"state": "failed", "error_message": str(exc), "finished_at": fields.Datetime.now()}
            )
            _logger.info("reconciliation run %s failed: %s", run.id, exc)
            return f"failed: {exc}"
        if not isinstance(comparison, Comparison):
            raise TypeError(f"{declaration.compare} must return a Comparison")
        run._record(comparison)
        return f"{run.compared_count} compared, {run.mismatched_count} mismatched"

    def _record(self, comparison):
        """Keep one mismatch per key: update the open (or accepted) one found
        before, create the new ones, close those that no longer differ."""
        self.ensure_one()
        Mismatch = self.env["connector.reconciliation.mismatch"].sudo()
        known = {
            mismatch.business_key: mismatch
            for mismatch in Mismatch.search(
                [
                    ("backend_id", "=", self.backend_id.id),
                    ("kind", "=", self.kind),
                    ("window_start", "=", self.window_start),
                    ("state", "in", ("open", "accepted")),
                ]
            )
        }
        new_values = []
        seen = set()
        for difference in comparison.differences:
            if difference.key in seen:
                continue  # a compare method listing a key twice: keep the first
            seen.add(difference.key)
            values = {
                "last_run_id": self.id,
                "what": difference.what,
                "odoo_value": difference.odoo_value,
                "remote_value": difference.remote_value,
                "fix_data": difference.fix_data or {},
            }
            mismatch = known.get(difference.key)
            if mismatch:
                mismatch.write(values)
            else:
                new_values.append(
                    {
                        **values,
                        "run_id": self.id,
                        "backend_id": self.backend_id.id,
                        "kind": self.kind,
                        "kind_label": self.kind_label,
                        "window_start": self.window_start,
                        "business_key": difference.key,
                    }
                )
        Mismatch.create(new_values)
        gone = Mismatch.browse(
            [m.id for key, m in known.items() if key not in seen and m.state == "open"]
        )
        gone._resolve(
            self.env._("No longer differs (run %(run)s)", run=self.id), fixed=False, by_run=True
        )
        self.write(
            {
                "state": "done",
                "finished_at": fields.Datetime.now(),
                "compared_count": comparison.compared,
                "mismatched_count": len(seen),
                "matched_count": max(0, comparison.compared - len(seen)),
            }
        )
