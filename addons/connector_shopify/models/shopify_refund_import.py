from collections import defaultdict

from odoo import api, models
from odoo.exceptions import UserError
from odoo.fields import Command

from odoo.addons.connector_base.components.payload import payload_hash

from ..components import mapper_refund


class ShopifyRefundImporter(models.AbstractModel):
    """Turns one Shopify refund into what it means in Odoo.

    - a posted credit note (``out_refund``) of the refunded lines at Shopify's
      refunded subtotals, and of the refunded shipping, its lines linked to the
      sale order lines so that the sale order shows it and counts it;
    - money given back beyond the refunded lines and shipping (a goodwill
      refund, a refund of money only, Shopify's ``refund_discrepancy``): a line
      of the backend's refund adjustment product on that credit note, so that
      the credit note is always worth the money that went back;
    - one outbound customer payment per successful refund transaction, in the
      journal mapped to its gateway, reconciled with the credit note: money
      never goes back without a credit note;
    - the goods: returned goods come back by a done return of the delivery
      into the mapped location (a return a remote system receives, such as a
      3PL's, stays open for it to validate); what was not delivered yet is not
      delivered (the ordered quantity goes down, and the delivery with it).

    Everything is checked before anything is changed, and the event runs in a
    savepoint: a refund Odoo cannot apply leaves nothing behind. Exactly once:
    a refund already bound is recognised and changes nothing.
    """

    _name = "shopify.refund.importer"
    _description = "Shopify Refund Import"

    @api.model
    def _import(self, backend, event, payload):
        values = mapper_refund.refund_values(payload)
        Binding = self.env["shopify.refund.binding"]
        binding = Binding._find(backend, values["external_id"])
        if binding:
            return binding.odoo_id or binding.sale_order_id
        order_binding = self.env["shopify.order.binding"]._find(
            backend, values["order_external_id"]
        )
        order = order_binding.odoo_id
        plan = self._plan(backend, order_binding, values)
        pickings = self._move_goods(backend, order, plan)
        credit_note = self._credit_note(backend, order_binding, values, plan)
        payments = self._pay(backend, order_binding, credit_note, values)
        binding = Binding.create(
            {
                "backend_id": backend.id,
                "external_id": values["external_id"],
                "order_binding_id": order_binding.id,
                "odoo_id": credit_note.id,
                "amount": float(values["amount"]),
                "note": values["note"],
                "payment_ids": [Command.set(payments.ids)],
                "picking_ids": [Command.set(pickings.ids)],
                "payload_hash": payload_hash(payload),
            }
        )
        binding._mark_synced()
        order.message_post(
            body=self.env._(
                "Refunded in Shopify: %(amount)s %(currency)s.%(note)s",
                amount=values["amount"],
                currency=order.currency_id.name,
                note=f" {values['note']}" if values["note"] else "",
            )
        )
        return credit_note or order

    # --- what the refund is about -------------------------------------------------

    def _plan(self, backend, order_binding, values):
        """Each refunded line with its sale order line, and how much of it is
        cancelled (not delivered yet) or comes back from the customer.

        Raises a UserError naming the line when a refunded line is not on the
        order or more is refunded than was sold.
        """
        order = order_binding.odoo_id
        plan, unknown = [], []
        for line_values in values["lines"]:
            line = self._sale_line(backend, order, line_values)
            if line:
                plan.append({**line_values, "line": line})
            else:
                unknown.append(
                    f"{line_values['line_item_id']} "
                    f"({line_values['sku'] or line_values['title'] or '?'})"
                )
        if unknown:
            raise UserError(
                self.env._(
                    "Refund %(refund)s names line items that are not on %(order)s "
                    "(Shopify %(name)s): %(lines)s. Check the sale order's lines, then requeue "
                    "or ignore this event.",
                    refund=values["external_id"],
                    order=order.name,
                    name=order_binding.shopify_name,
                    lines=", ".join(unknown),
                )
            )
        refunding = defaultdict(float)
        for item in plan:
            refunding[item["line"]] += item["quantity"]
        for line, quantity in refunding.items():
            sold = line.shopify_quantity or line.product_uom_qty
            left = sold - line.shopify_refunded_qty
            if line.product_uom_id.compare(quantity, left) > 0:
                raise UserError(
                    self.env._(
                        "Refund %(refund)s refunds %(quantity)g x %(product)s on %(order)s "
                        "(Shopify %(name)s), but only %(left)g of the %(sold)g sold are left "
                        "to refund. Nothing was applied.",
                        refund=values["external_id"],
                        quantity=quantity,
                        product=line.product_id.display_name,
                        order=order.name,
                        name=order_binding.shopify_name,
                        left=left,
                        sold=sold,
                    )
                )
        undelivered = {
            line: max(line.product_uom_qty - line.qty_delivered, 0.0) for line in refunding
        }
        delivered = {line: line.qty_delivered for line in refunding}
        for item in plan:
            line, quantity = item["line"], item["quantity"]
            if item["restock"] == "return":
                returned = min(quantity, delivered[line])
                cancelled = min(quantity - returned, undelivered[line])
            else:
                # Shopify no longer fulfills a refunded item, restocked or not:
                # what is not delivered yet is not going to be.
                cancelled = min(quantity, undelivered[line])
                returned = 0.0
                if item["restock"] == "cancel":
                    returned = min(quantity - cancelled, delivered[line])
            delivered[line] -= returned
            undelivered[line] -= cancelled
            item.update(
                cancel_qty=cancelled,
                return_qty=returned,
                location=self._return_location(backend, order, item["location_id"]),
            )
        return plan

    def _sale_line(self, backend, order, line_values):
        """The sale order line a refunded Shopify line item is about."""
        lines = order.order_line.filtered(lambda sol: not sol.display_type)
        line = lines.filtered(lambda sol: sol.shopify_line_item_id == line_values["line_item_id"])
        if line or any(lines.mapped("shopify_line_item_id")):
            return line[:1]
        # Orders imported before line items were recorded: by product.
        Binding = self.env["shopify.product.binding"]
        product = line_values["variant_id"] and Binding._find(backend, line_values["variant_id"])
        product = product.odoo_id if product else None
        if not product and line_values["sku"]:
            product = lines.product_id.filtered(lambda p: p.default_code == line_values["sku"])
        return lines.filtered(lambda sol: sol.product_id == product)[:1] if product else line

    def _return_location(self, backend, order, location_id):
        """Where returned goods go: the Odoo location mapped to the Shopify
        location they are restocked at, else the default warehouse's stock."""
        if location_id:
            mapped = (
                self.env["shopify.location"]
                .with_context(active_test=False)
                .search([("backend_id", "=", backend.id), ("location_id", "!=", False)])
                .filtered(lambda loc: loc.external_id.rsplit("/", 1)[-1] == location_id)
            )
            if mapped:
                return mapped[:1].location_id
        warehouse = backend.shopify_warehouse_id or order.warehouse_id
        return warehouse.lot_stock_id

    # --- goods ----------------------------------------------------------------------

    def _move_goods(self, backend, order, plan):
        """Receive the returned goods, then lower the ordered quantities by what
        the customer no longer gets (the undelivered part leaves the delivery).

        Goods a remote system receives are still delivered until it does:
        Odoo keeps them ordered until then (:meth:`_returns_received`)."""
        returns = defaultdict(lambda: defaultdict(float))
        for item in plan:
            if item["return_qty"]:
                returns[item["location"]][item["line"]] += item["return_qty"]
        pickings = self.env["stock.picking"]
        for location, quantities in returns.items():
            pickings |= self._return_goods(backend, quantities, location)
        refunded, removed = defaultdict(float), defaultdict(float)
        for item in plan:
            refunded[item["line"]] += item["quantity"]
            removed[item["line"]] += item["cancel_qty"] + item["return_qty"]
        for move in pickings.filtered(lambda p: p.state != "done").move_ids:
            line = move.sale_line_id
            removed[line] -= move.product_uom._compute_quantity(
                move.product_uom_qty, line.product_uom_id
            )
        for line, quantity in refunded.items():
            values = {"shopify_refunded_qty": line.shopify_refunded_qty + quantity}
            if not line.product_uom_id.is_zero(removed[line]):
                # Keeps "to invoice" right: the order sells what the customer keeps.
                values["product_uom_qty"] = line.product_uom_qty - removed[line]
            line.write(values)
        return pickings

    def _return_goods(self, backend, quantities, location):
        """Returns of the delivered moves of ``{sale line: quantity}``, one per
        delivery they came from: done into ``location``, unless a remote system
        receives the goods (a 3PL running the warehouse they went out of),
        which then validates the return as it reports what came back."""
        per_picking = defaultdict(dict)
        for line, quantity in quantities.items():
            wanted = quantity
            moves = line.move_ids.filtered(
                lambda m: m.state == "done" and m.location_dest_id.usage == "customer"
            )
            for move in moves.sorted("id"):
                already = sum(
                    move.returned_move_ids.filtered(lambda m: m.state != "cancel").mapped(
                        "product_uom_qty"
                    )
                )
                taken = min(wanted, move.quantity - already)
                if taken > 0:
                    per_picking[move.picking_id][move] = taken
                    wanted -= taken
                if wanted <= 0:
                    break
        returns = self.env["stock.picking"]
        for picking, moves in per_picking.items():
            wizard = self.env["stock.return.picking"].create({"picking_id": picking.id})
            for return_line in wizard.product_return_moves:
                return_line.quantity = moves.get(return_line.move_id, 0.0)
            returned = wizard._create_return()
            returns |= returned
            receiver = self.env["connector.backend"]._receive_return_remotely(
                returned, refunded_by=backend
            )
            if receiver:
                returned.message_post(
                    body=self.env._(
                        "Refunded in Shopify before the goods came back: %(receiver)s "
                        "receives them, and this return is validated when it reports what "
                        "came back.",
                        receiver=receiver.display_name,
                    )
                )
                continue
            returned.location_dest_id = location
            returned.move_ids.location_dest_id = location
            for move in returned.move_ids:
                move.quantity = move.product_uom_qty
            returned.move_ids.move_line_ids.location_dest_id = location
            returned.move_ids.picked = True
            returned._action_done()
        return returns

    @api.model
    def _returns_received(self, pickings):
        """Returns of refunds received after the refund, by the remote system
        that received the goods (or their backorders, the rest of them): the
        order no longer sells what came back."""
        returns = pickings.filtered(
            lambda p: p.picking_type_code == "incoming" and p.state == "done"
        )
        if not returns:
            return
        origins = {}
        for picking in returns:
            origin = picking
            while origin.backorder_id:
                origin = origin.backorder_id
            if origin.return_id:
                origins[picking] = origin
        if not origins:
            return
        refunded = (
            self.env["shopify.refund.binding"]
            .sudo()
            .search([("picking_ids", "in", [origin.id for origin in origins.values()])])
            .picking_ids
        )
        back = defaultdict(float)
        for picking, origin in origins.items():
            if origin not in refunded:
                continue  # not a refund's, or received as the refund was imported
            for move in picking.move_ids.filtered(lambda m: m.state == "done" and m.sale_line_id):
                line = move.sale_line_id
                back[line] += move.product_uom._compute_quantity(move.quantity, line.product_uom_id)
        for line, quantity in back.items():
            # Never below what Odoo still counts delivered (goods received
            # into a scrap location are not counted back).
            line.sudo().product_uom_qty = max(line.product_uom_qty - quantity, line.qty_delivered)

    # --- money ----------------------------------------------------------------------

    def _credit_note(self, backend, order_binding, values, plan):
        """The posted credit note of the refund; empty when neither goods nor
        shipping were refunded and no money went back."""
        order = order_binding.odoo_id
        currency = order.currency_id
        lines = []
        for item in plan:
            for quantity, price in mapper_refund.split_amount(
                item["subtotal"], item["quantity"], currency.decimal_places
            ):
                lines.append(self._credit_line(item["line"], quantity, price))
        if values["shipping"]:
            shipping = order.order_line.filtered(
                lambda sol: (
                    sol.product_id == backend.shopify_shipping_product_id
                    and sol.product_uom_qty >= 1
                )
            )[:1]
            if shipping:
                lines.append(self._credit_line(shipping, 1, values["shipping"]))
                # Credited once: the order no longer sells it, "to invoice" stays right.
                shipping.product_uom_qty -= 1
            else:
                lines.append(
                    {
                        "product_id": backend.shopify_shipping_product_id.id,
                        "quantity": 1,
                        "price_unit": float(values["shipping"]),
                    }
                )
        if not lines and not values["amount"]:
            return self.env["account.move"]
        move_values = {
            **order._prepare_invoice(),
            "move_type": "out_refund",
            "ref": self.env._(
                "Shopify refund %(refund)s of %(name)s",
                refund=values["external_id"],
                name=order_binding.shopify_name,
            ),
            "narration": values["note"],
            "invoice_line_ids": [Command.create(line) for line in lines],
        }
        invoice = order.invoice_ids.filtered(
            lambda m: m.move_type == "out_invoice" and m.state == "posted"
        ).sorted("invoice_date")[-1:]
        if invoice:
            move_values["reversed_entry_id"] = invoice.id
        credit_note = self.env["account.move"].with_company(order.company_id).create(move_values)
        self._adjust(backend, credit_note, values)
        credit_note.action_post()
        if currency.compare_amounts(credit_note.amount_total, float(values["amount"])):
            credit_note.message_post(
                body=self.env._(
                    "Shopify refunded %(shopify)s, this credit note is %(odoo)s: check the "
                    "refund's transactions and the tax mapping.",
                    shopify=values["amount"],
                    odoo=credit_note.amount_total,
                )
            )
        return credit_note

    def _adjust(self, backend, credit_note, values):
        """Make the draft ``credit_note`` worth the money that went back.

        Money beyond what the refunded lines and shipping are worth (a goodwill
        refund, a refund of money only) is credited on a line of the backend's
        refund adjustment product, without tax: Shopify gave back an amount,
        not goods. Less money than the lines are worth is only adjusted when
        Shopify says so (a ``refund_discrepancy``); otherwise the difference is
        Odoo's to explain and is reported on the credit note once posted.
        """
        refunded = float(values["amount"])
        currency = credit_note.currency_id
        uncovered = currency.round(refunded - credit_note.amount_total)
        if not refunded or currency.is_zero(uncovered):
            return
        if uncovered < 0 and not values["has_discrepancy"]:
            return
        product = backend.shopify_refund_product_id
        if not product:
            raise UserError(
                self.env._(
                    "Refund %(refund)s gives back %(amount)s while its lines and shipping are "
                    "worth %(lines)s, and backend %(backend)s has no refund adjustment product "
                    "to credit the difference with. Set one on the backend's Mappings tab, then "
                    "requeue this event.",
                    refund=values["external_id"],
                    amount=values["amount"],
                    lines=f"{credit_note.amount_total:.{currency.decimal_places}f}",
                    backend=backend.display_name,
                )
            )
        credit_note.write(
            {
                "invoice_line_ids": [
                    Command.create(
                        {
                            "product_id": product.id,
                            "name": self.env._(
                                "%(product)s: Shopify refund %(refund)s",
                                product=product.display_name,
                                refund=values["external_id"],
                            ),
                            "quantity": 1,
                            "price_unit": uncovered,
                            "tax_ids": [Command.clear()],
                        }
                    )
                ]
            }
        )

    def _credit_line(self, sale_line, quantity, price):
        """A credit note line of ``sale_line`` at Shopify's price (taxes as sold)."""
        values = sale_line._prepare_invoice_line(
            quantity=quantity, price_unit=float(price), discount=0.0
        )
        values.pop("extra_tax_data", None)  # tax details of the sale, not of this refund
        return values

    def _pay(self, backend, order_binding, credit_note, values):
        """One outbound payment per successful refund transaction, reconciled
        with the credit note (there is one whenever money went back)."""
        payments = self.env["account.payment"]
        for payment in values["payments"]:
            if not payment["amount"]:
                continue  # a refund transaction of nothing moved no money
            journal = backend._shopify_payment_journal(payment["gateway"])
            memo = self.env._(
                "Shopify refund %(refund)s of %(name)s (%(gateway)s)",
                refund=values["external_id"],
                name=order_binding.shopify_name,
                gateway=payment["gateway"],
            )
            wizard = (
                self.env["account.payment.register"]
                .with_context(active_model="account.move", active_ids=credit_note.ids)
                .create(
                    {
                        "journal_id": journal.id,
                        "amount": float(payment["amount"]),
                        "currency_id": credit_note.currency_id.id,
                        "communication": memo,
                    }
                )
            )
            payments |= wizard._create_payments()
        return payments
