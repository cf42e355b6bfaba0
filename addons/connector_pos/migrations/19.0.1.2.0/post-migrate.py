"""The stores' Points of Sale number their orders from PostgreSQL sequences:
a store's registers are applied side by side, which gap-free sequences
would refuse."""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    env["connector.pos.store"].with_context(active_test=False).search([])._free_order_numbering()
