# Copyright 2026 Retail Sync
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "Shopify Connector",
    "summary": "A Shopify store kept in sync with Odoo: orders, stock, catalog, refunds",
    "version": "19.0.1.0.0",
    "category": "Connector",
    "author": "Retail Sync",
    "website": "https://github.com/retail-sync/retail-sync",
    "license": "LGPL-3",
    "depends": ["connector_base", "sale_stock", "stock_delivery"],
    "external_dependencies": {"python": ["requests"]},
    "data": [
        "security/ir.model.access.csv",
        "security/connector_shopify_security.xml",
        "data/shopify_data.xml",
        "data/connector_user_data.xml",
        "data/decimal_precision_data.xml",
        "data/queue_job_data.xml",
        "data/shopify_flow_data.xml",
        "views/shopify_backend_views.xml",
        "views/shopify_payment_method_views.xml",
        "views/shopify_binding_views.xml",
        "views/product_template_views.xml",
        "views/sale_order_views.xml",
        "views/stock_picking_views.xml",
        "views/shopify_payout_views.xml",
        "views/shopify_menus.xml",
    ],
    "assets": {
        "web.assets_tests": [
            "connector_shopify/static/tests/tours/*.js",
        ],
    },
}
