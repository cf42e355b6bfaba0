from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.fields import Command

from odoo.addons.connector_base.components.payload import payload_hash
from odoo.addons.connector_base.models.connector_backend import NO_SHIPPING_CONTEXT

from ..components import mapper_order
from .shopify_tax_mapping import tax_label

# Where Shopify routed an order: the locations its fulfillment orders are
# assigned to (the order webhook does not say; its ``location_id`` is the
# point of sale's). Requested cost: 1 + 2 + 5 x (1 + 1) = 13.
ORDER_ROUTING = """
query OrderRouting($id: ID!) {
  order(id: $id) {
    fulfillmentOrders(first: 5) {
      edges { node { status assignedLocation { location { id } } } }
      pageInfo { hasNextPage }
    }
  }
}
"""
# Fulfillment orders that route nothing any more: moved elsewhere or given up.
UNROUTED_STATUSES = ("CANCELLED", "CLOSED")


class ShopifyOrderImporter(models.AbstractModel):
    """Turns one Shopify order into one confirmed sale order, or updates it.

    An order Shopify captured the money of gets its posted customer payment,
    once (see :meth:`_register_payment`).

    Idempotent: an order already bound is updated, never created twice, so a
    duplicate delivery, a backfill or a replay changes nothing more.
    """

    _name = "shopify.order.importer"
    _description = "Shopify Order Import"

    @api.model
    def _import(self, backend, event, payload):
        values = mapper_order.order_values(payload)
        Binding = self.env["shopify.order.binding"]
        binding = Binding._find(backend, values["external_id"])
        if binding:
            self._update(binding, values, payload)
            return binding.odoo_id
        lines = self._order_lines(backend, values)
        # Checked before anything is made: a paid order Odoo cannot book the
        # payment of is not imported half-way.
        journal = self._payment_journal(backend, values)
        customer = self._customer(backend, values["customer"])
        order = self.env["sale.order"].create(
            {
                "partner_id": customer.id,
                "partner_invoice_id": self._address(customer, values["billing"], "invoice").id,
                "partner_shipping_id": self._address(
                    customer, values["shipping_address"], "delivery"
                ).id,
                "pricelist_id": self._pricelist(backend, values["currency"]).id,
                "warehouse_id": self._warehouse(backend, values).id,
                "team_id": backend.shopify_team_id.id,
                # The backend's salesperson, not whoever the job runs as.
                "user_id": backend.shopify_user_id.id,
                "date_order": values["date"] or fields.Datetime.now(),
                "client_order_ref": values["name"],
                "origin": f"Shopify {values['name']}",
                "note": values["note"],
                "order_line": [Command.create(line) for line in lines],
            }
        )
        self._check_total(backend, order, values)
        # What Shopify fulfilled is delivered at once: its deliveries are not
        # released to a 3PL on the way (see _deliver_fulfilled).
        delivering = bool(values["fulfilled"]) and not values["cancelled"]
        # Placed when Shopify says, not when Odoo confirms it.
        order.with_context(
            shopify_keep_date_order=True, **{NO_SHIPPING_CONTEXT: delivering}
        ).action_confirm()
        binding = Binding.create(
            {
                "backend_id": backend.id,
                "external_id": values["external_id"],
                "odoo_id": order.id,
                "shopify_name": values["name"],
                "financial_status": values["financial_status"],
                "shopify_total": values["total"],
                "payload_hash": payload_hash(payload),
                "sync_date": fields.Datetime.now(),
            }
        )
        # Paid when placed: the money was captured as Shopify processed the order.
        self._register_payment(binding, values, journal, values["date"])
        if values["cancelled"]:
            Binding._find(backend, values["external_id"])._cancel_in_odoo()
        elif delivering:
            self._deliver_fulfilled(order, values["fulfilled"])
        return order

    def _update(self, binding, values, payload):
        """What may change after creation: note, payment status, address, cancellation."""
        digest = payload_hash(payload)
        if binding._is_unchanged(digest):
            return
        journal = self._payment_journal(binding.backend_id, values, binding)
        order = binding.odoo_id
        binding.write(
            {"financial_status": values["financial_status"], "shopify_total": values["total"]}
        )
        if values["note"] != (order.note or False):
            order.note = values["note"]
        shipped = order.picking_ids.filtered(lambda p: p.state == "done")
        if values["shipping_address"] and not shipped:
            address = self._address(order.partner_id, values["shipping_address"], "delivery")
            if address != order.partner_shipping_id:
                order.partner_shipping_id = address
                order.picking_ids.filtered(lambda p: p.state not in ("done", "cancel")).write(
                    {"partner_id": address.id}
                )
        if values["cancelled"]:
            binding._cancel_in_odoo()
        elif values["fulfilled"]:
            self._deliver_fulfilled(order, values["fulfilled"])
        # Paid since it was imported: dated when Shopify recorded it.
        self._register_payment(binding, values, journal, values["updated"])
        binding._mark_synced(payload_hash=digest)

    # --- the customer's payment ----------------------------------------------------

    def _payment_journal(self, backend, values, binding=None):
        """The journal the order's payment is to be registered in; empty when
        no payment is to be registered (not paid, already registered, or the
        backend does not register payments).

        Raises the backend's UserError when the order's gateway has no journal.
        """
        payment = mapper_order.payment_values(values)
        if not payment or not backend.shopify_register_payments:
            return self.env["account.journal"]
        if binding and binding.payment_id:
            return self.env["account.journal"]
        return backend._shopify_payment_journal(payment["gateway"])

    def _register_payment(self, binding, values, journal, paid_at):
        """The posted inbound payment of what the customer paid for the order,
        in ``journal`` (empty: none to register), dated ``paid_at`` (else the
        order date), its memo the Shopify order number that payouts name.

        Exactly once: the binding keeps it, and a binding that has one is
        never given another (the order's events run one at a time, and two
        transactions writing the same binding cannot both commit).
        """
        if not journal or binding.payment_id:
            return
        payment_values = mapper_order.payment_values(values)
        order = binding.odoo_id
        moment = paid_at or values["date"] or order.date_order
        payment = (
            self.env["account.payment"]
            .with_company(order.company_id)
            .create(
                {
                    "payment_type": "inbound",
                    "partner_type": "customer",
                    "partner_id": order.partner_invoice_id.id,
                    "amount": payment_values["amount"],
                    "currency_id": order.currency_id.id,
                    "journal_id": journal.id,
                    "date": fields.Date.context_today(order, timestamp=moment),
                    "memo": values["name"],
                    "payment_reference": values["name"],
                }
            )
        )
        payment.action_post()
        binding.payment_id = payment
        order.message_post(
            body=self.env._(
                "Paid in Shopify through %(gateway)s: payment %(payment)s of %(amount)s "
                "%(currency)s registered in %(journal)s.",
                gateway=payment_values["gateway"],
                payment=payment.name,
                amount=f"{payment.amount:.{order.currency_id.decimal_places}f}",
                currency=order.currency_id.name,
                journal=journal.name,
            )
        )

    # --- what Shopify fulfilled ----------------------------------------------------

    def _deliver_fulfilled(self, order, fulfilled):
        """Deliver in Odoo what Shopify fulfilled outside Odoo, and send nothing back.

        ``fulfilled``: units fulfilled per Shopify line item. Those units
        Odoo has not delivered yet (nor set aside, below) are validated on
        the order's open delivery as a user validates a partial delivery:
        done, the rest on a backorder to ship. That delivery is marked
        fulfilled in Shopify, so no fulfillment goes back for it.

        Units Odoo has not reserved (not in stock) are not validated: that
        would take the stock negative behind everyone's back. They wait on a
        delivery of their own, marked fulfilled in Shopify too, never to be
        shipped again: the order says so, for someone to correct the stock
        and validate it. The deliveries left to ship are then made ready
        again, outside :data:`NO_SHIPPING_CONTEXT`, so a 3PL gets those, and only those.
        """
        wanted = {}
        for line in order.order_line.filtered("shopify_line_item_id"):
            units = fulfilled.get(line.shopify_line_item_id, 0) - self._delivered_or_held(line)
            if units > 0:
                wanted[line] = units
        if not wanted:
            return
        importer = self.with_context(**{NO_SHIPPING_CONTEXT: True})
        order = order.with_context(**{NO_SHIPPING_CONTEXT: True})
        open_deliveries = order.picking_ids.filtered(
            lambda p: (
                p.picking_type_code == "outgoing"
                and p.state not in ("done", "cancel")
                and not p.shopify_fulfilled
            )
        )
        plan, missing = importer._plan_fulfilled(open_deliveries, wanted)
        delivered, held = self.env["stock.picking"], self.env["stock.picking"]
        for picking in open_deliveries.filtered(lambda p: any(m in plan for m in p.move_ids)):
            done, waiting = importer._validate_fulfilled(picking, plan)
            delivered |= done
            held |= waiting
        importer._say_fulfilled(order, plan, missing, delivered, held)
        to_ship = order.with_context(**{NO_SHIPPING_CONTEXT: False}).picking_ids.filtered(
            lambda p: (
                p.picking_type_code == "outgoing"
                and p.state not in ("draft", "done", "cancel")
                and not p.shopify_fulfilled
            )
        )
        if to_ship:
            to_ship.action_assign()

    @staticmethod
    def _plan_fulfilled(deliveries, wanted):
        """``({move: (units to deliver, units short)}, {sale line: units with
        no open move})`` for the units fulfilled in Shopify per sale line,
        spread over the open moves of ``deliveries``. What a move delivers is
        what it has reserved; the rest of its share is short of stock."""
        plan, missing = {}, {}
        for line, units in wanted.items():
            left = units
            moves = deliveries.move_ids.filtered(
                lambda m, line=line: m.sale_line_id == line and m.state not in ("done", "cancel")
            )
            for move in moves.sorted("id"):
                take = min(left, move.product_uom_qty)
                if take <= 0:
                    break
                deliver = min(take, move.quantity)
                plan[move] = (deliver, take - deliver)
                left -= take
            if left > 0:
                missing[line] = left
        return plan, missing

    def _validate_fulfilled(self, picking, plan):
        """Validate ``picking`` for the units ``plan`` delivers ({move: (units
        reserved to deliver, units short)}); the short units go to a delivery
        of their own. Returns (the delivery done, the delivery of short units)."""
        Move = self.env["stock.move"]
        short_moves = Move
        for move in picking.move_ids:
            short = plan.get(move, (0, 0))[1]
            if not short:
                continue
            if move.product_uom.compare(short, move.product_uom_qty) >= 0:
                short_moves |= move
            else:
                split = Move.create(move._split(short))
                split._action_confirm(merge=False, create_proc=False)
                short_moves |= split
        held = self.env["stock.picking"]
        if short_moves == picking.move_ids:
            # Nothing of it in stock: the delivery itself waits, none is left empty.
            held = picking
        elif short_moves:
            held = picking._create_backorder(backorder_moves=short_moves)
        held.shopify_fulfilled = True
        to_deliver = picking.move_ids.filtered(lambda m: plan.get(m, (0, 0))[0] > 0)
        if not to_deliver:
            return self.env["stock.picking"], held
        for move in picking.move_ids - short_moves:
            move.quantity = plan.get(move, (0, 0))[0]
        to_deliver.picked = True
        picking.shopify_fulfilled = True
        picking.with_context(cancel_backorder=False)._action_done()
        return picking, held

    @staticmethod
    def _delivered_or_held(line):
        """Units of the sale line delivered to the customer, or waiting on a
        delivery marked fulfilled in Shopify (set aside, short of stock)."""
        units = 0
        for move in line.move_ids.filtered(lambda m: m.picking_code == "outgoing"):
            if move.state == "done":
                units += move.quantity
            elif move.state != "cancel" and move.picking_id.shopify_fulfilled:
                units += move.product_uom_qty
        return units

    def _say_fulfilled(self, order, plan, missing, delivered, held):
        """What was delivered for Shopify's fulfillments, and what was not, in
        the order's chatter."""
        done = sum(deliver for deliver, _short in plan.values())
        if done:
            order.message_post(
                body=self.env._(
                    "%(units)s units were already fulfilled in Shopify: delivered in Odoo "
                    "(%(deliveries)s) without a fulfillment sent back.",
                    units=f"{done:g}",
                    deliveries=", ".join(delivered.mapped("name")),
                )
            )
        short = {}
        for move, (_deliver, units) in plan.items():
            if units:
                label = move.product_id.default_code or move.product_id.display_name
                short[label] = short.get(label, 0) + units
        if short:
            order.message_post(
                body=self.env._(
                    "Fulfilled in Shopify but not in stock in Odoo, so not delivered: "
                    "%(products)s. They wait on %(deliveries)s, marked fulfilled in Shopify "
                    "(nothing is sent back for it and it is not to be shipped): correct the "
                    "stock, then validate it.",
                    products=", ".join(f"{units:g} x {label}" for label, units in short.items()),
                    deliveries=", ".join(held.mapped("name")),
                )
            )
        if missing:
            order.message_post(
                body=self.env._(
                    "Fulfilled in Shopify, but Odoo has no delivery left to validate for them: "
                    "%(products)s. Check the order's deliveries.",
                    products=", ".join(
                        f"{units:g} x {line.product_id.default_code or line.name}"
                        for line, units in missing.items()
                    ),
                )
            )

    @api.model
    def _ensure_discount_digits(self):
        """Give the 'Discount' decimal precision the digits Shopify's amounts need.

        Odoo keeps a sale line's discount as a percentage rounded to this
        precision, Shopify as an amount: 5.00 off 3 x 999.99 is 0.166668 %,
        and rounded to Odoo's default two digits (0.17 %) it takes 5.10 off.
        With six digits the percentage gives Shopify's net line amount to the
        cent for any line under a million, so each Shopify line stays one Odoo
        line, its tax rounded as Shopify rounds it. A precision already higher
        is kept.
        """
        precision = self.env.ref("product.decimal_discount", raise_if_not_found=False)
        if precision and precision.digits < mapper_order.DISCOUNT_DIGITS:
            precision.digits = mapper_order.DISCOUNT_DIGITS

    # --- lines --------------------------------------------------------------

    def _order_lines(self, backend, values):
        """One sale line per Shopify line (and per paid shipping line).

        Each Shopify line stays one Odoo line, its discount a percentage that
        gives Shopify's net amount to the cent: Shopify rounds tax per line,
        so only line for line can Odoo's taxes be Shopify's.
        """
        products = self._products(backend, values)
        taxes = {}  # (Shopify taxes, included) -> tax_ids command, found once per order
        unmapped = {}  # label -> None: each tax without mapping named once, in order
        country = self._tax_country(values)

        def line_taxes(shopify_taxes):
            return self._taxes(
                backend,
                shopify_taxes,
                values["taxes_included"],
                country,
                found=taxes,
                unmapped=unmapped,
            )

        lines = [
            {
                "product_id": products[line["external_id"]].id,
                "name": line["title"] or products[line["external_id"]].display_name,
                "product_uom_qty": line["quantity"],
                # What refunds name and count against.
                "shopify_line_item_id": line["external_id"],
                "shopify_quantity": line["quantity"],
                "price_unit": line["price_unit"],
                "discount": line["discount"],
                **line_taxes(line["taxes"]),
            }
            for line in values["lines"]
        ]
        shipping_product = backend.shopify_shipping_product_id
        for shipping in values["shipping"]:
            if not shipping["price_unit"]:
                continue
            lines.append(
                {
                    "product_id": shipping_product.id,
                    "name": shipping["title"],
                    "product_uom_qty": 1,
                    "price_unit": shipping["price_unit"],
                    "discount": shipping["discount"],
                    **line_taxes(shipping["taxes"]),
                }
            )
        if unmapped:
            raise UserError(
                self.env._(
                    "Order %(order)s cannot be imported: map tax %(taxes)s on backend "
                    "%(backend)s (Mappings tab, Taxes: a sale tax of that rate, %(kind)s), "
                    "then requeue this event.",
                    order=values["name"],
                    taxes=", ".join(unmapped),
                    backend=backend.name,
                    kind=self.env._("price-included")
                    if values["taxes_included"]
                    else self.env._("not price-included"),
                )
            )
        return lines

    def _products(self, backend, values):
        """The product of each line, by variant binding then by SKU.

        Every unknown SKU is named in one error, and nothing is created.
        """
        Binding = self.env["shopify.product.binding"]
        Product = self.env["product.product"]
        # One query for the bound variants of the order, one for the SKUs left.
        variant_ids = [line["variant_id"] for line in values["lines"] if line["variant_id"]]
        bound = {
            binding.external_id: binding.odoo_id
            for binding in Binding.search(
                [("backend_id", "=", backend.id), ("external_id", "in", variant_ids)]
            )
        }
        skus = {
            line["sku"]
            for line in values["lines"]
            if line["sku"] and line["variant_id"] not in bound
        }
        by_sku = {}
        if skus:
            for product in Product.search(
                [
                    ("default_code", "in", list(skus)),
                    ("company_id", "in", [False, backend.company_id.id]),
                ]
            ):
                by_sku.setdefault(product.default_code, product)
        products, unknown = {}, []
        for line in values["lines"]:
            product = bound.get(line["variant_id"]) or Product.browse()
            if not product and line["sku"]:
                product = by_sku.get(line["sku"], Product.browse())
                if product and line["variant_id"] and not Binding._find_by_record(backend, product):
                    Binding._bind(backend, line["variant_id"], product)
            if product:
                products[line["external_id"]] = product
            else:
                unknown.append(
                    f"'{line['sku']}' ({line['title']})"
                    if line["sku"]
                    else f"a line without SKU ({line['title']})"
                )
        if unknown:
            raise UserError(
                self.env._(
                    "Order %(order)s cannot be imported: unknown SKU %(skus)s. Create or bind "
                    "the product, then requeue this event.",
                    order=values["name"],
                    skus=", ".join(unknown),
                )
            )
        return products

    def _taxes(self, backend, shopify_taxes, included, country, *, found, unmapped):
        """The ``tax_ids`` of a line Shopify taxed with ``shopify_taxes``.

        Taxes come from the backend's tax mapping, never made on the fly: a
        tax made here would have no accounts. A tax not mapped is added to
        ``unmapped`` (the caller names them all in one error); ``found``
        remembers the taxes per order.
        """
        if backend.shopify_tax_policy != "shopify":
            return {}
        key = (tuple((tax["title"], tax["rate"]) for tax in shopify_taxes), included)
        if key not in found:
            odoo_taxes = self.env["account.tax"]
            for tax in shopify_taxes:
                odoo_tax = self._mapped_tax(backend, tax["title"], tax["rate"], country, included)
                if not odoo_tax:
                    unmapped[tax_label(tax["title"], tax["rate"])] = None
                odoo_taxes |= odoo_tax
            found[key] = [Command.set(odoo_taxes.ids)]
        return {"tax_ids": found[key]}

    def _mapped_tax(self, backend, title, rate, country, included):
        """The tax mapped to one Shopify tax line (see the mapping's ``_find``),
        looked up once per batch job of orders, not once per order."""
        taxes = self._batch_memo().setdefault("connector_shopify.taxes", {})
        key = (backend.id, title, rate, country.id, included)
        if key not in taxes:
            mapping = self.env["shopify.tax.mapping"]
            taxes[key] = mapping._find(backend, title, rate, country, included).id
        return self.env["account.tax"].browse(taxes[key])

    def _tax_country(self, values):
        """The country whose taxes Shopify charged: where the order ships, else
        where it is billed (an order with nothing to ship)."""
        address = values["shipping_address"] or values["billing"] or {}
        return self._country(address.get("country_code") or "")

    def _country(self, code):
        """The country of an ISO code (empty when unknown), looked up once per
        batch job of orders: every order and address of a shop names a few."""
        countries = self._batch_memo().setdefault("connector_shopify.countries", {})
        if code not in countries:
            found = code and self.env["res.country"].search([("code", "=", code)], limit=1)
            countries[code] = found.id if found else False
        return self.env["res.country"].browse(countries[code])

    def _country_state(self, country, code):
        """The state of ``country`` with ``code`` (empty when unknown), looked
        up once per batch job of orders."""
        states = self._batch_memo().setdefault("connector_shopify.states", {})
        if (country.id, code) not in states:
            states[country.id, code] = (
                self.env["res.country.state"]
                .search([("country_id", "=", country.id), ("code", "=", code)], limit=1)
                .id
            )
        return self.env["res.country.state"].browse(states[country.id, code])

    def _batch_memo(self):
        """Look-ups kept while a batch job applies orders (nothing is kept
        for an order applied alone): see connector_base's ``_batch_memo``."""
        return self.env["connector.event"]._batch_memo()

    # --- customer -------------------------------------------------------------

    def _customer(self, backend, customer):
        """One partner per person: by the customer's binding, else as
        ``connector_base`` matches every connector's customers (identities,
        then contacts Odoo has by email, then by phone; else made, with the
        customer's default address).

        The match is shared with the other connectors, so a customer of the
        store who also buys at a till is one partner, and two orders of one
        new person imported at the same moment by two jobs give one.
        """
        Binding = self.env["shopify.partner.binding"]
        binding = customer["external_id"] and Binding._find(backend, customer["external_id"])
        if binding:
            return binding.odoo_id
        partner = backend._match_partner(
            email=customer["email"],
            phone=customer["phone"],
            name=customer["name"],
            values=lambda: self._address_values(customer["address"] or {}),
        )
        # A contact found by email or phone may already be bound to another
        # Shopify customer of this store (one person, two accounts): keep that.
        if customer["external_id"] and not Binding._find_by_record(backend, partner):
            Binding.create(
                {
                    "backend_id": backend.id,
                    "external_id": customer["external_id"],
                    "odoo_id": partner.id,
                    "accepts_marketing": customer["accepts_marketing"],
                }
            )
        return partner

    def _address(self, partner, address, kind):
        """The partner's invoice or delivery address; reused when identical."""
        if not address:
            return partner
        values = self._address_values(address)
        if self._same_address(partner, values, ignore_name=True):
            return partner
        existing = partner.child_ids.filtered(
            lambda child: child.type == kind and self._same_address(child, values)
        )
        return existing[:1] or self.env["res.partner"].create(
            {**values, "parent_id": partner.id, "type": kind}
        )

    @staticmethod
    def _same_address(partner, values, ignore_name=False):
        for key, value in values.items():
            if key == "name" and ignore_name:
                continue
            current = partner[key]
            current = current.id if hasattr(current, "_name") else current
            if (current or False) != (value or False):
                return False
        return True

    def _address_values(self, address):
        values = {k: v for k, v in address.items() if k not in ("country_code", "state_code")}
        if not values.get("name"):
            values.pop("name", None)
        country = self._country(address.get("country_code") or "")
        state = country and self._country_state(country, address.get("state_code") or "")
        return {**values, "country_id": country.id or False, "state_id": state.id or False}

    # --- order settings ---------------------------------------------------------

    def _pricelist(self, backend, currency_code):
        currency = backend.company_id.currency_id
        if currency.name != currency_code:
            currency = (
                self.env["res.currency"]
                .with_context(active_test=False)
                .search([("name", "=", currency_code)], limit=1)
            )
        if not currency:
            raise UserError(self.env._("Unknown currency %(code)s.", code=currency_code))
        if not currency.active:
            currency.active = True
        if backend.shopify_pricelist_id.currency_id == currency:
            return backend.shopify_pricelist_id
        Pricelist = self.env["product.pricelist"]
        # Looked up once per batch job of orders: a shop's orders share a few currencies.
        pricelists = self._batch_memo().setdefault("connector_shopify.pricelists", {})
        if (backend.id, currency.id) in pricelists:
            return Pricelist.browse(pricelists[backend.id, currency.id])
        domain = [
            ("currency_id", "=", currency.id),
            ("company_id", "in", [False, backend.company_id.id]),
        ]
        pricelist = Pricelist.search(domain, limit=1) or Pricelist.create(
            {
                "name": f"Shopify {currency.name}",
                "currency_id": currency.id,
                "company_id": backend.company_id.id,
            }
        )
        pricelists[backend.id, currency.id] = pricelist.id
        return pricelist

    def _warehouse(self, backend, values):
        """The warehouse the order ships from.

        The backend's, unless one of its Shopify locations is mapped to
        another warehouse (a store that ships online orders from its
        shelves): then that of the location Shopify assigned the order's
        fulfillment orders to. The order then reserves that store's stock,
        and the quantity Odoo sends Shopify for the store counts it; booked
        on the backend's warehouse, the store's units sold online would be
        offered again at the store's next stock change. An order Shopify
        split over the locations of several warehouses, or assigned to a
        location mapped to none, stays on the backend's warehouse.
        """
        default = backend.shopify_warehouse_id or self.env["stock.warehouse"].search(
            [("company_id", "=", backend.company_id.id)], limit=1
        )
        warehouses = self._location_warehouses(backend)
        if not set(warehouses.values()) - {default.id}:
            return default
        routed = {warehouses.get(gid) for gid in self._assigned_locations(backend, values)}
        if len(routed) == 1 and None not in routed:
            return self.env["stock.warehouse"].browse(routed.pop())
        return default

    def _location_warehouses(self, backend):
        """{Shopify location GID: Odoo warehouse id} of the backend's mapped
        locations; looked up once per batch job of orders."""
        memo = self._batch_memo().setdefault("connector_shopify.location_warehouses", {})
        if backend.id not in memo:
            memo[backend.id] = {
                location.external_id: warehouse.id
                for location in backend.shopify_location_ids
                if (warehouse := location.warehouse_id or location.location_id.warehouse_id)
            }
        return memo[backend.id]

    def _assigned_locations(self, backend, values):
        """GIDs of the locations the order's live fulfillment orders are
        assigned to (of its closed ones when all are closed: an order
        fulfilled already); empty when Shopify lists more than it returns,
        an order split that far is not routed to one warehouse."""
        data = backend._shopify_client().execute(
            ORDER_ROUTING, {"id": f"gid://shopify/Order/{values['external_id']}"}, cost=13
        )
        connection = ((data.get("order") or {}).get("fulfillmentOrders")) or {}
        if (connection.get("pageInfo") or {}).get("hasNextPage"):
            return set()
        nodes = [edge["node"] for edge in connection.get("edges") or []]
        live = [n for n in nodes if n["status"] not in UNROUTED_STATUSES]
        chosen = live or [n for n in nodes if n["status"] == "CLOSED"]
        return {(n["assignedLocation"]["location"] or {}).get("id") for n in chosen}

    def _check_total(self, backend, order, values):
        """Odoo's order must total Shopify's to the cent, taxes included.

        A difference fails the event (the order and what came with it are
        rolled back) with both totals and what to fix: an accountant must
        never find a sale order worth other than what the customer paid.
        With the backend's taxes left to Odoo (fiscal positions), the totals
        may differ by design: the order says so in its chatter.
        """
        currency = order.currency_id
        shopify_tax = values["total_tax"]
        total_differs = currency.compare_amounts(order.amount_total, values["total"])
        tax_differs = shopify_tax is not None and currency.compare_amounts(
            order.amount_tax, shopify_tax
        )
        if not (total_differs or tax_differs):
            return

        def amount(value):
            return f"{value:.{currency.decimal_places}f}"

        if backend.shopify_tax_policy != "shopify":
            order.message_post(
                body=self.env._(
                    "Shopify total %(shopify)s differs from the Odoo total %(odoo)s: the "
                    "backend lets Odoo compute the taxes.",
                    shopify=amount(values["total"]),
                    odoo=amount(order.amount_total),
                )
            )
            return
        company = order.company_id
        if company.tax_calculation_rounding_method != "round_per_line":
            fix = self.env._(
                "set the Tax Calculation Rounding Method of %(company)s to 'Round per Line' "
                "(Accounting settings, Taxes): Shopify rounds tax per line",
                company=company.name,
            )
        else:
            fix = self.env._("check the tax mapping of backend %(backend)s", backend=backend.name)
        raise UserError(
            self.env._(
                "Odoo total %(odoo)s differs from Shopify's %(shopify)s on order %(order)s "
                "(tax: Odoo %(odoo_tax)s, Shopify %(shopify_tax)s): %(fix)s. The order is not "
                "imported; requeue this event once fixed.",
                odoo=amount(order.amount_total),
                shopify=amount(values["total"]),
                order=values["name"],
                odoo_tax=amount(order.amount_tax),
                shopify_tax=amount(shopify_tax) if shopify_tax is not None else "?",
                fix=fix,
            )
        )
