import json
import logging
import math
import uuid

from odoo import api, models

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
    def _available(self, binding, shop_location):
        product = binding.odoo_id.with_context(location=shop_location.location_id.id)
        buffer = binding.backend_id.shopify_stock_buffer_qty
        return max(0, math.floor(product.free_qty - buffer))

    @api.model
    def _send(self, backend, items):
        """Set the available quantity of each item at its location, in one call.

        Returns ``{item id: reason}`` for the items Shopify refused; as Shopify
        applies a batch whole or not at all, the others are sent again without
        them.
        """
        Binding = self.env["shopify.product.binding"]
        Location = self.env["shopify.location"]
        pending = list(items)
        refused = {}
        client = backend._shopify_client()
        while pending:
            quantities = []
            for item in pending:
                binding = Binding.browse(item.payload["binding_id"]).exists()
                shop_location = Location.browse(item.payload["location_id"]).exists()
                if not (binding and shop_location):
                    refused[item.id] = self.env._("The product or location is no longer mapped.")
                    continue
                quantities.append(
                    {
                        "inventoryItemId": binding.inventory_item_id,
                        "locationId": shop_location.external_id,
                        "quantity": self._available(binding, shop_location),
                        # Odoo is the source of truth: set, without comparing.
                        "changeFromQuantity": None,
                    }
                )
            pending = [item for item in pending if item.id not in refused]
            if not pending:
                break
            payload = {
                "name": "available",
                "reason": "correction",
                "referenceDocumentUri": f"odoo://connector.backend/{backend.id}",
                "quantities": quantities,
            }
            key = uuid.uuid5(
                uuid.NAMESPACE_URL,
                json.dumps([payload, pending[0].write_date], default=str, sort_keys=True),
            )
            result = client.execute(SET_QUANTITIES % key, {"input": payload}, cost=10)
            errors = result["inventorySetQuantities"]["userErrors"]
            if not errors:
                for item, quantity in zip(pending, quantities, strict=True):
                    item.remote_result = f"available = {quantity['quantity']}"
                break
            blamed = self._blame(errors, pending)
            if not blamed:
                message = user_errors_message(errors)
                refused.update(dict.fromkeys([item.id for item in pending], message))
                break
            refused.update(blamed)
            pending = [item for item in pending if item.id not in blamed]
        return refused

    @staticmethod
    def _blame(errors, items):
        """Items named by ``field: ["input", "quantities", "<index>", ...]`` of user errors."""
        blamed = {}
        for error in errors:
            field = error.get("field") or []
            if len(field) > 2 and field[1] == "quantities" and str(field[2]).isdigit():
                index = int(field[2])
                if index < len(items):
                    blamed[items[index].id] = (
                        f"{error.get('code') or ''} {error['message']}".strip()
                    )
        return blamed

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
