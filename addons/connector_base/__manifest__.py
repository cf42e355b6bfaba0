# Copyright 2026 Retail Sync
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "Connector Base",
    "summary": "Governed sync framework for external systems on queue_job",
    "version": "19.0.1.5.0",
    "category": "Connector",
    "author": "Retail Sync",
    "website": "https://github.com/retail-sync/retail-sync",
    "license": "LGPL-3",
    "depends": ["mail", "queue_job", "spreadsheet_dashboard"],
    "external_dependencies": {"python": ["cerberus", "requests"]},
    "data": [
        "security/connector_base_security.xml",
        "security/ir.model.access.csv",
        "data/connector_user_data.xml",
        "data/queue_job_data.xml",
        "data/ir_cron_data.xml",
        "views/connector_backend_views.xml",
        "views/connector_event_views.xml",
        "views/connector_outbound_views.xml",
        "views/connector_overview_views.xml",
        "views/connector_correlation_views.xml",
        "views/connector_task_views.xml",
        "views/connector_menus.xml",
        "views/connector_reconciliation_views.xml",
        "data/spreadsheet_dashboard_data.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "connector_base/static/src/scss/connector_overview.scss",
        ],
    },
    "application": True,
}
