import re

from odoo import models

# How support staff name a Shopify order or variant: as the store shows it
# (#1001), by its id (4501, or its GraphQL id), or as a message stores it.
ORDER_KEY = re.compile(r"^order:(\d+)$")
GID = re.compile(r"^gid://shopify/(\w+)/(\d+)$")


class ConnectorBackend(models.Model):
    """What an order number or a SKU names on a Shopify store, for the
    correlation view of connector_base."""

    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    def _correlate(self, key):
        """An order (its number, its id, its sale order's name): its
        messages, the sale order, deliveries and credit notes it became, the
        fulfillments sent for it. A SKU (or a variant id): the product, its
        stock and catalog changes sent to the store."""
        scope = super()._correlate(key)
        if self.backend_type != "shopify":
            return scope
        # The system's rights for the look-ups, on indexed columns of this
        # store only: support staff may follow an order without sales rights.
        backend = self.sudo()
        external_ids, names = backend._shopify_order_ids(key)
        # The messages of an order that never became a sale order (its first
        # one failed) are found by its id alone.
        scope.add(sequence_keys=[f"order:{external_id}" for external_id in external_ids])
        for binding in backend._shopify_orders_named(key, external_ids, names):
            backend._shopify_correlate_order(binding, scope)
        for product in backend._shopify_products_named(key):
            backend._shopify_correlate_product(product, scope)
        return scope

    def _shopify_order_ids(self, key):
        """``(external ids, order names)`` that ``key`` may be."""
        external_ids, names = set(), {key}
        match = ORDER_KEY.match(key) or GID.match(key)
        if match and (match.re is ORDER_KEY or match.group(1) == "Order"):
            external_ids.add(match.groups()[-1])
        elif key.isdigit():
            external_ids.add(key)
            names.add(f"#{key}")
        return external_ids, names

    def _shopify_orders_named(self, key, external_ids, names):
        """The bound orders ``key`` names: by id, by number, by sale order."""
        sale_orders = self.env["sale.order"]
        if not (ORDER_KEY.match(key) or GID.match(key)):
            sale_orders = sale_orders.search(
                [("name", "=", key), ("company_id", "=", self.company_id.id)]
            )
        return self.env["shopify.order.binding"].search(
            [
                ("backend_id", "=", self.id),
                "|",
                "|",
                ("external_id", "in", sorted(external_ids)),
                ("shopify_name", "in", sorted(names)),
                ("odoo_id", "in", sale_orders.ids),
            ]
        )

    def _shopify_correlate_order(self, binding, scope):
        order = binding.odoo_id
        refunds = self.env["shopify.refund.binding"].search(
            [("sale_order_id", "=", order.id), ("backend_id", "=", self.id)]
        )
        scope.add(
            self.env._(
                "Shopify order %(name)s (id %(id)s), sale order %(order)s",
                name=binding.shopify_name,
                id=binding.external_id,
                order=order.name,
            ),
            sequence_keys=[f"order:{binding.external_id}"],
            coalescing_keys=[f"picking:{picking.id}" for picking in order.picking_ids],
            records=[order, order.picking_ids, order.invoice_ids, refunds.odoo_id],
        )

    def _shopify_products_named(self, key):
        match = GID.match(key)
        if match and match.group(1) != "ProductVariant":
            return self.env["product.product"]
        variant_id = match.group(2) if match else key
        products = self.env["product.product"].browse()
        if not match:
            products = self.env["product.product"].search(
                [
                    ("default_code", "=", key),
                    ("company_id", "in", (self.company_id.id, False)),
                ]
            )
        if variant_id.isdigit():
            products |= (
                self.env["shopify.product.binding"]
                .search([("backend_id", "=", self.id), ("external_id", "=", variant_id)])
                .odoo_id
            )
        return products

    def _shopify_correlate_product(self, product, scope):
        bindings = self.env["shopify.product.binding"].search(
            [("backend_id", "=", self.id), ("odoo_id", "=", product.id)]
        )
        locations = self.with_context(active_test=False).shopify_location_ids
        scope.add(
            self.env._(
                "SKU %(sku)s, %(product)s (Shopify variant %(variant)s)",
                sku=product.default_code or "-",
                product=product.display_name,
                variant=", ".join(bindings.mapped("external_id")) or self.env._("not bound"),
            ),
            # Its stock at each location of the store, and its product's catalog.
            coalescing_keys=[
                f"{binding.inventory_item_id}@{location.external_id}"
                for binding in bindings.filtered("inventory_item_id")
                for location in locations
            ]
            + [f"template:{product.product_tmpl_id.id}"],
            records=[product],
        )
