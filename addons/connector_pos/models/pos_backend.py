from odoo import api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.connector_base.components.topics import InboundTopic

from ..components.ticket import TICKET_SCHEMA, register_key, store_key

UPLOAD_ROUTE = "/connector/pos/v1/fleets/<string:fleet>/batches"
TICKET_TOPIC = "ticket"
# Tickets one job applies, each in its own savepoint (connector_base's batches).
TICKETS_PER_JOB = 100
TAX_ROUNDING = [
    ("round_per_line", "Per line"),
    ("round_globally", "Per ticket"),
]


def ticket_key(uuid):
    """What a return or a void of the ticket ``uuid`` waits on, and what the
    ticket's arrival wakes."""
    return f"ticket:{uuid}"


def day_key(store):
    """What the tickets of a store's next business day wait on: the close of
    the day still open."""
    return f"day:{store.id}"


class ConnectorBackend(models.Model):
    """A fleet of store POS systems: its stores, mappings and upload API."""

    _inherit = "connector.backend"

    backend_type = fields.Selection(
        selection_add=[("pos", "Store POS fleet")], ondelete={"pos": "cascade"}
    )
    pos_fleet_code = fields.Char(
        string="Fleet code",
        help="Names the fleet in the upload address of its stores: "
        "/connector/pos/v1/fleets/<fleet code>/batches. Letters, digits, - and _.",
    )
    pos_mode = fields.Selection(
        [("push", "Push: the stores upload their tickets"), ("pull", "Pull: Odoo polls the POS")],
        string="Mode",
        default="push",
    )
    pos_tax_rounding = fields.Selection(
        TAX_ROUNDING,
        string="The POS rounds taxes",
        default="round_per_line",
        help="How the stores' POS rounds taxes: on each line, or once over the ticket. "
        "Odoo computes a ticket's taxes with its company's tax rounding, which must be "
        "the same (Accounting settings, Rounding method): only then are Odoo's totals "
        "the POS's to the cent.",
    )
    pos_stock_policy = fields.Selection(
        [
            ("real_time", "Real-time: a delivery per ticket"),
            ("closing", "At closing: one delivery per store day"),
        ],
        string="Stock leaves the store",
        default=lambda self: (
            "closing"
            if self.env.company.point_of_sale_update_stock_quantities == "closing"
            else "real_time"
        ),
        help="Written on each store day (Point of Sale session) the connector opens, as "
        "Point of Sale's own 'Update quantities in stock' option.",
    )
    pos_store_ids = fields.One2many("connector.pos.store", "backend_id", string="Stores")
    pos_tender_ids = fields.One2many("connector.pos.tender", "backend_id", string="Tenders")
    pos_tax_ids = fields.One2many("connector.pos.tax", "backend_id", string="Tax codes")
    pos_upload_address = fields.Char(
        string="Upload address",
        compute="_compute_pos_upload_address",
        help="Where the stores of this fleet upload their tickets: give it to the POS vendor.",
    )
    pos_order_count = fields.Integer(string="Tickets", compute="_compute_pos_order_count")

    _pos_fleet_code_uniq = models.Constraint(
        "UNIQUE (pos_fleet_code)", "Another POS fleet already has this code."
    )

    @api.constrains("backend_type", "pos_fleet_code")
    def _check_pos_fleet_code(self):
        for backend in self.filtered(lambda b: b.backend_type == "pos"):
            code = backend.pos_fleet_code or ""
            if not code or not all(char.isalnum() or char in "-_" for char in code):
                raise ValidationError(
                    self.env._(
                        "Give the POS fleet %(backend)s a code of letters, digits, - and _: "
                        "it is part of its stores' upload address.",
                        backend=backend.name,
                    )
                )

    @api.constrains("backend_type", "pos_tax_rounding", "company_id")
    def _check_pos_tax_rounding(self):
        for backend in self.filtered(lambda b: b.backend_type == "pos"):
            if backend.pos_tax_rounding != backend.company_id.tax_calculation_rounding_method:
                raise ValidationError(backend._pos_rounding_problem())

    def _pos_rounding_problem(self):
        """The sentence that says how to make Odoo round taxes as the POS does."""
        labels = dict(TAX_ROUNDING)
        return self.env._(
            "The stores of %(backend)s round taxes %(pos)s, %(company)s rounds them "
            "%(odoo)s: Odoo's totals would differ from the POS's by a cent here and there. "
            "Set the company's tax rounding method (Accounting settings) to round "
            "%(pos)s, or correct how the POS rounds.",
            backend=self.name,
            pos=labels[self.pos_tax_rounding].lower(),
            company=self.company_id.name,
            odoo=labels.get(
                self.company_id.tax_calculation_rounding_method,
                self.company_id.tax_calculation_rounding_method,
            ).lower(),
        )

    @api.depends("backend_type", "pos_fleet_code")
    def _compute_pos_upload_address(self):
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        for backend in self:
            backend.pos_upload_address = (
                f"{base}{UPLOAD_ROUTE.replace('<string:fleet>', backend.pos_fleet_code)}"
                if backend.backend_type == "pos" and backend.pos_fleet_code
                else False
            )

    def _compute_pos_order_count(self):
        counts = dict(
            self.env["pos.order"]._read_group(
                [("connector_pos_store_id.backend_id", "in", self.ids)],
                ["connector_pos_store_id"],
                ["__count"],
            )
        )
        for backend in self:
            backend.pos_order_count = sum(
                count for store, count in counts.items() if store.backend_id == backend._origin
            )

    def action_pos_view_orders(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("point_of_sale.action_pos_pos_form")
        action["domain"] = [("connector_pos_store_id.backend_id", "=", self.id)]
        action["context"] = {}
        return action

    # --- declarations ---------------------------------------------------------

    def _connector_flows(self):
        if self.backend_type != "pos":
            return super()._connector_flows()
        return [
            {"code": "tickets_in", "name": "Tickets in", "mode": "realtime", "sla_lag_minutes": 15},
        ]

    def _connector_topics(self):
        if self.backend_type != "pos":
            return super()._connector_topics()
        return {
            TICKET_TOPIC: InboundTopic(
                flow="tickets_in",
                schema=TICKET_SCHEMA,
                handler="_pos_apply_ticket",
                # A register's tickets in order; a return or a void waits for
                # the ticket it names, wherever that was rung up.
                sequence_key=register_key,
                prerequisite="_pos_ticket_blocked",
                # One wrong ticket (an unknown SKU) fails alone: the
                # register's other sales do not depend on it.
                failed_holds_key=False,
                # An offline store uploads a day at once: one job applies a
                # register's tickets by the hundred, registers and stores side
                # by side; a store's registers one after the other when each
                # ticket moves stock (``store_key``).
                batch_size=TICKETS_PER_JOB,
                batch_key=register_key if self.pos_stock_policy == "closing" else store_key,
                # Returns and voids of a ticket may have arrived before it.
                wakes=lambda payload: [ticket_key(payload["uuid"])],
                description="A store's ticket: sale, return, void or no-sale.",
            ),
        }

    # --- the ticket ------------------------------------------------------------

    def _pos_store(self, code):
        """The store of this fleet with ``code`` (archived ones excepted), or an
        empty recordset. Looked up once per batch job of tickets."""
        self.ensure_one()
        Store = self.env["connector.pos.store"]
        memo = self.env["connector.event"]._batch_memo()
        key = ("connector_pos.store", self.id, code)
        if key not in memo:
            memo[key] = Store.search(
                [("backend_id", "=", self.id), ("code", "=", code)], limit=1
            ).id
        return Store.browse(memo[key])

    def _pos_ticket_blocked(self, event, payload):
        """Why a ticket cannot be applied yet, with what it waits on, or None.

        A return or a void waits for the ticket it names. A ticket of a
        business day after the store's open day waits for that day's close:
        Odoo keeps one open session per Point of Sale. The day is only looked
        at when the ticket is applied (``event`` set), not at the intake,
        which answers the store in milliseconds.
        """
        original = payload.get("original_uuid")
        if (
            payload.get("type") in ("return", "void")
            and original
            and not self.env["pos.order"].search_count([("uuid", "=", original)], limit=1)
        ):
            return (
                self.env._(
                    "Waiting for the ticket %(uuid)s it %(verb)s, not received yet.",
                    uuid=original,
                    verb=self.env._("returns")
                    if payload["type"] == "return"
                    else self.env._("voids"),
                ),
                ticket_key(original),
            )
        if not event or payload.get("type") == "no_sale":
            return None
        store = self._pos_store(payload.get("store"))
        session = store._open_session() if store else None
        day = payload.get("business_day")
        if session and session.connector_pos_business_day and day:
            open_day = fields.Date.to_string(session.connector_pos_business_day)
            if day > open_day:
                return (
                    self.env._(
                        "Waiting for the close of %(store)s's day %(open)s (session "
                        "%(session)s): Odoo keeps one day open per store, this ticket is "
                        "of %(day)s.",
                        store=store.display_name,
                        open=open_day,
                        session=session.name,
                        day=day,
                    ),
                    day_key(store),
                )
        return None

    def _pos_apply_ticket(self, event, payload):
        """Apply one ticket: the handler of the ``ticket`` topic."""
        return self.env["connector.pos.ticket.importer"]._apply(self, event, payload)

    def _pos_wake(self, keys):
        """Queue the events of this fleet waiting on ``keys`` that may now be
        applied, now and once this transaction is committed."""
        self.ensure_one()
        pairs = {(self.id, key) for key in keys}
        Event = self.env["connector.event"].sudo()
        Event._release_waiters(pairs)
        Event._recheck_waiting_after_commit(pairs)

    def _pos_customer(self, customer):
        """The partner of a ticket's customer, one partner per person across
        the connectors (connector_base's match by loyalty id, email, phone).

        A ticket naming nobody (a walk-in customer, or a name alone, which
        tells two people apart from nothing) is sold to no partner, as a POS
        sells."""
        customer = customer or {}
        loyalty, email, phone = (customer.get(k) for k in ("loyalty_id", "email", "phone"))
        if not (loyalty or email or phone):
            return self.env["res.partner"]
        # A store's regulars come back all day: matched once per batch job (a
        # second match of the same customer finds the same partner, and has
        # nothing left to fill in).
        memo = self.env["connector.event"]._batch_memo()
        key = ("connector_pos.customer", self.id, loyalty, email, phone, customer.get("name"))
        if key not in memo:
            memo[key] = self._match_partner(
                external_id=("pos_loyalty", loyalty) if loyalty else None,
                email=email,
                phone=phone,
                name=customer.get("name"),
            ).id
        return self.env["res.partner"].browse(memo[key])
