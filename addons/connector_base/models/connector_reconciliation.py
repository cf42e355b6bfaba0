from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from .connector_backend import JOB_MAX_RETRIES

# Backends whose remote is compared: a draft or paused one is left alone.
RECONCILED_STATES = ("running", "circuit_open")


class ConnectorBackend(models.Model):
    """The reconciliations of a backend: declared by its connector, run on
    schedule and on demand, their open mismatches counted for the overview."""

    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    reconciliation_open_count = fields.Integer(
        string="Open mismatches", compute="_compute_reconciliation_open_count"
    )

    def _connector_reconciliations(self):
        """Reconciliations of this backend's type.

        ``{kind: Reconciliation}``; connectors extend it for their type (see
        ``components/reconciliation.py``).
        """
        self.ensure_one()
        return {}

    def _get_reconciliation(self, kind):
        """The declaration of ``kind``, or a UserError naming what is known."""
        self.ensure_one()
        declarations = self._connector_reconciliations()
        declaration = declarations.get(kind)
        if declaration is None:
            raise UserError(
                self.env._(
                    "Backend %(backend)s has no reconciliation %(kind)r. Known "
                    "reconciliations: %(known)s.",
                    backend=self.display_name,
                    kind=kind,
                    known=", ".join(sorted(declarations)) or "none",
                )
            )
        return declaration

    def _reconciliation_open_counts(self):
        """Open mismatches per backend: ``{backend_id: count}`` (0 included),
        one aggregation for all the tiles of the overview."""
        counts = dict(
            self.env["connector.reconciliation.mismatch"]._read_group(
                [("backend_id", "in", self.ids), ("state", "=", "open")],
                ["backend_id"],
                ["__count"],
            )
        )
        return {backend.id: counts.get(backend, 0) for backend in self}

    def _compute_reconciliation_open_count(self):
        counts = self._reconciliation_open_counts()
        for backend in self:
            backend.reconciliation_open_count = counts.get(backend.id, 0)

    def _reconcile_later(self, kind, day=None):
        """Queue the run of ``kind`` (of ``day`` for a daily one: a date; the
        day before when None) and return it. A run of the same kind and
        window still queued or running is returned instead of a second one."""
        self.ensure_one()
        declaration = self._get_reconciliation(kind)
        if self.state not in RECONCILED_STATES:
            raise UserError(
                self.env._(
                    "Backend %(backend)s is %(state)s: start it before reconciling it.",
                    backend=self.display_name,
                    state=dict(self._fields["state"]._description_selection(self.env))[
                        self.state
                    ].lower(),
                )
            )
        if declaration.period == "day" and day is None:
            day = (fields.Datetime.now() - timedelta(days=1)).date()
        if day and declaration.period == "day" and day > fields.Date.context_today(self):
            raise UserError(
                self.env._(
                    "%(day)s has not come yet: pick a past day or today.", day=day.isoformat()
                )
            )
        start, end = declaration.window(day)
        Run = self.env["connector.reconciliation.run"].sudo()
        run = Run.search(
            [
                ("backend_id", "=", self.id),
                ("kind", "=", kind),
                ("window_start", "=", start),
                ("state", "in", ("queued", "running")),
            ],
            limit=1,
        )
        if run and run._job_alive():
            return run
        if run:
            # Its job died without a word (a worker killed, an unexpected
            # error rolled the run back to queued): say so, and run anew.
            run.write(
                {
                    "state": "failed",
                    "error_message": self.env._(
                        "The job of this run ended without recording it; see Connectors > "
                        "Configuration > Jobs. A new run replaces it."
                    ),
                }
            )
        run = Run.create(
            {
                "backend_id": self.id,
                "kind": kind,
                "kind_label": declaration.label,
                "window_start": start,
                "window_end": end,
            }
        )
        # As every framework job: as the backend's connector user (what the
        # fix later makes is the connector's), in superuser mode.
        run.with_user(self._connector_user()).sudo().with_delay(
            max_retries=JOB_MAX_RETRIES,
            identity_key=run._job_identity(),
            description=f"{self.name}: {declaration.label}",
        )._execute()
        return run

    @api.model
    def _cron_reconcile(self):
        """Scheduled: every declared reconciliation of every running backend,
        each its own queue job (the daily ones compare the day before), but
        those whose flow is turned off."""
        for backend in self.search([("state", "in", RECONCILED_STATES)]):
            for kind, declaration in backend._connector_reconciliations().items():
                if declaration.flow and not backend._policy(declaration.flow).enabled:
                    continue
                backend._reconcile_later(kind)

    def action_reconcile(self):
        """Open the wizard that starts a reconciliation now."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_base.action_connector_reconciliation_wizard"
        )
        action["context"] = {"default_backend_id": self.id}
        return action

    def action_view_mismatches(self):
        """This backend's open mismatches."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_base.action_connector_reconciliation_mismatch"
        )
        action["domain"] = [("backend_id", "=", self.id)]
        action["context"] = {"search_default_open": 1}
        return action
