from odoo import fields, models
from odoo.exceptions import UserError


class ConnectorCorrelationLine(models.TransientModel):
    """One row of a correlation timeline: a message, a job, an Odoo record or
    an outbound call about the key followed, with its state."""

    _name = "connector.correlation.line"
    _description = "Correlation Timeline Row"
    _order = "sequence, id"

    correlation_id = fields.Many2one("connector.correlation", required=True, ondelete="cascade")
    sequence = fields.Integer()
    kind = fields.Selection(
        [
            ("event", "Message received"),
            ("job", "Job"),
            ("record", "Odoo record"),
            ("outbound", "Outbound call"),
        ],
        required=True,
    )
    time = fields.Datetime(help="When it was received, queued or created.")
    done_at = fields.Datetime(string="Done at", help="When it was applied, finished or sent.")
    backend_id = fields.Many2one("connector.backend")
    name = fields.Char(string="What")
    ref = fields.Char(string="Key", help="The key it is stored under, or the job's id.")
    state = fields.Char()
    tone = fields.Selection(
        [
            ("success", "Done"),
            ("info", "In progress"),
            ("warning", "Waiting"),
            ("danger", "Failed"),
            ("muted", "Set aside"),
        ]
    )
    detail = fields.Char(help="The error, or what it made or what the remote answered.")
    res_model = fields.Char(string="Model")
    res_id = fields.Many2oneReference(string="Record ID", model_field="res_model")
    can_open = fields.Boolean(help="Whether you may read what this row shows.")

    def action_open(self):
        """Open the message, job, record or outbound call of this row."""
        self.ensure_one()
        if not (self.can_open and self.res_model and self.res_id):
            raise UserError(
                self.env._(
                    "You may not open this row's record: ask a connector manager for access."
                )
            )
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "view_mode": "form",
            "target": "current",
        }
