import logging

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..components import shipment as mapper
from .tpl_backend import WEBHOOK_ROUTE

_logger = logging.getLogger(__name__)
# Pages of unacknowledged shipments one poll reads at most (250 each): a poll
# that meets more leaves them to the next.
POLL_ROUNDS = 20
SHIPMENT_STATUSES = {"OnHold": "OnHold", "Exception": "Exception", "Cancelled": "Cancelled"}


class ConnectorBackend(models.Model):
    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    # --- webhooks -------------------------------------------------------------------

    def _webhook_address(self):
        if self.backend_type != "3pl":
            return super()._webhook_address()
        if not self.id:
            return False
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url") or ""
        return base.rstrip("/") + WEBHOOK_ROUTE.replace("<int:backend_id>", str(self.id))

    def _webhook_signature_ok(self, raw_body, headers):
        if self.backend_type != "3pl":
            return super()._webhook_signature_ok(raw_body, headers)
        return self._webhook_hmac_base64_ok(raw_body, headers.get("X-3pl-Signature"))

    def _webhook_message(self, payload, headers):
        if self.backend_type != "3pl":
            return super()._webhook_message(payload, headers)
        topic = payload.get("topic") if isinstance(payload, dict) else None
        data = payload.get("data") if isinstance(payload, dict) else None
        message_id = headers.get("X-3pl-Message-Id")
        key = message_id
        if topic == mapper.SHIPPED_TOPIC and isinstance(data, dict) and data.get("id"):
            # The same key as the polled shipment: whichever comes second is
            # a duplicate, applied once.
            key = mapper.shipped_key(data["id"])
        return {
            "topic": topic or headers.get("X-3pl-Topic"),
            "idempotency_key": key,
            "occurred_at": mapper.event_time(payload.get("event_time"))
            if isinstance(payload, dict)
            else None,
            "correlation_id": message_id,
        }

    # --- polling ---------------------------------------------------------------------

    @api.model
    def _cron_tpl_poll_shipments(self):
        """Queue the read of unacknowledged shipments of every running 3PL."""
        for backend in self.search([("backend_type", "=", "3pl"), ("state", "=", "running")]):
            if backend._policy("shipments_in").enabled:
                backend._tpl_enqueue_poll()

    def action_tpl_poll_shipments(self):
        """Read the shipments the 3PL reports and Odoo has not acknowledged, now."""
        self.ensure_one()
        self._tpl_enqueue_poll()
        return self._notify(
            self.env._("Shipments"), self.env._("The 3PL's shipments are being read."), kind="info"
        )

    def _tpl_enqueue_poll(self):
        """One read of the shipments waiting per backend (its identity key), on
        the flow's channel, as the backend's connector user."""
        self.ensure_one()
        backend = self.with_user(self._connector_user()).sudo()
        return backend._connector_delay(
            channel=self._policy("shipments_in").channel,
            identity_key=f"tpl.poll-{self.id}",
            description=f"{self.name}: read shipments",
        )._tpl_poll_shipments()

    def _tpl_poll_shipments(self):
        """The queue job: store each shipped, unacknowledged shipment as an
        ``order.shipped`` event, then acknowledge it. Acknowledged only once
        stored (committed): a crash between the two reads it again, and the
        event's key makes it a duplicate."""
        self.ensure_one()
        stored = acknowledged = 0
        seen = set()
        with self._retry_on_remote_fault():
            client = self._tpl_client()
            for _round in range(POLL_ROUNDS):
                shipments = [
                    shipment
                    for order in client.unacknowledged_shipments()
                    for shipment in order.get("shipments") or ()
                    if shipment.get("packages")
                    and not shipment.get("is_tracking_uploaded")
                    and shipment["id"] not in seen
                ]
                if not shipments:
                    break
                seen.update(s["id"] for s in shipments)
                now = fields.Datetime.now().isoformat()
                with self._new_transaction() as env:
                    env["connector.event"]._receive_many(
                        self.with_env(env),
                        [
                            {
                                "topic": mapper.SHIPPED_TOPIC,
                                "payload": mapper.shipped_message(shipment, now),
                                "idempotency_key": mapper.shipped_key(shipment["id"]),
                                "occurred_at": mapper.event_time(
                                    mapper.shipped_message(shipment, now)["event_time"]
                                ),
                            }
                            for shipment in shipments
                        ],
                        source="poll",
                    )
                stored += len(shipments)
                errors = client.acknowledge([s["id"] for s in shipments])
                for shipment_id, error in errors.items():
                    if error:
                        _logger.info(
                            "3PL %s: shipment %s not acknowledged: %s", self.id, shipment_id, error
                        )
                    else:
                        acknowledged += 1
        self._policy("shipments_in").sudo().watermark = fields.Datetime.now()
        return f"{stored} shipments stored, {acknowledged} acknowledged"

    # --- handlers ----------------------------------------------------------------------

    def _tpl_release_missing(self, event, payload):
        """A shipment waits until its delivery's release is recorded."""
        reference = mapper.reference_of(payload)
        binding = self.env["tpl.delivery.binding"].search(
            [("backend_id", "=", self.id), ("reference", "=", reference)], limit=1
        )
        if binding and binding.external_id:
            return None
        return (
            self.env._(
                "Waiting for the release of %(reference)s to be recorded: the 3PL reports a "
                "shipment of a delivery Odoo has not seen accepted yet.",
                reference=reference,
            ),
            mapper.release_key(reference),
        )

    def _tpl_apply_shipment(self, event, payload):
        return self.env["tpl.shipment.import"]._apply_shipped(self, event, payload)

    def _tpl_apply_shipment_status(self, event, payload):
        return self.env["tpl.shipment.import"]._apply_status(self, event, payload)

    def _tpl_apply_order_status(self, event, payload):
        return self.env["tpl.shipment.import"]._apply_status(self, event, payload)

    def _tpl_wake(self, references):
        """Queue the shipments waiting for these releases, now and after commit."""
        self.ensure_one()
        pairs = {(self.id, mapper.release_key(ref)) for ref in references}
        Event = self.env["connector.event"].sudo()
        Event._release_waiters(pairs)
        Event._recheck_waiting_after_commit(pairs)


class TplShipmentImport(models.AbstractModel):
    """A shipment reported by the 3PL, applied to its delivery.

    The shipped quantities are validated; what was not shipped goes to a
    backorder (released in turn when it is reserved). Each parcel is recorded
    with its own carrier (mapped to an Odoo carrier) and tracking number. A
    delivery already done is never moved back, nor its parcels overwritten,
    by a late or repeated "shipped".
    """

    _name = "tpl.shipment.import"
    _description = "3PL Shipment Import"

    def _binding(self, backend, payload):
        reference = mapper.reference_of(payload)
        binding = self.env["tpl.delivery.binding"].search(
            [("backend_id", "=", backend.id), ("reference", "=", reference)], limit=1
        )
        if not binding:
            raise UserError(
                self.env._(
                    "The 3PL reports %(reference)s, which Odoo never released to it: check "
                    "with the 3PL, then ignore this event.",
                    reference=reference,
                )
            )
        return binding

    @staticmethod
    def _occurred(event):
        return (event and event.occurred_at) or fields.Datetime.now()

    def _set_status(self, binding, status, occurred_at, **extra):
        """Show the 3PL's status on the delivery unless a newer one is shown."""
        if binding.tpl_status_at and occurred_at < binding.tpl_status_at:
            return
        values = {"tpl_status_at": occurred_at, "sync_date": fields.Datetime.now(), **extra}
        if status:
            values["tpl_status"] = status
        binding.write(values)

    def _apply_shipped(self, backend, event, payload):
        shipment = payload["data"]
        binding = self._binding(backend, payload)
        picking = binding.odoo_id
        if picking.state == "done":
            # A late or repeated "shipped" (nearmerch#214): nothing moves back.
            _logger.info(
                "%s: already shipped, shipment %s left as is", picking.name, shipment["id"]
            )
            return picking
        if picking.state == "cancel":
            raise UserError(
                self.env._(
                    "The 3PL shipped %(delivery)s, which is cancelled in Odoo: agree with the "
                    "3PL what to do with the parcels (a return), then ignore this event.",
                    delivery=picking.name,
                )
            )
        shipped = mapper.shipped_quantities(shipment)
        moves = picking.move_ids.filtered(lambda m: m.state not in ("done", "cancel"))
        by_sku = {}
        for move in moves:
            by_sku.setdefault(move.product_id.default_code, []).append(move)
        unknown = sorted(set(shipped) - set(by_sku))
        if unknown or not any(shipped.values()):
            raise UserError(
                self.env._(
                    "The 3PL's shipment %(shipment)s of %(delivery)s ships %(what)s, not on the "
                    "delivery: check with the 3PL, then ignore or requeue this event.",
                    shipment=shipment["id"],
                    delivery=picking.name,
                    what=", ".join(unknown) or self.env._("nothing"),
                )
            )
        for move in moves:
            move.quantity = 0
        for sku, quantity in shipped.items():
            left = quantity
            for move in by_sku[sku]:
                take = min(left, move.product_uom_qty)
                move.quantity = take
                left -= take
            if left > 0:
                # More than ordered: on the last move, as Odoo records an extra unit.
                by_sku[sku][-1].quantity += left
        for move in moves:
            move.picked = bool(move.quantity)
        self._record_parcels(backend, binding, picking, shipment)
        picking.with_context(cancel_backorder=False)._action_done()
        short = any(move.quantity < move.product_uom_qty for move in moves if move.state == "done")
        self._set_status(
            binding,
            "PartiallyFulfilled" if (short or picking.backorder_ids) else "Fulfilled",
            self._occurred(event),
        )
        return picking

    def _record_parcels(self, backend, binding, picking, shipment):
        """One row per parcel, its carrier mapped; the delivery gets the first
        parcel's carrier and every parcel's tracking number."""
        Parcel = self.env["tpl.parcel"]
        Carrier = self.env["tpl.carrier"]
        known = set(binding.parcel_ids.mapped("package_id"))
        rows = [p for p in mapper.parcels(shipment) if p["package_id"] not in known]
        parcels = Parcel.create(
            [
                {
                    "binding_id": binding.id,
                    "picking_id": picking.id,
                    "delivery_carrier_id": Carrier._lookup(
                        backend, row["carrier"], row["service"]
                    ).id,
                    **{k: v for k, v in row.items() if k != "tracking_status"},
                    "tracking_status": row["tracking_status"],
                }
                for row in rows
            ]
        )
        parcels = binding.parcel_ids | parcels
        values = {
            "carrier_tracking_ref": ", ".join(
                p.tracking_number for p in parcels if p.tracking_number
            )
            or False
        }
        carrier = parcels.delivery_carrier_id[:1]
        if carrier:
            values["carrier_id"] = carrier.id
        picking.write(values)

    def _apply_status(self, backend, event, payload):
        """A shipment's (or the order's) new status, shown on the delivery;
        each parcel's tracking status kept."""
        data = payload["data"]
        binding = self._binding(backend, payload)
        topic = payload.get("topic") or (event and event.topic)
        status = SHIPMENT_STATUSES.get(data.get("status"))
        extra = {}
        if topic in ("order.shipment.delivered", "order.delivered"):
            extra["tracking_status"] = "Delivered"
        elif topic == "order.shipment.tracking.updated":
            packages = data.get("packages") or []
            extra["tracking_status"] = next(
                (p.get("tracking_status") for p in packages if p.get("tracking_status")), False
            )
        if topic == "order.delivered":
            status = "Fulfilled" if data.get("status") == "Fulfilled" else None
        for package in data.get("packages") or ():
            parcel = binding.parcel_ids.filtered(
                lambda p, pk=package: p.package_id == str(pk["id"])
            )
            if parcel and package.get("tracking_status"):
                parcel.tracking_status = package["tracking_status"]
        self._set_status(binding, status, self._occurred(event), **extra)
        return binding.odoo_id
