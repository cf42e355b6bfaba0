import logging

from odoo import api, fields, models

from ..components import mapper_product
from ..components.client import user_errors_message
from ..components.mapper_order import legacy_id

_logger = logging.getLogger(__name__)

CATALOG_TOPIC = "product.export"
# Several mutations go in one request, one after the other; each costs 10
# points, far below the 1,000 points a single request may ask for.
MUTATIONS_PER_REQUEST = 50
# Shopify's limit on any input array: variants of one bulk call.
VARIANTS_PER_CALL = 250
# Writes on these fields of a product send it at once (if the policy says so).
PRICE_FIELDS = {"list_price", "lst_price"}

VARIANT_SELECTION = "id legacyResourceId sku inventoryItem { id }"
PRODUCT_VARIANTS = f"""
query ProductVariants($id: ID!) {{
  product(id: $id) {{ id variants(first: 250) {{ nodes {{ {VARIANT_SELECTION} }} }} }}
}}
"""
VARIANT_PRODUCTS = """
query VariantProducts($ids: [ID!]!) {
  nodes(ids: $ids) { id ... on ProductVariant { product { id } } }
}
"""


def _gid(kind, number):
    return f"gid://shopify/{kind}/{number}"


def _number(gid):
    """The numeric id of a GraphQL id, as bindings keep it."""
    return str(legacy_id(gid))


class ProductTemplate(models.Model):
    _inherit = "product.template"

    shopify_backend_ids = fields.Many2many(
        "connector.backend",
        "product_template_shopify_backend_rel",
        "template_id",
        "backend_id",
        string="Shopify stores",
        domain=[("backend_type", "=", "shopify")],
        copy=False,
        help="Sell this product on these Shopify stores: it is created there with its "
        "variants, then kept up to date (Odoo is the source of truth).",
    )
    shopify_binding_count = fields.Integer(
        string="Shopify variants", compute="_compute_shopify_binding_count"
    )

    def _compute_shopify_binding_count(self):
        # sudo: a count, shown to connector users only (the button's group).
        bindings = (
            self.env["shopify.product.binding"]
            .sudo()
            .search([("odoo_id.product_tmpl_id", "in", self.ids)])
        )
        for template in self:
            template.shopify_binding_count = len(
                bindings.filtered(lambda b, t=template: b.odoo_id.product_tmpl_id == t)
            )

    def action_view_shopify_bindings(self):
        """The Shopify variants of this product, on every store."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_shopify.action_shopify_product_binding"
        )
        action["domain"] = [("odoo_id.product_tmpl_id", "=", self.id)]
        return action

    def action_follow_sku(self):
        """The story of this product's SKU: stock and catalog changes sent,
        messages about it (the correlation view)."""
        self.ensure_one()
        return self.env["connector.correlation"].action_follow(self.default_code)

    @api.model_create_multi
    def create(self, vals_list):
        templates = super().create(vals_list)
        if not self.env.context.get("connector_no_export"):
            # sudo: a product user may create products without seeing the stores.
            for template in templates.sudo().filtered("shopify_backend_ids"):
                self.env["shopify.catalog.sync"]._queue(template.shopify_backend_ids, template)
        return templates

    def write(self, vals):
        before = (
            {template.id: template.shopify_backend_ids for template in self.sudo()}
            if "shopify_backend_ids" in vals
            else {}
        )
        result = super().write(vals)
        if self.env.context.get("connector_no_export"):
            return result
        Sync = self.env["shopify.catalog.sync"]
        for template in self.sudo().filtered(lambda t: t.id in before):
            Sync._queue(template.shopify_backend_ids - before[template.id], template)
        if PRICE_FIELDS & vals.keys():
            Sync._price_changed(self)
        return result


class ProductTemplateAttributeValue(models.Model):
    _inherit = "product.template.attribute.value"

    def write(self, vals):
        result = super().write(vals)
        if "price_extra" in vals and not self.env.context.get("connector_no_export"):
            self.env["shopify.catalog.sync"]._price_changed(self.product_tmpl_id)
        return result


class ShopifyCatalogSync(models.AbstractModel):
    """Catalog out to Shopify: products, variants, SKU, barcode, price, weight.

    One outbound change per product template and store; the variants of a
    template become the variants of one Shopify product (its variant
    attributes are the product's options). What would be sent is hashed per
    variant and per product: an unchanged hash is not sent. Products are
    created with ``productCreate`` and their variants with
    ``productVariantsBulkCreate``; changes go with ``productUpdate`` and
    ``productVariantsBulkUpdate``, many products' mutations in one request.
    """

    _name = "shopify.catalog.sync"
    _description = "Shopify Catalog Sync"

    # --- what goes, and when -----------------------------------------------------

    @api.model
    def _enabled(self, backend):
        """Whether the store's catalog flow runs (its policy line may be missing on
        a store created before the flow existed: then it does not)."""
        policy = backend.policy_ids.filtered(lambda p: p.flow == "catalog_out")
        return backend.backend_type == "shopify" and bool(policy) and policy.enabled

    @api.model
    def _backends(self):
        return (
            self.env["connector.backend"]
            .sudo()
            .search(
                [("backend_type", "=", "shopify"), ("state", "in", ("running", "circuit_open"))]
            )
            .filtered(self._enabled)
        )

    @api.model
    def _queue(self, backends, templates):
        """Queue the export of ``templates`` to each of ``backends``."""
        for backend in backends.sudo().filtered(self._enabled):
            for template in templates:
                backend._send_later(
                    CATALOG_TOPIC,
                    f"template:{template.id}",
                    {"template_id": template.id},
                    record=template,
                )

    @api.model
    def _price_changed(self, templates):
        """A price changed: send the templates a store sells, as the policy says."""
        templates = templates.exists()
        if not templates:
            return
        for backend in self._backends():
            self._queue(backend, templates & self._export_templates(backend, templates))

    @api.model
    def _export_templates(self, backend, within=None):
        """The templates a store sells: marked for it, or with a variant bound to it."""
        Template = self.env["product.template"].sudo()
        domain = [("shopify_backend_ids", "in", backend.id)]
        binding_domain = [("backend_id", "=", backend.id)]
        if within is not None:
            domain.append(("id", "in", within.ids))
            binding_domain.append(("odoo_id.product_tmpl_id", "in", within.ids))
        bound = self.env["shopify.product.binding"].sudo().search(binding_domain)
        return (Template.search(domain) | bound.odoo_id.product_tmpl_id).filtered("active")

    @api.model
    def _export_catalog(self, backend, task=None):
        """Queue every template whose Shopify data is out of date, then send.

        The scheduled run of the flow: unchanged templates are counted, not
        queued, so a daily run over a large catalog sends only what changed.
        ``task``: the task that follows the export; what is queued is part of
        it, and unchanged templates count as skipped.
        """
        if task:
            backend = backend.with_context(connector_task_id=task.id)
        queued = unchanged = 0
        for template in self._export_templates(backend):
            if self._is_unchanged(backend, template):
                unchanged += 1
                continue
            self._queue(backend, template)
            queued += 1
        backend._flush_pending(CATALOG_TOPIC)
        if task:
            task._planned(skipped=unchanged)
        return f"{queued} products to send, {unchanged} unchanged"

    @api.model
    def _cron_export(self):
        """Run each store's catalog export when its policy's interval has passed."""
        now = fields.Datetime.now()
        for backend in self._backends():
            policy = backend._policy("catalog_out")
            if not policy._take_turn(now):
                continue
            backend._connector_delay(
                channel=policy.channel,
                identity_key=f"shopify.catalog-{backend.id}",
                description=f"{backend.name}: export catalog",
            )._shopify_export_catalog()

    # --- what Odoo holds ------------------------------------------------------------

    @api.model
    def _describe(self, backend, template):
        """The template as the mapper reads it (see ``components/mapper_product``)."""
        currency = backend.company_id.currency_id
        variants = template.product_variant_ids
        lines = template.attribute_line_ids.filtered(
            lambda line: line.attribute_id.create_variant != "no_variant"
        )
        order = {line.id: index for index, line in enumerate(lines)}
        used = variants.product_template_attribute_value_ids
        options = [
            (
                line.attribute_id.name,
                [value.name for value in line.product_template_value_ids if value in used],
            )
            for line in lines
        ]
        unit_name = template._get_weight_uom_name_from_ir_config_parameter() or ""
        weight_unit = mapper_product.WEIGHT_UNITS.get(unit_name.lower())
        return {
            "id": template.id,
            "name": template.name,
            "options": [(name, values) for name, values in options if values],
            "variants": [
                {
                    "id": variant.id,
                    "name": variant.display_name,
                    "sku": variant.default_code or None,
                    "barcode": variant.barcode or None,
                    "price": f"{currency.round(variant.lst_price):.{currency.decimal_places}f}",
                    "weight": variant.weight,
                    "weight_unit": weight_unit,
                    "tracked": variant.is_storable,
                    "requires_shipping": variant.type == "consu",
                    "options": [
                        (value.attribute_id.name, value.name)
                        for value in variant.product_template_attribute_value_ids.sorted(
                            lambda v: order.get(v.attribute_line_id.id, 0)
                        )
                        if value.attribute_line_id.id in order
                    ],
                }
                for variant in variants
            ],
        }

    @api.model
    def _bindings(self, backend, template):
        """``{product.product id: binding}`` of the template's variants on the store."""
        bindings = (
            self.env["shopify.product.binding"]
            .sudo()
            .search(
                [
                    ("backend_id", "=", backend.id),
                    (
                        "odoo_id",
                        "in",
                        template.with_context(active_test=False).product_variant_ids.ids,
                    ),
                ]
            )
        )
        return {binding.odoo_id.id: binding for binding in bindings}

    @api.model
    def _is_unchanged(self, backend, template):
        data = self._describe(backend, template)
        bindings = self._bindings(backend, template)
        product_hash = mapper_product.payload_hash(mapper_product.product_fields(data))
        for variant in data["variants"]:
            binding = bindings.get(variant["id"])
            if not binding or not binding._is_unchanged(
                mapper_product.payload_hash(mapper_product.variant_fields(variant))
            ):
                return False
            if binding.shopify_product_hash != product_hash:
                return False
        return True

    # --- sending ----------------------------------------------------------------------

    @api.model
    def _send(self, backend, items):
        """Send the templates of ``items``; return ``{item id: reason}`` for refusals.

        Transient faults (throttled, 5xx) raise and the whole batch is sent
        again later: a product created before the fault is found again by
        its handle instead of being created twice.
        """
        client = backend._shopify_client()
        Template = self.env["product.template"].sudo()
        refused = {}
        exports = []
        for item in items:
            template = Template.browse(item.payload["template_id"]).exists()
            if not template:
                refused[item.id] = self.env._("The product no longer exists in Odoo.")
                continue
            export = _Export(self, backend, item, template)
            problems = mapper_product.problems(export.data)
            if problems:
                refused[item.id] = " ".join(problems)
                continue
            exports.append(export)
        self._fill_product_ids(client, exports)
        new = [export for export in exports if not export.product_ids()]
        self._find_or_create_products(client, new)
        operations = [op for export in exports if not export.errors for op in export.operations()]
        self._run(client, operations)
        for export in exports:
            if export.errors:
                refused[export.item.id] = "; ".join(export.errors)
            else:
                export.item.remote_result = export.summary()
        return refused

    @api.model
    def _fill_product_ids(self, client, exports):
        """Bindings made before products were exported lack their product's id: read it."""
        missing = [
            binding
            for export in exports
            for binding in export.bindings.values()
            if not binding.shopify_product_id
        ]
        for start in range(0, len(missing), VARIANTS_PER_CALL):
            chunk = missing[start : start + VARIANTS_PER_CALL]
            data = client.execute(
                VARIANT_PRODUCTS, {"ids": [_gid("ProductVariant", b.external_id) for b in chunk]}
            )
            for binding, node in zip(chunk, data["nodes"], strict=True):
                if node and node.get("product"):
                    binding.shopify_product_id = _number(node["product"]["id"])

    @api.model
    def _find_or_create_products(self, client, exports):
        """Create the Shopify product of each new template, unless an earlier
        attempt already did (found by its handle)."""
        for start in range(0, len(exports), MUTATIONS_PER_REQUEST):
            chunk = exports[start : start + MUTATIONS_PER_REQUEST]
            declarations = ", ".join(f"$h{n}: String!" for n in range(len(chunk)))
            fields_ = " ".join(
                f"p{n}: productByIdentifier(identifier: {{handle: $h{n}}}) {{ id }}"
                for n in range(len(chunk))
            )
            found = client.execute(
                f"query CatalogLookup({declarations}) {{ {fields_} }}",
                {f"h{n}": mapper_product.handle_for(e.data) for n, e in enumerate(chunk)},
            )
            to_create = []
            for n, export in enumerate(chunk):
                product = found.get(f"p{n}")
                if product:
                    variants = client.execute(PRODUCT_VARIANTS, {"id": product["id"]})["product"]
                    export.adopt(product["id"], variants["variants"]["nodes"])
                else:
                    to_create.append(export)
            self._run(client, [export.create_operation() for export in to_create])

    @api.model
    def _run(self, client, operations):
        """Run mutations, many per request; each operation handles its own answer."""
        for start in range(0, len(operations), MUTATIONS_PER_REQUEST):
            chunk = operations[start : start + MUTATIONS_PER_REQUEST]
            declarations, fields_, variables = [], [], {}
            for n, operation in enumerate(chunk):
                arguments = []
                for name, (type_name, value) in operation.arguments.items():
                    variable = f"m{n}_{name}"
                    declarations.append(f"${variable}: {type_name}")
                    arguments.append(f"{name}: ${variable}")
                    variables[variable] = value
                fields_.append(
                    f"m{n}: {operation.mutation}({', '.join(arguments)}) "
                    f"{{ {operation.selection} userErrors {{ field message }} }}"
                )
            data = client.execute(
                f"mutation CatalogExport({', '.join(declarations)}) {{ {' '.join(fields_)} }}",
                variables,
                cost=10 * len(chunk),
            )
            for n, operation in enumerate(chunk):
                answer = data.get(f"m{n}") or {}
                if answer.get("userErrors"):
                    operation.refused(answer["userErrors"])
                else:
                    operation.done(answer)

    @api.model
    def _bind(self, backend, product, node, values):
        """Bind an Odoo variant to the Shopify variant ``node`` of a mutation's answer."""
        Binding = self.env["shopify.product.binding"].sudo()
        variant_id = _number(node["id"])
        values = {**values, "inventory_item_id": (node.get("inventoryItem") or {}).get("id")}
        previous = Binding._find_by_record(backend, product)
        if previous and previous.external_id != variant_id:
            Binding._find(backend, variant_id).unlink()
            previous.write({"external_id": variant_id, **values})
            binding = previous
        else:
            binding = Binding._bind(backend, variant_id, product, **values)
        Stock = self.env["shopify.stock.sync"]
        if backend._policy("stock_out").enabled:
            # A new variant sells nothing until Shopify knows its stock.
            for shop_location in backend.shopify_location_ids.filtered(
                lambda loc: loc.active and loc.location_id
            ):
                Stock._queue(binding, shop_location)
        return binding


class _Operation:
    """One mutation of a catalog export, and what to do with its answer."""

    def __init__(self, export, mutation, arguments, selection, on_done, *, variants=()):
        self.export = export
        self.mutation = mutation
        self.arguments = arguments
        self.selection = selection
        self.on_done = on_done
        self.variants = list(variants)

    def done(self, answer):
        self.on_done(answer)

    def refused(self, user_errors):
        messages = []
        for error in user_errors:
            index = mapper_product.blamed_index(error)
            if index is not None and index < len(self.variants):
                messages.append(f"{self.variants[index]['sku']}: {error['message']}")
            else:
                messages.append(user_errors_message([error]))
        self.export.errors.append("Shopify refused " + ", ".join(messages))


class _Export:
    """One template on its way to one store: what Odoo holds, what is bound,
    which mutations bring Shopify up to date."""

    def __init__(self, sync, backend, item, template):
        self.sync = sync
        self.backend = backend
        self.item = item
        self.template = template
        self.data = sync._describe(backend, template)
        self.bindings = sync._bindings(backend, template)
        self.product_hash = mapper_product.payload_hash(mapper_product.product_fields(self.data))
        self.errors = []
        self.replace_standalone = False
        self.created_product = None
        self.counts = {"created": 0, "updated": 0, "unchanged": 0}

    def product_ids(self):
        return {b.shopify_product_id for b in self.bindings.values() if b.shopify_product_id}

    def _variant(self, sku):
        return next((v for v in self.data["variants"] if v["sku"] == sku), None)

    def _record(self, variant):
        return self.template.env["product.product"].browse(variant["id"])

    def _variant_hash(self, variant):
        return mapper_product.payload_hash(mapper_product.variant_fields(variant))

    # --- a new product ----------------------------------------------------------

    def create_operation(self):
        return _Operation(
            self,
            "productCreate",
            {"product": ("ProductCreateInput!", mapper_product.product_create_input(self.data))},
            f"product {{ id variants(first: 1) {{ nodes {{ {VARIANT_SELECTION} }} }} }}",
            self._created,
        )

    def _created(self, answer):
        product = answer["product"]
        self.created_product = _number(product["id"])
        self.adopt(product["id"], product["variants"]["nodes"])

    def adopt(self, product_gid, nodes):
        """Take over the Shopify product this template was created as: bind its
        variants of our SKUs; its standalone variant becomes ours or is replaced."""
        product_id = _number(product_gid)
        ours = {v["sku"] for v in self.data["variants"]}
        strangers = [n for n in nodes if n.get("sku") and n["sku"] not in ours]
        if strangers:
            self.errors.append(
                self.template.env._(
                    "Shopify already has a product with the handle %(handle)s and other "
                    "SKUs (%(skus)s); rename one of them.",
                    handle=mapper_product.handle_for(self.data),
                    skus=", ".join(n["sku"] for n in strangers),
                )
            )
            return
        values = {"shopify_product_id": product_id, "shopify_product_hash": self.product_hash}
        for node in nodes:
            variant = node.get("sku") and self._variant(node["sku"])
            if variant:
                self._bind(variant, node, values)
        if not self.bindings and len(nodes) == 1:
            if len(self.data["variants"]) == 1 and not self.data["options"]:
                # The product's "Default Title" variant is the only one: ours.
                self._bind(self.data["variants"][0], nodes[0], values)
            else:
                self.replace_standalone = product_id

    def _bind(self, variant, node, values, payload_hash=None):
        binding = self.sync._bind(self.backend, self._record(variant), node, values)
        if payload_hash:
            binding._mark_synced(payload_hash=payload_hash)
        self.bindings[variant["id"]] = binding
        return binding

    # --- changes ---------------------------------------------------------------

    def operations(self):
        """The mutations that bring the Shopify product(s) of the template up to date."""
        operations = []
        unbound = [v for v in self.data["variants"] if v["id"] not in self.bindings]
        changed = {}
        for variant in self.data["variants"]:
            binding = self.bindings.get(variant["id"])
            if not binding:
                continue
            if binding._is_unchanged(self._variant_hash(variant)):
                self.counts["unchanged"] += 1
            else:
                changed.setdefault(binding.shopify_product_id, []).append(variant)
        for product_id, variants in changed.items():
            for start in range(0, len(variants), VARIANTS_PER_CALL):
                operations.append(
                    self._update_operation(product_id, variants[start : start + VARIANTS_PER_CALL])
                )
        if unbound:
            product_ids = self.product_ids() or {self.replace_standalone}
            if len(product_ids) != 1 or not next(iter(product_ids)):
                self.errors.append(
                    self.template.env._(
                        "The variants of this product are spread over several Shopify "
                        "products; new variants cannot be placed. Bind them by SKU first."
                    )
                )
                return []
            product_id = next(iter(product_ids))
            for start in range(0, len(unbound), VARIANTS_PER_CALL):
                operations.append(
                    self._create_variants_operation(
                        product_id, unbound[start : start + VARIANTS_PER_CALL]
                    )
                )
        operations += self._product_operations()
        return operations

    def _update_operation(self, product_id, variants):
        def done(answer):
            for variant in variants:
                self.bindings[variant["id"]]._mark_synced(payload_hash=self._variant_hash(variant))
            self.counts["updated"] += len(variants)

        return _Operation(
            self,
            "productVariantsBulkUpdate",
            {
                "productId": ("ID!", _gid("Product", product_id)),
                "variants": (
                    "[ProductVariantsBulkInput!]!",
                    [
                        mapper_product.variant_update_input(
                            variant,
                            _gid("ProductVariant", self.bindings[variant["id"]].external_id),
                        )
                        for variant in variants
                    ],
                ),
            },
            "productVariants { id }",
            done,
            variants=variants,
        )

    def _create_variants_operation(self, product_id, variants):
        # Replacing the standalone variant productCreate made happens once, with the
        # first call; later calls of a large product keep what the first created.
        strategy = "PRESERVE_STANDALONE_VARIANT"
        if self.replace_standalone:
            strategy, self.replace_standalone = "REMOVE_STANDALONE_VARIANT", False
        values = {"shopify_product_id": product_id, "shopify_product_hash": self.product_hash}

        def done(answer):
            for node in answer.get("productVariants") or []:
                variant = self._variant(node.get("sku"))
                if variant:
                    self._bind(variant, node, values, self._variant_hash(variant))
            self.counts["created"] += len(variants)

        return _Operation(
            self,
            "productVariantsBulkCreate",
            {
                "productId": ("ID!", _gid("Product", product_id)),
                "variants": (
                    "[ProductVariantsBulkInput!]!",
                    [mapper_product.variant_create_input(variant) for variant in variants],
                ),
                "strategy": ("ProductVariantsBulkCreateStrategy", strategy),
            },
            f"productVariants {{ {VARIANT_SELECTION} }}",
            done,
            variants=variants,
        )

    def _product_operations(self):
        """``productUpdate`` when the product-level fields changed, and only for a
        Shopify product made of this template's variants alone (a store bound by
        SKU may group variants differently: its titles are left as they are)."""
        stale = [b for b in self.bindings.values() if b.shopify_product_hash != self.product_hash]
        if not stale:
            return []
        product_ids = {b.shopify_product_id for b in stale if b.shopify_product_id}
        if len(product_ids) != 1:
            return []
        product_id = next(iter(product_ids))
        Binding = self.template.env["shopify.product.binding"].sudo()
        sharing = Binding.search(
            [("backend_id", "=", self.backend.id), ("shopify_product_id", "=", product_id)]
        )
        if sharing.odoo_id.product_tmpl_id != self.template:
            Binding.browse([b.id for b in stale]).shopify_product_hash = self.product_hash
            return []

        def done(answer):
            sharing.shopify_product_hash = self.product_hash

        return [
            _Operation(
                self,
                "productUpdate",
                {
                    "product": (
                        "ProductUpdateInput!",
                        {
                            "id": _gid("Product", product_id),
                            **mapper_product.product_fields(self.data),
                        },
                    )
                },
                "product { id }",
                done,
            )
        ]

    def summary(self):
        parts = []
        if self.created_product:
            parts.append(f"product {self.created_product} created")
        parts += [f"{count} variants {what}" for what, count in self.counts.items() if count]
        return ", ".join(parts) or "unchanged"
