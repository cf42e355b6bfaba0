"""The stores' close of day, API v1 (readme/CONTRACT.md): a register's Z report.

Authenticated and limited as the batches are (``PosIntake``), stored as an
event of its own: its job compares it with the tickets received and closes
the store's day when they agree.
"""

from odoo import http
from odoo.http import request

from odoo.addons.connector_base.controllers.webhook import remote_route

from ..components.closing import closing_problems
from ..models.connector_pos_closing import CLOSING_ROUTE
from .upload import PosIntake


class PosClosingUpload(PosIntake, http.Controller):
    """Z reports uploaded by the registers of a POS fleet."""

    @remote_route(CLOSING_ROUTE)
    def upload_pos_closing(self, fleet):
        store, document, refused = self._authenticated_document(fleet, "invalid_closing")
        if refused:
            return refused
        problems = closing_problems(document, store.code)
        if problems:
            return self._error(400, "invalid_closing", "the closing is wrong", problems)
        answer = store.env["connector.pos.closing"]._receive(store, document)
        return request.make_json_response(answer, status=200)
