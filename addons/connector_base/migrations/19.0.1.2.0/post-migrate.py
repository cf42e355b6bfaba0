"""Backends made before connector users existed get theirs now, at the
upgrade, rather than on first use: first use can be a webhook's request,
which must not write the backend row nor create a user."""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    env["connector.backend"].search([])._connector_user()
