from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.fields import Domain

TASK_KINDS = [
    ("replay", "Replay window"),
    ("backfill", "Backfill"),
    ("stock_push", "Full stock push"),
    ("catalog_export", "Catalog export"),
]
TASK_STATES = [
    ("running", "Running"),
    ("done", "Done"),
    ("failed", "Done with failures"),
]
# How the rows a task made count towards its outcome.
EVENT_OUTCOME = {
    "done": "done",
    "failed": "failed",
    "ignored": "skipped",
    "duplicate": "skipped",
}
OUTBOUND_OUTCOME = {
    "sent": "done",
    "failed": "failed",
    "cancelled": "skipped",
}
EVENT_PENDING = ("received", "queued", "processing", "waiting")
OUTBOUND_PENDING = ("pending", "sending")


class ConnectorTask(models.Model):
    """A long piece of work on a backend, followed while it runs.

    A backfill, a full stock push, a catalog export or a replay window is
    split into many events or outbound changes, each done by its own job. The
    task links them (``task_id`` on the event or the change) and counts them
    by state when read: the jobs write their own rows only, never the task,
    so two of them finishing at the same moment never contend for it. Only
    the task's planner (the job listing the work, one at a time) writes it,
    to say it has listed everything.
    """

    _name = "connector.task"
    _description = "Connector Task"
    _order = "started_at desc, id desc"

    name = fields.Char(required=True, readonly=True)
    backend_id = fields.Many2one(
        "connector.backend", required=True, ondelete="cascade", index=True, readonly=True
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    kind = fields.Selection(TASK_KINDS, required=True, readonly=True)
    started_at = fields.Datetime(required=True, readonly=True, default=fields.Datetime.now)
    user_id = fields.Many2one(
        "res.users", string="Started by", readonly=True, default=lambda self: self.env.user
    )
    planning = fields.Boolean(
        string="Still listing its work",
        readonly=True,
        help="The task is still reading pages or choosing what to send: its total may grow.",
    )
    skipped_upfront = fields.Integer(
        readonly=True,
        help="Work found with nothing to do when it was listed (a product unchanged since "
        "its last export): counted as skipped, with no row to open.",
    )
    event_ids = fields.One2many("connector.event", "task_id", readonly=True)
    outbound_ids = fields.One2many("connector.outbound", "task_id", readonly=True)
    total_count = fields.Integer(string="Total", compute="_compute_counts")
    done_count = fields.Integer(string="Applied", compute="_compute_counts")
    failed_count = fields.Integer(string="Failed", compute="_compute_counts")
    skipped_count = fields.Integer(string="Skipped", compute="_compute_counts")
    pending_count = fields.Integer(string="To do", compute="_compute_counts")
    progress = fields.Float(compute="_compute_counts", help="Share of the work finished, in %.")
    state = fields.Selection(TASK_STATES, compute="_compute_counts", search="_search_state")
    finished_at = fields.Datetime(
        compute="_compute_counts", help="When the last of its work finished."
    )
    estimated_end = fields.Datetime(
        compute="_compute_counts",
        help="At the pace so far, when the work still to do will be finished.",
    )
    estimate = fields.Char(string="Time left", compute="_compute_counts")

    @api.depends("planning", "skipped_upfront")
    def _compute_counts(self):
        """Counted from the linked rows' states, one aggregation per table."""
        counts = {
            task.id: dict.fromkeys(("done", "failed", "skipped", "pending"), 0) for task in self
        }
        last = dict.fromkeys(self.ids)

        def add(task_id, outcome, count, finished):
            counts[task_id][outcome] += count
            if (
                outcome != "pending"
                and finished
                and (not last[task_id] or finished > last[task_id])
            ):
                last[task_id] = finished

        tasks = Domain("task_id", "in", self.ids)
        for task, state, count, finished in (
            self.env["connector.event"]
            .sudo()
            ._read_group(tasks, ["task_id", "state"], ["__count", "processed_at:max"])
        ):
            add(task.id, EVENT_OUTCOME.get(state, "pending"), count, finished)
        for task, state, count, finished in (
            self.env["connector.outbound"]
            .sudo()
            ._read_group(tasks, ["task_id", "state"], ["__count", "write_date:max"])
        ):
            add(task.id, OUTBOUND_OUTCOME.get(state, "pending"), count, finished)
        now = fields.Datetime.now()
        for task in self:
            values = counts[task.id]
            values["skipped"] += task.skipped_upfront
            finished = values["done"] + values["failed"] + values["skipped"]
            total = finished + values["pending"]
            running = task.planning or values["pending"] > 0
            task.total_count = total
            task.done_count = values["done"]
            task.failed_count = values["failed"]
            task.skipped_count = values["skipped"]
            task.pending_count = values["pending"]
            task.progress = 100.0 * finished / total if total else (0.0 if running else 100.0)
            if running:
                task.state = "running"
            else:
                task.state = "failed" if values["failed"] else "done"
            task.finished_at = False if running else (last[task.id] or task.started_at)
            task.estimated_end = False
            task.estimate = False
            if running and task.started_at:
                task.estimated_end, task.estimate = task._estimate(finished, values["pending"], now)

    def _estimate(self, finished, pending, now):
        """``(end, text)``: at the pace of the work finished so far."""
        elapsed = (now - self.started_at).total_seconds()
        if not finished or elapsed <= 0:
            return False, self.env._("Estimating…")
        if self.planning and not pending:
            return False, self.env._("Listing the work…")
        left = timedelta(seconds=elapsed * pending / finished)
        minutes = round(left.total_seconds() / 60)
        if minutes < 1:
            text = self.env._("Less than a minute left")
        elif minutes < 120:
            text = self.env._("About %(minutes)s minutes left", minutes=minutes)
        else:
            text = self.env._("About %(hours)s hours left", hours=round(minutes / 60))
        return now + left, text

    def _search_state(self, operator, value):
        if operator not in ("in", "not in"):
            return NotImplemented
        running = (
            Domain("planning", "=", True)
            | Domain("event_ids", "any", [("state", "in", EVENT_PENDING)])
            | Domain("outbound_ids", "any", [("state", "in", OUTBOUND_PENDING)])
        )
        with_failures = Domain("event_ids", "any", [("state", "=", "failed")]) | Domain(
            "outbound_ids", "any", [("state", "=", "failed")]
        )
        by_state = {
            "running": running,
            "done": ~running & ~with_failures,
            "failed": ~running & with_failures,
        }
        domain = Domain.OR(by_state[state] for state in value if state in by_state)
        return domain if operator == "in" else ~domain

    # --- what the long operations call -------------------------------------------

    @api.model
    def _start(self, backend, kind, name, planning=False, committed=False):
        """A new task of ``backend``; its rows are linked with :meth:`_attach_events`
        or by queueing outbound changes in the context ``connector_task_id``.

        ``planning``: its planner job will list the work and call :meth:`_planned`.
        ``committed``: created in a transaction of its own, for work queued in
        short transactions of their own (``_send_later_many``), whose rows
        must see the task they reference.
        """
        vals = {
            "backend_id": backend.id,
            "kind": kind,
            "name": name,
            "planning": planning,
            "user_id": self.env.uid,
        }
        if not committed:
            return self.sudo().create(vals)
        with backend._new_transaction() as env:
            task_id = env["connector.task"].sudo().create(vals).id
        return self.browse(task_id)

    def _attach_events(self, events):
        """Make ``events`` part of this task (one statement; the events' own
        jobs never write the task)."""
        self.ensure_one()
        if events:
            self.env["connector.event"].flush_model(["task_id"])
            self.env.cr.execute(
                "UPDATE connector_event SET task_id = %s WHERE id IN %s",
                (self.id, tuple(events.ids)),
            )
            events.invalidate_recordset(["task_id"])
            self.invalidate_recordset(["event_ids"])

    def _planned(self, skipped=0):
        """The planner has listed all the work; ``skipped``: work it found with
        nothing to do."""
        self.ensure_one()
        self.sudo().write({"planning": False, "skipped_upfront": self.skipped_upfront + skipped})

    # --- actions ------------------------------------------------------------------

    def action_stop_waiting(self):
        """The planner's job failed for good: the task ends with what it listed."""
        if not self.env.user.has_group("connector_base.group_connector_manager"):
            raise AccessError(
                self.env._("Only connector managers may end a task that is still listing its work.")
            )
        self.sudo().write({"planning": False})
        return True

    def _open_form(self):
        """The task's form, where its progress and outcome show."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "connector.task",
            "res_id": self.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "current",
        }

    def _open_rows(self, event_states, outbound_states, title):
        """The events (or, for a task that sends, the outbound changes) of this
        task in ``*_states``."""
        self.ensure_one()
        if self.event_ids or not self.outbound_ids:
            xmlid, states = "connector_base.action_connector_event", event_states
        else:
            xmlid, states = "connector_base.action_connector_outbound", outbound_states
        action = self.env["ir.actions.act_window"]._for_xml_id(xmlid)
        action.update(
            name=f"{self.name}: {title}",
            display_name=f"{self.name}: {title}",
            domain=[("task_id", "=", self.id), ("state", "in", list(states))],
            context={"create": False},
        )
        return action

    def action_view_done(self):
        return self._open_rows(["done"], ["sent"], self.env._("applied"))

    def action_view_failed(self):
        return self._open_rows(["failed"], ["failed"], self.env._("failed"))

    def action_view_skipped(self):
        return self._open_rows(["ignored", "duplicate"], ["cancelled"], self.env._("skipped"))

    def action_view_pending(self):
        return self._open_rows(EVENT_PENDING, OUTBOUND_PENDING, self.env._("to do"))


class ConnectorBackend(models.Model):
    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    task_ids = fields.One2many("connector.task", "backend_id", readonly=True)
    running_task_ids = fields.Many2many(
        "connector.task", string="Running tasks", compute="_compute_running_tasks"
    )
    task_count = fields.Integer(compute="_compute_running_tasks")

    def _compute_running_tasks(self):
        Task = self.env["connector.task"]
        running = Task.search([("backend_id", "in", self.ids), ("state", "in", ["running"])])
        counts = dict(
            Task._read_group([("backend_id", "in", self.ids)], ["backend_id"], ["__count"])
        )
        for backend in self:
            backend.running_task_ids = running.filtered(lambda t, b=backend: t.backend_id == b)
            backend.task_count = counts.get(backend, 0)

    # The overview tile: the long work running on the backend, at a glance.
    overview_task_progress = fields.Float(
        string="Running work (%)", compute="_compute_overview_tasks"
    )
    overview_task_label = fields.Char(string="Running work", compute="_compute_overview_tasks")

    def _compute_overview_tasks(self):
        """The tasks running on each backend, together: their progress, and a
        line saying the oldest one, how far it is and the time it has left.
        One search of the running tasks for every tile; their counts are one
        aggregation per table (connector.task._compute_counts)."""
        running = self.env["connector.task"].search(
            [("backend_id", "in", self.ids), ("state", "in", ["running"])], order="started_at, id"
        )
        for backend in self:
            tasks = running.filtered(lambda t, b=backend: t.backend_id == b)
            total = sum(tasks.mapped("total_count"))
            finished = total - sum(tasks.mapped("pending_count"))
            backend.overview_task_progress = 100.0 * finished / total if total else 0.0
            if not tasks:
                backend.overview_task_label = False
                continue
            oldest = tasks[0]
            label = self.env._(
                "%(task)s: %(finished)s of %(total)s",
                task=oldest.name,
                finished=oldest.total_count - oldest.pending_count,
                total=oldest.total_count,
            )
            if oldest.estimate:
                label = f"{label} · {oldest.estimate}"
            if len(tasks) > 1:
                label = self.env._(
                    "%(label)s (and %(count)s more)", label=label, count=len(tasks) - 1
                )
            backend.overview_task_label = label

    def action_view_tasks(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_base.action_connector_task"
        )
        action["domain"] = [("backend_id", "=", self.id)]
        return action
