from odoo import api, fields, models


class ConnectorIdentity(models.Model):
    """Which Odoo record a remote identity stands for, one per backend: the
    customer behind an email address, whatever the order it came with.

    Bindings tie a remote *id* to a record; identities tie what the remote
    does not number (a guest's email, a phone) so that two orders of one new
    person, applied at the same moment by two jobs, give one partner. The
    unique key is the referee: a search cannot see what a concurrent
    transaction is creating, the database can.
    """

    _name = "connector.identity"
    _description = "Connector Identity"
    _order = "id desc"

    backend_id = fields.Many2one(
        "connector.backend", required=True, ondelete="cascade", index=True, readonly=True
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True, index=True)
    key = fields.Char(required=True, readonly=True, help="e.g. email:ada@example.com")
    res_model = fields.Char(string="Record model", required=True, readonly=True)
    res_id = fields.Many2oneReference(
        string="Record ID", model_field="res_model", required=True, readonly=True
    )

    _key_uniq = models.UniqueIndex(
        "(backend_id, key)", "This identity already stands for a record of this backend."
    )

    @api.model
    def _record_for(self, backend, keys, model, make):
        """The record of ``model`` that ``keys`` (e.g. ``["email:ada@example.com"]``)
        stand for on ``backend``, made by ``make()`` when none does yet.

        Safe between concurrent jobs: the first to register a key wins; the
        other fails with a serialization error (its snapshot cannot see the
        winner's row), and its job, retried, finds the winner's record here.
        Keys of the record not registered yet are added.
        """
        backend.ensure_one()
        keys = [key for key in dict.fromkeys(keys) if key]
        if not keys:
            return make()
        self.env["connector.identity"].flush_model()
        self.env.cr.execute(
            "SELECT key, res_id FROM connector_identity "
            "WHERE backend_id = %s AND key IN %s AND res_model = %s",
            (backend.id, tuple(keys), model),
        )
        known = dict(self.env.cr.fetchall())
        alive = self.env[model].browse(set(known.values())).exists()
        record = next(
            (alive.browse(known[key]) for key in keys if known.get(key) in alive.ids), None
        )
        if record is None:
            record = make()
        for key in keys:
            previous = known.get(key)
            if previous == record.id or previous in alive.ids:
                continue  # a key of another living record stays its own
            if previous:
                # It stood for a record since deleted: it now stands for this one.
                self.env.cr.execute(
                    "UPDATE connector_identity SET res_id = %s, write_date = now() at time "
                    "zone 'UTC' WHERE backend_id = %s AND key = %s AND res_id = %s",
                    (record.id, backend.id, key, previous),
                    log_exceptions=False,
                )
                continue
            self.env.cr.execute(
                "INSERT INTO connector_identity "
                "(backend_id, company_id, key, res_model, res_id, create_uid, write_uid, "
                " create_date, write_date) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, now() at time zone 'UTC', "
                "        now() at time zone 'UTC') "
                "ON CONFLICT (backend_id, key) DO NOTHING",
                (
                    backend.id,
                    backend.company_id.id,
                    key,
                    model,
                    record.id,
                    self.env.uid,
                    self.env.uid,
                ),
                log_exceptions=False,
            )
        return record
