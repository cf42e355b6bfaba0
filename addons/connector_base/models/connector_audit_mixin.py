from odoo import api, fields, models


class ConnectorAuditMixin(models.AbstractModel):
    """Who did what to a connector record, and when: the audit trail of the
    support actions. A concrete audit model adds the record it is about (a
    required many2one, named by ``_audited_field``), its company and the
    selection of its actions.

    Audit lines are the framework's to write: users only read them (see
    ir.model.access.csv); the actions write them with the system's rights,
    in the acting user's name (``sudo()`` keeps the user).
    """

    _name = "connector.audit.mixin"
    _description = "Connector Audit Line"
    _order = "id desc"
    # The many2one to the audited record, set by each concrete model.
    _audited_field = None

    note = fields.Text()
    user_id = fields.Many2one("res.users", default=lambda self: self.env.user, required=True)
    date = fields.Datetime(default=fields.Datetime.now, required=True)

    @api.model
    def _log(self, records, action, note=None):
        """One line per record of ``records``: ``action`` done by the current user now."""
        return self.sudo().create(
            [{self._audited_field: record.id, "action": action, "note": note} for record in records]
        )
