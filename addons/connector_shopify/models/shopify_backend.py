from datetime import datetime, timedelta, timezone

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.http_client import RemoteError
from odoo.addons.connector_base.components.topics import InboundTopic, OutboundTopic

from ..components import mapper_order, mapper_payout, mapper_refund
from ..components.client import ShopifyClient
from ..components.mapper_order import CANCEL_SCHEMA, ORDER_SCHEMA
from ..components.mapper_refund import REFUND_SCHEMA, refund_order_key
from .shopify_catalog import CATALOG_TOPIC, MUTATIONS_PER_REQUEST
from .shopify_webhook import WEBHOOK_ROUTE

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


# At flash-sale volume a job per order event costs more than the batch: one
# job applies up to this many creations and updates of orders of one key
# space, oldest first, each in a savepoint of its own (a bad order fails
# alone, with its reason; the others are applied).
ORDERS_PER_JOB = 50
# The key spaces of the orders: an order's events always fall in the same one
# (by its id), applied by one job at a time, and this many jobs may run side
# by side, so that several job workers share a burst instead of queueing
# behind one job of the whole shop. Beyond the channel's capacity the others
# only wait their turn; fewer would leave workers idle in a flash sale.
ORDER_SHARDS = 8


def order_key(payload):
    return f"order:{payload['id']}"


def order_shard(payload):
    """The key space of an order's events: stable per order, spread over
    :data:`ORDER_SHARDS` (Shopify's order ids are numbers)."""
    return f"orders-{int(payload['id']) % ORDER_SHARDS}"


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
    shopify_user_id = fields.Many2one(
        "res.users",
        string="Salesperson",
        domain="[('share', '=', False)]",
        help="The salesperson of the orders imported from this store; empty: none.",
    )
    shopify_pricelist_id = fields.Many2one(
        "product.pricelist",
        string="Pricelist",
        help="Pricelist of the orders in its currency. Orders in another currency (Shopify "
        "Markets) get a pricelist of their currency, created when missing.",
    )
    shopify_tax_policy = fields.Selection(
        [
            ("shopify", "Use the taxes Shopify computed"),
            ("odoo", "Let Odoo compute taxes (fiscal positions)"),
        ],
        string="Taxes",
        default="shopify",
    )
    shopify_tax_mapping_ids = fields.One2many(
        "shopify.tax.mapping", "backend_id", string="Tax mapping"
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
    shopify_refund_product_id = fields.Many2one(
        "product.product",
        string="Refund adjustment product",
        default=lambda self: self.env.ref(
            "connector_shopify.product_shopify_refund_adjustment", raise_if_not_found=False
        ),
        help="Credits the money a refund gives back beyond its refunded lines and shipping "
        "(a goodwill refund, a refund of money only), so that the credit note is worth what "
        "went back. Its income account books the adjustment.",
    )
    shopify_webhook_url = fields.Char(
        string="Webhook address",
        help="Where Shopify sends this store's webhooks: this Odoo's public HTTPS address "
        "followed by /connector/shopify/webhook. Empty: from the system parameter "
        "web.base.url.",
    )
    shopify_webhook_state = fields.Selection(
        [
            ("unknown", "Not checked"),
            ("ok", "Registered"),
            ("mismatch", "Incomplete"),
            ("error", "Check failed"),
        ],
        string="Webhooks",
        default="unknown",
        readonly=True,
        copy=False,
    )
    shopify_webhook_note = fields.Char(string="Webhook check", readonly=True, copy=False)
    shopify_webhook_checked_at = fields.Datetime(
        string="Webhooks checked at", readonly=True, copy=False
    )
    shopify_order_count = fields.Integer(compute="_compute_shopify_counts")
    shopify_product_count = fields.Integer(compute="_compute_shopify_counts")
    shopify_customer_count = fields.Integer(compute="_compute_shopify_counts")
    shopify_register_payments = fields.Boolean(
        string="Register payments of paid orders",
        default=True,
        help="An order Shopify captured the money of gets its customer payment in the "
        "journal of its gateway, with the Shopify order number as memo, so that payouts "
        "are matched to it. Untick it when the store's payments are booked another way.",
    )
    shopify_payment_method_ids = fields.One2many(
        "shopify.payment.method",
        "backend_id",
        string="Payment methods",
        help="The journal of each Shopify payment gateway; gateways not listed use the "
        "company's first bank journal.",
    )

    _shopify_domain_uniq = models.Constraint(
        "UNIQUE (shopify_shop_domain)", "This Shopify store already has a backend."
    )

    # Bindings counted on the backend form: (model, the list the button opens).
    _shopify_binding_counts = {
        "shopify_order_count": (
            "shopify.order.binding",
            "connector_shopify.action_shopify_order_binding",
        ),
        "shopify_product_count": (
            "shopify.product.binding",
            "connector_shopify.action_shopify_product_binding",
        ),
        "shopify_customer_count": (
            "shopify.partner.binding",
            "connector_shopify.action_shopify_partner_binding",
        ),
    }

    def _compute_shopify_counts(self):
        for field_name, (model, _action) in self._shopify_binding_counts.items():
            counts = dict(
                self.env[model]._read_group(
                    [("backend_id", "in", self.ids)], ["backend_id"], ["__count"]
                )
            )
            for backend in self:
                backend[field_name] = counts.get(backend._origin, 0)

    def action_shopify_view_bindings(self):
        """The orders, products or customers bound to this store (button's context)."""
        self.ensure_one()
        _model, xmlid = self._shopify_binding_counts[self.env.context["binding_count"]]
        action = self.env["ir.actions.act_window"]._for_xml_id(xmlid)
        action["domain"] = [("backend_id", "=", self.id)]
        action["context"] = {"default_backend_id": self.id}
        return action

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
            # Its own flow: support can pause refunds (month-end close) and keep orders flowing.
            {"code": "refunds_in", "name": "Refunds in", "mode": "realtime", "sla_lag_minutes": 15},
            {
                "code": "payouts_in",
                "name": "Payouts in",
                "mode": "scheduled",
                "interval_minutes": 360,
                "sla_lag_minutes": 1440,
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
            "batch_size": ORDERS_PER_JOB,
            "batch_key": order_shard,
        }
        return {
            # A change waits for its window's end: at most 1 s, so that a
            # stock move reaches Shopify within QUALITY P3's 2 s with the flush
            # job's own time. A burst still goes in calls of 250 quantities.
            "inventory.set": OutboundTopic(
                flow="stock_out",
                sender="_shopify_send_inventory",
                batch_size=SET_QUANTITIES_LIMIT,
                window_seconds=1,
            ),
            # One delivery per batch: each fulfillment is recorded as soon as
            # Shopify made it, so a fault on the next one cannot undo that
            # record and have it sent again.
            "fulfillment.create": OutboundTopic(
                flow="fulfillment_out",
                sender="_shopify_send_fulfillments",
                batch_size=1,
            ),
            # One change per product template; a batch's mutations share requests.
            CATALOG_TOPIC: OutboundTopic(
                flow="catalog_out",
                sender="_shopify_send_catalog",
                batch_size=MUTATIONS_PER_REQUEST * 2,
                window_seconds=5,
            ),
            "orders/create": InboundTopic(**upsert),
            # An order's updates in the job of its creation, in the order they
            # occurred: a job beside it would wait for the order it creates.
            "orders/updated": InboundTopic(**upsert, batch_with="orders/create"),
            "orders/cancelled": InboundTopic(
                flow="orders_in",
                schema=CANCEL_SCHEMA,
                handler="_shopify_cancel_order",
                sequence_key=order_key,
                prerequisite="_shopify_order_missing",
            ),
            "refunds/create": InboundTopic(
                flow="refunds_in",
                schema=REFUND_SCHEMA,
                handler="_shopify_import_refund",
                # After the events of its order, and never before the order exists.
                sequence_key=refund_order_key,
                prerequisite="_shopify_refund_order_missing",
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
        self._shopify_check_tax_rounding()
        return self.env._(
            "Connected to %(name)s (%(domain)s, %(currency)s).",
            name=shop["name"],
            domain=shop["myshopifyDomain"],
            currency=shop["currencyCode"],
        )

    # --- tax mapping ----------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        backends = super().create(vals_list)
        backends.filtered(lambda b: b.backend_type == "shopify")._shopify_fill_tax_mapping()
        return backends

    def action_shopify_fill_tax_mapping(self):
        """Map each sale tax of the company not mapped yet, by its rate."""
        self.ensure_one()
        if self.backend_type != "shopify":
            raise UserError(self.env._("Only a Shopify backend has a tax mapping."))
        added = self._shopify_fill_tax_mapping()
        return self._notify(
            self.env._("Tax mapping"),
            self.env._(
                "%(count)s taxes of %(company)s added to the mapping. Give a row the Shopify "
                "tax title or a country where two taxes share a rate.",
                count=len(added),
                company=self.company_id.name,
            ),
            kind="success",
        )

    def _shopify_fill_tax_mapping(self):
        """One row per active percentage sale tax of the backend's company not
        mapped yet: its rate, any title, every country. The import picks the
        row whose tax is price-included like the shop's prices."""
        Mapping = self.env["shopify.tax.mapping"]
        added = Mapping
        for backend in self:
            mapped = backend.shopify_tax_mapping_ids.tax_id
            taxes = self.env["account.tax"].search(
                [
                    ("company_id", "=", backend.company_id.id),
                    ("type_tax_use", "=", "sale"),
                    ("amount_type", "=", "percent"),
                    ("amount", ">", 0),
                    ("id", "not in", mapped.ids),
                ],
                order="sequence, id",
            )
            added |= Mapping.create(
                [{"backend_id": backend.id, "rate": tax.amount, "tax_id": tax.id} for tax in taxes]
            )
        return added

    def _shopify_check_tax_rounding(self):
        """Shopify rounds tax per line: so must the company, for Odoo's order
        totals to be Shopify's to the cent (rounded per tax, 2 x 10.03 at 20 %
        gives 4.01 of tax where Shopify charged 4.02). Taking Shopify's tax
        amounts instead would hold on the sale order only: its invoice and
        credit notes recompute taxes with the company's method."""
        company = self.company_id
        if (
            self.shopify_tax_policy == "shopify"
            and company.tax_calculation_rounding_method != "round_per_line"
        ):
            raise UserError(
                self.env._(
                    "The connection works, but set the Tax Calculation Rounding Method of "
                    "%(company)s to 'Round per Line' (Accounting settings, Taxes): Shopify "
                    "rounds tax per line, and orders whose totals differ from Shopify's fail.",
                    company=company.name,
                )
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
        Bindings to variants the store no longer has are removed: stock and
        prices sent to them would only be refused.
        """
        self.ensure_one()
        Binding = self.env["shopify.product.binding"]
        Product = self.env["product.product"]
        bound = unknown = 0
        in_store = set()
        for node in self._shopify_client().paginate(VARIANTS, {}, ["productVariants"]):
            in_store.add(str(mapper_order.legacy_id(node["id"])))
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
        gone = Binding.search(
            [("backend_id", "=", self.id), ("external_id", "not in", list(in_store))]
        )
        removed = len(gone)
        gone.unlink()
        return self._notify(
            self.env._("Products bound"),
            self.env._(
                "%(bound)d variants bound by SKU; %(unknown)d have no product of that SKU "
                "in Odoo; %(removed)d bindings to variants no longer in the store removed.",
                bound=bound,
                unknown=unknown,
                removed=removed,
            ),
            sticky=True,
        )

    def action_shopify_push_stock(self):
        """Send the available quantity of every bound product now (reconciliation),
        followed by a task: its progress, then what was sent or refused."""
        for backend in self:
            task = self.env["connector.task"]._start(
                backend, "stock_push", self.env._("Push the stock of every product"), committed=True
            )
            self.env["shopify.stock.sync"]._snapshot(
                backend.with_context(connector_task_id=task.id)
            )
        return True

    @api.model
    def _cron_shopify_stock_snapshot(self):
        for backend in self.search([("backend_type", "=", "shopify"), ("state", "=", "running")]):
            if backend._policy("stock_out").enabled:
                self.env["shopify.stock.sync"]._snapshot(backend)

    def action_shopify_import_orders(self):
        """Read the orders changed since the last read (or the last 7 days) now,
        followed by a task: its progress, then what was applied, skipped or failed."""
        for backend in self:
            since = backend._shopify_backfill_since()
            task = self.env["connector.task"]._start(
                backend,
                "backfill",
                self.env._("Read the orders changed since %(since)s", since=since),
                planning=True,
            )
            backend._shopify_start_backfill(since, task)
        return True

    def _shopify_start_backfill(self, since, task=None):
        """Queue the read of the first page of orders changed since ``since``."""
        self.ensure_one()
        # A person's read has its own job, not merged with the scheduled one
        # waiting to run: its task must see its pages end.
        start = f"start-task{task.id}" if task else "start"
        self._connector_delay(
            identity_key=f"shopify.backfill-{self.id}-{start}",
            description=f"{self.name}: read orders",
        )._shopify_backfill_orders(since, task_id=task.id if task else None)

    @api.model
    def _cron_shopify_backfill_orders(self):
        """The safety net of webhooks: orders changed since the last read are read
        again; what a webhook already brought is recognised and changes nothing."""
        for backend in self.search([("backend_type", "=", "shopify"), ("state", "=", "running")]):
            if backend._policy("orders_in").enabled:
                backend._shopify_start_backfill(backend._shopify_backfill_since())

    def _shopify_backfill_since(self):
        watermark = self._policy("orders_in").watermark
        if watermark:
            return watermark
        start = fields.Datetime.now() - timedelta(days=7)
        return start.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _shopify_backfill_orders(self, since, after=None, task_id=None):
        """Read one page of orders updated since ``since`` (the queue job).

        Each order is received as an ``orders/updated`` event keyed by its id
        and update time, and each of its refunds as a ``refunds/create`` event
        keyed by the refund's id, so a page read twice (after a retry) stores
        duplicates, not second orders or credit notes. The next page is its own job, so a
        throttled or failed page is retried alone. ``task_id``: the task that
        follows the read, whose events these are; the last page ends its listing.
        """
        self.ensure_one()
        client = self._shopify_client()
        with self._retry_on_remote_fault():
            data = client.execute(
                mapper_order.ORDERS_QUERY, {"after": after, "query": f"updated_at:>='{since}'"}
            )
            connection = data["orders"]
            for node in (edge["node"] for edge in connection["edges"]):
                self._shopify_read_whole_order(client, node)
        task = self.env["connector.task"].browse(task_id).exists()
        events = self.env["connector.event"]
        for node in (edge["node"] for edge in connection["edges"]):
            events |= self._shopify_receive_polled_order(node)
        if task:
            task._attach_events(events)
        page = connection["pageInfo"]
        if page["hasNextPage"]:
            self._connector_delay(
                identity_key=f"shopify.backfill-{self.id}-{page['endCursor']}",
                description=f"{self.name}: read orders (next page)",
            )._shopify_backfill_orders(since, page["endCursor"], task_id=task_id)
        else:
            if connection["edges"]:
                self._policy("orders_in").watermark = connection["edges"][-1]["node"]["updatedAt"]
            if task:
                task._planned()
        return f"{len(connection['edges'])} orders read"

    def _shopify_receive_polled_order(self, node):
        """Receive an order read from the API (read whole) as an
        ``orders/updated`` event keyed by its id and update time, and its
        refunds Odoo does not have: read twice, it is a duplicate. Returns
        the events received."""
        event = self.env["connector.event"]._receive(
            self,
            "orders/updated",
            mapper_order.order_from_graphql(node),
            f"poll:{node['id']}:{node['updatedAt']}",
            occurred_at=_parse_time(node["updatedAt"]),
            source="poll",
        )
        return event | self._shopify_receive_missed_refunds(node.get("refunds") or [])

    def _shopify_read_whole_order(self, client, node):
        """Complete an order read in a page of orders: its line items and
        shipping lines beyond the page's ``first``, its refunds beyond the
        list Shopify truncates; an order too big to read whole fails loudly."""
        variables = {"id": node["id"]}
        client.complete(
            node["lineItems"],
            mapper_order.ORDER_LINE_ITEMS_QUERY,
            variables,
            ["order", "lineItems"],
            f"line items on order {node['name']}",
        )
        client.complete(
            node["shippingLines"],
            mapper_order.ORDER_SHIPPING_LINES_QUERY,
            variables,
            ["order", "shippingLines"],
            f"shipping lines on order {node['name']}",
        )
        self._shopify_read_whole_fulfillments(client, node)
        if len(node.get("refunds") or []) >= mapper_order.ORDER_REFUNDS:
            node["refunds"] = client.execute(mapper_order.ORDER_REFUNDS_QUERY, variables)["order"][
                "refunds"
            ]
            if len(node["refunds"]) >= mapper_order.ORDER_REFUNDS_MAX:
                raise RemoteError(
                    self.env._(
                        "Order %(order)s has %(count)d refunds or more: more than Shopify lists "
                        "in one read.",
                        order=node["name"],
                        count=mapper_order.ORDER_REFUNDS_MAX,
                    )
                )
        return node

    def _shopify_read_whole_fulfillments(self, client, node):
        """The order's fulfillments, each with all its lines: what Shopify
        fulfilled is delivered in Odoo at import, so none may be left out."""
        if len(node.get("fulfillments") or []) >= mapper_order.ORDER_FULFILLMENTS:
            node["fulfillments"] = client.execute(
                mapper_order.ORDER_FULFILLMENTS_QUERY, {"id": node["id"]}
            )["order"]["fulfillments"]
            if len(node["fulfillments"]) >= mapper_order.ORDER_FULFILLMENTS_MAX:
                raise RemoteError(
                    self.env._(
                        "Order %(order)s has %(count)d fulfillments or more: more than "
                        "Shopify lists in one read.",
                        order=node["name"],
                        count=mapper_order.ORDER_FULFILLMENTS_MAX,
                    )
                )
        for fulfillment in node.get("fulfillments") or []:
            client.complete(
                fulfillment["fulfillmentLineItems"],
                mapper_order.ORDER_FULFILLMENT_LINES_QUERY,
                {"id": fulfillment["id"]},
                ["fulfillment", "fulfillmentLineItems"],
                f"lines on a fulfillment of order {node['name']}",
            )

    def _shopify_receive_missed_refunds(self, refunds):
        """Read and receive the refunds of an order that Odoo does not have: a
        refund whose webhook was missed comes in here, one already applied is
        not read again. Returns the events received."""
        Binding = self.env["shopify.refund.binding"]
        Event = self.env["connector.event"]
        events = Event
        for ref in refunds:
            if Binding._find(self, mapper_order.legacy_id(ref["id"])):
                continue
            client = self._shopify_client()
            with self._retry_on_remote_fault():
                node = client.execute(mapper_refund.REFUND_QUERY, {"id": ref["id"]})["refund"]
                for field in mapper_refund.REFUND_CONNECTIONS:
                    if node and node.get(field):
                        client.complete(
                            node[field],
                            mapper_refund.refund_page_query(field),
                            {"id": ref["id"]},
                            ["refund", field],
                            f"{field} on refund {ref['id']}",
                        )
            events |= Event._receive(
                self,
                "refunds/create",
                mapper_refund.refund_from_graphql(node),
                f"poll:{node['id']}",
                occurred_at=_parse_time(node["createdAt"]),
                source="poll",
            )
        return events

    def action_shopify_import_payouts(self):
        """Read the Shopify Payments payouts issued or changed lately, now."""
        for backend in self:
            backend._connector_delay(
                identity_key=f"shopify.payouts-{backend.id}-start",
                description=f"{backend.name}: read payouts",
            )._shopify_import_payouts(self.env["shopify.payout"]._read_since(backend))
        return True

    @api.model
    def _cron_shopify_import_payouts(self):
        """Payouts and their balance transactions, kept for the finance connector."""
        backends = self.search([("backend_type", "=", "shopify"), ("state", "=", "running")])
        for backend in backends:
            if backend._policy("payouts_in").enabled:
                backend.action_shopify_import_payouts()

    def _shopify_import_payouts(self, since, after=None):
        """Read one page of the payouts issued since ``since`` (the queue job).

        Payouts are created or updated by their id, so a page read twice
        changes nothing; each payout whose transactions are still to read
        gets its own job, and so does the next page: a throttled or failed
        request is retried alone.
        """
        self.ensure_one()
        with self._retry_on_remote_fault():
            data = self._shopify_client().execute(
                mapper_payout.PAYOUTS_QUERY,
                {
                    "first": mapper_payout.PAYOUTS_PAGE_SIZE,
                    "after": after,
                    "query": mapper_payout.payouts_search(since),
                },
                cost=mapper_payout.PAYOUTS_QUERY_COST,
            )
        account = data.get("shopifyPaymentsAccount")
        if not account:
            raise UserError(
                self.env._(
                    "The store %(backend)s has no Shopify Payments account: untick the flow "
                    "Payouts in in its sync policies.",
                    backend=self.display_name,
                )
            )
        connection = account["payouts"]
        nodes = [edge["node"] for edge in connection["edges"]]
        for payout in self.env["shopify.payout"]._import_page(self, nodes):
            self._connector_delay(
                identity_key=f"shopify.payout-transactions-{self.id}-{payout.external_id}-start",
                description=f"{self.name}: read the transactions of {payout.name}",
            )._shopify_import_payout_transactions(payout.external_id)
        page = connection["pageInfo"]
        if page["hasNextPage"]:
            self._connector_delay(
                identity_key=f"shopify.payouts-{self.id}-{page['endCursor']}",
                description=f"{self.name}: read payouts (next page)",
            )._shopify_import_payouts(since, page["endCursor"])
        elif nodes:
            policy = self._policy("payouts_in")
            newest = nodes[-1]["issuedAt"]
            if not policy.watermark or _parse_time(newest) > _parse_time(policy.watermark):
                policy.watermark = newest
        return f"{len(nodes)} payouts read"

    def _shopify_import_payout_transactions(self, payout_external_id, after=None):
        """Read one page of the balance transactions of a payout (the queue job)."""
        self.ensure_one()
        payout = self.env["shopify.payout"]._find(self, payout_external_id)
        if not payout:
            return "payout not imported: nothing to read"
        with self._retry_on_remote_fault():
            data = self._shopify_client().execute(
                mapper_payout.TRANSACTIONS_QUERY,
                {
                    "first": mapper_payout.TRANSACTIONS_PAGE_SIZE,
                    "after": after,
                    "query": mapper_payout.transactions_search(payout.shopify_payout_id),
                },
                cost=mapper_payout.TRANSACTIONS_QUERY_COST,
            )
        connection = data["shopifyPaymentsAccount"]["balanceTransactions"]
        page = connection["pageInfo"]
        payout._import_transactions_page(
            [edge["node"] for edge in connection["edges"]], last_page=not page["hasNextPage"]
        )
        if page["hasNextPage"]:
            self._connector_delay(
                identity_key=f"shopify.payout-transactions-{self.id}-{payout_external_id}-"
                f"{page['endCursor']}",
                description=f"{self.name}: read the transactions of {payout.name} (next page)",
            )._shopify_import_payout_transactions(payout_external_id, page["endCursor"])
        return f"{len(connection['edges'])} transactions read"

    def action_shopify_export_catalog(self):
        """Send every product the store sells whose data changed, now, followed
        by a task: its progress, then what was sent, unchanged or refused."""
        for backend in self:
            task = self.env["connector.task"]._start(
                backend, "catalog_export", self.env._("Export the catalog"), planning=True
            )
            # Its own job, not merged with a scheduled one waiting: its task
            # must see the listing end.
            backend._connector_delay(
                channel=backend._policy("catalog_out").channel,
                identity_key=f"shopify.catalog-{backend.id}-task{task.id}",
                description=f"{backend.name}: export catalog",
            )._shopify_export_catalog(task_id=task.id)
        return self._notify(
            self.env._("Catalog export started"),
            self.env._(
                "Changed products are sent in the background; the backend shows the progress."
            ),
        )

    def _shopify_export_catalog(self, task_id=None):
        """Queue the products whose Shopify data changed, then send them (the job)."""
        self.ensure_one()
        task = self.env["connector.task"].browse(task_id).exists()
        return self.env["shopify.catalog.sync"]._export_catalog(self, task=task)

    @api.model
    def _cron_shopify_export_catalog(self):
        self.env["shopify.catalog.sync"]._cron_export()

    def _shopify_send_catalog(self, items):
        return self.env["shopify.catalog.sync"]._send(self, items)

    @api.model
    def _delivered_elsewhere(self, picking):
        """A delivery of units Shopify fulfilled itself: its goods left (the
        merchant, another app); whoever ships for its warehouse must not."""
        return picking.shopify_fulfilled or super()._delivered_elsewhere(picking)

    def _shopify_send_fulfillments(self, items):
        return self.env["shopify.fulfillment.sync"]._send(self, items)

    def _shopify_send_inventory(self, items):
        return self.env["shopify.stock.sync"]._send(self, items)

    # --- webhooks -------------------------------------------------------------

    def _shopify_webhook_address(self):
        self.ensure_one()
        if self.shopify_webhook_url:
            return self.shopify_webhook_url.strip()
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url") or ""
        return base.rstrip("/") + WEBHOOK_ROUTE

    @api.depends("backend_type", "shopify_webhook_url")
    def _compute_webhook_address(self):
        return super()._compute_webhook_address()

    def _webhook_address(self):
        if self.backend_type != "shopify":
            return super()._webhook_address()
        return self._shopify_webhook_address()

    def action_shopify_register_webhooks(self):
        """Subscribe the store to every topic the connector processes, at our address."""
        self.ensure_one()
        note = self.env["shopify.webhook.subscriptions"]._subscribe(self)
        return self._notify(self.env._("Webhooks registered"), note)

    def action_shopify_verify_webhooks(self):
        """Compare the store's subscriptions with what the connector processes; change nothing."""
        self.ensure_one()
        note = self.env["shopify.webhook.subscriptions"]._check(self)
        return self._notify(self.env._("Webhooks checked"), note)

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
        order_id = payload.get("id") if isinstance(payload, dict) else None
        if not order_id or self.env["shopify.order.binding"]._find(self, order_id):
            return None  # a missing order id is for validation to name
        return (
            self.env._(
                "Order %(name)s is not imported yet.", name=payload.get("name") or payload["id"]
            ),
            order_key(payload),
        )

    def _shopify_import_refund(self, event, payload):
        return self.env["shopify.refund.importer"]._import(self, event, payload)

    def _shopify_refund_order_missing(self, event, payload):
        order_id = payload.get("order_id") if isinstance(payload, dict) else None
        if not order_id or self.env["shopify.order.binding"]._find(self, order_id):
            return None  # a missing order id is for validation to name
        return (
            self.env._(
                "Order %(order)s is not imported yet: this refund is applied as soon as it is.",
                order=order_id,
            ),
            refund_order_key(payload),
        )

    def _shopify_payment_journal(self, gateway):
        """The journal of a Shopify gateway: its mapping, else the first bank journal."""
        self.ensure_one()
        mapped = self.shopify_payment_method_ids.filtered(lambda m: m.gateway == gateway)[:1]
        journal = mapped.journal_id or self.env["account.journal"].search(
            [("company_id", "=", self.company_id.id), ("type", "=", "bank")], limit=1
        )
        if not journal:
            raise UserError(
                self.env._(
                    "No journal for the Shopify gateway %(gateway)r: map it to a bank journal "
                    "in the Mappings tab of %(backend)s, then requeue this event.",
                    gateway=gateway,
                    backend=self.display_name,
                )
            )
        return journal

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
        if moment.tzinfo:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError):  # not a time, or beyond the calendar in UTC
        return None
    return moment
