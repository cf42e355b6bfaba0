import json

from odoo import api, fields, models
from odoo.exceptions import UserError


class ConnectorEventEdit(models.TransientModel):
    """Managers correct the payload of a failed event and queue it again."""

    _name = "connector.event.edit"
    _description = "Edit Connector Event Payload"

    event_id = fields.Many2one(
        "connector.event", required=True, default=lambda self: self.env.context.get("active_id")
    )
    payload_text = fields.Text(string="Payload (JSON)", required=True)
    note = fields.Char(string="What was corrected", required=True)

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        event = self.env["connector.event"].browse(values.get("event_id"))
        if event and "payload_text" in fields_list:
            values["payload_text"] = event.payload_text
        return values

    def action_save_and_requeue(self):
        self.ensure_one()
        try:
            payload = json.loads(self.payload_text)
        except ValueError as exc:
            raise UserError(
                self.env._("The payload is not valid JSON: %(error)s", error=exc)
            ) from exc
        self.event_id.action_edit_payload(payload, self.note)
        return {"type": "ir.actions.act_window_close"}
