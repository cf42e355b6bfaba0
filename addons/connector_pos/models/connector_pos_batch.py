from odoo import api, fields, models

from ..components.ticket import ticket_payloads, ticket_time
from .pos_backend import TICKET_TOPIC

# The intake's claim of a batch id: the unique index settles two uploads of
# one batch racing, in the database (the second waits for the first, then
# fails to serialize and Odoo's request handling retries it: the retry finds
# the batch and answers as the first did).
INSERT_BATCH_SQL = """
INSERT INTO connector_pos_batch (
    backend_id, store_id, company_id, batch_ref, register, received_at, ticket_count,
    accepted_count, duplicate_count, create_uid, write_uid, create_date, write_date
)
VALUES (
    %(backend_id)s, %(store_id)s, %(company_id)s, %(batch_ref)s, %(register)s, %(now)s,
    %(ticket_count)s, 0, 0, %(uid)s, %(uid)s, %(now)s, %(now)s
)
ON CONFLICT (backend_id, store_id, batch_ref) DO NOTHING
RETURNING id
"""


class ConnectorPosBatch(models.Model):
    """One batch of tickets a store uploaded, as received: the answer a
    re-sent batch gets again, and the upload's audit trail."""

    _name = "connector.pos.batch"
    _description = "POS Uploaded Batch"
    _order = "received_at desc, id desc"

    backend_id = fields.Many2one("connector.backend", required=True, ondelete="cascade")
    store_id = fields.Many2one("connector.pos.store", required=True, ondelete="cascade")
    company_id = fields.Many2one("res.company", required=True)
    batch_ref = fields.Char(string="Batch ID", required=True, help="Chosen by the POS.")
    register = fields.Char(required=True)
    received_at = fields.Datetime(required=True, default=fields.Datetime.now)
    ticket_count = fields.Integer(string="Tickets")
    accepted_count = fields.Integer(string="Accepted")
    duplicate_count = fields.Integer(
        string="Duplicates", help="Tickets received before, in this batch or another."
    )

    _batch_uniq = models.UniqueIndex("(backend_id, store_id, batch_ref)")

    def _answer(self, status):
        """The body of the intake's 200 answer about this batch."""
        self.ensure_one()
        return {
            "batch_id": self.batch_ref,
            "status": status,
            "tickets": self.ticket_count,
            "accepted": self.accepted_count,
            "duplicates": self.duplicate_count,
        }

    @api.model
    def _receive(self, store, document):
        """Store a checked batch of ``store``: one event per ticket, each
        ticket's UUID its idempotency key. A batch id received before stores
        nothing and gets the answer the first upload got."""
        backend = store.backend_id
        now = fields.Datetime.now()
        self.env.cr.execute(
            INSERT_BATCH_SQL,
            {
                "backend_id": backend.id,
                "store_id": store.id,
                "company_id": backend.company_id.id,
                "batch_ref": document["batch_id"],
                "register": document["register"],
                "now": now,
                "ticket_count": len(document["tickets"]),
                "uid": self.env.uid,
            },
        )
        row = self.env.cr.fetchone()
        if not row:
            batch = self.search(
                [
                    ("backend_id", "=", backend.id),
                    ("store_id", "=", store.id),
                    ("batch_ref", "=", document["batch_id"]),
                ],
                limit=1,
            )
            return batch._answer("already_received")
        batch = self.browse(row[0])
        messages = []
        for index, payload in enumerate(ticket_payloads(document)):
            uuid = payload.get("uuid")
            messages.append(
                {
                    "topic": TICKET_TOPIC,
                    "payload": payload,
                    # A ticket without its UUID still gets stored, to fail
                    # with its reason: keyed by its place in its batch.
                    "idempotency_key": uuid
                    if isinstance(uuid, str) and uuid
                    else f"{document['batch_id']}#{index}",
                    "occurred_at": ticket_time(payload) or now,
                }
            )
        events = self.env["connector.event"]._receive_many(backend, messages, source="upload")
        duplicates = sum(1 for event in events if event.state == "duplicate")
        batch.write({"accepted_count": len(events) - duplicates, "duplicate_count": duplicates})
        return batch._answer("stored")
