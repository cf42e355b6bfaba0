from odoo import fields, models


class ConnectorPosUploadKey(models.TransientModel):
    """Shows a store's new upload key, once: Odoo never shows it again.

    A transient record, readable by the manager who made it only, and
    vacuumed with the other wizards.
    """

    _name = "connector.pos.upload.key"
    _description = "POS Store Upload Key"

    store_id = fields.Many2one("connector.pos.store", required=True, readonly=True)
    key = fields.Char(readonly=True)
