# Copyright 2026 Retail Sync
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "Retail Sync cross-module tests",
    "summary": "Tests that need every Retail Sync addon installed together",
    "version": "19.0.1.0.0",
    "category": "Hidden/Tests",
    "author": "Retail Sync",
    "website": "https://github.com/retail-sync/retail-sync",
    "license": "LGPL-3",
    # Every product addon: the test command installs this module with all of them.
    "depends": [
        "connector_base",
        "connector_shopify",
        "connector_pos",
        "connector_3pl",
        "connector_finance",
    ],
}
