from odoo import fields, models


class ConnectorEventIgnore(models.TransientModel):
    """Ignore failed or waiting events, saying why (kept in their audit trail)."""

    _name = "connector.event.ignore"
    _description = "Ignore Connector Events"

    event_ids = fields.Many2many(
        "connector.event", default=lambda self: self.env.context.get("active_ids")
    )
    reason = fields.Text(required=True)

    def action_ignore(self):
        result = self.event_ids.action_ignore(self.reason)
        if isinstance(result, dict):
            # Told how many were left as they were, then the dialog closes.
            result["params"]["next"] = {"type": "ir.actions.act_window_close"}
            return result
        return {"type": "ir.actions.act_window_close"}
