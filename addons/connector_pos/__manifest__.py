# Copyright 2026 Retail Sync
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "Store POS Connector",
    "summary": "The tickets of a fleet of store POS systems, in Odoo's Point of Sale",
    "version": "19.0.1.2.0",
    "category": "Connector",
    "author": "Retail Sync",
    "website": "https://github.com/retail-sync/retail-sync",
    "license": "LGPL-3",
    "depends": ["connector_base", "point_of_sale", "sales_team"],
    "data": [
        "security/ir.model.access.csv",
        "security/connector_pos_security.xml",
        "data/connector_user_data.xml",
        "data/pos_flow_data.xml",
        "data/pos_catalog_data.xml",
        "views/pos_backend_views.xml",
        "views/connector_pos_store_views.xml",
        "views/connector_pos_batch_views.xml",
        "views/pos_order_views.xml",
        "wizards/connector_pos_upload_key_views.xml",
        "views/pos_menus.xml",
        "views/connector_pos_closing_views.xml",
        "views/product_pricelist_item_views.xml",
    ],
}
