"""Indexes of connector_event that every webhook's insert paid for and no
query used any more (composite ones cover backend, sequence and waiting)."""

from odoo.tools import SQL

DROPPED = (
    "connector_event__backend_id_index",
    "connector_event__flow_index",
    "connector_event__topic_index",
    "connector_event__sequence_key_index",
    "connector_event__waiting_key_index",
    "connector_event__occurred_at_index",
    "connector_event__error_kind_index",
)


def migrate(cr, version):
    for name in DROPPED:
        cr.execute(SQL("DROP INDEX IF EXISTS %s", SQL.identifier(name)))
