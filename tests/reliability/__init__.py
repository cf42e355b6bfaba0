"""The reliability suite: scenarios run against a real multi-worker Odoo server.

``setup/reliability`` runs the scenarios of :data:`SCENARIOS` in this order,
each from its module ``scenario_<name>.py`` here; those of :data:`UNFINISHED`
only when named; see README.md.
"""

# The fixed order of the suite: a scenario's module is scenario_<name>.py.
SCENARIOS = (
    "webhook_duplicates",
    "parallel_customers",
    "fulfillment_faults",
    "stock_flush_concurrency",
    "kill_during_import",
    "kill_during_flush",
    "pos_catchup_kill",
    "shopify_outage",
    "runner_stopped",
    "tpl_faults",
    "mapper_fuzz",
    "webhook_fuzz",
    "two_nodes",
)
# Scenarios that do not pass yet: run by name only (``--scenario NAME``), out
# of the suite until they do. The chaos day (R1) passes alone; in the whole
# suite its finance wiring's export holds the other scenarios' job slots
# (README.md).
UNFINISHED = ("chaos_day",)
