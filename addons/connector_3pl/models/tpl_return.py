import logging

from odoo import Command, api, fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.topics import InboundTopic, OutboundTopic

from ..components import returns as mapper
from ..components.client import Refusal

_logger = logging.getLogger(__name__)

EXPECT_TOPIC = "return.expect"
DISPOSITIONS = [
    ("restock", "Restock (warehouse stock)"),
    ("inspect", "Inspect (quality location)"),
    ("scrap", "Scrap"),
]
RETURN_STATES = [
    ("queued", "To announce"),
    ("announced", "Expected"),
    ("rejected", "Refused by the 3PL"),
    ("partial", "Partly received"),
    ("received", "Received"),
]
REFUND_STATES = [
    ("waiting", "Waiting for the goods"),
    ("eligible", "Refundable: all received sellable"),
    ("partial", "Partly refundable"),
    ("none", "Nothing received sellable"),
    ("refunded", "Refunded before the goods came back"),
]


class TplReturnDisposition(models.Model):
    """Where the units the 3PL found in a condition go in Odoo. A condition
    without a line goes where the defaults say (sellable restocked, damaged
    inspected, expired scrapped)."""

    _name = "tpl.return.disposition"
    _description = "3PL Return Disposition"
    _order = "backend_id, condition"

    backend_id = fields.Many2one("connector.backend", required=True, ondelete="cascade", index=True)
    condition = fields.Selection(mapper.CONDITIONS, required=True)
    disposition = fields.Selection(DISPOSITIONS, required=True, default="inspect")
    location_id = fields.Many2one(
        "stock.location",
        domain="[('usage', 'in', ('internal', 'inventory'))]",
        help="Where these units go; empty: the backend's location of this disposition.",
    )

    _condition_uniq = models.Constraint(
        "UNIQUE (backend_id, condition)", "This condition is already mapped on this backend."
    )


class TplReturnBinding(models.Model):
    """A return receipt announced to the 3PL under its RMA reference, and what
    the 3PL processed of it: the refund's eligibility follows from it."""

    _name = "tpl.return.binding"
    _inherit = "connector.binding.mixin"
    _description = "3PL Return Binding"
    _order = "id desc"
    _rec_name = "reference"

    odoo_id = fields.Many2one(
        "stock.picking", string="Return", required=True, ondelete="cascade", index=True
    )
    external_id = fields.Char(
        string="3PL return", required=False, index=True, help="The 3PL's id of the return."
    )
    reference = fields.Char(
        string="RMA",
        required=True,
        readonly=True,
        help="The RMA reference the 3PL knows the return by (unique): announced again "
        "after a lost answer, it is recognised, never made twice.",
    )
    state = fields.Selection(RETURN_STATES, default="queued", required=True, readonly=True)
    tpl_message = fields.Text(string="3PL says", readonly=True)
    processed = fields.Text(
        readonly=True,
        help="What the 3PL processed: per product the quantity, condition, "
        "action and where it went in Odoo.",
    )
    received_summary = fields.Char(string="Received", readonly=True)
    sellable_qty = fields.Float(string="Received sellable", readonly=True)
    unsellable_qty = fields.Float(string="Received not sellable", readonly=True)
    refund_state = fields.Selection(
        REFUND_STATES, string="Refund", default="waiting", required=True, readonly=True
    )
    refunded_by_id = fields.Many2one(
        "connector.backend",
        string="Refunded in",
        readonly=True,
        help="The sales channel that already refunded the customer (a refund with restock): "
        "what the 3PL received only says where the goods went.",
    )

    _reference_uniq = models.Constraint(
        "UNIQUE (backend_id, reference)", "This RMA reference is already announced."
    )
    _odoo_uniq = models.Constraint(
        "UNIQUE (backend_id, odoo_id)", "This return is already bound to this 3PL."
    )


class ConnectorBackend(models.Model):
    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    tpl_disposition_ids = fields.One2many(
        "tpl.return.disposition", "backend_id", string="Return dispositions"
    )
    tpl_inspect_location_id = fields.Many2one(
        "stock.location",
        string="Returns to inspect",
        domain="[('usage', '=', 'internal')]",
        help="Where returned units to inspect go; empty: a location 'Returns to inspect' of "
        "the warehouse, made at the first such return.",
    )
    tpl_scrap_location_id = fields.Many2one(
        "stock.location",
        string="Returns scrapped",
        domain="[('usage', '=', 'inventory')]",
        help="Where returned units to scrap go; empty: the company's scrap location.",
    )

    def _connector_flows(self):
        flows = super()._connector_flows()
        if self.backend_type == "3pl":
            flows.append(
                {"code": "returns", "name": "Returns", "mode": "realtime", "sla_lag_minutes": 60}
            )
        return flows

    def _connector_topics(self):
        topics = super()._connector_topics()
        if self.backend_type == "3pl":
            # One return per batch: each announcement takes three calls and is
            # recorded as soon as the 3PL made it, so that a fault on another
            # return neither undoes it nor spends its attempts.
            topics[EXPECT_TOPIC] = OutboundTopic(
                flow="returns",
                sender="_tpl_send_expected_returns",
                batch_size=1,
                description="A return expected at the 3PL, announced under its RMA.",
            )
            topics[mapper.COMPLETED_TOPIC] = InboundTopic(
                flow="returns",
                schema=mapper.RETURN_SCHEMA,
                handler="_tpl_apply_return",
                sequence_key=mapper.return_key,
                description="The 3PL processed a return: per item quantity, condition, action.",
            )
        return topics

    def _webhook_message(self, payload, headers):
        message = super()._webhook_message(payload, headers)
        if self.backend_type == "3pl" and message.get("topic") == mapper.COMPLETED_TOPIC:
            data = payload.get("data") if isinstance(payload, dict) else None
            if isinstance(data, dict) and data.get("id"):
                # The same key as the return read by id: applied once.
                message["idempotency_key"] = mapper.completed_key(data["id"])
        return message

    def _connector_health_checks(self):
        checks = super()._connector_health_checks()
        backends = self.filtered(lambda b: b.backend_type == "3pl" and b.id in checks)
        if not backends:
            return checks
        counts = dict(
            self.env["tpl.return.binding"]._read_group(
                [("backend_id", "in", backends.ids), ("state", "=", "rejected")],
                ["backend_id"],
                ["__count"],
            )
        )
        for backend in backends:
            if counts.get(backend):
                checks[backend.id].append(
                    (
                        "tpl_return_refused",
                        self.env._(
                            "%(count)d returns of %(backend)s were not announced to the 3PL: "
                            "open them in Connectors > 3PL > 3PL returns, fix the cause and "
                            "requeue their outbound change.",
                            count=counts[backend],
                            backend=backend.display_name,
                        ),
                    )
                )
        return checks

    def _health_check_labels(self):
        return {
            **super()._health_check_labels(),
            "tpl_return_refused": self.env._("Returns refused by the 3PL"),
        }

    # --- what the other flows call ---------------------------------------------------

    @api.model
    def _receive_return_remotely(self, picking, refunded_by=None):
        """A return of a delivery the 3PL had, of the warehouse a running 3PL
        operates, its returns flow on: announced to the 3PL (once), validated
        when the 3PL completes it, each quantity where its condition maps it."""
        receiver = super()._receive_return_remotely(picking, refunded_by=refunded_by)
        if receiver:
            return receiver
        # Odoo's return wizard announced it when it assigned it: the same binding.
        binding = self.env["tpl.return.sync"]._returns_expected(picking)
        if binding and refunded_by:
            binding.write({"refund_state": "refunded", "refunded_by_id": refunded_by.id})
        return binding.backend_id

    def _tpl_expect_return(self, picking):
        """Announce ``picking`` to the 3PL under its own reference as RMA; once
        only (called again, the same binding). Returns its binding.

        ``picking`` is an incoming return of a delivery this 3PL shipped (its
        ``return_id``, as Odoo's return wizard sets it): the 3PL is told the
        shipment and fulfillment center the goods come back to. Other flows
        (a refund with restock) make such a return, then call this."""
        self.ensure_one()
        Binding = self.env["tpl.return.binding"].sudo()
        binding = Binding.search([("backend_id", "=", self.id), ("odoo_id", "=", picking.id)])
        if binding:
            return binding
        binding = Binding.create(
            {"backend_id": self.id, "odoo_id": picking.id, "reference": picking.name}
        )
        self._send_later(
            EXPECT_TOPIC,
            f"return:{picking.id}",
            {"picking_id": picking.id, "binding_id": binding.id},
            record=picking,
        )
        return binding

    def _tpl_return_location(self, action, condition):
        """Where units the 3PL processed with ``action`` in ``condition`` go:
        disposed of at the 3PL is always scrapped (the goods are gone);
        otherwise the condition's disposition decides."""
        self.ensure_one()
        line = self.tpl_disposition_ids.filtered(lambda d: d.condition == condition)[:1]
        disposition = (
            "scrap"
            if action == "Dispose"
            else (line.disposition or mapper.DEFAULT_DISPOSITIONS[condition])
        )
        if line.location_id and action != "Dispose":
            return line.location_id
        if disposition == "restock":
            return self.tpl_warehouse_id.lot_stock_id
        if disposition == "scrap":
            return self.tpl_scrap_location_id or self._tpl_default_scrap_location()
        if not self.tpl_inspect_location_id:
            self.sudo().tpl_inspect_location_id = self.env["stock.location"].create(
                {
                    "name": "Returns to inspect",
                    "usage": "internal",
                    "location_id": self.tpl_warehouse_id.view_location_id.id,
                    "company_id": self.tpl_warehouse_id.company_id.id,
                }
            )
        return self.tpl_inspect_location_id

    def _tpl_default_scrap_location(self):
        company = self.tpl_warehouse_id.company_id or self.env.company
        # A scrap location of the company rather than the one inventory
        # adjustments go to (made first, so the older).
        loss = self.env["ir.default"]._get(
            "product.template", "property_stock_inventory", company_id=company.id
        )
        locations = self.env["stock.location"].search(
            [("usage", "=", "inventory"), ("company_id", "in", (company.id, False))], order="id"
        )
        # Where Odoo's own scrap orders go when the company has no other
        # (a database made by Odoo 19 has only the inventory adjustment one).
        location = (locations.filtered(lambda loc: loc.id != loss) or locations)[:1]
        if not location:
            raise UserError(
                self.env._(
                    "No scrap location for %(company)s: set Returns scrapped on the backend.",
                    company=company.name,
                )
            )
        return location

    # --- senders and handlers -------------------------------------------------------------

    def _tpl_send_expected_returns(self, items):
        return self.env["tpl.return.sync"]._send_expected(self, items)

    def _tpl_apply_return(self, event, payload):
        return self.env["tpl.return.sync"]._apply_completed(self, event, payload)

    def action_tpl_read_returns(self):
        """Read the returns expected at the 3PL: those it completed are applied
        as their webhook would be (the same key: applied once)."""
        self.ensure_one()
        count = self.env["tpl.return.sync"]._read_returns(self)
        return self._notify(
            self.env._("Returns"),
            self.env._("%(count)d completed returns read from the 3PL.", count=count),
            kind="info",
        )

    @api.model
    def _cron_tpl_read_returns(self):
        """Queue the read of the expected returns of every running 3PL: the
        safety net of the ``return.completed`` webhooks."""
        for backend in self.search([("backend_type", "=", "3pl"), ("state", "=", "running")]):
            if backend._policy("returns").enabled and self.env["tpl.return.binding"].search_count(
                [("backend_id", "=", backend.id), ("state", "=", "announced")], limit=1
            ):
                backend.with_user(backend._connector_user()).sudo()._connector_delay(
                    channel=backend._policy("returns").channel,
                    identity_key=f"tpl.returns-{backend.id}",
                    description=f"{backend.name}: read returns",
                )._tpl_read_returns()

    def _tpl_read_returns(self):
        """The queue job: the completed returns stored as their webhook would."""
        self.ensure_one()
        with self._retry_on_remote_fault():
            count = self.env["tpl.return.sync"]._read_returns(self)
        return f"{count} completed returns stored"


class TplReturnSync(models.AbstractModel):
    """Returns expected at the 3PL, announced under their RMA reference, and
    the 3PL's processing of them applied to the return receipt.

    Each quantity goes where its condition's disposition maps it (several
    conditions of one product: the move split per location); what the 3PL
    did not process stays expected in a backorder of the return, never
    announced again in full (OCA/rma#418).
    """

    _name = "tpl.return.sync"
    _description = "3PL Return Sync"

    @api.model
    def _returns_expected(self, pickings):
        """Announce the incoming returns of deliveries of a 3PL's warehouse
        (Odoo's return wizard) not announced yet; a backorder of a return is
        the rest of an RMA already announced: never announced again. Only
        deliveries the 3PL has (released to it): the goods of one validated in
        Odoo alone never left through the 3PL, Odoo receives them back."""
        pickings = pickings.filtered(
            lambda p: (
                p.picking_type_code == "incoming"
                and p.return_id.picking_type_code == "outgoing"
                and not p.backorder_id
                and p.state in ("confirmed", "assigned")
                and p.return_id.sudo().tpl_binding_ids.filtered("external_id")
            )
        )
        if not pickings:
            return self.env["tpl.return.binding"]
        backends = self.env["tpl.release.sync"]._backends_of(pickings.return_id)
        made = self.env["tpl.return.binding"]
        for picking in pickings:
            backend = backends.get(picking.return_id.picking_type_id.warehouse_id)
            if backend and backend._policy("returns").enabled:
                made |= backend._tpl_expect_return(picking)
        return made

    # --- announce ----------------------------------------------------------------------

    @api.model
    def _send_expected(self, backend, items):
        """One ``POST /return`` per return; ``{item id: reason}`` for refusals."""
        refused = {}
        client = backend._tpl_client()
        for item in items:
            picking = self.env["stock.picking"].browse(item.payload.get("picking_id")).exists()
            binding = self.env["tpl.return.binding"].browse(item.payload.get("binding_id")).exists()
            if not (picking and binding):
                refused[item.id] = self.env._("The return is gone: nothing to announce.")
                continue
            if binding.external_id:
                item.remote_result = binding.external_id
                continue
            try:
                body = self._return_body(client, binding, picking)
                answer = mapper.announce(client, body)
            except Refusal as refusal:
                # Announced before with another body (the return was changed
                # after an attempt whose answer was lost): the 3PL's return
                # under this RMA is this one.
                answer = (
                    mapper.return_by_reference(client, binding.reference)
                    if refusal.status == 422
                    else None
                )
                if answer is None:
                    refused[item.id] = self._rejected(
                        binding,
                        self.env._(
                            "The 3PL refused the return %(rma)s: %(reason)s",
                            rma=binding.reference,
                            reason=refusal.reason,
                        ),
                    )
                    continue
            except UserError as error:
                refused[item.id] = self._rejected(binding, str(error))
                continue
            binding.write(
                {
                    "external_id": str(answer["id"]),
                    "state": "announced",
                    "tpl_message": False,
                    "sync_date": fields.Datetime.now(),
                }
            )
            item.remote_result = str(answer["id"])
        return refused

    def _rejected(self, binding, reason):
        binding.write({"state": "rejected", "tpl_message": reason})
        binding.odoo_id.message_post(body=reason)
        return reason

    def _return_body(self, client, binding, picking):
        """The return's products by the 3PL's inventory id, to the fulfillment
        center that shipped the delivery it returns."""
        quantities = {}
        for move in picking.move_ids.filtered(lambda m: m.state not in ("done", "cancel")):
            product = move.product_id
            if not product.default_code:
                raise UserError(
                    self.env._(
                        "%(product)s has no internal reference (the 3PL's SKU): give it one, "
                        "then requeue the outbound change.",
                        product=product.display_name,
                    )
                )
            quantity = move.product_uom._compute_quantity(move.product_uom_qty, product.uom_id)
            quantities[product.default_code] = quantities.get(product.default_code, 0) + quantity
        ids = mapper.inventory_ids(client, quantities)
        unknown = sorted(set(quantities) - set(ids))
        if unknown:
            raise UserError(
                self.env._(
                    "The 3PL does not stock %(skus)s: agree with the 3PL, then requeue the "
                    "outbound change.",
                    skus=", ".join(unknown),
                )
            )
        delivery = picking.return_id.tpl_binding_ids.filtered("external_id")[:1]
        shipment = {}
        if delivery:
            shipments = mapper.order(client, delivery.external_id).get("shipments") or []
            shipment = next(
                (s for s in shipments if s.get("packages")), (shipments[:1] and shipments[0]) or {}
            )
        center = (shipment.get("location") or {}).get("id")
        if not center:
            raise UserError(
                self.env._(
                    "%(delivery)s, which %(rma)s returns, was never shipped by the 3PL: the "
                    "3PL's fulfillment center is unknown. Handle the return with the 3PL.",
                    delivery=picking.return_id.name,
                    rma=binding.reference,
                )
            )
        return mapper.return_body(
            binding.reference,
            center,
            [(ids[sku], quantity) for sku, quantity in quantities.items()],
            original_shipment_id=shipment.get("id"),
        )

    # --- read back -----------------------------------------------------------------------

    @api.model
    def _read_returns(self, backend):
        """Store the completion of each expected return the 3PL completed."""
        bindings = self.env["tpl.return.binding"].search(
            [("backend_id", "=", backend.id), ("state", "=", "announced")]
        )
        client = backend._tpl_client()
        count = 0
        for binding in bindings:
            data = mapper.read_return(client, binding.external_id)
            if data.get("status") != "Completed":
                continue
            self.env["connector.event"]._receive(
                backend,
                mapper.COMPLETED_TOPIC,
                {
                    "topic": mapper.COMPLETED_TOPIC,
                    "event_time": data.get("completed_date"),
                    "data": data,
                },
                mapper.completed_key(data["id"]),
            )
            count += 1
        return count

    # --- completion --------------------------------------------------------------------

    @api.model
    def _apply_completed(self, backend, event, payload):
        data = payload["data"]
        reference = data["reference_id"]
        binding = self.env["tpl.return.binding"].search(
            [("backend_id", "=", backend.id), ("reference", "=", reference)], limit=1
        )
        if not binding:
            raise UserError(
                self.env._(
                    "The 3PL completed the return %(rma)s, which Odoo never announced: check "
                    "with the 3PL, then ignore this event.",
                    rma=reference,
                )
            )
        picking = binding.odoo_id
        if binding.state in ("received", "partial") or picking.state == "done":
            _logger.info("%s: return already received, completion left as is", reference)
            return picking
        if picking.state == "cancel":
            raise UserError(
                self.env._(
                    "The 3PL received the return %(rma)s, cancelled in Odoo: agree with the 3PL "
                    "what to do with the goods, then ignore this event.",
                    rma=reference,
                )
            )
        rows, problems = mapper.processed(data)
        moves = picking.move_ids.filtered(lambda m: m.state not in ("done", "cancel"))
        expected = sum(moves.mapped("product_uom_qty"))
        by_sku = {}
        for move in moves:
            by_sku.setdefault(move.product_id.default_code, move)
        problems += sorted({f"{sku}: not on the return" for sku, *_r in rows if sku not in by_sku})
        if problems or not rows:
            raise UserError(
                self.env._(
                    "The 3PL's completion of the return %(rma)s cannot be applied: %(problems)s. "
                    "Check with the 3PL, then ignore or requeue this event.",
                    rma=reference,
                    problems="; ".join(problems) or self.env._("nothing was processed"),
                )
            )
        # {sku: {location: quantity}}, and what the refund may rest on.
        targets, lines, sellable, unsellable, by_condition = {}, [], 0, 0, {}
        stock = backend.tpl_warehouse_id.lot_stock_id
        scraps = []
        for sku, action, condition, quantity in rows:
            location = backend._tpl_return_location(action, condition)
            received_at = location
            if location.usage != "internal":
                # Disposed of: received first, so that the sale counts the
                # units returned, then scrapped, Odoo's way.
                received_at = stock
                scraps.append((by_sku[sku].product_id, quantity, location))
            per_sku = targets.setdefault(sku, {})
            per_sku[received_at] = per_sku.get(received_at, 0) + quantity
            label = mapper.CONDITION_LABELS[condition].lower()
            by_condition[label] = by_condition.get(label, 0) + quantity
            if condition == "SELLABLE" and action == "Restock":
                sellable += quantity
            else:
                unsellable += quantity
            lines.append(f"{sku}: {quantity} {label}, {action} → {location.display_name}")
        for sku, per_location in targets.items():
            self._split_to_locations(by_sku[sku], per_location)
        for move in moves:
            move.picked = bool(move.quantity)
        picking.with_context(cancel_backorder=False)._action_done()
        self._scrap(picking, stock, scraps)
        values = self._outcome(binding, by_condition, sellable, unsellable, expected)
        binding.write(
            {
                **values,
                "processed": "\n".join(lines),
                "external_id": binding.external_id or str(data["id"]),
                "sync_date": fields.Datetime.now(),
            }
        )
        summary = values["received_summary"]
        picking.message_post(body=summary)
        return picking

    def _scrap(self, picking, location, scraps):
        """Scrap orders, from ``location``, of the units the 3PL disposed of
        (``[(product, quantity, scrap location)]``), the return their origin."""
        Scrap = self.env["stock.scrap"]
        for product, quantity, scrap_location in scraps:
            Scrap.create(
                {
                    "product_id": product.id,
                    "product_uom_id": product.uom_id.id,
                    "scrap_qty": quantity,
                    "location_id": location.id,
                    "scrap_location_id": scrap_location.id,
                    "origin": picking.name,
                    "company_id": picking.company_id.id,
                }
            ).do_scrap()

    def _outcome(self, binding, by_condition, sellable, unsellable, expected):
        """The binding's state, what was received in words and whether the
        refund may go ahead: in full only when every unit came back sellable
        (already refunded by a sales channel: stays so)."""
        picking = binding.odoo_id
        partial = bool(picking.backorder_ids)
        summary = self.env._(
            "Received: %(what)s", what=", ".join(f"{q:g} {c}" for c, q in by_condition.items())
        )
        if partial:
            summary += self.env._(
                "; %(rest)s still expected (%(backorder)s)",
                rest=f"{sum(picking.backorder_ids.move_ids.mapped('product_uom_qty')):g}",
                backorder=", ".join(picking.backorder_ids.mapped("name")),
            )
        if binding.refund_state == "refunded":
            refund = "refunded"  # the money went back already: what came back is stock only
        elif not sellable:
            refund = "none"
        elif unsellable or partial or sellable < expected:
            refund = "partial"
        else:
            refund = "eligible"
        return {
            "state": "partial" if partial else "received",
            "received_summary": summary,
            "sellable_qty": sellable,
            "unsellable_qty": unsellable,
            "refund_state": refund,
        }

    def _split_to_locations(self, move, per_location):
        """``move`` received as ``{location: quantity}``: its own destination
        keeps the first quantity (the warehouse's stock when some is there),
        each other location gets a move of its own, validated with it."""
        move.move_line_ids.unlink()
        ordered = sorted(per_location.items(), key=lambda pair: pair[0] != move.location_dest_id)
        (first_location, first_quantity), others = ordered[0], ordered[1:]
        demand = move.product_uom_qty
        for location, quantity in others:
            split = move.copy(
                {
                    "product_uom_qty": quantity,
                    "location_dest_id": location.id,
                    "location_final_id": False,
                    "picking_id": move.picking_id.id,
                    # Still a return of the delivered move: counted as returned.
                    "origin_returned_move_id": move.origin_returned_move_id.id,
                    "move_orig_ids": [Command.set(move.move_orig_ids.ids)],
                }
            )
            split._action_confirm(merge=False)
            split.quantity = quantity
            split.picked = True
            demand -= quantity
        move.write(
            {
                "product_uom_qty": max(demand, 0) or first_quantity,
                "location_dest_id": first_location.id,
            }
        )
        move.quantity = first_quantity


class StockPicking(models.Model):
    _inherit = "stock.picking"  # pylint: disable=consider-merging-classes-inherited

    tpl_return_binding_ids = fields.One2many(
        "tpl.return.binding", "odoo_id", string="3PL returns", readonly=True
    )
    tpl_rma_state = fields.Selection(
        RETURN_STATES,
        string="3PL return",
        compute="_compute_tpl_rma",
        help="Where the return is with the 3PL: to announce, expected, received.",
    )
    tpl_rma_received = fields.Char(string="3PL received", compute="_compute_tpl_rma")
    tpl_rma_refund_state = fields.Selection(
        REFUND_STATES, string="Refund", compute="_compute_tpl_rma"
    )

    @api.depends(
        "tpl_return_binding_ids.state",
        "tpl_return_binding_ids.received_summary",
        "tpl_return_binding_ids.refund_state",
        "backorder_id.tpl_return_binding_ids.state",
    )
    def _compute_tpl_rma(self):
        for picking in self:
            # The backorder of a partly received return: the rest of its RMA.
            binding = (
                picking.tpl_return_binding_ids[:1]
                or picking.backorder_id.tpl_return_binding_ids[:1]
            )
            picking.tpl_rma_state = binding.state
            picking.tpl_rma_received = binding.received_summary
            picking.tpl_rma_refund_state = binding.refund_state


class StockMove(models.Model):
    _inherit = "stock.move"  # pylint: disable=consider-merging-classes-inherited

    def _action_assign(self, *args, **kwargs):
        result = super()._action_assign(*args, **kwargs)
        # A return made with Odoo's wizard is confirmed then assigned: announced then.
        self.env["tpl.return.sync"]._returns_expected(self.picking_id)
        return result
