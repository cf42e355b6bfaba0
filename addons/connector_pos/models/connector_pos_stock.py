import math

from odoo import api, models

from ..components import catalog
from .connector_pos_catalog import AVAILABILITY_TOPIC

# The products the stores of running push fleets sell, among those of a
# stock change, whose store's stock location holds the changed location.
STORES_OF_SQL = """
SELECT binding.id
  FROM connector_pos_product binding
  JOIN connector_pos_store store ON store.id = binding.store_id AND store.active
  JOIN connector_backend backend
       ON backend.id = store.backend_id AND backend.state IN ('running', 'circuit_open')
      AND backend.pos_mode = 'push'
  JOIN pos_config config ON config.id = store.config_id
  JOIN stock_picking_type kind ON kind.id = config.picking_type_id
  JOIN stock_location location ON location.id = kind.default_location_src_id
 WHERE binding.odoo_id IN %(products)s
   AND %(path)s LIKE location.parent_path || '%%'
"""
CHANGED = "connector_pos.stock_changed"


class StockQuant(models.Model):
    _inherit = "stock.quant"

    @api.model
    def _update_available_quantity(self, product_id, location_id, *args, **kwargs):
        result = super()._update_available_quantity(product_id, location_id, *args, **kwargs)
        self.env["connector.pos.stock.sync"]._stock_changed(product_id, location_id)
        return result

    @api.model
    def _update_reserved_quantity(self, product_id, location_id, *args, **kwargs):
        result = super()._update_reserved_quantity(product_id, location_id, *args, **kwargs)
        self.env["connector.pos.stock.sync"]._stock_changed(product_id, location_id)
        return result


class ConnectorPosStockSync(models.AbstractModel):
    """Available quantity per store out to the stores' POS, as the Shopify stock
    flow sends it: every quant change at a store's stock location of a product
    the store's POS knows queues one change per (store, product); changes of
    one key coalesce while pending, and the quantity (free: on hand less
    reserved, never below 0) is read when the batch is sent, up to 100 per
    call. The POS gets Odoo's latest figure in as few calls as possible."""

    _name = "connector.pos.stock.sync"
    _description = "POS Availability Sync"

    @api.model
    def _stock_changed(self, product, location):
        """Note a quant change; the changes are queued once, when the
        transaction commits: a validation of 1,000 moves on 50 products
        queues 50 changes in one pass, not one per quant update. A change
        noted in a savepoint rolled back since sends the current quantity
        once more, which is harmless: the quantity is read when sent."""
        if location.usage != "internal":
            return
        precommit = self.env.cr.precommit
        if CHANGED not in precommit.data:
            precommit.data[CHANGED] = set()
            precommit.add(self._queue_changes)
        precommit.data[CHANGED].add((product.id, location.id))

    @api.model
    def _queue_changes(self):
        """Queue the availability of the store products the transaction's quant
        changes touched (the pre-commit hook of :meth:`_stock_changed`)."""
        changes = self.env.cr.precommit.data.pop(CHANGED, set())
        by_location = {}
        for product_id, location_id in changes:
            by_location.setdefault(location_id, set()).add(product_id)
        self.env["connector.pos.product"].flush_model(["odoo_id", "store_id"])
        binding_ids = set()
        for location in self.env["stock.location"].sudo().browse(list(by_location)):
            self.env.cr.execute(
                STORES_OF_SQL,
                {"products": tuple(by_location[location.id]), "path": location.parent_path},
            )
            binding_ids.update(row[0] for row in self.env.cr.fetchall())
        if binding_ids:
            self._queue(self.env["connector.pos.product"].browse(sorted(binding_ids)))

    @api.model
    def _queue(self, bindings):
        """Queue the available quantity of ``bindings`` (store, product) for their POS."""
        bindings = bindings.sudo()
        for backend in bindings.backend_id:
            if not backend._policy("stock_out").enabled:
                continue
            backend._send_later_here(
                AVAILABILITY_TOPIC,
                [
                    (
                        f"{binding.store_id.id}:{binding.odoo_id.id}",
                        {"binding_id": binding.id},
                        binding.odoo_id,
                    )
                    for binding in bindings
                    if binding.backend_id == backend
                ],
            )

    @api.model
    def _available(self, bindings):
        """``{binding id: quantity}``: the free quantity of each binding's product
        at its store's location, in whole units, never below 0; one stock
        query per store."""
        quantities = {}
        for store in bindings.store_id:
            mine = bindings.filtered(lambda b, s=store: b.store_id == s)
            free = {
                product.id: product.free_qty
                for product in mine.odoo_id.with_context(location=store.location_id.id)
            }
            for binding in mine:
                quantities[binding.id] = max(0, math.floor(free[binding.odoo_id.id]))
        return quantities

    @api.model
    def _send(self, backend, items):
        """Set the available quantity of each item's product at its store, in one
        call; ``{item id: reason}`` for those the POS refused. The POS applies a
        call whole or not at all and names each count it refuses: the others
        are sent again without them."""
        Binding = self.env["connector.pos.product"].sudo()
        client = backend._pos_client()
        refused = {}
        bindings = Binding.browse([item.payload["binding_id"] for item in items]).exists()
        available = self._available(bindings.filtered("store_id.active"))
        pending = []
        for item in items:
            binding = Binding.browse(item.payload["binding_id"])
            if binding.id not in available:
                refused[item.id] = self.env._("The store no longer sells this product.")
                continue
            count = {
                "store": binding.store_id.code,
                "sku": binding.external_id,
                "available": available[binding.id],
            }
            pending.append((item, count))
        while pending:
            counts = [count for _item, count in pending]
            key = catalog.idempotency_key([item.id for item, _count in pending], counts)
            _answer, errors = client.set_counts(counts, key)
            if errors is None:
                for item, count in pending:
                    item.remote_result = f"available = {count['available']}"
                break
            blamed = catalog.blamed(errors, "counts")
            if not blamed or any(index >= len(pending) for index in blamed):
                message = catalog.errors_message(errors)
                refused.update(dict.fromkeys([item.id for item, _count in pending], message))
                break
            for index, message in blamed.items():
                item, count = pending[index]
                refused[item.id] = self.env._(
                    "%(store)s refused the quantity of %(sku)s: %(reason)s",
                    store=count["store"],
                    sku=count["sku"],
                    reason=message,
                )
            pending = [entry for index, entry in enumerate(pending) if index not in blamed]
        return refused

    @api.model
    def _snapshot(self, backend):
        """Queue every product of every store: the reconciliation (a full push)."""
        bindings = (
            self.env["connector.pos.product"].sudo().search([("backend_id", "=", backend.id)])
        )
        backend._send_later_many(
            AVAILABILITY_TOPIC,
            (
                (
                    f"{binding.store_id.id}:{binding.odoo_id.id}",
                    {"binding_id": binding.id},
                    binding.odoo_id,
                )
                for binding in bindings
            ),
        )
        return len(bindings)
