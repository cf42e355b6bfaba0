from odoo import fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.topics import InboundTopic, OutboundTopic

from ..components import shipment as shipment_mapper
from ..components.client import TplClient

WEBHOOK_ROUTE = "/connector/3pl/<int:backend_id>/webhook"

RELEASE_TOPIC = "order.release"
CANCEL_TOPIC = "order.cancel"
HOLD_TOPIC = "order.hold"
# Releases one flush sends before recording them. Each is a call of its own
# (the 3PL takes one order per request), and a transient fault puts the whole
# batch back: the releases the 3PL made before it would be unrecorded, sent
# again and charged an attempt each time. Under a few percent of 429 and 5xx
# a batch of 20 rarely went through whole and spent its attempts; one a batch
# is recorded as soon as the 3PL made it, whatever comes next.
RELEASES_PER_BATCH = 1
# A hold the 3PL refused on a delivery still to ship: it may leave all the same.
HOLD_REFUSED_DOMAIN = [
    ("tpl_hold", "=", "refused"),
    ("odoo_id.state", "not in", ("done", "cancel")),
]


class ConnectorBackend(models.Model):
    """A third-party logistics provider (3PL) running one of the retailer's
    warehouses: its API, the warehouse it operates, its carriers."""

    _inherit = "connector.backend"

    backend_type = fields.Selection(
        selection_add=[("3pl", "3PL warehouse")], ondelete={"3pl": "cascade"}
    )
    tpl_warehouse_id = fields.Many2one(
        "stock.warehouse",
        string="Warehouse operated",
        help="The Odoo warehouse the 3PL runs: its deliveries are released to the 3PL as "
        "soon as they are ready (reserved), and shipped by it.",
    )
    tpl_channel_id = fields.Char(
        string="API channel",
        help="The 3PL's API channel the orders are released on (sent with every request). "
        "Test connection fills it with the token's first channel when empty.",
    )
    tpl_shipping_method = fields.Char(
        string="Shipping method",
        default="Standard",
        help="The 3PL's shipping method named in each release (its own service levels).",
    )
    tpl_carrier_ids = fields.One2many("tpl.carrier", "backend_id", string="Carriers")
    tpl_delivery_count = fields.Integer(
        string="Deliveries released", compute="_compute_tpl_delivery_count"
    )
    tpl_refused_count = fields.Integer(
        string="Deliveries refused", compute="_compute_tpl_delivery_count"
    )

    _tpl_warehouse_uniq = models.Constraint(
        "UNIQUE (tpl_warehouse_id)", "This warehouse is already run by another 3PL backend."
    )

    def _compute_tpl_delivery_count(self):
        counts = {
            (backend.id, state): count
            for backend, state, count in self.env["tpl.delivery.binding"]._read_group(
                [("backend_id", "in", self.ids)], ["backend_id", "release_state"], ["__count"]
            )
        }
        holds_refused = dict(
            self.env["tpl.delivery.binding"]._read_group(
                [("backend_id", "in", self.ids), *HOLD_REFUSED_DOMAIN],
                ["backend_id"],
                ["__count"],
            )
        )
        for backend in self:
            backend.tpl_delivery_count = sum(
                count for (backend_id, _state), count in counts.items() if backend_id == backend.id
            )
            backend.tpl_refused_count = holds_refused.get(backend, 0) + sum(
                counts.get((backend.id, state), 0) for state in ("rejected", "cancel_refused")
            )

    def action_tpl_view_deliveries(self):
        """The deliveries of this 3PL, with their release state (the button's context
        says whether only the refused ones)."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_3pl.action_tpl_delivery_binding"
        )
        action["domain"] = [("backend_id", "=", self.id)]
        if self.env.context.get("tpl_refused"):
            action["domain"] += [
                "|",
                ("release_state", "in", ("rejected", "cancel_refused")),
                *["&"] * (len(HOLD_REFUSED_DOMAIN) - 1),
                *HOLD_REFUSED_DOMAIN,
            ]
        action["context"] = {}
        return action

    def action_tpl_release_ready(self):
        """Release the warehouse's ready deliveries not released yet: those that
        became ready while the backend was not running."""
        self.ensure_one()
        if self.backend_type != "3pl" or not self.tpl_warehouse_id:
            raise UserError(self.env._("Choose the warehouse the 3PL operates first."))
        if self.state not in ("running", "circuit_open"):
            raise UserError(
                self.env._("Start the backend first: a draft or paused one sends nothing.")
            )
        pickings = self.env["stock.picking"].search(
            [
                ("picking_type_id.warehouse_id", "=", self.tpl_warehouse_id.id),
                ("picking_type_code", "=", "outgoing"),
                ("state", "=", "assigned"),
            ]
        )
        queued = self.env["tpl.release.sync"]._pickings_ready(pickings)
        return self._notify(
            self.env._("Deliveries released"),
            self.env._("%(count)d ready deliveries queued for the 3PL.", count=len(queued)),
            kind="success",
        )

    # --- declarations ---------------------------------------------------------

    def _connector_flows(self):
        if self.backend_type != "3pl":
            return super()._connector_flows()
        return [
            {
                "code": "releases_out",
                "name": "Deliveries released",
                "mode": "realtime",
                "sla_lag_minutes": 15,
            },
            # Webhooks applied as they come (a delivery is validated as it
            # ships); the 3PL's list of shipments not yet acknowledged read
            # every 5 minutes by its scheduled action, the safety net.
            {
                "code": "shipments_in",
                "name": "Shipments in",
                "mode": "realtime",
                "interval_minutes": 5,
                "sla_lag_minutes": 30,
            },
        ]

    def _connector_topics(self):
        if self.backend_type != "3pl":
            return super()._connector_topics()
        return {
            RELEASE_TOPIC: OutboundTopic(
                flow="releases_out",
                sender="_tpl_send_releases",
                batch_size=RELEASES_PER_BATCH,
                description="A ready delivery released to the 3PL.",
            ),
            # Same flow: pausing releases pauses their cancellations, which
            # must never overtake them.
            CANCEL_TOPIC: OutboundTopic(
                flow="releases_out",
                sender="_tpl_send_cancels",
                batch_size=RELEASES_PER_BATCH,
                description="A delivery cancelled in Odoo, cancelled at the 3PL.",
            ),
            HOLD_TOPIC: OutboundTopic(
                flow="releases_out",
                sender="_tpl_send_holds",
                batch_size=RELEASES_PER_BATCH,
                description="A delivery held (or released) in Odoo, held at the 3PL.",
            ),
            shipment_mapper.SHIPPED_TOPIC: InboundTopic(
                flow="shipments_in",
                schema=shipment_mapper.SHIPMENT_SCHEMA,
                handler="_tpl_apply_shipment",
                sequence_key=shipment_mapper.order_key,
                # Never before its release is recorded: the delivery is found
                # by the release's reference.
                prerequisite="_tpl_release_missing",
                description="The 3PL shipped a delivery: parcels, carriers, tracking.",
            ),
            **{
                topic: InboundTopic(
                    flow="shipments_in",
                    schema=shipment_mapper.SHIPMENT_SCHEMA,
                    handler="_tpl_apply_shipment_status",
                    sequence_key=shipment_mapper.order_key,
                    prerequisite="_tpl_release_missing",
                    description="The 3PL's status of a shipment, shown on its delivery.",
                )
                for topic in shipment_mapper.STATUS_TOPICS
            },
            **{
                topic: InboundTopic(
                    flow="shipments_in",
                    schema=shipment_mapper.ORDER_SCHEMA,
                    handler="_tpl_apply_order_status",
                    sequence_key=shipment_mapper.order_key,
                    prerequisite="_tpl_release_missing",
                    description="The 3PL's status of an order, shown on its delivery.",
                )
                for topic in shipment_mapper.ORDER_TOPICS
            },
        }

    # --- connection -------------------------------------------------------------

    def _tpl_client(self, correlation_id=None):
        self.ensure_one()
        token = self.sudo().api_token
        if not (self.base_url and token):
            raise UserError(self.env._("Enter the 3PL's API URL and its access token first."))
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if self.tpl_channel_id:
            headers["shipbob_channel_id"] = self.tpl_channel_id
        return TplClient(self._http_client(correlation_id=correlation_id, headers=headers))

    def _test_connection(self):
        if self.backend_type != "3pl":
            return super()._test_connection()
        channels = self._tpl_client().channels()
        if not channels:
            raise UserError(
                self.env._(
                    "The 3PL accepted the token but gives it no API channel: ask the 3PL "
                    "for a channel with write access."
                )
            )
        if not self.tpl_channel_id:
            self.tpl_channel_id = str(channels[0]["id"])
        channel = next((c for c in channels if str(c["id"]) == self.tpl_channel_id), None)
        if channel is None:
            raise UserError(
                self.env._(
                    "The 3PL does not know the API channel %(channel)s for this token; its "
                    "channels: %(known)s. Correct the API channel.",
                    channel=self.tpl_channel_id,
                    known=", ".join(f"{c['id']} ({c['name']})" for c in channels),
                )
            )
        return self.env._(
            "Connected to the 3PL, channel %(id)s (%(name)s).",
            id=channel["id"],
            name=channel["name"],
        )

    # --- senders ----------------------------------------------------------------

    def _tpl_send_releases(self, items):
        return self.env["tpl.release.sync"]._send_releases(self, items)

    def _tpl_send_cancels(self, items):
        return self.env["tpl.release.sync"]._send_cancels(self, items)

    def _tpl_send_holds(self, items):
        return self.env["tpl.release.sync"]._send_holds(self, items)

    # --- health -------------------------------------------------------------------

    def _connector_health_checks(self):
        checks = super()._connector_health_checks()
        backends = self.filtered(lambda b: b.backend_type == "3pl" and b.id in checks)
        for backend in backends:
            if not backend.tpl_warehouse_id:
                checks[backend.id].append(
                    (
                        "tpl_setup",
                        self.env._(
                            "%(backend)s operates no warehouse: choose it on the backend, "
                            "or no delivery is released.",
                            backend=backend.display_name,
                        ),
                    )
                )
            if backend.tpl_refused_count:
                checks[backend.id].append(
                    (
                        "tpl_refused",
                        self.env._(
                            "%(count)d deliveries of %(backend)s were refused by the 3PL "
                            "(release, cancellation or hold): open them from the backend's "
                            "Refused button, fix the cause and requeue, or handle them "
                            "with the 3PL.",
                            count=backend.tpl_refused_count,
                            backend=backend.display_name,
                        ),
                    )
                )
        return checks

    def _health_check_labels(self):
        return {
            **super()._health_check_labels(),
            "tpl_setup": self.env._("3PL backend not set up"),
            "tpl_refused": self.env._("Deliveries refused by the 3PL"),
        }
