import logging

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.models.connector_backend import NO_SHIPPING_CONTEXT

from ..components.client import Refusal
from ..components.release import (
    ORDER_STATUSES,
    cancel_refusals,
    hold_refusals,
    release_body,
    release_problems,
)
from .tpl_backend import CANCEL_TOPIC, HOLD_TOPIC, RELEASE_TOPIC

_logger = logging.getLogger(__name__)
KNOWN_STATUSES = {value for value, _label in ORDER_STATUSES}
DEFAULT_SHIPPING_METHOD = "Standard"


class TplReleaseSync(models.AbstractModel):
    """Deliveries of a 3PL's warehouse released to the 3PL, and their
    cancellations propagated.

    A delivery is released when it becomes ready (its goods reserved), with
    the quantities reserved, under its own reference: the 3PL makes one
    order per reference, and answers a release sent again after a lost
    answer with the order it made. A delivery held in Odoo is held at the
    3PL until it is released in Odoo. What the 3PL refuses (an inactive
    product, a cancellation or a hold once the goods are picked) fails the
    outbound change with the 3PL's reason, for support, and is written on
    the delivery, in its chatter too.
    """

    _name = "tpl.release.sync"
    _description = "3PL Release Sync"

    # --- what queues -------------------------------------------------------------

    @api.model
    def _backends_of(self, pickings):
        """``{warehouse: backend}`` of the running 3PL backends operating the
        warehouses of ``pickings``."""
        warehouses = pickings.picking_type_id.warehouse_id
        if not warehouses:
            return {}
        backends = (
            self.env["connector.backend"]
            .sudo()
            .search(
                [
                    ("backend_type", "=", "3pl"),
                    ("state", "in", ("running", "circuit_open")),
                    ("tpl_warehouse_id", "in", warehouses.ids),
                ]
            )
        )
        return {backend.tpl_warehouse_id: backend for backend in backends}

    @api.model
    def _pickings_ready(self, pickings):
        """Queue the release of the ready deliveries of a 3PL's warehouse not
        released yet; returns their bindings."""
        Binding = self.env["tpl.delivery.binding"].sudo()
        if self.env.context.get(NO_SHIPPING_CONTEXT):
            return Binding
        Backend = self.env["connector.backend"]
        pickings = pickings.filtered(
            lambda p: (
                p.picking_type_code == "outgoing"
                and p.state == "assigned"
                and not Backend._delivered_elsewhere(p)
            )
        )
        backends = self._backends_of(pickings)
        if not backends:
            return Binding
        bound = set(
            Binding.search([("odoo_id", "in", pickings.ids)]).mapped(
                lambda b: (b.backend_id.id, b.odoo_id.id)
            )
        )
        made = Binding
        for picking in pickings:
            backend = backends.get(picking.picking_type_id.warehouse_id)
            if not backend or (backend.id, picking.id) in bound:
                continue
            if not backend._policy("releases_out").enabled:
                continue
            binding = Binding.create(
                {"backend_id": backend.id, "odoo_id": picking.id, "reference": picking.name}
            )
            backend._send_later(
                RELEASE_TOPIC,
                f"picking:{picking.id}",
                {"picking_id": picking.id, "binding_id": binding.id},
                record=picking,
            )
            made |= binding
        return made

    @api.model
    def _pickings_cancelled(self, pickings):
        """Propagate the cancellation of deliveries released (or about to be) to
        their 3PL; a release the 3PL refused has nothing there to cancel."""
        if not pickings:
            return
        bindings = (
            self.env["tpl.delivery.binding"]
            .sudo()
            .search(
                [
                    ("odoo_id", "in", pickings.ids),
                    ("release_state", "in", ("queued", "released", "rejected")),
                ]
            )
        )
        for binding in bindings:
            if binding.release_state == "rejected":
                binding.write({"release_state": "cancelled"})
                continue
            binding.release_state = "cancelling"
            binding.backend_id._send_later(
                CANCEL_TOPIC,
                f"picking:{binding.odoo_id.id}",
                {"picking_id": binding.odoo_id.id, "binding_id": binding.id},
                record=binding.odoo_id,
            )

    @api.model
    def _ask_hold(self, pickings, hold=True):
        """Queue the hold (or its release) of deliveries released to their
        3PL; UserError naming a delivery that is not there to hold."""
        for picking in pickings:
            binding = picking.sudo().tpl_binding_ids.filtered(
                lambda b: b.release_state == "released"
            )[:1]
            if picking.state in ("done", "cancel") or not binding:
                raise UserError(
                    self.env._(
                        "%(delivery)s is not with the 3PL (not released yet, shipped or "
                        "cancelled): there is no hold to ask or to release there.",
                        delivery=picking.name,
                    )
                )
            binding.tpl_hold = "asked" if hold else "lifting"
            picking.message_post(
                body=self.env._("Hold asked at the 3PL.")
                if hold
                else self.env._("Release of the hold asked at the 3PL.")
            )
            binding.backend_id._send_later(
                HOLD_TOPIC,
                f"picking:{picking.id}",
                {"picking_id": picking.id, "binding_id": binding.id, "hold": hold},
                record=picking,
            )

    # --- senders -------------------------------------------------------------------

    @api.model
    def _send_releases(self, backend, items):
        """One ``POST /order`` per delivery; ``{item id: reason}`` for refusals."""
        refused = {}
        client = backend._tpl_client()
        shipping_method = backend.tpl_shipping_method or DEFAULT_SHIPPING_METHOD
        for item in items:
            picking, binding = self._records_of(item)
            if not binding:
                refused[item.id] = self.env._("The delivery is gone: nothing to release.")
                continue
            if binding.external_id and binding.release_state != "rejected":
                item.remote_result = binding.external_id
                continue
            if picking.state == "cancel":
                # Its cancellation (queued beside it) settles the binding.
                item.remote_result = self.env._("Not released: the delivery is cancelled.")
                continue
            delivery = self._delivery_data(picking, binding)
            problems = release_problems(delivery)
            if picking.state == "done":
                problems.append(self.env._("it was validated in Odoo before its release"))
            if problems:
                refused[item.id] = self._rejected(
                    binding,
                    self.env._(
                        "%(delivery)s is not released to the 3PL: %(problems)s. Correct it, "
                        "then requeue the outbound change.",
                        delivery=picking.name,
                        problems="; ".join(problems),
                    ),
                )
                continue
            try:
                order = client.release(release_body(delivery, shipping_method))
            except Refusal as refusal:
                # A reference already used with another body (the reserved
                # quantities changed since an attempt whose answer was lost):
                # the order the 3PL made under it is this delivery's.
                order = (
                    self._find_order(client, binding.reference) if refusal.status == 422 else None
                )
                if order is None:
                    refused[item.id] = self._rejected(
                        binding,
                        self.env._(
                            "The 3PL refused to release %(delivery)s: %(reason)s",
                            delivery=picking.name,
                            reason=refusal.reason,
                        ),
                    )
                    continue
                _logger.info(
                    "%s: the 3PL already has its order %s; recorded", picking.name, order["id"]
                )
            self._record_order(binding, order, release_state="released")
            item.remote_result = str(order["id"])
        return refused

    @api.model
    def _send_cancels(self, backend, items):
        """Cancel at the 3PL the orders of deliveries cancelled in Odoo; a
        shipment the 3PL did not cancel (picked already) is a refusal."""
        refused = {}
        client = backend._tpl_client()
        for item in items:
            picking, binding = self._records_of(item)
            if not binding:
                refused[item.id] = self.env._("The delivery is gone: nothing to cancel.")
                continue
            order_id = binding.external_id
            if not order_id:
                # Queued, never recorded as released: the 3PL may still have it
                # (a release whose answer was lost).
                order = self._find_order(client, binding.reference)
                if order is None:
                    binding.write({"release_state": "cancelled", "tpl_message": False})
                    item.remote_result = self.env._("Never released: nothing to cancel.")
                    continue
                order_id = order["id"]
            try:
                answer = client.cancel(order_id)
            except Refusal as refusal:
                refused[item.id] = self._cancel_refused(binding, picking, refusal.reason)
                continue
            reasons = cancel_refusals(answer)
            order = answer.get("order") or {"id": order_id}
            if reasons:
                self._record_order(binding, order)
                refused[item.id] = self._cancel_refused(binding, picking, "; ".join(reasons))
                continue
            self._record_order(binding, order, release_state="cancelled")
            item.remote_result = self.env._("Cancelled at the 3PL.")
        return refused

    @api.model
    def _send_holds(self, backend, items):
        """Hold at the 3PL (or release) the deliveries held in Odoo; a
        shipment the 3PL did not hold (picked already) is a refusal."""
        refused = {}
        client = backend._tpl_client()
        for item in items:
            picking, binding = self._records_of(item)
            hold = item.payload.get("hold", True)
            if not (binding and binding.external_id) or binding.release_state != "released":
                refused[item.id] = self.env._(
                    "The delivery is no longer with the 3PL: nothing to hold there."
                )
                if binding:
                    binding.tpl_hold = False
                continue
            try:
                answer = client.hold(binding.external_id, hold)
            except Refusal as refusal:
                refused[item.id] = self._hold_refused(binding, picking, refusal.reason, hold)
                continue
            self._record_order(binding, answer.get("order") or {"id": binding.external_id})
            reasons = hold_refusals(answer)
            if reasons:
                refused[item.id] = self._hold_refused(binding, picking, "; ".join(reasons), hold)
                continue
            binding.write({"tpl_hold": "held" if hold else False, "tpl_message": False})
            item.remote_result = (
                self.env._("Held at the 3PL.") if hold else self.env._("Hold lifted at the 3PL.")
            )
        return refused

    # --- helpers -------------------------------------------------------------------

    def _records_of(self, item):
        picking = self.env["stock.picking"].browse(item.payload.get("picking_id")).exists()
        binding = self.env["tpl.delivery.binding"].browse(item.payload.get("binding_id")).exists()
        return picking, binding

    @api.model
    def _delivery_data(self, picking, binding):
        """The delivery as :mod:`..components.release` reads it: its reference,
        recipient and reserved quantities per SKU (in the product's unit)."""
        partner = picking.partner_id
        lines = {}
        for move in picking.move_ids.filtered(lambda m: m.state not in ("cancel", "done")):
            product = move.product_id
            quantity = move.product_uom._compute_quantity(move.quantity, product.uom_id)
            if not quantity:
                continue
            line = lines.setdefault(
                product,
                {"sku": product.default_code, "name": product.display_name, "quantity": 0.0},
            )
            line["quantity"] += quantity
        recipient = {
            "name": partner.name or partner.commercial_partner_id.name,
            "address": {
                "address1": partner.street,
                "address2": partner.street2 or None,
                "city": partner.city,
                "state": partner.state_id.code or None,
                "zip_code": partner.zip or None,
                "country": partner.country_id.code,
            },
        }
        if partner.email:
            recipient["email"] = partner.email
        if partner.phone:
            recipient["phone_number"] = partner.phone
        recipient["address"] = {k: v for k, v in recipient["address"].items() if v is not None}
        return {
            "reference": binding.reference,
            "origin": picking.origin,
            "recipient": recipient,
            "lines": [{**line, "quantity": round(line["quantity"], 6)} for line in lines.values()],
        }

    @api.model
    def _find_order(self, client, reference):
        """The 3PL's order released under ``reference``, or None."""
        for order in client.orders_by_reference([reference]):
            if order.get("reference_id") == reference:
                return order
        return None

    def _record_order(self, binding, order, release_state=None):
        """Write the 3PL's order id and status on the binding."""
        status = order.get("status")
        values = {"external_id": str(order["id"]), "sync_date": fields.Datetime.now()}
        if status in KNOWN_STATUSES:
            values["tpl_status"] = status
        if release_state:
            values.update({"release_state": release_state, "tpl_message": False})
            if release_state == "released" and not binding.released_at:
                values["released_at"] = fields.Datetime.now()
        binding.write(values)
        if release_state == "released":
            # Shipments reported before the release was recorded wait for it.
            binding.backend_id._tpl_wake([binding.reference])

    def _rejected(self, binding, reason):
        """Record a refused release on the delivery; returns the reason."""
        binding.write({"release_state": "rejected", "tpl_message": reason})
        binding.odoo_id.message_post(body=reason)
        return reason

    def _cancel_refused(self, binding, picking, why):
        """Record on the delivery that the 3PL will not cancel it, and tell the
        backend's responsible: the goods may leave the warehouse all the same."""
        reason = self.env._(
            "%(delivery)s is cancelled in Odoo but the 3PL refused to cancel it: %(why)s. "
            "The 3PL may ship it: agree with the 3PL what to do (intercept, return).",
            delivery=picking.name or binding.reference,
            why=why,
        )
        binding.write({"release_state": "cancel_refused", "tpl_message": reason})
        self._tell(binding, picking, reason, self.env._("The 3PL refused to cancel this delivery"))
        return reason

    def _hold_refused(self, binding, picking, why, hold):
        """Record on the delivery that the 3PL did not hold it (it ships all
        the same) or did not lift the hold (it stays back), and tell the
        backend's responsible."""
        if hold:
            reason = self.env._(
                "%(delivery)s is held in Odoo but the 3PL refused to hold it: %(why)s. "
                "The 3PL may ship it: agree with the 3PL what to do.",
                delivery=picking.name or binding.reference,
                why=why,
            )
            summary = self.env._("The 3PL refused to hold this delivery")
        else:
            reason = self.env._(
                "The 3PL did not release the hold of %(delivery)s: %(why)s.",
                delivery=picking.name or binding.reference,
                why=why,
            )
            summary = self.env._("The 3PL keeps this delivery on hold")
        binding.write({"tpl_hold": "refused" if hold else "held", "tpl_message": reason})
        self._tell(binding, picking, reason, summary)
        return reason

    def _tell(self, binding, picking, reason, summary):
        """The 3PL's refusal in the delivery's chatter, and an activity for the
        backend's responsible (else the delivery's)."""
        if not picking:
            return
        picking.message_post(body=reason)
        user = binding.backend_id.responsible_id or picking.user_id
        if user:
            picking.activity_schedule(
                "mail.mail_activity_data_todo", summary=summary, note=reason, user_id=user.id
            )
