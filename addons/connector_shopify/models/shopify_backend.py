from datetime import datetime, timedelta, timezone

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.topics import InboundTopic, OutboundTopic

from ..components import mapper_order
from ..components.client import ShopifyClient
from ..components.mapper_order import CANCEL_SCHEMA, ORDER_SCHEMA
from .shopify_catalog import CATALOG_TOPIC, MUTATIONS_PER_REQUEST

DEFAULT_API_VERSION = "2026-10"
# Shopify's limit on any input array: quantities of one inventorySetQuantities.
SET_QUANTITIES_LIMIT = 250

LOCATIONS = """
query Locations($after: String) {
  locations(first: 50, after: $after) {
    edges { node { id name isActive } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
VARIANTS = """
query Variants($after: String) {
  productVariants(first: 100, after: $after) {
    edges { node { id sku inventoryItem { id } product { id } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def order_key(payload):
    return f"order:{payload['id']}"


class ConnectorBackend(models.Model):
    """A Shopify store: its connection, mappings and flows."""

    _inherit = "connector.backend"

    backend_type = fields.Selection(
        selection_add=[("shopify", "Shopify")], ondelete={"shopify": "cascade"}
    )
    shopify_shop_domain = fields.Char(
        string="Shop domain", help="The store's permanent domain, e.g. my-store.myshopify.com."
    )
    shopify_api_version = fields.Char(string="API version", default=DEFAULT_API_VERSION)
    shopify_warehouse_id = fields.Many2one(
        "stock.warehouse",
        string="Default warehouse",
        help="Where Shopify orders are reserved and shipped from when their location "
        "is not mapped.",
    )
    shopify_location_ids = fields.One2many(
        "shopify.location", "backend_id", string="Shopify locations"
    )
    shopify_team_id = fields.Many2one("crm.team", string="Sales team")
    shopify_tax_policy = fields.Selection(
        [
            ("shopify", "Use the taxes Shopify computed"),
            ("odoo", "Let Odoo compute taxes (fiscal positions)"),
        ],
        string="Taxes",
        default="shopify",
    )
    shopify_stock_buffer_qty = fields.Float(
        string="Safety stock",
        help="Kept back from what Shopify may sell, per product and location.",
    )
    shopify_shipping_product_id = fields.Many2one(
        "product.product",
        string="Shipping product",
        default=lambda self: self.env.ref(
            "connector_shopify.product_shopify_shipping", raise_if_not_found=False
        ),
    )

    _shopify_domain_uniq = models.Constraint(
        "UNIQUE (shopify_shop_domain)", "This Shopify store already has a backend."
    )

    # --- declarations ---------------------------------------------------------

    def _connector_flows(self):
        if self.backend_type != "shopify":
            return super()._connector_flows()
        return [
            {"code": "orders_in", "name": "Orders in", "mode": "realtime", "sla_lag_minutes": 5},
            {"code": "stock_out", "name": "Stock out", "mode": "realtime", "sla_lag_minutes": 2},
            {
                "code": "fulfillment_out",
                "name": "Fulfillments out",
                "mode": "realtime",
                "sla_lag_minutes": 10,
            },
            {
                "code": "catalog_out",
                "name": "Catalog out",
                "mode": "scheduled",
                "interval_minutes": 60,
                "sla_lag_minutes": 120,
            },
        ]

    def _connector_topics(self):
        if self.backend_type != "shopify":
            return super()._connector_topics()
        upsert = {
            "flow": "orders_in",
            "schema": ORDER_SCHEMA,
            "handler": "_shopify_import_order",
            "sequence_key": order_key,
            "skip_stale": True,
        }
        return {
            "inventory.set": OutboundTopic(
                flow="stock_out",
                sender="_shopify_send_inventory",
                batch_size=SET_QUANTITIES_LIMIT,
                window_seconds=2,
            ),
            "fulfillment.create": OutboundTopic(
                flow="fulfillment_out", sender="_shopify_send_fulfillments", batch_size=20
            ),
            # One change per product template; a batch's mutations share requests.
            CATALOG_TOPIC: OutboundTopic(
                flow="catalog_out",
                sender="_shopify_send_catalog",
                batch_size=MUTATIONS_PER_REQUEST * 2,
                window_seconds=5,
            ),
            "orders/create": InboundTopic(**upsert),
            "orders/updated": InboundTopic(**upsert),
            "orders/cancelled": InboundTopic(
                flow="orders_in",
                schema=CANCEL_SCHEMA,
                handler="_shopify_cancel_order",
                sequence_key=order_key,
                prerequisite="_shopify_order_missing",
            ),
        }

    # --- connection -------------------------------------------------------------

    def _shopify_client(self, correlation_id=None):
        self.ensure_one()
        if not (self.base_url and self.sudo().api_token):
            raise UserError(self.env._("Enter the store URL and its Admin API access token first."))
        http = self._http_client(
            correlation_id=correlation_id,
            headers={"X-Shopify-Access-Token": self.sudo().api_token},
        )
        return ShopifyClient(
            http,
            self.shopify_api_version or DEFAULT_API_VERSION,
            (self.env.cr.dbname, self.id),
        )

    def _test_connection(self):
        if self.backend_type != "shopify":
            return super()._test_connection()
        shop = self._shopify_client().execute(
            "query { shop { name myshopifyDomain currencyCode } }"
        )["shop"]
        return self.env._(
            "Connected to %(name)s (%(domain)s, %(currency)s).",
            name=shop["name"],
            domain=shop["myshopifyDomain"],
            currency=shop["currencyCode"],
        )

    def action_shopify_import_locations(self):
        """List the store's locations, to map each to an Odoo location."""
        self.ensure_one()
        Location = self.env["shopify.location"]
        warehouse = self.shopify_warehouse_id
        for node in self._shopify_client().paginate(LOCATIONS, {}, ["locations"]):
            location = Location.search(
                [("backend_id", "=", self.id), ("external_id", "=", node["id"])]
            )
            values = {"name": node["name"], "active": node["isActive"]}
            if location:
                location.write(values)
            else:
                Location.create(
                    {
                        **values,
                        "backend_id": self.id,
                        "external_id": node["id"],
                        # The first location defaults to the default warehouse's stock.
                        "warehouse_id": warehouse.id if not self.shopify_location_ids else False,
                        "location_id": warehouse.lot_stock_id.id
                        if warehouse and not self.shopify_location_ids
                        else False,
                    }
                )
        return True

    def action_shopify_bind_products(self):
        """Bind the store's variants to Odoo products of the same SKU.

        For a store that existed before Odoo: nothing is created on either
        side; variants whose SKU is unknown in Odoo are counted and left.
        """
        self.ensure_one()
        Binding = self.env["shopify.product.binding"]
        Product = self.env["product.product"]
        bound = unknown = 0
        for node in self._shopify_client().paginate(VARIANTS, {}, ["productVariants"]):
            product = node["sku"] and Product.search(
                [
                    ("default_code", "=", node["sku"]),
                    ("company_id", "in", [False, self.company_id.id]),
                ],
                limit=1,
            )
            if not product:
                unknown += 1
                continue
            # External ids are Shopify's numeric ids, as its webhooks carry them.
            variant_id = str(mapper_order.legacy_id(node["id"]))
            values = {
                "inventory_item_id": node["inventoryItem"]["id"],
                # Later catalog exports update this product instead of creating one.
                "shopify_product_id": str(mapper_order.legacy_id(node["product"]["id"])),
            }
            previous = Binding._find_by_record(self, product)
            if previous and previous.external_id != variant_id:
                # The SKU now lives on another variant of the store (re-created in
                # Shopify): follow it, or stock would go to a variant that is gone.
                Binding._find(self, variant_id).unlink()
                previous.write({"external_id": variant_id, **values})
            else:
                Binding._bind(self, variant_id, product, **values)
            bound += 1
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Products bound"),
                "message": self.env._(
                    "%(bound)d variants bound by SKU; %(unknown)d have no product of that SKU "
                    "in Odoo.",
                    bound=bound,
                    unknown=unknown,
                ),
                "sticky": True,
            },
        }

    def action_shopify_push_stock(self):
        """Send the available quantity of every bound product now (reconciliation)."""
        for backend in self:
            self.env["shopify.stock.sync"]._snapshot(backend)
        return True

    @api.model
    def _cron_shopify_stock_snapshot(self):
        for backend in self.search([("backend_type", "=", "shopify"), ("state", "=", "running")]):
            if backend._policy("stock_out").enabled:
                self.env["shopify.stock.sync"]._snapshot(backend)

    def action_shopify_import_orders(self):
        """Read the orders changed since the last read (or the last 7 days) now."""
        for backend in self:
            backend.with_delay(
                identity_key=f"shopify.backfill-{backend.id}-start",
                description=f"{backend.name}: read orders",
            )._shopify_backfill_orders(backend._shopify_backfill_since())
        return True

    @api.model
    def _cron_shopify_backfill_orders(self):
        """The safety net of webhooks: orders changed since the last read are read
        again; what a webhook already brought is recognised and changes nothing."""
        for backend in self.search([("backend_type", "=", "shopify"), ("state", "=", "running")]):
            if backend._policy("orders_in").enabled:
                backend.action_shopify_import_orders()

    def _shopify_backfill_since(self):
        watermark = self._policy("orders_in").watermark
        if watermark:
            return watermark
        start = fields.Datetime.now() - timedelta(days=7)
        return start.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _shopify_backfill_orders(self, since, after=None):
        """Read one page of orders updated since ``since`` (the queue job).

        Each order is received as an ``orders/updated`` event keyed by its id
        and update time, so a page read twice (after a retry) stores
        duplicates, not second orders. The next page is its own job, so a
        throttled or failed page is retried alone.
        """
        self.ensure_one()
        with self._retry_on_remote_fault():
            data = self._shopify_client().execute(
                mapper_order.ORDERS_QUERY, {"after": after, "query": f"updated_at:>='{since}'"}
            )
        Event = self.env["connector.event"]
        connection = data["orders"]
        for node in (edge["node"] for edge in connection["edges"]):
            Event._receive(
                self,
                "orders/updated",
                mapper_order.order_from_graphql(node),
                f"poll:{node['id']}:{node['updatedAt']}",
                occurred_at=_parse_time(node["updatedAt"]),
                source="poll",
            )
        page = connection["pageInfo"]
        if page["hasNextPage"]:
            self.with_delay(
                identity_key=f"shopify.backfill-{self.id}-{page['endCursor']}",
                description=f"{self.name}: read orders (next page)",
            )._shopify_backfill_orders(since, page["endCursor"])
        elif connection["edges"]:
            self._policy("orders_in").watermark = connection["edges"][-1]["node"]["updatedAt"]
        return f"{len(connection['edges'])} orders read"

    def action_shopify_export_catalog(self):
        """Send every product the store sells whose data changed, now."""
        for backend in self:
            backend.with_delay(
                channel=backend._policy("catalog_out").channel,
                identity_key=f"shopify.catalog-{backend.id}",
                description=f"{backend.name}: export catalog",
            )._shopify_export_catalog()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Catalog export started"),
                "message": self.env._(
                    "Changed products are sent in the background; see the outbound queue."
                ),
                "sticky": False,
            },
        }

    def _shopify_export_catalog(self):
        """Queue the products whose Shopify data changed, then send them (the job)."""
        self.ensure_one()
        return self.env["shopify.catalog.sync"]._export_catalog(self)

    @api.model
    def _shopify_ensure_sync_policies(self):
        self.with_context(active_test=False).search(
            [("backend_type", "=", "shopify")]
        )._ensure_sync_policies()

    @api.model
    def _cron_shopify_export_catalog(self):
        self.env["shopify.catalog.sync"]._cron_export()

    def _shopify_send_catalog(self, items):
        return self.env["shopify.catalog.sync"]._send(self, items)

    def _shopify_send_fulfillments(self, items):
        return self.env["shopify.fulfillment.sync"]._send(self, items)

    def _shopify_send_inventory(self, items):
        return self.env["shopify.stock.sync"]._send(self, items)

    # --- webhooks -------------------------------------------------------------

    def _webhook_signature_ok(self, raw_body, headers):
        if self.backend_type != "shopify":
            return super()._webhook_signature_ok(raw_body, headers)
        return self._webhook_hmac_base64_ok(raw_body, headers.get("X-Shopify-Hmac-Sha256"))

    def _webhook_message(self, payload, headers):
        if self.backend_type != "shopify":
            return super()._webhook_message(payload, headers)
        return {
            "topic": headers.get("X-Shopify-Topic"),
            # Stable across Shopify's retries of one delivery: the dedup key.
            "idempotency_key": headers.get("X-Shopify-Webhook-Id"),
            "occurred_at": _parse_time(headers.get("X-Shopify-Triggered-At")),
            "correlation_id": headers.get("X-Shopify-Event-Id")
            or headers.get("X-Shopify-Webhook-Id"),
        }

    # --- handlers -------------------------------------------------------------

    def _shopify_import_order(self, event, payload):
        return self.env["shopify.order.importer"]._import(self, event, payload)

    def _shopify_order_missing(self, event, payload):
        if self.env["shopify.order.binding"]._find(self, payload["id"]):
            return None
        return (
            self.env._(
                "Order %(name)s is not imported yet.", name=payload.get("name") or payload["id"]
            ),
            order_key(payload),
        )

    def _shopify_cancel_order(self, event, payload):
        binding = self.env["shopify.order.binding"]._find(self, payload["id"])
        binding._cancel_in_odoo(payload.get("cancel_reason"))
        return binding.odoo_id

    @api.model
    def _shopify_backend_for_domain(self, domain):
        return self.sudo().search(
            [("backend_type", "=", "shopify"), ("shopify_shop_domain", "=", domain)], limit=1
        )


def _parse_time(value):
    """Shopify's ISO 8601 time (``2026-11-23T10:00:00.123Z``) as a naive UTC datetime."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment
