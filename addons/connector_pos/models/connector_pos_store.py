import secrets

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.signature import hmac_sha256_base64, signature_matches


class ConnectorPosStore(models.Model):
    """One physical store of a POS fleet, and where its sales land in Odoo.

    A store is one Odoo Point of Sale (``pos.config``), whatever its number of
    registers: its business day is one session, and its registers are told
    apart on each order (register and ticket number), their tickets applied
    side by side. The Point of Sale's operation type says the warehouse and
    the stock location sales leave.
    """

    _name = "connector.pos.store"
    _description = "POS Store"
    _order = "backend_id, code"
    _check_company_auto = True

    backend_id = fields.Many2one(
        "connector.backend",
        required=True,
        ondelete="cascade",
        index=True,
        domain="[('backend_type', '=', 'pos')]",
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    active = fields.Boolean(default=True)
    code = fields.Char(
        required=True,
        help="The store's code as its POS sends it (X-Pos-Store header, 'store' of a batch).",
    )
    name = fields.Char(required=True)
    config_id = fields.Many2one(
        "pos.config",
        string="Point of Sale",
        required=True,
        check_company=True,
        ondelete="restrict",
        help="The Odoo Point of Sale the store's tickets are recorded in, one per store.",
    )
    warehouse_id = fields.Many2one(
        related="config_id.picking_type_id.warehouse_id", string="Warehouse"
    )
    location_id = fields.Many2one(
        related="config_id.picking_type_id.default_location_src_id", string="Stock location"
    )
    pricelist_id = fields.Many2one(
        "product.pricelist",
        check_company=True,
        help="The store's prices. Empty: the Point of Sale's default pricelist.",
    )
    team_id = fields.Many2one("crm.team", string="Sales team", check_company=True)
    # The key itself, not a hash of it: verifying an HMAC takes the key.
    # Readable by connector managers only, never shown after its creation.
    upload_key = fields.Char(groups="connector_base.group_connector_manager", copy=False)
    upload_key_set_at = fields.Datetime(string="Upload key made", readonly=True, copy=False)
    has_upload_key = fields.Boolean(compute="_compute_has_upload_key")

    _code_uniq = models.Constraint(
        "UNIQUE (backend_id, code)", "The fleet already has a store with this code."
    )
    _config_uniq = models.Constraint(
        "UNIQUE (config_id)", "This Point of Sale is already another store's."
    )

    @api.model_create_multi
    def create(self, vals_list):
        stores = super().create(vals_list)
        stores._free_order_numbering()
        return stores

    def write(self, vals):
        result = super().write(vals)
        if "config_id" in vals:
            self._free_order_numbering()
        return result

    def _free_order_numbering(self):
        """Number the orders of the stores' Points of Sale from PostgreSQL
        sequences, not gap-free ones.

        A gap-free sequence locks its row until the transaction that drew a
        number ends: a store's registers, whose tickets are applied by jobs
        side by side, would refuse each other. The store's own numbering is
        the POS's (register and ticket number, on each order, and the gaps the
        connector shows); Odoo's order references are internal to Odoo.
        """
        configs = self.config_id
        sequences = configs.order_seq_id | configs.order_backend_seq_id | configs.order_line_seq_id
        gap_free = sequences.sudo().filtered(lambda sequence: sequence.implementation != "standard")
        gap_free.write({"implementation": "standard"})

    @api.depends("upload_key_set_at")
    def _compute_has_upload_key(self):
        for store in self:
            store.has_upload_key = bool(store.upload_key_set_at)

    @api.depends("code", "name")
    def _compute_display_name(self):
        for store in self:
            store.display_name = f"{store.code} {store.name}" if store.code else store.name

    # --- upload key ------------------------------------------------------------

    def action_generate_upload_key(self):
        """Make a new upload key and show it once; the previous key stops at once.

        Only connector managers may: the key lets anybody upload tickets in
        the store's name.
        """
        self.ensure_one()
        if not self.env.user.has_group("connector_base.group_connector_manager"):
            raise UserError(self.env._("Only connector managers may make a store's upload key."))
        key = secrets.token_urlsafe(32)
        self.sudo().write({"upload_key": key, "upload_key_set_at": fields.Datetime.now()})
        wizard = self.env["connector.pos.upload.key"].create({"store_id": self.id, "key": key})
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Upload key of %s", self.display_name),
            "res_model": wizard._name,
            "res_id": wizard.id,
            "view_mode": "form",
            "target": "new",
        }

    def _signature_ok(self, raw_body, received):
        """Whether ``received`` is the base64 HMAC-SHA256 of the raw body keyed
        with the store's upload key (constant-time); never without a key."""
        self.ensure_one()
        key = self.sudo().upload_key
        return bool(key) and signature_matches(hmac_sha256_base64(key, raw_body), received)

    # --- the store's day --------------------------------------------------------

    def _open_session(self):
        """The store's open day: its Point of Sale's session not closed (not a
        recovery one), or an empty recordset. Looked up once per batch job of
        tickets (which closes no day; the one it opens is kept: ``_open_day``)."""
        self.ensure_one()
        Session = self.env["pos.session"]
        memo = self.env["connector.event"]._batch_memo()
        key = ("connector_pos.open_session", self.config_id.id)
        if key not in memo:
            memo[key] = Session.search(
                [
                    ("config_id", "=", self.config_id.id),
                    ("state", "!=", "closed"),
                    ("rescue", "=", False),
                ],
                order="id desc",
                limit=1,
            ).id
        return Session.browse(memo[key])

    def _open_day(self, session):
        """Remember ``session``, just opened, as the store's open day for the
        rest of the batch job (see ``_open_session``)."""
        memo = self.env["connector.event"]._batch_memo()
        memo[("connector_pos.open_session", self.config_id.id)] = session.id
