import logging
from datetime import timedelta

from odoo import api, fields, models

from odoo.addons.connector_base.components.http_client import RemoteError

from ..components.client import user_errors_message
from .shopify_backend import _parse_time

_logger = logging.getLogger(__name__)

# The order's fulfillment orders, and its fulfillments made since the delivery
# was validated (to find the one a lost answer made). Requested cost, each list
# counted in full: the order 1, fulfillment orders 2 + 5 x (3 + 25 x 2) = 267,
# fulfillments 5 x (1 + 20 + 2 + 25 x 3) = 490; 758, under Shopify's 1000 per
# query (20 tracking numbers: a delivery shipped in many parcels has one each).
# Connections cut at their ``first`` are read whole by the queries below; the
# lists Shopify truncates (fulfillments, tracking numbers) fail loudly when
# full rather than be read in part.
FULFILLMENTS_LISTED = 5
TRACKING_LISTED = 20
_PAGE_INFO = "pageInfo { hasNextPage endCursor }"
_FO_LINE = "id sku remainingQuantity variant { id }"
_FULFILLMENT_LINE = "quantity lineItem { sku variant { id } }"
FULFILLMENT_ORDERS = f"""
query FulfillmentOrders($id: ID!, $since: String!) {{
  order(id: $id) {{
    fulfillmentOrders(first: 5) {{ edges {{ node {{
      id status
      lineItems(first: 25) {{ edges {{ node {{ {_FO_LINE} }} }} {_PAGE_INFO} }}
    }} }} {_PAGE_INFO} }}
    fulfillments(first: {FULFILLMENTS_LISTED}, query: $since) {{
      id status createdAt
      trackingInfo(first: {TRACKING_LISTED}) {{ number }}
      fulfillmentLineItems(first: 25) {{ edges {{ node {{ {_FULFILLMENT_LINE} }} }} {_PAGE_INFO} }}
    }}
  }}
}}
"""
FULFILLMENT_ORDERS_PAGE = f"""
query FulfillmentOrdersPage($id: ID!, $after: String) {{
  order(id: $id) {{
    fulfillmentOrders(first: 5, after: $after) {{ edges {{ node {{
      id status
      lineItems(first: 25) {{ edges {{ node {{ {_FO_LINE} }} }} {_PAGE_INFO} }}
    }} }} {_PAGE_INFO} }}
  }}
}}
"""
FULFILLMENT_ORDER_LINES_PAGE = f"""
query FulfillmentOrderLines($id: ID!, $after: String) {{
  fulfillmentOrder(id: $id) {{
    lineItems(first: 100, after: $after) {{ edges {{ node {{ {_FO_LINE} }} }} {_PAGE_INFO} }}
  }}
}}
"""
FULFILLMENT_LINES_PAGE = f"""
query FulfillmentLines($id: ID!, $after: String) {{
  fulfillment(id: $id) {{
    fulfillmentLineItems(first: 100, after: $after) {{
      edges {{ node {{ {_FULFILLMENT_LINE} }} }} {_PAGE_INFO}
    }}
  }}
}}
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
# Fulfillments that ship nothing: never taken for a delivery's own.
GONE_STATUSES = ("CANCELLED", "ERROR", "FAILURE")
# Shopify's clock and Odoo's may differ a little: a fulfillment stamped up to
# this long before the delivery was validated may still be its own.
CLOCK_MARGIN = timedelta(minutes=2)


class StockPicking(models.Model):
    _inherit = "stock.picking"

    shopify_fulfilled = fields.Boolean(
        string="Fulfilled in Shopify",
        readonly=True,
        copy=False,
        help="Shopify fulfilled these goods itself (from its admin, another app, a store) "
        "before Odoo shipped them: delivered in Odoo without a fulfillment sent back, and "
        "never to be shipped again.",
    )

    def _action_done(self):
        result = super()._action_done()
        self.env["shopify.fulfillment.sync"]._pickings_done(self)
        self.env["shopify.refund.importer"]._returns_received(self)
        return result


class ShopifyFulfillmentSync(models.AbstractModel):
    """A delivery done in Odoo becomes a Shopify fulfillment, with its tracking.

    Only deliveries of sale orders imported from Shopify, and only once the
    order is bound (it exists on both sides). Quantities are those delivered:
    a partial delivery is a partial fulfillment, its backorder the next one.

    One delivery gives one fulfillment, whatever happens to the answers:
    ``fulfillmentCreate`` takes no idempotency key, so before creating, the
    fulfillments Shopify made since the delivery was validated are looked at,
    and the one that ships this delivery (same lines, quantities and tracking
    number, not already recorded for another delivery) is recorded instead.
    """

    _name = "shopify.fulfillment.sync"
    _description = "Shopify Fulfillment Sync"

    @api.model
    def _pickings_done(self, pickings):
        # A delivery of what Shopify fulfilled itself has nothing to send.
        for picking in pickings.filtered(
            lambda p: p.picking_type_code == "outgoing" and not p.shopify_fulfilled
        ):
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
        """One fulfillmentCreate per delivery; ``{item id: reason}`` for refusals.

        A delivery Shopify already has a fulfillment for (the answer to an
        earlier attempt was lost, or someone fulfilled it by hand) is recorded
        with that fulfillment and not sent again.
        """
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
            shipped = self._shipped(backend, picking)
            since = (picking.date_done or item.create_date) - CLOCK_MARGIN
            order_gid = f"gid://shopify/Order/{binding.external_id}"
            data = client.execute(
                FULFILLMENT_ORDERS,
                {"id": order_gid, "since": f"created_at:>='{since:%Y-%m-%dT%H:%M:%SZ}'"},
            )
            self._read_whole(client, data["order"], order_gid, binding.shopify_name)
            made = self._made_already(item, picking, shipped, since, data["order"]["fulfillments"])
            if made:
                _logger.info(
                    "%s %s: Shopify already has its fulfillment %s; recorded, not sent again",
                    picking.name,
                    binding.shopify_name,
                    made,
                )
                item.remote_result = made
                continue
            groups, missing = self._line_items(shipped, data)
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

    def _read_whole(self, client, order, order_gid, name):
        """Complete what FULFILLMENT_ORDERS cut at its ``first``: the order's
        fulfillment orders and their lines, each fulfillment's lines. A list
        Shopify truncates (fulfillments, tracking numbers) that came back full
        may hide this delivery's fulfillment: refused loudly, for support."""
        client.complete(
            order["fulfillmentOrders"],
            FULFILLMENT_ORDERS_PAGE,
            {"id": order_gid},
            ["order", "fulfillmentOrders"],
            f"fulfillment orders on {name}",
        )
        for fulfillment_order in (edge["node"] for edge in order["fulfillmentOrders"]["edges"]):
            client.complete(
                fulfillment_order["lineItems"],
                FULFILLMENT_ORDER_LINES_PAGE,
                {"id": fulfillment_order["id"]},
                ["fulfillmentOrder", "lineItems"],
                f"lines on a fulfillment order of {name}",
            )
        fulfillments = order["fulfillments"]
        if len(fulfillments) >= FULFILLMENTS_LISTED or any(
            len(f["trackingInfo"]) >= TRACKING_LISTED for f in fulfillments
        ):
            raise RemoteError(
                self.env._(
                    "%(order)s has %(count)d fulfillments or more since this delivery was "
                    "validated, or as many tracking numbers on one: check in Shopify whether "
                    "it is fulfilled already, then send again or cancel this change.",
                    order=name,
                    count=FULFILLMENTS_LISTED,
                )
            )
        for fulfillment in fulfillments:
            client.complete(
                fulfillment["fulfillmentLineItems"],
                FULFILLMENT_LINES_PAGE,
                {"id": fulfillment["id"]},
                ["fulfillment", "fulfillmentLineItems"],
                f"lines on a fulfillment of {name}",
            )
        return order

    def _shipped(self, backend, picking):
        """What the delivery ships, whatever Shopify has left to fulfill: per
        product its bound variant (numeric id, or False), SKU and quantity."""
        Binding = self.env["shopify.product.binding"]
        shipped = {}
        for move in picking.move_ids.filtered(lambda m: m.quantity and m.state == "done"):
            product = move.product_id
            if product not in shipped:
                shipped[product] = {
                    "variant": Binding._find_by_record(backend, product).external_id,
                    "sku": product.default_code,
                    "label": product.default_code or product.display_name,
                    "quantity": 0,
                }
            shipped[product]["quantity"] += move.quantity
        return list(shipped.values())

    @staticmethod
    def _is_line_of(entry, line):
        """Whether a Shopify line (``sku``, ``variant { id }``) is this product's."""
        if entry["variant"]:
            return ((line.get("variant") or {}).get("id") or "").endswith(f"/{entry['variant']}")
        return line.get("sku") == entry["sku"]

    def _made_already(self, item, picking, shipped, since, fulfillments):
        """The id of the fulfillment Shopify already made for this delivery, or None.

        It is one made since the delivery was validated (less the clock
        margin), not cancelled, with the delivery's tracking number and exactly
        its lines and quantities, that no other delivery recorded as its own.
        The earliest such one, if two deliveries look alike.
        """
        tracking = self._tracking_numbers(picking)
        candidates = {}
        for fulfillment in fulfillments:
            created = _parse_time(fulfillment["createdAt"])
            if (
                created
                and created >= since
                and fulfillment["status"] not in GONE_STATUSES
                and self._same_tracking(fulfillment, tracking)
                and self._same_lines(fulfillment, shipped)
            ):
                candidates[fulfillment["id"]] = created
        if not candidates:
            return None
        taken = set(
            self.env["connector.outbound"]
            .search(
                [
                    ("backend_id", "=", item.backend_id.id),
                    ("topic", "=", item.topic),
                    ("id", "!=", item.id),
                    ("remote_result", "in", list(candidates)),
                ]
            )
            .mapped("remote_result")
        )
        free = [f for f in candidates if f not in taken]
        return min(free, key=candidates.get) if free else None

    @staticmethod
    def _tracking_numbers(picking):
        """The delivery's tracking numbers, one per parcel.

        A delivery shipped in several parcels has several numbers in its
        tracking reference, separated by commas, as Odoo's carrier
        integrations write them; each is sent to Shopify as its own number
        (never the reference whole as one, nor only the first: odoo/odoo#80636).
        """
        numbers = (n.strip() for n in (picking.carrier_tracking_ref or "").split(","))
        return list(dict.fromkeys(n for n in numbers if n))

    @staticmethod
    def _same_tracking(fulfillment, tracking):
        """Whether the fulfillment carries these tracking numbers (none: none at all)."""
        numbers = {(t.get("number") or "").strip() for t in fulfillment["trackingInfo"]}
        numbers.discard("")
        return set(tracking) <= numbers if tracking else not numbers

    def _same_lines(self, fulfillment, shipped):
        """Whether the fulfillment ships exactly these products and quantities."""
        got = [0] * len(shipped)
        for line in (edge["node"] for edge in fulfillment["fulfillmentLineItems"]["edges"]):
            index = next(
                (
                    i
                    for i, entry in enumerate(shipped)
                    if self._is_line_of(entry, line["lineItem"] or {})
                ),
                None,
            )
            if index is None:
                return False
            got[index] += line["quantity"]
        return all(got[i] == entry["quantity"] for i, entry in enumerate(shipped))

    def _line_items(self, shipped, data):
        """Delivered quantities spread over the open fulfillment order lines."""
        lines = [
            (order["id"], line)
            for order in (edge["node"] for edge in data["order"]["fulfillmentOrders"]["edges"])
            if order["status"] in OPEN_STATUSES
            for line in (edge["node"] for edge in order["lineItems"]["edges"])
        ]
        groups, missing = {}, []
        for entry in shipped:
            wanted = entry["quantity"]
            for order_id, line in lines:
                if not self._is_line_of(entry, line) or not line["remainingQuantity"] or not wanted:
                    continue
                quantity = min(int(wanted), line["remainingQuantity"])
                groups.setdefault(order_id, []).append({"id": line["id"], "quantity": quantity})
                line["remainingQuantity"] -= quantity
                wanted -= quantity
            if wanted:
                missing.append(entry["label"])
        return groups, missing

    def _fulfillment_input(self, picking, groups):
        numbers = self._tracking_numbers(picking)
        tracking = (
            {"numbers": numbers} if len(numbers) > 1 else {"number": next(iter(numbers), None)}
        )
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
