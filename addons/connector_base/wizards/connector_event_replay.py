from odoo import fields, models
from odoo.exceptions import UserError
from odoo.fields import Domain


class ConnectorEventReplay(models.TransientModel):
    """Apply again every event of a backend received in a time window.

    Handlers are idempotent: a replayed event updates what it made, it never
    duplicates it. Useful after a fix, or to rebuild records deleted by hand.
    """

    _name = "connector.event.replay"
    _description = "Replay Connector Events"

    backend_id = fields.Many2one("connector.backend", required=True)
    flow = fields.Char(help="Only this flow (technical code); empty: every flow.")
    topic = fields.Char(help="Only this topic; empty: every topic.")
    date_from = fields.Datetime(string="Received from", required=True)
    date_to = fields.Datetime(string="Received until", required=True, default=fields.Datetime.now)
    include_done = fields.Boolean(string="Include events already done", default=True)
    note = fields.Char(string="Why", required=True)
    event_count = fields.Integer(compute="_compute_event_count")

    def _events(self):
        self.ensure_one()
        states = ["failed", "waiting", "ignored", "stale"] + (["done"] if self.include_done else [])
        domain = Domain(
            [
                ("backend_id", "=", self.backend_id.id),
                ("received_at", ">=", self.date_from),
                ("received_at", "<=", self.date_to),
                ("state", "in", states),
            ]
        )
        if self.flow:
            domain &= Domain("flow", "=", self.flow)
        if self.topic:
            domain &= Domain("topic", "=", self.topic)
        return self.env["connector.event"].search(domain, order="occurred_at, id")

    def _compute_event_count(self):
        for wizard in self:
            wizard.event_count = len(wizard._events()) if wizard.backend_id else 0

    def action_replay(self):
        self.ensure_one()
        if self.date_from > self.date_to:
            raise UserError(self.env._("The window ends before it starts."))
        events = self._events()
        if not events:
            raise UserError(self.env._("No event of this backend was received in this window."))
        # A task follows the replay while its jobs run: progress on the
        # backend, then how many were applied, skipped or failed.
        task = self.env["connector.task"]._start(
            self.backend_id,
            "replay",
            self.env._("Replay of %(count)s events: %(note)s", count=len(events), note=self.note),
        )
        task._attach_events(events)
        events.action_replay(self.note)
        return task._open_form()
