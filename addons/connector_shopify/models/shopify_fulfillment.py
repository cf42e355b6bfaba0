import logging

from odoo import api, models

from ..components.client import user_errors_message

_logger = logging.getLogger(__name__)

# Requested cost 2 + 5 x (3 + 25 x 2) = 267, under Shopify's 1000 per query.
FULFILLMENT_ORDERS = """
query FulfillmentOrders($id: ID!) {
  order(id: $id) {
    fulfillmentOrders(first: 5) { edges { node {
      id status
      lineItems(first: 25) { edges { node { id sku remainingQuantity variant { id } } } }
    } } }
  }
}
"""
FULFILLMENT_CREATE = """
mutation FulfillmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status }
    userErrors { field message }
  }
}
"""
OPEN_STATUSES = ("OPEN", "IN_PROGRESS")


class StockPicking(models.Model):
    _inherit = "stock.picking"

    def _action_done(self):
        result = super()._action_done()
        self.env["shopify.fulfillment.sync"]._pickings_done(self)
        return result


class ShopifyFulfillmentSync(models.AbstractModel):
    """A delivery done in Odoo becomes a Shopify fulfillment, with its tracking.

    Only deliveries of sale orders imported from Shopify, and only once the
    order is bound (it exists on both sides). Quantities are those delivered:
    a partial delivery is a partial fulfillment, its backorder the next one.
    """

    _name = "shopify.fulfillment.sync"
    _description = "Shopify Fulfillment Sync"

    @api.model
    def _pickings_done(self, pickings):
        for picking in pickings.filtered(lambda p: p.picking_type_code == "outgoing"):
            bindings = picking.sale_id.sudo().shopify_binding_ids
            for binding in bindings.filtered(
                lambda b: b.backend_id.state in ("running", "circuit_open")
            ):
                if binding.backend_id._policy("fulfillment_out").enabled:
                    binding.backend_id._send_later(
                        "fulfillment.create",
                        f"picking:{picking.id}",
                        {"picking_id": picking.id, "order_binding_id": binding.id},
                        record=picking,
                    )

    @api.model
    def _send(self, backend, items):
        """One fulfillmentCreate per delivery; ``{item id: reason}`` for refusals."""
        refused = {}
        client = backend._shopify_client()
        for item in items:
            picking = self.env["stock.picking"].browse(item.payload["picking_id"]).exists()
            binding = (
                self.env["shopify.order.binding"].browse(item.payload["order_binding_id"]).exists()
            )
            if not (picking and binding):
                refused[item.id] = self.env._("The delivery or the Shopify order is gone.")
                continue
            order_gid = f"gid://shopify/Order/{binding.external_id}"
            data = client.execute(FULFILLMENT_ORDERS, {"id": order_gid})
            groups, missing = self._line_items(backend, picking, data)
            if missing:
                refused[item.id] = self.env._(
                    "Shopify has nothing left to fulfill for %(products)s on %(order)s.",
                    products=", ".join(missing),
                    order=binding.shopify_name,
                )
                continue
            result = client.execute(
                FULFILLMENT_CREATE,
                {"fulfillment": self._fulfillment_input(picking, groups)},
                cost=10,
            )["fulfillmentCreate"]
            if result["userErrors"]:
                refused[item.id] = user_errors_message(result["userErrors"])
            else:
                item.remote_result = result["fulfillment"]["id"]
        return refused

    def _line_items(self, backend, picking, data):
        """Delivered quantities spread over the open fulfillment order lines."""
        Binding = self.env["shopify.product.binding"]
        lines = [
            (order["id"], line)
            for order in (edge["node"] for edge in data["order"]["fulfillmentOrders"]["edges"])
            if order["status"] in OPEN_STATUSES
            for line in (edge["node"] for edge in order["lineItems"]["edges"])
        ]
        groups, missing = {}, []
        for move in picking.move_ids.filtered(lambda m: m.quantity and m.state == "done"):
            product = move.product_id
            variant = Binding._find_by_record(backend, product).external_id
            wanted = move.quantity
            for order_id, line in lines:
                same = (
                    (line.get("variant") or {}).get("id", "").endswith(f"/{variant}")
                    if variant
                    else line.get("sku") == product.default_code
                )
                if not same or not line["remainingQuantity"] or not wanted:
                    continue
                quantity = min(int(wanted), line["remainingQuantity"])
                groups.setdefault(order_id, []).append({"id": line["id"], "quantity": quantity})
                line["remainingQuantity"] -= quantity
                wanted -= quantity
            if wanted:
                missing.append(product.default_code or product.display_name)
        return groups, missing

    def _fulfillment_input(self, picking, groups):
        tracking = {"number": picking.carrier_tracking_ref or None}
        if picking.carrier_id:
            tracking["company"] = picking.carrier_id.name
        return {
            "lineItemsByFulfillmentOrder": [
                {"fulfillmentOrderId": order_id, "fulfillmentOrderLineItems": lines}
                for order_id, lines in groups.items()
            ],
            "trackingInfo": tracking,
            "notifyCustomer": True,
        }
