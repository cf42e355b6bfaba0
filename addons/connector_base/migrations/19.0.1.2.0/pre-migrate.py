"""Rejected webhooks are counted in rows of their own, folded daily into the
backend's total: the counter the backend kept so far becomes that total."""

from odoo.tools import SQL

RENAMED = (
    ("webhook_rejected_count", "webhook_rejected_folded"),
    ("webhook_rejected_at", "webhook_rejected_folded_at"),
)


def migrate(cr, version):
    for old, new in RENAMED:
        cr.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'connector_backend' AND column_name IN %s",
            ((old, new),),
        )
        if {row[0] for row in cr.fetchall()} == {old}:
            cr.execute(
                SQL(
                    "ALTER TABLE connector_backend RENAME COLUMN %s TO %s",
                    SQL.identifier(old),
                    SQL.identifier(new),
                )
            )
