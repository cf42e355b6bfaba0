from odoo import api, fields, models


class ConnectorBindingMixin(models.AbstractModel):
    """The link between one Odoo record and its twin in one remote system.

    A concrete binding model per synced Odoo model (``shopify.product.binding``)
    inherits this mixin and adds the many2one to its Odoo record named
    ``odoo_id``. External ids stay out of core tables; a record can be bound
    to several backends; one external id maps to one record per backend and
    the other way round (declare both with :meth:`_binding_constraints`).
    """

    _name = "connector.binding.mixin"
    _description = "Connector Binding (abstract)"

    backend_id = fields.Many2one(
        "connector.backend", required=True, ondelete="restrict", index=True
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    external_id = fields.Char(string="External ID", required=True, index=True)
    sync_date = fields.Datetime(string="Last sync", readonly=True)
    remote_updated_at = fields.Datetime(
        string="Remote updated at",
        readonly=True,
        help="The remote's own last-modification time of the record, as last synced.",
    )
    payload_hash = fields.Char(
        readonly=True,
        help="Hash of the last payload exchanged: an identical payload is not applied or "
        "sent again.",
    )

    # Concrete bindings declare, with their own odoo_id:
    #   _external_uniq = models.Constraint("UNIQUE (backend_id, external_id)", ...)
    #   _odoo_uniq = models.Constraint("UNIQUE (backend_id, odoo_id)", ...)

    @api.model
    def _find(self, backend, external_id):
        """The binding of ``external_id`` on ``backend`` (empty when unknown)."""
        return self.search(
            [("backend_id", "=", backend.id), ("external_id", "=", str(external_id))], limit=1
        )

    @api.model
    def _find_by_record(self, backend, record):
        return self.search([("backend_id", "=", backend.id), ("odoo_id", "=", record.id)], limit=1)

    def _is_unchanged(self, payload_hash):
        """True when ``payload_hash`` is the one last synced: skip the no-op."""
        self.ensure_one()
        return bool(payload_hash) and self.payload_hash == payload_hash

    def _mark_synced(self, payload_hash=None, remote_updated_at=None):
        vals = {"sync_date": fields.Datetime.now()}
        if payload_hash is not None:
            vals["payload_hash"] = payload_hash
        if remote_updated_at is not None:
            vals["remote_updated_at"] = remote_updated_at
        self.write(vals)

    @api.model
    def _bind(self, backend, external_id, record, **vals):
        """Bind ``record`` to ``external_id`` (create or re-point the binding)."""
        binding = self._find(backend, external_id)
        values = {"odoo_id": record.id, **vals}
        if binding:
            binding.write(values)
            return binding
        return self.create({"backend_id": backend.id, "external_id": str(external_id), **values})
