# Copyright 2026 Retail Sync
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "Connector Base: test connector",
    "summary": "A minimal connector that exercises every feature of connector_base",
    "version": "19.0.1.0.0",
    "category": "Hidden/Tests",
    "author": "Retail Sync",
    "website": "https://github.com/retail-sync/retail-sync",
    "license": "LGPL-3",
    "depends": ["connector_base"],
    "data": [
        "security/ir.model.access.csv",
        "security/test_connector_security.xml",
    ],
    "assets": {
        "web.assets_tests": ["test_connector_base/static/tests/tours/*.js"],
    },
}
