"""The 3PL's stock counts compared with Odoo's, through the reconciliation
framework of connector_base: the 3PL's shelves are the physical truth, so the
fix is an inventory adjustment in Odoo, never a write to the 3PL."""

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import float_compare, float_is_zero, split_every

from odoo.addons.connector_base.components.reconciliation import (
    Comparison,
    Difference,
    Reconciliation,
)

from ..components.shipment import shipped_quantities

STOCK_FLOW = "stock_snapshot"
STOCK_KIND = "stock"
# Inventory items a page (the 3PL's most): a snapshot of a few thousand SKUs
# costs a few calls of the 150 a minute the 3PL allows.
INVENTORY_PAGE_SIZE = 250
# Deliveries read a call when looking for the ones the 3PL shipped and Odoo has
# not validated yet (a few in flight at a time).
REFERENCES_PER_CALL = 50
MANAGER_GROUP = "connector_base.group_connector_manager"


def _shown(quantity):
    return f"{quantity:g}"


class ConnectorBackend(models.Model):
    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    # --- declarations ---------------------------------------------------------

    def _connector_flows(self):
        flows = super()._connector_flows()
        if self.backend_type != "3pl":
            return flows
        # Read on its own schedule (the backend's policy), not with the
        # framework's nightly reconciliations only.
        return [
            *flows,
            {
                "code": STOCK_FLOW,
                "name": "Stock snapshots",
                "mode": "scheduled",
                "interval_minutes": 60,
                "sla_lag_minutes": 240,
            },
        ]

    def _connector_reconciliations(self):
        declarations = super()._connector_reconciliations()
        if self.backend_type != "3pl":
            return declarations
        return {
            **declarations,
            STOCK_KIND: Reconciliation(
                kind=STOCK_KIND,
                label="3PL stock on hand",
                compare="_tpl_compare_stock",
                fix="_tpl_adjust_stock",
                fix_label="Adjust Odoo's inventory to the 3PL's count",
                flow=STOCK_FLOW,
                description="The 3PL's on-hand quantity of each SKU against Odoo's on hand "
                "in the warehouse it operates (its stock location and the locations "
                "inside), units the 3PL shipped for a delivery not validated yet counted "
                "back; the fix is an inventory adjustment in Odoo.",
            ),
        }

    # --- schedule ----------------------------------------------------------------

    @api.model
    def _cron_tpl_stock_snapshots(self):
        """Queue the stock comparison of every running 3PL whose flow is due."""
        for backend in self.search([("backend_type", "=", "3pl"), ("state", "=", "running")]):
            policy = backend._policy(STOCK_FLOW)
            if backend.tpl_warehouse_id and policy.enabled and policy._take_turn():
                backend._reconcile_later(STOCK_KIND)

    # --- both sides -----------------------------------------------------------------

    def _tpl_stock_location(self):
        self.ensure_one()
        if not self.tpl_warehouse_id:
            raise UserError(
                self.env._(
                    "%(backend)s operates no warehouse: choose it on the backend, then "
                    "compare the stock again.",
                    backend=self.display_name,
                )
            )
        return self.tpl_warehouse_id.lot_stock_id

    def _tpl_odoo_on_hand(self, products):
        """``{product: on hand}`` in the warehouse's stock location and the
        locations inside it (the 3PL counts its whole building)."""
        location = self._tpl_stock_location()
        groups = self.env["stock.quant"]._read_group(
            [("product_id", "in", products.ids), ("location_id", "child_of", location.id)],
            ["product_id"],
            ["quantity:sum"],
        )
        return dict(groups)

    def _tpl_shipped_not_validated(self):
        """``{sku: units}`` the 3PL shipped for deliveries Odoo has not
        validated yet (the shipment's webhook on its way or in the queue):
        they left the 3PL's on hand and are still in Odoo's, reserved, until
        the delivery is validated. Read from the 3PL's orders of the released
        deliveries not done in Odoo."""
        self.ensure_one()
        references = (
            self.env["tpl.delivery.binding"]
            .search(
                [
                    ("backend_id", "=", self.id),
                    ("release_state", "=", "released"),
                    ("odoo_id.state", "not in", ("done", "cancel")),
                ]
            )
            .mapped("reference")
        )
        units = {}
        client = self._tpl_client()
        for chunk in split_every(REFERENCES_PER_CALL, references, list):
            for order in client.orders_by_reference(chunk) or ():
                if order.get("reference_id") not in chunk:
                    continue
                for shipment in order.get("shipments") or ():
                    for sku, quantity in shipped_quantities(shipment).items():
                        units[sku] = units.get(sku, 0) + quantity
        return units

    def _tpl_compare_stock(self, run):
        """The 3PL's on hand per SKU (every page) against Odoo's: a difference
        for each SKU whose counts differ, each SKU the 3PL holds that no Odoo
        product has as internal reference, and each product Odoo has in the
        warehouse that the 3PL does not list.

        Like with like: the 3PL's on hand counts the units picked for an
        order until they ship, Odoo's the units reserved for a delivery until
        it is validated. Units the 3PL shipped for a delivery Odoo has not
        validated yet are counted back on the 3PL's side: Odoo takes them off
        when it applies the shipment, no difference meanwhile."""
        self.ensure_one()
        location = self._tpl_stock_location()
        remote = {}
        for item in self._tpl_client().inventory(limit=INVENTORY_PAGE_SIZE):
            sku = str(item.get("sku") or "").strip()
            if not sku:
                continue
            quantity = item.get("total_onhand_quantity") or 0
            if isinstance(quantity, bool) or not isinstance(quantity, (int, float)):
                raise UserError(
                    self.env._(
                        "The 3PL lists %(sku)s with an on hand of %(quantity)r, not a number: "
                        "ask the 3PL to correct its inventory item, then compare again.",
                        sku=sku,
                        quantity=quantity,
                    )
                )
            remote[sku] = remote.get(sku, 0) + quantity
        for sku, quantity in self._tpl_shipped_not_validated().items():
            remote[sku] = remote.get(sku, 0) + quantity
        Product = self.env["product.product"].with_context(active_test=False)
        by_sku = {}
        for product in Product.search(
            [
                ("default_code", "in", list(remote)),
                ("is_storable", "=", True),
                ("company_id", "in", [False, location.company_id.id]),
            ],
            order="id",
        ):
            by_sku.setdefault(product.default_code, product)  # a duplicate reference: the first
        stocked = self.env["stock.quant"]._read_group(
            [("location_id", "child_of", location.id), ("product_id.is_storable", "=", True)],
            ["product_id"],
            ["quantity:sum"],
        )
        for product, quantity in stocked:
            if product.default_code not in remote and not float_is_zero(
                quantity, precision_rounding=product.uom_id.rounding
            ):
                by_sku.setdefault(product.default_code or f"[{product.id}]", product)
        on_hand = self._tpl_odoo_on_hand(Product.browse([p.id for p in by_sku.values()]))
        differences = []
        for sku in sorted(set(remote) | set(by_sku)):
            product = by_sku.get(sku)
            key = f"{sku} @ {location.complete_name}"
            if not product:
                if remote[sku]:
                    differences.append(
                        Difference(
                            key=key,
                            what=self.env._(
                                "Unknown to Odoo: no storable product has the internal "
                                "reference %(sku)s",
                                sku=sku,
                            ),
                            odoo_value=None,
                            remote_value=_shown(remote[sku]),
                            fix_data={"sku": sku, "tpl_on_hand": remote[sku]},
                        )
                    )
                continue
            odoo = on_hand.get(product, 0.0)
            tpl = remote.get(sku, 0)
            if not float_compare(odoo, tpl, precision_rounding=product.uom_id.rounding):
                continue
            differences.append(
                Difference(
                    key=key,
                    what=self.env._(
                        "%(product)s: 3PL on hand %(tpl)s, Odoo on hand %(odoo)s",
                        product=product.display_name,
                        tpl=_shown(tpl) if sku in remote else self.env._("none (not listed)"),
                        odoo=_shown(odoo),
                    ),
                    odoo_value=_shown(odoo),
                    remote_value=_shown(tpl) if sku in remote else None,
                    fix_data={
                        "sku": sku,
                        "product_id": product.id,
                        "location_id": location.id,
                        "tpl_on_hand": tpl,
                        "odoo_on_hand": odoo,
                    },
                )
            )
        return Comparison(compared=len(set(remote) | set(by_sku)), differences=differences)

    # --- the fix ----------------------------------------------------------------------

    def _tpl_adjust_stock(self, mismatches):
        """Set Odoo's on hand to the 3PL's count by Odoo's own inventory
        adjustment (quants' counted quantity applied: a stock move to or from
        inventory loss, in the product's history), in the name of the
        connector manager who asked; the mismatch's chatter says from what to
        what. A mismatch whose Odoo side moved since the comparison is left
        open: its figures are stale, the adjustment would be wrong."""
        if not self.env.user.has_group(MANAGER_GROUP):
            raise AccessError(
                self.env._(
                    "Only connector managers may adjust the inventory to the 3PL's count: "
                    "ask one, or accept the mismatch."
                )
            )
        refused = {}
        for mismatch in mismatches:
            data = mismatch.fix_data or {}
            product = self.env["product.product"].browse(data.get("product_id")).exists()
            location = self.env["stock.location"].browse(data.get("location_id")).exists()
            if not (product and location):
                refused[mismatch.id] = self.env._(
                    "No Odoo product has this SKU: create it with the SKU as internal "
                    "reference, then compare the stock again."
                )
                continue
            if product.tracking != "none":
                refused[mismatch.id] = self.env._(
                    "%(product)s is tracked by lots or serial numbers: count it in "
                    "Inventory > Physical Inventory, then compare the stock again.",
                    product=product.display_name,
                )
                continue
            before = self._tpl_odoo_on_hand(product).get(product, 0.0)
            rounding = product.uom_id.rounding
            if float_compare(before, data["odoo_on_hand"], precision_rounding=rounding):
                refused[mismatch.id] = self.env._(
                    "Odoo's on hand changed since the comparison (%(then)s, now %(now)s): "
                    "compare the stock again, then adjust.",
                    then=_shown(data["odoo_on_hand"]),
                    now=_shown(before),
                )
                continue
            target = data["tpl_on_hand"]
            self._tpl_apply_count(product, location, target - before)
            after = self._tpl_odoo_on_hand(product).get(product, 0.0)
            mismatch.message_post(
                body=self.env._(
                    "Inventory adjusted to the 3PL's count by %(user)s on %(when)s: "
                    "%(product)s in %(location)s from %(before)s to %(after)s "
                    "(stock moves %(reference)s).",
                    user=self.env.user.name,
                    when=fields.Datetime.to_string(fields.Datetime.now()),
                    product=product.display_name,
                    location=location.complete_name,
                    before=_shown(before),
                    after=_shown(after),
                    reference=self._tpl_adjustment_name(),
                )
            )
        return refused

    def _tpl_adjustment_name(self):
        return self.env._(
            "3PL count: %(backend)s (%(user)s)", backend=self.name, user=self.env.user.name
        )

    def _tpl_apply_count(self, product, location, delta):
        """Apply ``delta`` units as an inventory adjustment: added to the stock
        location itself, taken from it first then from the locations inside."""
        Quant = self.env["stock.quant"].with_context(inventory_mode=True)
        counted = Quant
        if delta > 0:
            # Inventory mode: the quant without lot or package of the location,
            # made if there is none.
            quant = Quant.create(
                {"product_id": product.id, "location_id": location.id, "inventory_quantity": 0}
            )
            quant.inventory_quantity = quant.quantity + delta
            counted |= quant
        else:
            left = -delta
            quants = Quant.search(
                [
                    ("product_id", "=", product.id),
                    ("location_id", "child_of", location.id),
                    ("quantity", ">", 0),
                ]
            ).sorted(lambda q: (q.location_id != location, q.id))
            for quant in quants:
                if left <= 0:
                    break
                taken = min(quant.quantity, left)
                quant.inventory_quantity = quant.quantity - taken
                counted |= quant
                left -= taken
        # Named after the backend in the stock moves' history.
        counted.with_context(inventory_name=self._tpl_adjustment_name())._apply_inventory()
