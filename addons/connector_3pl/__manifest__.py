# Copyright 2026 Retail Sync
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "3PL Connector",
    "summary": "Deliveries of a warehouse run by a third-party logistics provider",
    "version": "19.0.1.0.0",
    "category": "Connector",
    "author": "Retail Sync",
    "website": "https://github.com/retail-sync/retail-sync",
    "license": "LGPL-3",
    "depends": ["connector_base", "stock_delivery"],
    "external_dependencies": {"python": ["requests"]},
    "data": [
        "security/ir.model.access.csv",
        "security/connector_3pl_security.xml",
        "data/connector_user_data.xml",
        "data/tpl_flow_data.xml",
        "data/queue_job_data.xml",
        "data/tpl_cron_data.xml",
        "data/tpl_stock_cron_data.xml",
        "data/tpl_return_data.xml",
        "views/tpl_backend_views.xml",
        "views/tpl_delivery_binding_views.xml",
        "views/stock_picking_views.xml",
        "views/tpl_return_views.xml",
    ],
    "assets": {
        "web.assets_tests": [
            "connector_3pl/static/tests/tours/*.js",
        ],
    },
}
