from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.fields import Command

from ..components.ticket import amount, check_ticket, discount_percent, pos_time


class ConnectorPosTicketImporter(models.AbstractModel):
    """Turns one store ticket into one Point of Sale order, Odoo's way.

    The order is made by ``pos.order._process_order``, the path Odoo's own
    POS syncs its orders through: payments, the paid state, the delivery
    (real-time stock) and the accounting at the session's close are Point of
    Sale's. The ticket's UUID is the order's, so Odoo's unique UUID holds
    too: a ticket applied twice is found, never made twice.
    """

    _name = "connector.pos.ticket.importer"
    _description = "POS Ticket Import"

    @api.model
    def _apply(self, backend, event, payload):
        """The order of the ticket ``payload`` (of the topic's schema), made or
        found, or None for a no-sale."""
        check_ticket(payload)
        ticket = payload
        store = backend._pos_store(ticket["store"])
        if not store:
            raise UserError(
                self.env._(
                    "Fleet %(backend)s has no active store %(store)s: add it (Stores tab), "
                    "then requeue this event.",
                    backend=backend.name,
                    store=ticket["store"],
                )
            )
        Order = self.env["pos.order"]
        applied = Order.search([("uuid", "=", ticket["uuid"])], limit=1)
        if applied:
            return applied  # a replay, or a ticket sent under two batch ids
        if ticket["type"] == "no_sale":
            return None  # a drawer opened: kept as the event, for the store's close
        if backend.company_id.tax_calculation_rounding_method != backend.pos_tax_rounding:
            raise UserError(backend._pos_rounding_problem())
        session = self._session(backend, store, ticket)
        if ticket["type"] == "void":
            values = self._void_values(store, ticket)
        else:
            values = self._order_values(backend, store, ticket)
        # The totals Point of Sale computes from these lines, in the same pass
        # of the tax engine as the lines' amounts (``_line_amounts``).
        computed = values.pop("computed_totals")
        if ticket.get("total_tax") is None and ticket["type"] != "void":
            values["amount_tax"] = computed[1]  # the POS printed none: Odoo's
        values.update(
            uuid=ticket["uuid"],
            session_id=session.id,
            date_order=fields.Datetime.to_string(pos_time(ticket["closed_at"])),
            pricelist_id=(store.pricelist_id or store.config_id.pricelist_id).id,
            # The mapped taxes are the POS's: no fiscal position maps them again.
            fiscal_position_id=False,
            partner_id=backend._pos_customer(ticket.get("customer")).id,
            amount_return=0,
            to_invoice=False,
            connector_pos_store_id=store.id,
            connector_pos_register=ticket["register"],
            connector_pos_sequence=ticket["sequence"],
        )
        if store.team_id and "crm_team_id" in Order._fields:
            values["crm_team_id"] = store.team_id.id
        # No chatter on the order: it is the store's ticket, made once and
        # never edited here, and a message per order costs as much as its lines.
        order = Order.browse(
            Order.with_context(tracking_disable=True)._process_order(values, False)
        )
        self._check_totals(order, ticket, values, computed)
        return order

    # --- the store's day -------------------------------------------------------------

    def _session(self, backend, store, ticket):
        """The session of the ticket's business day, opened when it is the first.

        A ticket of the open day goes in its session. A ticket of a day
        already closed (a late upload) goes in a recovery session of its day,
        as Point of Sale keeps orders of a closed session, so the open day
        and its close are not disturbed. A ticket of a later day never gets
        here while a day is open: it waits (``_pos_ticket_blocked``).
        """
        day = fields.Date.to_date(ticket["business_day"])
        session = store._open_session()
        if session and not session.connector_pos_business_day:
            # Opened by hand in Point of Sale: the store's day from now on.
            session.write({"connector_pos_store_id": store.id, "connector_pos_business_day": day})
        if session and session.connector_pos_business_day == day:
            return session
        if session and session.connector_pos_business_day < day:
            raise UserError(
                self.env._(
                    "Store %(store)s still has its day %(open)s open; close it to apply "
                    "the tickets of %(day)s.",
                    store=store.display_name,
                    open=session.connector_pos_business_day,
                    day=day,
                )
            )
        Session = self.env["pos.session"]
        closed = Session.search_count(
            [
                ("config_id", "=", store.config_id.id),
                ("state", "=", "closed"),
                ("connector_pos_business_day", ">=", day),
            ],
            limit=1,
        )
        rescue = bool(session or closed)
        if rescue:
            found = Session.search(
                [
                    ("config_id", "=", store.config_id.id),
                    ("state", "!=", "closed"),
                    ("rescue", "=", True),
                    ("connector_pos_business_day", "=", day),
                ],
                limit=1,
            )
            if found:
                return found
        # Two registers' first tickets of the day, in two jobs: the second
        # one's update of the Point of Sale waits for the first and, seeing
        # it changed, is retried on a snapshot where the session exists.
        self.env.cr.execute(
            "UPDATE pos_config SET write_date = write_date WHERE id = %s", (store.config_id.id,)
        )
        session = Session.create(
            {
                "config_id": store.config_id.id,
                "rescue": rescue,
                "connector_pos_store_id": store.id,
                "connector_pos_business_day": day,
            }
        )
        # The fleet's stock policy, as Point of Sale's own option of the session.
        session.update_stock_at_closing = backend.pos_stock_policy == "closing"
        # Opened as a cashier opens it, the drawer holding what the last day left.
        session.set_opening_control(
            session.cash_register_balance_start,
            self.env._("Opened by the connector for the business day %s.", day),
        )
        if not rescue:
            store._open_day(session)
        return session

    # --- a sale or a return ------------------------------------------------------------

    def _order_values(self, backend, store, ticket):
        """``_process_order``'s values of a sale or a return."""
        lines = ticket.get("lines") or []
        products = self._products(ticket, lines)
        taxes = self._taxes(backend, ticket, lines)
        originals = self._returned_lines(ticket, lines) if ticket["type"] == "return" else {}
        line_values = []
        for line in lines:
            values = {
                "product_id": products[line["line_uuid"]],
                "qty": float(amount(line["quantity"])),
                "price_unit": float(amount(line["unit_price"])),
                "discount": discount_percent(line),
                "tax_ids": taxes.get(line.get("tax_code")) or self.env["account.tax"],
                "uuid": line["line_uuid"],
            }
            if line.get("return_of_line"):
                values["refunded_orderline_id"] = originals[line["return_of_line"]].id
            line_values.append(values)
        total = float(amount(ticket["total"]))
        computed = self._line_amounts(store, ticket, line_values, refund=total < 0)
        payments = self._payments(backend, store, ticket)
        return {
            "lines": [Command.create(values) for values in line_values],
            "computed_totals": computed,
            "payment_ids": payments,
            "amount_total": total,
            "amount_tax": float(amount(ticket.get("total_tax"))),
            "amount_paid": total,
            "is_refund": ticket["type"] == "return",
        }

    def _line_amounts(self, store, ticket, lines, *, refund):
        """Complete ``lines`` (``pos.order.line`` values with records for the
        product and the taxes) with their amounts, and return the order's
        ``(total, tax)``, in one pass of Odoo's tax engine.

        A line's amounts are the ones ``pos.order.line._compute_amount_line_all``
        computes (the tax engine's raw totals of the line, rounded to the
        currency); the order's totals are the ones ``pos.order._compute_prices``
        computes from its lines (the same base lines, rounded the company's
        way, summed as a refund's when the order's total is negative), without
        reading back the order just made.
        """
        AccountTax = self.env["account.tax"]
        config = store.config_id
        company = config.company_id
        currency = config.currency_id
        day = pos_time(ticket["closed_at"]).date()
        memo = self.env["connector.event"]._batch_memo()
        key = ("connector_pos.rate", company.id, currency.id, day)
        if key not in memo:
            memo[key] = self.env["res.currency"]._get_conversion_rate(
                company.currency_id, currency, company, day
            )
        base_lines = []
        for values in lines:
            product, taxes = values["product_id"], values["tax_ids"]
            # The line's own computation: compute_all's, on the net unit price.
            base_line = AccountTax._prepare_base_line_for_taxes_computation(
                None,
                product_id=product,
                product_uom_id=product.uom_id,
                tax_ids=taxes,
                price_unit=values["price_unit"],
                quantity=values["qty"],
                discount=values["discount"],
                currency_id=currency,
                rate=memo[key],
            )
            AccountTax._add_tax_details_in_base_line(
                base_line,
                taxes[:1].company_id._accessible_branches()[:1] or taxes[:1].company_id or company,
            )
            details = base_line["tax_details"]
            values.update(
                product_id=product.id,
                full_product_name=product.display_name,
                tax_ids=[Command.set(taxes.ids)],
                price_subtotal=currency.round(details["raw_total_excluded_currency"]),
                price_subtotal_incl=currency.round(details["raw_total_included_currency"]),
            )
            base_lines.append(base_line)
        if refund is None:  # the order's total is the sum of these lines
            refund = currency.round(sum(values["price_subtotal_incl"] for values in lines)) < 0
        if refund:
            # _compute_prices counts a refund's quantities positive.
            base_lines = [{**line, "quantity": -line["quantity"]} for line in base_lines]
            AccountTax._add_tax_details_in_base_lines(base_lines, company)
        AccountTax._round_base_lines_tax_details(base_lines, company)
        cash_rounding = None
        if config.cash_rounding and not config.only_round_cash_method and config.rounding_method:
            cash_rounding = config.rounding_method
        totals = AccountTax._get_tax_totals_summary(
            base_lines=base_lines, currency=currency, company=company, cash_rounding=cash_rounding
        )
        sign = -1 if refund else 1
        return sign * totals["total_amount_currency"], sign * totals["tax_amount_currency"]

    def _label(self, ticket):
        return f"{ticket['store']}/{ticket['register']} #{ticket['sequence']}"

    def _products(self, ticket, lines):
        """The product of each line (by line UUID): by SKU (the product's
        internal reference), else by barcode. Every unknown one is named in
        one error, and nothing is created."""
        # Product ids by SKU and by barcode (None: no product has it), kept
        # for the batch job: a store sells the same few hundred products all day.
        memo = self.env["connector.event"]._batch_memo()
        by_sku = memo.setdefault("connector_pos.by_sku", {})
        by_barcode = memo.setdefault("connector_pos.by_barcode", {})
        skus = {line["sku"] for line in lines if line.get("sku")} - by_sku.keys()
        barcodes = {line["barcode"] for line in lines if line.get("barcode")} - by_barcode.keys()
        Product = self.env["product.product"]
        if skus or barcodes:
            found = Product.search(
                ["|", ("default_code", "in", list(skus)), ("barcode", "in", list(barcodes))],
                order="id",
            )
            by_sku.update(dict.fromkeys(skus))
            by_barcode.update(dict.fromkeys(barcodes))
            for product in found:
                if product.default_code in skus and not by_sku[product.default_code]:
                    by_sku[product.default_code] = product.id
                if product.barcode in barcodes and not by_barcode[product.barcode]:
                    by_barcode[product.barcode] = product.id
        products, unknown = {}, []
        for line in lines:
            product_id = by_sku.get(line.get("sku")) or by_barcode.get(line.get("barcode"))
            if product_id:
                products[line["line_uuid"]] = Product.browse(product_id)
            else:
                names = [f"SKU {line['sku']!r}" if line.get("sku") else None]
                names.append(f"barcode {line['barcode']!r}" if line.get("barcode") else None)
                unknown.append(" / ".join(name for name in names if name))
        if unknown:
            raise UserError(
                self.env._(
                    "Ticket %(ticket)s: no product has %(unknown)s. Give the product that "
                    "internal reference or barcode, then requeue this event.",
                    ticket=self._label(ticket),
                    unknown=", ".join(dict.fromkeys(unknown)),
                )
            )
        return products

    def _taxes(self, backend, ticket, lines):
        """The Odoo tax of each POS tax code of the lines; every unmapped or
        mismatched code is named in one error."""
        codes = {line["tax_code"] for line in lines if line.get("tax_code")}
        memo = self.env["connector.event"]._batch_memo()
        key = ("connector_pos.taxes", backend.id)
        if key not in memo:
            memo[key] = {
                row.code: row.tax_id.id
                for row in self.env["connector.pos.tax"].search([("backend_id", "=", backend.id)])
            }
        Tax = self.env["account.tax"]
        mapped = {code: Tax.browse(memo[key][code]) for code in codes if code in memo[key]}
        included = ticket["prices_include_tax"]
        unmapped = sorted(codes - set(mapped))
        mismatched = sorted(code for code, tax in mapped.items() if tax.price_include != included)
        if unmapped or mismatched:
            problems = []
            if unmapped:
                problems.append(
                    self.env._("map the tax codes %s (Tax codes tab)", ", ".join(unmapped))
                )
            if mismatched:
                problems.append(
                    self.env._(
                        "map %(codes)s to %(kind)s taxes, as the store's prices %(say)s",
                        codes=", ".join(mismatched),
                        kind=self.env._("price-included")
                        if included
                        else self.env._("not price-included"),
                        say=self.env._("include taxes")
                        if included
                        else self.env._("do not include taxes"),
                    )
                )
            raise UserError(
                self.env._(
                    "Ticket %(ticket)s: %(problems)s on fleet %(backend)s, then requeue "
                    "this event.",
                    ticket=self._label(ticket),
                    problems="; ".join(problems),
                    backend=backend.name,
                )
            )
        return mapped

    def _returned_lines(self, ticket, lines):
        """The original lines a return names (by their UUID), each of the
        original ticket and not returned beyond what was sold."""
        wanted = {line["return_of_line"] for line in lines}
        originals = {
            line.uuid: line
            for line in self.env["pos.order.line"].search(
                [("uuid", "in", list(wanted)), ("order_id.uuid", "=", ticket["original_uuid"])]
            )
        }
        missing = sorted(wanted - set(originals))
        if missing:
            raise UserError(
                self.env._(
                    "Return %(ticket)s names lines %(lines)s that the ticket %(original)s "
                    "does not have.",
                    ticket=self._label(ticket),
                    lines=", ".join(missing),
                    original=ticket["original_uuid"],
                )
            )
        for line in lines:
            original = originals[line["return_of_line"]]
            left = original.qty - original.refunded_qty
            if -float(amount(line["quantity"])) > left + 1e-9:
                raise UserError(
                    self.env._(
                        "Return %(ticket)s takes back %(qty)s of %(product)s, only %(left)s "
                        "of the ticket %(original)s are left to return.",
                        ticket=self._label(ticket),
                        qty=-float(amount(line["quantity"])),
                        product=original.full_product_name,
                        left=left,
                        original=ticket["original_uuid"],
                    )
                )
        return originals

    def _payments(self, backend, store, ticket):
        """One payment per tender, with the payment method the tender maps to
        for this store, which must be one of the store's Point of Sale."""
        tenders = ticket.get("tenders") or []
        methods = self.env["connector.pos.tender"]._methods_of(store)
        unmapped = sorted({t["type"] for t in tenders} - set(methods))
        if unmapped:
            raise UserError(
                self.env._(
                    "Ticket %(ticket)s: map the tenders %(tenders)s to payment methods on "
                    "fleet %(backend)s (Tenders tab), then requeue this event.",
                    ticket=self._label(ticket),
                    tenders=", ".join(unmapped),
                    backend=backend.name,
                )
            )
        foreign = {
            methods[t["type"]]
            for t in tenders
            if methods[t["type"]] not in store.config_id.payment_method_ids
        }
        if any(method.is_cash_count for method in foreign):
            # Point of Sale lets a cash method serve one Point of Sale only.
            raise UserError(
                self.env._(
                    "Ticket %(ticket)s: cash maps to %(method)s, which is not a method of the "
                    "Point of Sale %(config)s; give store %(store)s a Cash row of its own with "
                    "one of its cash methods (fleet %(backend)s, Tenders tab), then requeue "
                    "this event.",
                    ticket=self._label(ticket),
                    method=methods["cash"].display_name,
                    config=store.config_id.display_name,
                    store=store.display_name,
                    backend=backend.name,
                )
            )
        if foreign:
            raise UserError(
                self.env._(
                    "Ticket %(ticket)s: add the payment methods %(methods)s to the Point of "
                    "Sale %(config)s, then requeue this event.",
                    ticket=self._label(ticket),
                    methods=", ".join(sorted(method.display_name for method in foreign)),
                    config=store.config_id.display_name,
                )
            )
        when = fields.Datetime.to_string(pos_time(ticket["closed_at"]))
        return [
            Command.create(
                {
                    "amount": float(amount(tender["amount"])),
                    "payment_method_id": methods[tender["type"]].id,
                    "payment_date": when,
                    "transaction_id": tender.get("reference") or False,
                }
            )
            for tender in tenders
        ]

    # --- a void ------------------------------------------------------------------

    def _void_values(self, store, ticket):
        """A void cancels the whole ticket, Odoo's way: a refund of what is
        left of each of its lines, paid back as it was paid: each payment's
        refund carries its transaction id, the card terminal's reference the
        acquirer refunds and settles the refund under."""
        original = self.env["pos.order"].search([("uuid", "=", ticket["original_uuid"])], limit=1)
        left = original.lines.filtered(lambda line: line.qty - line.refunded_qty > 0)
        if not left:
            raise UserError(
                self.env._(
                    "Void %(ticket)s: the ticket %(original)s has nothing left to cancel "
                    "(returned or voided already).",
                    ticket=self._label(ticket),
                    original=original.pos_reference or ticket["original_uuid"],
                )
            )
        lines = [
            {
                "product_id": line.product_id,
                "qty": -(line.qty - line.refunded_qty),
                "price_unit": line.price_unit,
                "discount": line.discount,
                "tax_ids": line.tax_ids,
                "uuid": f"{ticket['uuid']}:{line.uuid}",
                "refunded_orderline_id": line.id,
            }
            for line in left
        ]
        currency = store.config_id.currency_id
        if left == original.lines.filtered(lambda line: not line.refunded_qty):
            # Nothing returned before: the exact reverse of the ticket.
            total, tax = -original.amount_total, -original.amount_tax
            computed = self._line_amounts(store, ticket, lines, refund=total < 0)
            paid = [(payment, -payment.amount) for payment in original.payment_ids]
        else:
            computed = self._line_amounts(store, ticket, lines, refund=None)
            total = currency.round(sum(line["price_subtotal_incl"] for line in lines))
            tax = currency.round(total - sum(line["price_subtotal"] for line in lines))
            paid = [(original.payment_ids[:1], total)]
        when = fields.Datetime.to_string(pos_time(ticket["closed_at"]))
        return {
            "lines": [Command.create(values) for values in lines],
            "computed_totals": computed,
            "payment_ids": [
                Command.create(
                    {
                        "amount": value,
                        "payment_method_id": payment.payment_method_id.id,
                        "payment_date": when,
                        "transaction_id": payment.transaction_id or False,
                    }
                )
                for payment, value in paid
            ],
            "amount_total": total,
            "amount_tax": tax,
            "amount_paid": total,
            "is_refund": True,
        }

    # --- totals ---------------------------------------------------------------------

    def _check_totals(self, order, ticket, values, computed):
        """Odoo's totals of the order, as Point of Sale computes them from its
        lines (``computed``: ``(total, tax)``, see ``_line_amounts``), must be
        the POS's to the cent; otherwise the ticket is not applied."""
        total, tax = computed
        currency = order.currency_id
        expected_total = values["amount_total"]
        expected_tax = values["amount_tax"]  # Odoo's when the POS printed none
        if currency.compare_amounts(total, expected_total) or currency.compare_amounts(
            tax, expected_tax
        ):
            raise UserError(
                self.env._(
                    "Ticket %(ticket)s: Odoo computes a total of %(total)s with %(tax)s of tax, "
                    "the POS printed %(pos_total)s with %(pos_tax)s. Check the tax mapping of "
                    "its tax codes and that the company rounds taxes as the POS does.",
                    ticket=self._label(ticket),
                    total=f"{total:.2f}",
                    tax=f"{tax:.2f}",
                    pos_total=f"{expected_total:.2f}",
                    pos_tax=f"{expected_tax:.2f}",
                )
            )
