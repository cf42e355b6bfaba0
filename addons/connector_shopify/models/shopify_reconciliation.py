import hashlib

from odoo import api, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.reconciliation import Comparison, Reconciliation

from ..components import reconcile
from ..components.mapper_order import ORDERS_QUERY, legacy_id


class ShopifyReconciliation(models.AbstractModel):
    """Shopify compared with Odoo: stock per location, orders per day.

    The comparisons read Shopify paged and Odoo as its flows see it (the
    stock flow's available quantity, the order bindings); the fixes go
    through those same flows (the outbound stock queue, the order import).
    """

    _name = "shopify.reconciliation"
    _description = "Shopify Reconciliation"

    # --- stock ---------------------------------------------------------------------

    @api.model
    def _stock_locations(self, backend):
        locations = backend.shopify_location_ids.filtered(
            lambda loc: loc.active and loc.location_id
        )
        if not locations:
            raise UserError(
                self.env._(
                    "No Shopify location of %(backend)s is mapped to an Odoo location: import "
                    "the locations and map them (Mappings tab) before reconciling stock.",
                    backend=backend.display_name,
                )
            )
        return locations

    @api.model
    def _compare_stock(self, backend, run):
        """Shopify's available quantity of each bound item at each mapped
        location against what the stock flow would push (on hand - reserved -
        safety stock)."""
        Sync = self.env["shopify.stock.sync"]
        locations = self._stock_locations(backend)
        bindings = self.env["shopify.product.binding"].search(
            [("backend_id", "=", backend.id), ("inventory_item_id", "!=", False)]
        )
        client = backend._shopify_client()
        remote = {}
        for location in locations:
            nodes = client.paginate(
                reconcile.LOCATION_LEVELS_QUERY,
                {"id": location.external_id},
                ["location", "inventoryLevels"],
            )
            try:
                levels = reconcile.available_by_item(nodes)
            except TypeError as exc:  # location: null
                raise UserError(
                    self.env._(
                        "Shopify has no location %(location)s (%(id)s) any more: import the "
                        "locations of %(backend)s again.",
                        location=location.name,
                        id=location.external_id,
                        backend=backend.display_name,
                    )
                ) from exc
            remote.update({(item, location.external_id): qty for item, qty in levels.items()})
        for location in locations:
            # One computation per location for all products; _plans then
            # reads Odoo's quantities from the cache.
            bindings.odoo_id.with_context(location=location.location_id.id).mapped("free_qty")
        plans = Sync._plans([(binding, location) for location in locations for binding in bindings])
        expected = [
            {
                "item": binding.inventory_item_id,
                "location": location.external_id,
                "sku": binding.odoo_id.default_code,
                "location_name": location.name,
                "quantity": plans[binding.id, location.id].quantity,
                "fix_data": {"binding_id": binding.id, "location_id": location.id},
            }
            for location in locations
            for binding in bindings
        ]
        pending = self.env["connector.outbound"].search(
            [
                ("backend_id", "=", backend.id),
                ("topic", "=", "inventory.set"),
                ("state", "in", ("pending", "sending")),
            ]
        )
        pending_pairs = {tuple(item.coalescing_key.split("@", 1)) for item in pending}
        return Comparison(
            compared=len(expected),
            differences=reconcile.compare_stock(expected, remote, pending_pairs),
        )

    @api.model
    def _push_stock(self, backend, mismatches):
        """Push Odoo's quantity of each mismatch through the outbound stock
        queue, as is: nothing held back, no comparison with Odoo's last set."""
        if not backend._policy("stock_out").enabled:
            raise UserError(
                self.env._(
                    "The flow Stock out of %(backend)s is off: turn it on in its sync "
                    "policies, then push Odoo's quantity.",
                    backend=backend.display_name,
                )
            )
        Binding = self.env["shopify.product.binding"]
        Location = self.env["shopify.location"]
        refused = {}
        for mismatch in mismatches:
            data = mismatch.fix_data or {}
            binding = Binding.browse(data.get("binding_id")).exists()
            location = Location.browse(data.get("location_id")).exists()
            if not (binding and binding.inventory_item_id and location.location_id):
                refused[mismatch.id] = self.env._(
                    "The product or the location is no longer mapped to Shopify."
                )
                continue
            self.env["shopify.stock.sync"]._forget(binding, location)
            self.env["shopify.stock.sync"]._queue(binding, location)
        return refused

    # --- orders ----------------------------------------------------------------------

    @api.model
    def _compare_orders(self, backend, run):
        """Shopify's orders created in the run's day against the orders bound in Odoo."""
        orders = list(
            backend._shopify_client().paginate(
                reconcile.ORDERS_OF_DAY_QUERY,
                {"query": reconcile.orders_created_search(run.window_start, run.window_end)},
                ["orders"],
            )
        )
        numbers = [str(legacy_id(order["id"])) for order in orders]
        imported = set(
            self.env["shopify.order.binding"]
            .search([("backend_id", "=", backend.id), ("external_id", "in", numbers)])
            .mapped("external_id")
        )
        missing = [number for number in numbers if number not in imported]
        failed = {}
        if missing:
            for event in self.env["connector.event"].search(
                [
                    ("backend_id", "=", backend.id),
                    ("sequence_key", "in", [f"order:{number}" for number in missing]),
                    ("state", "in", ("failed", "waiting")),
                ],
                order="id",
            ):
                failed[event.sequence_key.split(":", 1)[1]] = self.env._(
                    "its event is %(state)s (%(reason)s)",
                    state=event.state,
                    reason=(event.error_message or "").splitlines()[0][:200]
                    if event.error_message
                    else "-",
                )
        return Comparison(
            compared=len(orders),
            differences=reconcile.compare_orders(orders, imported, failed),
        )

    @api.model
    def _import_orders(self, backend, mismatches):
        """Import the missing orders: read from Shopify by a job and received
        as the backfill receives them (an event each), so the order import
        makes the sale orders, exactly once."""
        refused = {m.id: self.env._("The Shopify order is unknown.") for m in mismatches}
        order_ids = []
        for mismatch in mismatches:
            order_id = (mismatch.fix_data or {}).get("order_id")
            if order_id:
                order_ids.append(order_id)
                del refused[mismatch.id]
        if order_ids:
            digest = hashlib.sha1(",".join(sorted(order_ids)).encode()).hexdigest()
            # As the connector's own jobs: as its user, with the framework's rights.
            backend.with_user(backend._connector_user()).sudo()._connector_delay(
                identity_key=f"shopify.import-orders-{backend.id}-{digest}",
                description=f"{backend.name}: import {len(order_ids)} missing orders",
            )._shopify_import_orders_by_id(order_ids)
        return refused


class ConnectorBackend(models.Model):
    """The reconciliations a Shopify store declares, and their methods."""

    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    def _connector_reconciliations(self):
        if self.backend_type != "shopify":
            return super()._connector_reconciliations()
        return {
            "stock": Reconciliation(
                kind="stock",
                label="Stock per location",
                compare="_shopify_compare_stock",
                fix="_shopify_push_stock_mismatches",
                fix_label="Push Odoo's quantity",
                flow="stock_out",
                description="Shopify's available quantity of each item at each mapped location "
                "against on hand - reserved - safety stock in Odoo.",
            ),
            "orders": Reconciliation(
                kind="orders",
                label="Orders of a day",
                compare="_shopify_compare_orders",
                fix="_shopify_import_missing_orders",
                fix_label="Import the order",
                period="day",
                flow="orders_in",
                description="Shopify's orders created in a day (UTC) against the sale orders "
                "imported from the store.",
            ),
        }

    def _shopify_compare_stock(self, run):
        return self.env["shopify.reconciliation"]._compare_stock(self, run)

    def _shopify_push_stock_mismatches(self, mismatches):
        return self.env["shopify.reconciliation"]._push_stock(self, mismatches)

    def _shopify_compare_orders(self, run):
        return self.env["shopify.reconciliation"]._compare_orders(self, run)

    def _shopify_import_missing_orders(self, mismatches):
        return self.env["shopify.reconciliation"]._import_orders(self, mismatches)

    def _shopify_import_orders_by_id(self, order_ids):
        """Read orders by their id and receive them as the backfill does (the job)."""
        self.ensure_one()
        client = self._shopify_client()
        nodes = []
        with self._retry_on_remote_fault():
            for order_id in order_ids:
                data = client.execute(
                    ORDERS_QUERY, {"after": None, "query": f"id:{legacy_id(order_id)}"}
                )
                for edge in data["orders"]["edges"]:
                    nodes.append(self._shopify_read_whole_order(client, edge["node"]))
        for node in nodes:
            self._shopify_receive_polled_order(node)
        return f"{len(nodes)} of {len(order_ids)} orders read"
