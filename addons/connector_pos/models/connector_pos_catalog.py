import logging

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.topics import OutboundTopic

from ..components import catalog
from ..components.client import PosApiClient

_logger = logging.getLogger(__name__)

CATALOG_TOPIC = "product.upsert"
URGENT_TOPIC = "product.price_urgent"
AVAILABILITY_TOPIC = "availability.set"


def change_key(store, product):
    """The coalescing key of a product at a store: its changes merge while pending."""
    return f"{store.id}:{product.id}"


class ConnectorPosCatalogSync(models.AbstractModel):
    """Products, barcodes and prices out to the stores' POS.

    Per store, every product sold in Point of Sale with an internal
    reference (the POS's SKU) goes as one row: SKU, barcode, name, price of
    the store's pricelist (else its Point of Sale's) tax included, and the
    POS tax code of its tax. Change detection is by hash: the row last sent
    to a store is hashed on the store's product binding; a run queues only
    the rows whose hash differs, whatever changed them (a product field, a
    pricelist rule, a tax, a promotion that started), and the sender checks
    the hash again when it sends. A row's content is read when it is sent,
    so a change queued twice sends the latest.
    """

    _name = "connector.pos.catalog.sync"
    _description = "POS Catalog Sync"

    # --- what each store sells, at which price ------------------------------------

    @api.model
    def _backends(self):
        return (
            self.env["connector.backend"]
            .sudo()
            .search(
                [
                    ("backend_type", "=", "pos"),
                    # The vendor's API of push-mode fleets; a legacy POS
                    # polled in pull mode only gives its tickets.
                    ("pos_mode", "=", "push"),
                    ("state", "in", ("running", "circuit_open")),
                ]
            )
        )

    @api.model
    def _pricelist(self, store):
        return store.pricelist_id or store.config_id.pricelist_id

    @api.model
    def _products(self, store, within=None):
        """What the store's POS sells: products available in Point of Sale,
        for sale, with an internal reference, of the store's company."""
        domain = [
            ("available_in_pos", "=", True),
            ("sale_ok", "=", True),
            ("default_code", "!=", False),
            ("company_id", "in", (False, store.company_id.id)),
        ]
        if within is not None:
            domain.append(("id", "in", within.ids))
        return self.env["product.product"].sudo().with_company(store.company_id).search(domain)

    @api.model
    def _describe(self, store, products):
        """``{product id: (row, problem)}``: the row the store's POS gets, or
        why it cannot get one (a sentence support staff can act on)."""
        store = store.sudo()
        company = store.company_id
        pricelist = self._pricelist(store)
        currency = pricelist.currency_id or company.currency_id
        products = products.with_company(company)
        prices = pricelist._get_products_price(products, 1.0, currency=currency)
        position = store.config_id.default_fiscal_position_id
        codes = {}
        for mapping in store.backend_id.pos_tax_ids:
            codes.setdefault(mapping.tax_id.id, mapping.code)
        described = {}
        for product in products:
            taxes = product.taxes_id._filter_taxes_by_company(company)
            if position:
                taxes = position.map_tax(taxes)
            if len(taxes) != 1:
                described[product.id] = (
                    None,
                    self.env._(
                        "%(product)s has %(count)s sale taxes; the POS takes one tax code "
                        "per product: give it one tax mapped to a POS tax code.",
                        product=product.display_name,
                        count=len(taxes),
                    ),
                )
                continue
            if taxes.id not in codes:
                described[product.id] = (
                    None,
                    self.env._(
                        "The tax %(tax)s of %(product)s has no POS tax code: map it in the "
                        "fleet's tax codes (Tenders and taxes).",
                        tax=taxes.display_name,
                        product=product.display_name,
                    ),
                )
                continue
            total = taxes.compute_all(prices[product.id], currency, 1.0, product=product)
            described[product.id] = (
                catalog.product_row(
                    product.default_code,
                    product.barcode,
                    product.display_name,
                    currency.round(total["total_included"]),
                    codes[taxes.id],
                    decimals=currency.decimal_places,
                ),
                None,
            )
        return described

    @api.model
    def _bindings(self, store, products=None):
        domain = [("store_id", "=", store.id)]
        if products is not None:
            domain.append(("odoo_id", "in", products.ids))
        bindings = self.env["connector.pos.product"].sudo().search(domain)
        return {binding.odoo_id.id: binding for binding in bindings}

    # --- the scheduled run -------------------------------------------------------------

    @api.model
    def _export_catalog(self, backend, task=None):
        """Queue, per store, the products whose row changed since it was sent,
        then send them: the flow's scheduled run.

        A row the POS (or Odoo) refused, unchanged since, is not queued again
        every run: support requeues it once its cause is fixed.
        """
        if backend.pos_mode != "push":
            raise UserError(
                self.env._(
                    "%(backend)s polls a legacy POS: its catalog is not sent from Odoo.",
                    backend=backend.display_name,
                )
            )
        if task:
            backend = backend.with_context(connector_task_id=task.id)
        changes, unchanged, held = [], 0, 0
        for store in backend.pos_store_ids:
            products = self._products(store)
            described = self._describe(store, products)
            bindings = self._bindings(store)
            refused = self._refused_hashes(backend, store)
            for product in products:
                row, problem = described[product.id]
                digest = catalog.row_hash(row) if row else catalog.row_hash({"problem": problem})
                binding = bindings.get(product.id)
                if binding and binding._is_unchanged(digest):
                    unchanged += 1
                    continue
                key = change_key(store, product)
                if refused.get(key) == digest:
                    held += 1
                    continue
                changes.append((key, {"store_id": store.id, "product_id": product.id}, product))
        if changes:
            backend._send_later_many(CATALOG_TOPIC, changes)
        backend._flush_pending(CATALOG_TOPIC)
        if task:
            task._planned(skipped=unchanged + held)
        return f"{len(changes)} products to send, {unchanged} unchanged, {held} refused before"

    @api.model
    def _refused_hashes(self, backend, store):
        """``{key: hash}`` of the store's products whose last send was refused,
        with the hash of the row that was refused."""
        Outbound = self.env["connector.outbound"]
        domain = [
            ("backend_id", "=", backend.id),
            ("topic", "in", (CATALOG_TOPIC, URGENT_TOPIC)),
            ("coalescing_key", "=like", f"{store.id}:%"),
        ]
        failed = Outbound.search([*domain, ("state", "=", "failed")], order="id")
        if not failed:
            return {}
        sent = dict(
            Outbound._read_group(
                [
                    *domain,
                    ("state", "=", "sent"),
                    ("coalescing_key", "in", failed.mapped("coalescing_key")),
                ],
                ["coalescing_key"],
                ["id:max"],
            )
        )
        return {
            item.coalescing_key: self._tried_hash(item.payload)
            for item in failed
            if item.id > sent.get(item.coalescing_key, 0)
        }

    @staticmethod
    def _tried_hash(payload):
        """The hash of what a change tried to send (its row, or why it had none)."""
        payload = payload or {}
        if payload.get("row"):
            return catalog.row_hash(payload["row"])
        return catalog.row_hash({"problem": payload.get("problem")})

    @api.model
    def _cron_export(self):
        """Run each fleet's catalog export when its policy's interval has passed."""
        now = fields.Datetime.now()
        for backend in self._backends():
            policy = backend._policy("catalog_out")
            if not policy.enabled or not policy._take_turn(now):
                continue
            backend._connector_delay(
                channel=policy.channel,
                identity_key=f"connector.pos.catalog-{backend.id}",
                description=f"{backend.name}: export the catalog to the stores",
            )._pos_export_catalog()

    # --- urgent prices --------------------------------------------------------------------

    @api.model
    def _urgent_targets(self, items):
        """``{store: products}`` whose price these pricelist rules give: the stores
        whose pricelist is the rules', their products the rules apply to."""
        targets = {}
        for backend in self._backends():
            if not backend._policy("prices_urgent").enabled:
                continue
            for store in backend.pos_store_ids:
                rules = items.filtered(lambda i, s=store: i.pricelist_id == self._pricelist(s))
                if not rules:
                    continue
                products = self._products(store, within=self._rule_products(rules))
                if products:
                    targets[store] = targets.get(store, products) | products
        return targets

    @api.model
    def _rule_products(self, rules):
        """The products the rules apply to; None: all of them (a global rule)."""
        Product = self.env["product.product"].sudo().with_context(active_test=False)
        domains = []
        for rule in rules.sudo():
            if rule.applied_on == "0_product_variant":
                domains.append([("id", "=", rule.product_id.id)])
            elif rule.applied_on == "1_product":
                domains.append([("product_tmpl_id", "=", rule.product_tmpl_id.id)])
            elif rule.applied_on == "2_product_category":
                domains.append([("categ_id", "child_of", rule.categ_id.id)])
            else:
                return None
        products = Product
        for domain in domains:
            products |= Product.search(domain)
        return products

    @api.model
    def _queue_urgent(self, targets):
        """Queue the products of ``{store: products}`` on the urgent flow: sent
        after its short window, by a job of their own, whatever the catalog's
        schedule. In the caller's transaction: sent once the change is committed."""
        for store, products in targets.items():
            if not store.exists():
                continue
            store.backend_id.sudo()._send_later_here(
                URGENT_TOPIC,
                [
                    (
                        change_key(store, product),
                        {"store_id": store.id, "product_id": product.id},
                        product,
                    )
                    for product in products.exists()
                ],
            )

    # --- sending ---------------------------------------------------------------------------

    @api.model
    def _send(self, backend, items):
        """Send the products of ``items``, one call per store and 500 rows;
        ``{item id: reason}`` for the rows refused.

        A row unchanged since it was sent is not sent. The vendor applies a
        batch whole or not at all and names each row it refuses: those are
        recorded with its reason, the others sent again without them.
        """
        client = backend._pos_client()
        Store = self.env["connector.pos.store"].sudo()
        Product = self.env["product.product"].sudo()
        refused = {}
        by_store = {}
        for item in items:
            store = Store.browse(item.payload["store_id"]).exists()
            product = Product.browse(item.payload["product_id"]).exists()
            if not (store and product and store.active):
                refused[item.id] = self.env._("The store or the product no longer exists.")
                continue
            by_store.setdefault(store, []).append((item, product))
        for store, entries in by_store.items():
            products = Product.browse([product.id for _item, product in entries])
            # Only what the store still sells: a product taken out of Point of
            # Sale since it was queued is not sent.
            described = self._describe(store, self._products(store, within=products))
            bindings = self._bindings(store, products)
            rows = []
            for item, product in entries:
                row, problem = described.get(product.id) or (None, None)
                if row is None:
                    problem = problem or self.env._(
                        "%(product)s is no longer sold in Point of Sale or has no internal "
                        "reference.",
                        product=product.display_name,
                    )
                    refused[item.id] = problem
                    item.payload = {**item.payload, "problem": problem}
                    continue
                binding = bindings.get(product.id)
                if binding and binding._is_unchanged(catalog.row_hash(row)):
                    item.remote_result = self.env._("unchanged")
                    continue
                # What is sent, shown on the change (and what a refusal refused).
                item.payload = {**item.payload, "row": row}
                rows.append((item, product, row))
            refused.update(self._upsert(client, store, rows, bindings))
        return refused

    @api.model
    def _upsert(self, client, store, rows, bindings):
        """Send ``rows`` (``(item, product, row)``) to the store, 500 per call;
        ``{item id: reason}`` of those refused."""
        refused = {}
        for start in range(0, len(rows), catalog.PRODUCTS_PER_CALL):
            pending = rows[start : start + catalog.PRODUCTS_PER_CALL]
            while pending:
                body = [row for _item, _product, row in pending]
                key = catalog.idempotency_key([item.id for item, _p, _r in pending], body)
                answer, errors = client.upsert_products(store.code, body, key)
                if errors is None:
                    results = {r.get("sku"): r.get("result") for r in answer.get("products", [])}
                    self._record_sent(store, pending, bindings)
                    for item, _product, row in pending:
                        item.remote_result = f"{row['price']} ({results.get(row['sku'], 'sent')})"
                    break
                blamed = catalog.blamed(errors, "products")
                if not blamed or any(index >= len(pending) for index in blamed):
                    message = catalog.errors_message(errors)
                    for item, _product, _row in pending:
                        refused[item.id] = message
                    break
                for index, message in blamed.items():
                    item, _product, row = pending[index]
                    refused[item.id] = self.env._(
                        "%(store)s refused %(sku)s: %(reason)s",
                        store=store.code,
                        sku=row["sku"],
                        reason=message,
                    )
                pending = [entry for index, entry in enumerate(pending) if index not in blamed]
        return refused

    @api.model
    def _record_sent(self, store, sent, bindings):
        """Record what the store's POS now has (``sent``: ``(item, product,
        row)``); a product new to it, or under a new SKU, gets its available
        quantity too (the POS sells nothing it has no quantity of)."""
        now = fields.Datetime.now()
        fresh = self.env["connector.pos.product"].sudo()
        to_create = []
        for _item, product, row in sent:
            values = {
                "external_id": row["sku"],
                "payload_hash": catalog.row_hash(row),
                "price": row["price"],
                "sync_date": now,
            }
            binding = bindings.get(product.id)
            if not binding:
                to_create.append(
                    {
                        "backend_id": store.backend_id.id,
                        "store_id": store.id,
                        "odoo_id": product.id,
                        **values,
                    }
                )
                continue
            if binding.external_id != row["sku"]:
                fresh |= binding
            binding.write(values)
        created = fresh.create(to_create)
        bindings.update({binding.odoo_id.id: binding for binding in created})
        self.env["connector.pos.stock.sync"]._queue(fresh | created)


class ConnectorBackend(models.Model):
    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    pos_product_count = fields.Integer(
        string="Products at the stores", compute="_compute_pos_product_count"
    )

    def _compute_pos_product_count(self):
        counts = dict(
            self.env["connector.pos.product"]
            .sudo()
            ._read_group([("backend_id", "in", self.ids)], ["backend_id"], ["__count"])
        )
        for backend in self:
            backend.pos_product_count = counts.get(backend._origin, 0)

    def action_pos_view_products(self):
        """The products each store's POS received, with the price sent."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_pos.action_connector_pos_product"
        )
        action["domain"] = [("backend_id", "=", self.id)]
        return action

    def _connector_flows(self):
        flows = super()._connector_flows()
        if self.backend_type != "pos":
            return flows
        return [
            *flows,
            {
                "code": "catalog_out",
                "name": "Catalog out",
                "mode": "scheduled",
                "interval_minutes": 60,
                "sla_lag_minutes": 120,
            },
            {
                "code": "prices_urgent",
                "name": "Urgent prices out",
                "mode": "realtime",
                "sla_lag_minutes": 5,
            },
            {
                "code": "stock_out",
                "name": "Availability out",
                "mode": "realtime",
                "sla_lag_minutes": 5,
            },
        ]

    def _connector_topics(self):
        topics = super()._connector_topics()
        if self.backend_type != "pos":
            return topics
        return {
            **topics,
            CATALOG_TOPIC: OutboundTopic(
                flow="catalog_out",
                sender="_pos_send_products",
                batch_size=catalog.PRODUCTS_PER_CALL,
                window_seconds=5,
                description="A product at a store: SKU, barcode, name, price, tax code.",
            ),
            # The same rows, on a flow of its own: real-time, with its own SLA.
            URGENT_TOPIC: OutboundTopic(
                flow="prices_urgent",
                sender="_pos_send_products",
                batch_size=catalog.PRODUCTS_PER_CALL,
                window_seconds=2,
                description="A product whose price an urgent pricelist rule changed.",
            ),
            AVAILABILITY_TOPIC: OutboundTopic(
                flow="stock_out",
                sender="_pos_send_availability",
                batch_size=catalog.COUNTS_PER_CALL,
                window_seconds=2,
                description="The available quantity of a product at a store.",
            ),
        }

    # --- the vendor's API ---------------------------------------------------------------

    def _pos_client(self, correlation_id=None):
        self.ensure_one()
        token = self.sudo().api_token
        if not (self.base_url and token):
            raise UserError(
                self.env._(
                    "Enter the POS vendor's API address (Base URL) and the fleet's API token "
                    "of %(backend)s first.",
                    backend=self.display_name,
                )
            )
        return PosApiClient(
            self._http_client(
                correlation_id=correlation_id, headers={"Authorization": f"Bearer {token}"}
            )
        )

    def _test_connection(self):
        if self.backend_type != "pos" or self.pos_mode != "push":
            return super()._test_connection()
        answer = self._pos_client().stores()
        known = {store.get("code") for store in answer.get("stores", [])}
        missing = sorted(set(self.pos_store_ids.mapped("code")) - known)
        message = self.env._(
            "Connected to the fleet %(fleet)s: %(count)s stores.",
            fleet=answer.get("fleet") or "?",
            count=len(known),
        )
        if missing:
            message += " " + self.env._(
                "The POS does not know the stores %(codes)s.", codes=", ".join(missing)
            )
        return message

    # --- catalog out ------------------------------------------------------------------

    def action_pos_export_catalog(self):
        """Send every product whose row changed to every store, now, followed by a task."""
        for backend in self:
            task = self.env["connector.task"]._start(
                backend,
                "catalog_export",
                self.env._("Export the catalog to the stores"),
                planning=True,
                committed=True,
            )
            backend._connector_delay(
                channel=backend._policy("catalog_out").channel,
                identity_key=f"connector.pos.catalog-{backend.id}-task{task.id}",
                description=f"{backend.name}: export the catalog to the stores",
            )._pos_export_catalog(task_id=task.id)
        return self._notify(
            self.env._("Catalog export started"),
            self.env._("Changed products are sent in the background; the task shows the progress."),
        )

    def _pos_export_catalog(self, task_id=None):
        """Queue the products whose row changed, then send them (the job)."""
        self.ensure_one()
        task = self.env["connector.task"].browse(task_id).exists()
        return self.env["connector.pos.catalog.sync"]._export_catalog(self, task=task)

    def action_pos_push_stock(self):
        """Send the available quantity of every product at every store (the
        reconciliation), followed by a task."""
        for backend in self:
            task = self.env["connector.task"]._start(
                backend,
                "stock_push",
                self.env._("Send every available quantity to the stores"),
                committed=True,
            )
            self.env["connector.pos.stock.sync"]._snapshot(
                backend.with_context(connector_task_id=task.id)
            )
        return self._notify(
            self.env._("Availability sent"),
            self.env._("Every product's quantity is queued; the task shows the progress."),
        )

    @api.model
    def _cron_pos_export_catalog(self):
        self.env["connector.pos.catalog.sync"]._cron_export()

    def _pos_send_products(self, items):
        return self.env["connector.pos.catalog.sync"]._send(self, items)

    def _pos_send_availability(self, items):
        return self.env["connector.pos.stock.sync"]._send(self, items)
