# Copyright 2026 Retail Sync
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "Finance Connector",
    "summary": "Journals out to the book of record, settlements in, period discipline",
    "version": "19.0.1.0.0",
    "category": "Connector",
    "author": "Retail Sync",
    "website": "https://github.com/retail-sync/retail-sync",
    "license": "LGPL-3",
    "depends": ["connector_base", "account"],
    "external_dependencies": {"python": ["requests"]},
    "data": [
        "security/ir.model.access.csv",
        "security/connector_finance_security.xml",
        "data/finance_flow_data.xml",
        "data/finance_settlement_data.xml",
        "views/finance_settlement_views.xml",
        "views/finance_backend_views.xml",
        "data/finance_export_data.xml",
        "views/finance_export_views.xml",
        "views/account_move_views.xml",
    ],
}
