import collections
import json
import logging
import math
import uuid
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from odoo.addons.connector_base.components.http_client import RemoteRetryableError

from ..components.client import user_errors_message

_logger = logging.getLogger(__name__)

SET_QUANTITIES = """
mutation SetQuantities($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) @idempotent(key: "%s") {
    inventoryAdjustmentGroup { id }
    userErrors { field message code }
  }
}
"""

LEVEL = """
query Level($item: ID!, $location: ID!) {
  inventoryItem(id: $item) {
    inventoryLevel(locationId: $location) {
      quantities(names: ["available"]) { name quantity }
    }
  }
}
"""

STALE = "CHANGE_FROM_QUANTITY_STALE"
# Rounds of read-and-set when online orders keep changing a quantity between
# the read and the set; the job is retried later past them.
STALE_ROUNDS = 3
# How long units sold online are held back while Odoo has not imported their
# orders: past it, what Shopify lowered is taken for a change made there
# (its admin, another app, a set of Odoo's own lost with its transaction) and
# Odoo's figure stands again, as Odoo is the source of truth.
UNIMPORTED_HOLD = timedelta(hours=1)

Plan = collections.namedtuple("Plan", "quantity change_from shop_reserved unimported held_since")


class StockQuant(models.Model):
    _inherit = "stock.quant"

    @api.model
    def _update_available_quantity(self, product_id, location_id, *args, **kwargs):
        result = super()._update_available_quantity(product_id, location_id, *args, **kwargs)
        self.env["shopify.stock.sync"]._stock_changed(product_id, location_id)
        return result

    @api.model
    def _update_reserved_quantity(self, product_id, location_id, *args, **kwargs):
        result = super()._update_reserved_quantity(product_id, location_id, *args, **kwargs)
        self.env["shopify.stock.sync"]._stock_changed(product_id, location_id)
        return result


class ShopifyStockLevel(models.Model):
    """The available quantity Odoo last set for an item at a Shopify location.

    The next set compares with it, so that units Shopify sold online and
    Odoo has not imported yet are not offered again (``shopify.stock.sync``).
    """

    _name = "shopify.stock.level"
    _description = "Shopify Stock Level Set"

    binding_id = fields.Many2one(
        "shopify.product.binding", required=True, ondelete="cascade", index=True
    )
    shopify_location_id = fields.Many2one("shopify.location", required=True, ondelete="cascade")
    quantity = fields.Integer(string="Last set", help="The available quantity Odoo set last.")
    shop_reserved = fields.Float(
        help="Units Odoo had reserved or delivered for the store's orders at the location then."
    )
    unimported = fields.Integer(
        string="Sold online, not imported",
        help="Units Shopify had sold that Odoo had not imported yet: taken off Odoo's figure.",
    )
    held_since = fields.Datetime(help="When units sold online were last held back.")
    attempted = fields.Integer(help="The quantity of the last set left without an answer.")
    unanswered = fields.Boolean(
        help="A set was left without an answer since: it may have been applied all the same."
    )

    _binding_location_uniq = models.Constraint(
        "UNIQUE (binding_id, shopify_location_id)",
        "An item has one last set quantity per Shopify location.",
    )


class ShopifyStockSync(models.AbstractModel):
    """Stock availability out to Shopify: available = on hand - reserved - buffer.

    Every quant change of a bound product queues one outbound change per
    mapped Shopify location; changes of one item at one location coalesce
    while pending, and the quantity is computed when the batch is sent, so
    Shopify always gets Odoo's latest figure, in as few calls as the API's
    batch limit allows.
    """

    _name = "shopify.stock.sync"
    _description = "Shopify Stock Sync"

    @api.model
    def _stock_changed(self, product, location):
        if location.usage != "internal" or not self._is_bound(product):
            return
        bindings = (
            self.env["shopify.product.binding"]
            .sudo()
            .search(
                [
                    ("odoo_id", "=", product.id),
                    ("inventory_item_id", "!=", False),
                    ("backend_id.state", "in", ("running", "circuit_open")),
                ]
            )
        )
        for binding in bindings:
            backend = binding.backend_id
            if not backend._policy("stock_out").enabled:
                continue
            for shop_location in backend.shopify_location_ids.filtered(
                lambda loc, changed=location: (
                    loc.active
                    and loc.location_id
                    and changed.parent_path.startswith(loc.location_id.parent_path)
                )
            ):
                self._queue(binding, shop_location)

    @api.model
    def _is_bound(self, product):
        """Whether any store sells ``product``: every reservation and stock
        move of every product passes here, and most are not on Shopify."""
        Binding = self.env["shopify.product.binding"]
        Binding.flush_model(["odoo_id", "inventory_item_id"])
        self.env.cr.execute(
            "SELECT 1 FROM shopify_product_binding "
            "WHERE odoo_id = %s AND inventory_item_id IS NOT NULL LIMIT 1",
            (product.id,),
        )
        return bool(self.env.cr.fetchone())

    @api.model
    def _queue(self, binding, shop_location):
        key, payload, record = self._change(binding, shop_location)
        binding.backend_id._send_later("inventory.set", key, payload, record=record)

    @api.model
    def _change(self, binding, shop_location):
        """``(key, payload, record)``: the stock of one item at one location is
        read when sent, so the payload only names them."""
        return (
            f"{binding.inventory_item_id}@{shop_location.external_id}",
            {"binding_id": binding.id, "location_id": shop_location.id},
            binding.odoo_id,
        )

    @api.model
    def _plans(self, pairs, current=None):
        """``{(binding id, location id): Plan}`` of (binding, Shopify location) pairs.

        Odoo's figure is its free quantity less the safety stock. Shopify
        takes an online order off its quantity at once, and Odoo only when it
        imports the order: setting Odoo's figure as is would offer those
        units again. So each set compares with the quantity Odoo set last
        (``shopify.stock.level``); when Shopify's differs, ``current`` holds
        the quantity read from Shopify, and the units Shopify sold since
        (:meth:`_sold_since`), less those Odoo has since reserved for the
        shop's orders there, are online orders not imported yet: they come
        off Odoo's figure until their import reserves them, for
        ``UNIMPORTED_HOLD`` at most.
        """
        current = current or {}
        now = fields.Datetime.now()
        levels = {
            (level.binding_id.id, level.shopify_location_id.id): level
            for level in self.env["shopify.stock.level"].search(
                [
                    ("binding_id", "in", [binding.id for binding, _loc in pairs]),
                    ("shopify_location_id", "in", [loc.id for _binding, loc in pairs]),
                ]
            )
        }
        reserved = self._shop_reserved(pairs)
        plans = {}
        for binding, shop_location in pairs:
            key = (binding.id, shop_location.id)
            product = binding.odoo_id.with_context(location=shop_location.location_id.id)
            figure = math.floor(product.free_qty - binding.backend_id.shopify_stock_buffer_qty)
            level = levels.get(key)
            held_since = None
            if level:
                read = current.get(key)
                sold = 0 if read is None else self._sold_since(level, read)
                # Units Odoo no longer reserves (an order cancelled, a unit
                # refunded before it shipped) are given back by Shopify where
                # it restocks them, if it does: only new reservations count.
                taken = max(0.0, reserved[key] - level.shop_reserved)
                unimported = max(0, level.unimported + sold - round(taken))
                change_from = level.quantity if read is None else read
                held_since = (level.held_since or now) if unimported else None
                if unimported > level.unimported:
                    held_since = now
                elif held_since and held_since < now - UNIMPORTED_HOLD:
                    unimported, held_since = 0, None
            else:
                # The first set: nothing to compare with yet.
                unimported, change_from = 0, None
            plans[key] = Plan(
                max(0, figure - unimported), change_from, reserved[key], unimported, held_since
            )
        return plans

    @api.model
    def _sold_since(self, level, read):
        """Units Shopify sold since Odoo's last set, by the quantity it has now.

        A set of Odoo's that timed out may have been applied: from either
        quantity, whichever counts fewer units sold. Counting Odoo's own
        change as sales would hold units back for nothing; the other way, a
        unit sold online at that very moment may be offered again until the
        order is imported."""
        bases = {level.quantity}
        if level.unanswered:
            bases.add(level.attempted)
        if read in bases:
            return 0
        return min(base - read for base in bases)

    @api.model
    def _shop_reserved(self, pairs):
        """``{(binding id, location id): units}`` Odoo has reserved or delivered
        from each location for the orders of the binding's Shopify store."""
        self.env["stock.move"].flush_model(
            ["product_id", "location_id", "sale_line_id", "quantity", "state"]
        )
        self.env["sale.order.line"].flush_model(["order_id"])
        self.env["shopify.order.binding"].flush_model(["odoo_id", "backend_id"])
        products = collections.defaultdict(set)
        for binding, shop_location in pairs:
            products[binding.backend_id, shop_location.location_id].add(binding.odoo_id.id)
        taken = {}
        for (backend, location), product_ids in products.items():
            self.env.cr.execute(
                SQL(
                    """
                    SELECT move.product_id, SUM(move.quantity)
                      FROM stock_move move
                      JOIN sale_order_line line ON line.id = move.sale_line_id
                      JOIN shopify_order_binding bound
                        ON bound.odoo_id = line.order_id AND bound.backend_id = %s
                      JOIN stock_location source ON source.id = move.location_id
                     WHERE move.product_id = ANY(%s)
                       AND move.state != 'cancel'
                       AND source.parent_path LIKE %s
                     GROUP BY move.product_id
                    """,
                    backend.id,
                    list(product_ids),
                    f"{location.parent_path}%",
                )
            )
            taken.update(
                ((backend.id, location.id, product), units)
                for product, units in self.env.cr.fetchall()
            )
        return {
            (binding.id, shop_location.id): taken.get(
                (binding.backend_id.id, shop_location.location_id.id, binding.odoo_id.id), 0.0
            )
            for binding, shop_location in pairs
        }

    @api.model
    def _send(self, backend, items):
        """Set the available quantity of each item at its location, in one call.

        Returns ``{item id: reason}`` for the items Shopify refused; as Shopify
        applies a batch whole or not at all, the others are sent again without
        them. A quantity an online order changed since Odoo's last set is read
        from Shopify and the set made again from it (:meth:`_plans`).
        """
        Binding = self.env["shopify.product.binding"]
        Location = self.env["shopify.location"]
        refused, sets = {}, []
        for item in items:
            binding = Binding.browse(item.payload["binding_id"]).exists()
            shop_location = Location.browse(item.payload["location_id"]).exists()
            if binding and shop_location:
                sets.append((item, binding, shop_location))
            else:
                refused[item.id] = self.env._("The product or location is no longer mapped.")
        client = backend._shopify_client()
        stale_rounds, read = 0, {}
        while sets:
            pairs = [(binding, shop_location) for _item, binding, shop_location in sets]
            # This transaction does not see the levels recorded since it
            # began: what was read from Shopify stands for them.
            plans = self._plans(pairs, read)
            quantities = [
                {
                    "inventoryItemId": binding.inventory_item_id,
                    "locationId": shop_location.external_id,
                    "quantity": plans[binding.id, shop_location.id].quantity,
                    "changeFromQuantity": plans[binding.id, shop_location.id].change_from,
                }
                for binding, shop_location in pairs
            ]
            payload = {
                "name": "available",
                "reason": "correction",
                "referenceDocumentUri": f"odoo://connector.backend/{backend.id}",
                "quantities": quantities,
            }
            key = uuid.uuid5(
                uuid.NAMESPACE_URL,
                json.dumps([payload, sets[0][0].write_date], default=str, sort_keys=True),
            )
            try:
                result = client.execute(SET_QUANTITIES % key, {"input": payload}, cost=10)
            except RemoteRetryableError:
                self._attempted(backend, pairs, plans)
                raise
            errors = result["inventorySetQuantities"]["userErrors"]
            if not errors:
                self._record(backend, pairs, plans)
                self._show(sets, plans)
                break
            stale = [error for error in errors if error.get("code") == STALE]
            items = [item for item, _binding, _location in sets]
            blamed = self._blame([error for error in errors if error not in stale], items)
            stale_pairs = [pairs[index] for index, _error in self._indexes(stale)]
            if not (blamed or stale_pairs):
                message = user_errors_message(errors)
                refused.update(dict.fromkeys([item.id for item in items], message))
                break
            refused.update(blamed)
            sets = [entry for entry in sets if entry[0].id not in blamed]
            if stale_pairs:
                stale_rounds += 1
                if stale_rounds > STALE_ROUNDS:
                    raise RemoteRetryableError(
                        "Online orders keep changing Shopify's quantities while Odoo sets them."
                    )
                # What Shopify has now is the new base: the units sold
                # since are counted once, and Odoo's own sets before are
                # settled (applied or not, Shopify says which).
                read.update(self._read_quantities(client, stale_pairs))
                self._record(backend, stale_pairs, self._plans(stale_pairs, read), read)
        return refused

    @api.model
    def _forget(self, binding, shop_location):
        """Set Odoo's figure as is next time, holding nothing back: what a
        manager decides when pushing Odoo's quantity over Shopify's."""
        self.env["shopify.stock.level"].search(
            [("binding_id", "=", binding.id), ("shopify_location_id", "=", shop_location.id)]
        ).unlink()

    @api.model
    def _attempted(self, backend, pairs, plans):
        """Note the quantities of a set left without an answer (it may have
        been applied), where Odoo set one before, in a transaction of its
        own: the job's rolls back to be retried."""
        with backend._new_transaction(read_committed=True) as env:
            for binding, shop_location in pairs:
                env.cr.execute(
                    SQL(
                        "UPDATE shopify_stock_level SET attempted = %s, unanswered = TRUE "
                        "WHERE binding_id = %s AND shopify_location_id = %s",
                        plans[binding.id, shop_location.id].quantity,
                        binding.id,
                        shop_location.id,
                    )
                )
        self.env["shopify.stock.level"].invalidate_model(["attempted", "unanswered"])

    @api.model
    def _record(self, backend, pairs, plans, quantities=None):
        """Keep what Shopify now has (the quantity set, or ``quantities`` read),
        to compare with next time.

        In a transaction of its own: Shopify has it, so it must be kept even
        if this job's transaction rolls back (a killed worker, a retry); else
        the next set would take Odoo's own lost set for online sales."""
        with backend._new_transaction(read_committed=True) as env:
            for binding, shop_location in pairs:
                plan = plans[binding.id, shop_location.id]
                quantity = (quantities or {}).get((binding.id, shop_location.id), plan.quantity)
                env.cr.execute(
                    SQL(
                        """
                        INSERT INTO shopify_stock_level (
                            binding_id, shopify_location_id, quantity, shop_reserved,
                            unimported, held_since, create_uid, write_uid, create_date,
                            write_date)
                        VALUES (%(binding)s, %(location)s, %(quantity)s, %(reserved)s,
                                %(unimported)s, %(held_since)s, %(uid)s, %(uid)s, %(now)s,
                                %(now)s)
                        ON CONFLICT (binding_id, shopify_location_id) DO UPDATE SET
                            quantity = EXCLUDED.quantity,
                            shop_reserved = EXCLUDED.shop_reserved,
                            unimported = EXCLUDED.unimported,
                            held_since = EXCLUDED.held_since,
                            unanswered = FALSE,
                            write_uid = EXCLUDED.write_uid,
                            write_date = EXCLUDED.write_date
                        """,
                        binding=binding.id,
                        location=shop_location.id,
                        quantity=quantity,
                        reserved=plan.shop_reserved,
                        unimported=plan.unimported,
                        held_since=plan.held_since,
                        uid=self.env.uid,
                        now=fields.Datetime.now(),
                    )
                )
        self.env["shopify.stock.level"].invalidate_model()

    @api.model
    def _show(self, sets, plans):
        """The quantity set, on each change sent."""
        for item, binding, shop_location in sets:
            plan = plans[binding.id, shop_location.id]
            item.remote_result = f"available = {plan.quantity}" + (
                self.env._(" (%(count)s sold online, not imported yet)", count=plan.unimported)
                if plan.unimported
                else ""
            )

    @api.model
    def _read_quantities(self, client, pairs):
        """``{(binding id, location id): available}`` as Shopify has it now: a
        read per item, as only quantities an online order changed meanwhile
        are read."""
        read = {}
        for binding, shop_location in pairs:
            data = client.execute(
                LEVEL,
                {"item": binding.inventory_item_id, "location": shop_location.external_id},
                cost=3,
            )
            level = (data.get("inventoryItem") or {}).get("inventoryLevel") or {}
            quantities = {q["name"]: q["quantity"] for q in level.get("quantities") or []}
            read[binding.id, shop_location.id] = quantities.get("available", 0)
        return read

    @staticmethod
    def _indexes(errors):
        """``[(index, error)]`` of the user errors naming a quantity by its
        ``field: ["input", "quantities", "<index>", ...]``."""
        named = []
        for error in errors:
            field = error.get("field") or []
            if len(field) > 2 and field[1] == "quantities" and str(field[2]).isdigit():
                named.append((int(field[2]), error))
        return named

    @classmethod
    def _blame(cls, errors, items):
        """``{item id: reason}`` of the items user errors name."""
        return {
            items[index].id: f"{error.get('code') or ''} {error['message']}".strip()
            for index, error in cls._indexes(errors)
            if index < len(items)
        }

    @api.model
    def _snapshot(self, backend):
        """Queue every bound item at every mapped location: the reconciliation.

        In short transactions of their own (``_send_later_many``): stock moves
        validated meanwhile update the same pending changes."""
        bindings = self.env["shopify.product.binding"].search(
            [("backend_id", "=", backend.id), ("inventory_item_id", "!=", False)]
        )
        backend._send_later_many(
            "inventory.set",
            (
                self._change(binding, shop_location)
                for shop_location in backend.shopify_location_ids.filtered(
                    lambda loc: loc.active and loc.location_id
                )
                for binding in bindings
            ),
        )
        return len(bindings)
