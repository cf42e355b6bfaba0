from odoo import fields, models
from odoo.exceptions import AccessError, UserError


# connector.event is split by concern, one file each (intake, processing,
# support, housekeeping): deliberately not one class.
class ConnectorEvent(models.Model):
    """What support staff do with events: requeue, replay, ignore, edit, open."""

    _inherit = "connector.event"  # pylint: disable=consider-merging-classes-inherited

    # --- support actions --------------------------------------------------------

    # Support staff and managers only read events and their audit trail (see
    # ir.model.access.csv): what they may do goes through the actions below,
    # which check the group, then write state and audit with the system's
    # rights. So the audit trail says who did what, and nobody sets an event
    # to done, or writes an audit line, over RPC.

    def _audit(self, action, note=None):
        """One audit line per event; ``user_id`` is the acting user (sudo keeps it)."""
        self.env["connector.event.audit"]._log(self, action, note)

    def _check_user(self):
        if not self.env.user.has_group("connector_base.group_connector_user"):
            raise AccessError(self.env._("Only connector users may act on connector events."))

    def _notify_skipped(self, done, what):
        """What a bulk action did, when it left some of the selected events
        as they were: a notification, then the view reloaded."""
        skipped = len(self) - len(done)
        if not skipped:
            return True
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "warning",
                "message": self.env._(
                    "%(done)d of the %(selected)d selected events %(what)s; the %(skipped)d "
                    "other(s) were left as they were.",
                    done=len(done),
                    selected=len(self),
                    what=what,
                    skipped=skipped,
                ),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_requeue(self):
        """Queue failed or waiting events again (one or many, from the list).

        Events of the selection in another state are left as they are, and the
        user is told how many were.
        """
        self._check_user()
        events = self.filtered(lambda e: e.state in ("failed", "waiting", "received"))
        if not events:
            raise UserError(self.env._("Only failed, waiting or received events can be requeued."))
        not_running = events.filtered(
            lambda e: e.backend_id.state not in ("running", "circuit_open")
        )
        if not_running:
            raise UserError(
                self.env._(
                    "Backend %(backend)s is not running: start it to process its events.",
                    backend=not_running[0].backend_id.display_name,
                )
            )
        events._audit("requeue")
        events._enqueue()
        return self._notify_skipped(events, self.env._("requeued"))

    def action_replay(self, note=None):
        """Apply events again, done ones included; handlers are idempotent, so
        a replayed event updates what it made instead of duplicating it."""
        self._check_user()
        states = ("done", "failed", "waiting", "ignored", "stale")
        events = self.filtered(lambda e: e.state in states)
        events._audit("replay", note)
        return events._enqueue(from_states=states)

    def action_ignore(self, reason):
        """A person decides that these events must not be applied, and says why
        (kept in their audit trail). Only open events can be ignored: the
        others of the selection are left as they are, and the user told."""
        self._check_user()
        if not reason or not reason.strip():
            raise UserError(self.env._("Say why the event is ignored."))
        events = self.filtered(lambda e: e.state in ("failed", "waiting", "received", "queued"))
        if not events:
            raise UserError(
                self.env._("Only failed, waiting, received or queued events can be ignored.")
            )
        events._audit("ignore", reason)
        events.sudo().write(
            {
                "state": "ignored",
                "error_message": self.env._(
                    "Ignored by %(user)s: %(reason)s", user=self.env.user.name, reason=reason
                ),
                "processed_at": fields.Datetime.now(),
            }
        )
        # What waited for them is the framework's to look at: with its rights.
        events.sudo()._wake_waiting()
        return self._notify_skipped(events, self.env._("ignored"))

    def action_edit_payload(self, payload, note=None):
        """Managers correct the payload of a failed event and queue it again."""
        self.ensure_one()
        if not self.env.user.has_group("connector_base.group_connector_manager"):
            raise AccessError(self.env._("Only connector managers may edit a payload."))
        if self.state not in ("failed", "waiting"):
            raise UserError(self.env._("Only a failed or waiting event's payload can be edited."))
        self._audit("edit", note or self.env._("Payload edited"))
        self.sudo().write({"payload": payload})
        self._enqueue()
        return True

    def action_open_record(self):
        self.ensure_one()
        record = self._produced_record()
        if not record:
            raise UserError(self.env._("This event has not produced a record (yet)."))
        return {
            "type": "ir.actions.act_window",
            "res_model": record._name,
            "res_id": record.id,
            "view_mode": "form",
        }

    def action_follow(self):
        """Everything about what this event is about (its order, its SKU), in
        time order: the correlation view."""
        self.ensure_one()
        return self.env["connector.correlation"].action_follow(
            self.sequence_key or self.correlation_id, self.backend_id
        )

    def action_view_jobs(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("queue_job.action_queue_job")
        action["domain"] = [("id", "in", self.job_ids.ids)]
        action["context"] = {}
        return action


class ConnectorEventAudit(models.Model):
    """Who did what to an event, and when: requeue, ignore, edit, replay."""

    _name = "connector.event.audit"
    _inherit = ["connector.audit.mixin"]
    _description = "Connector Event Audit"
    _order = "id desc"
    _audited_field = "event_id"

    event_id = fields.Many2one("connector.event", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="event_id.company_id", store=True)
    action = fields.Selection(
        [
            ("requeue", "Requeued"),
            ("replay", "Replayed"),
            ("ignore", "Ignored"),
            ("edit", "Payload edited"),
        ],
        required=True,
    )
