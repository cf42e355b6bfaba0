from odoo import Command, fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.payload import payload_hash
from odoo.addons.connector_base.components.reconciliation import (
    Comparison,
    Difference,
    Reconciliation,
)
from odoo.addons.connector_base.components.topics import InboundTopic, OutboundTopic

PARTNER_SCHEMA = {
    "id": {"type": "integer", "required": True},
    "name": {"type": "string", "required": True, "empty": False},
    "email": {"type": "string", "nullable": True},
    "fetch_details": {"type": "boolean"},
    "tag": {"type": "string", "nullable": True},
}
TICKET_SCHEMA = {
    "uuid": {"type": "string", "required": True, "empty": False},
    "store": {"type": "string", "required": True, "empty": False},
    "register": {"type": "integer", "required": True},
    "seq": {"type": "integer", "required": True},
    "amount": {"type": "number", "required": True},
    "customer_id": {"type": "integer", "nullable": True},
    "voucher": {"type": "string", "nullable": True},
}
TICKET_BATCH_SIZE = 100
AMENDMENT_SCHEMA = {
    "uuid": {"type": "string", "required": True, "empty": False},
    "store": {"type": "string", "required": True, "empty": False},
    "register": {"type": "integer", "required": True},
    "amount": {"type": "number", "required": True},
}
NOTE_SCHEMA = {
    "partner_id": {"type": "integer", "required": True},
    "note": {"type": "string", "required": True},
}


class ConnectorBackend(models.Model):
    """The test connector: everything a connector declares, at its smallest."""

    _inherit = "connector.backend"

    backend_type = fields.Selection(
        selection_add=[("test", "Test connector")], ondelete={"test": "cascade"}
    )

    def _connector_flows(self):
        if self.backend_type != "test":
            return super()._connector_flows()
        return [
            {"code": "partners_in", "name": "Partners in", "mode": "realtime"},
            {"code": "scores_out", "name": "Scores out", "mode": "realtime"},
        ]

    def _connector_topics(self):
        if self.backend_type != "test":
            return super()._connector_topics()
        return {
            "partner.upsert": InboundTopic(
                flow="partners_in",
                schema=PARTNER_SCHEMA,
                handler="_test_upsert_partner",
                sequence_key=lambda payload: f"partner:{payload['id']}",
                skip_stale=True,
                max_attempts=4,
            ),
            "partner.note": InboundTopic(
                flow="partners_in",
                schema=NOTE_SCHEMA,
                handler="_test_set_note",
                sequence_key=lambda payload: f"note:{payload['partner_id']}",
                prerequisite="_test_partner_missing",
            ),
            # Store sales, uploaded by the thousand: applied in batches per register.
            "ticket.sale": InboundTopic(
                flow="partners_in",
                schema=TICKET_SCHEMA,
                handler="_test_apply_ticket",
                sequence_key=lambda payload: (
                    f"customer:{payload['customer_id']}" if payload.get("customer_id") else None
                ),
                prerequisite="_test_ticket_customer_missing",
                batch_size=TICKET_BATCH_SIZE,
                batch_key=lambda payload: f"{payload['store']}/{payload['register']}",
            ),
            # A sale's amount corrected at its register: in the job of its sales.
            "ticket.amend": InboundTopic(
                flow="partners_in",
                schema=AMENDMENT_SCHEMA,
                handler="_test_amend_ticket",
                batch_size=TICKET_BATCH_SIZE,
                batch_key=lambda payload: f"{payload['store']}/{payload['register']}",
                batch_with="ticket.sale",
            ),
            "partner.score": OutboundTopic(
                flow="scores_out", sender="_test_send_scores", batch_size=3, window_seconds=1
            ),
        }

    def _connector_reconciliations(self):
        if self.backend_type != "test":
            return super()._connector_reconciliations()
        return {
            "scores": Reconciliation(
                kind="scores",
                label="Partner scores",
                compare="_test_compare_scores",
                fix="_test_push_scores",
                fix_label="Push Odoo's score",
                flow="scores_out",
            ),
            "notes": Reconciliation(
                kind="notes",
                label="Partner notes of a day",
                compare="_test_compare_notes",
                period="day",
            ),
        }

    # --- reconciliation ---------------------------------------------------------

    def _test_score_key(self, binding):
        return f"partner-{binding.external_id}"

    def _test_compare_scores(self, run):
        """The remote's score of each bound partner against Odoo's (its color)."""
        remote = self._test_client().get("/scores").json()
        bindings = self.env["test.partner.binding"].search([("backend_id", "=", self.id)])
        differences = []
        for binding in bindings:
            key = self._test_score_key(binding)
            odoo, theirs = binding.odoo_id.color, remote.get(key)
            if odoo != theirs:
                differences.append(
                    Difference(
                        key=key,
                        what="Score differs",
                        odoo_value=str(odoo),
                        remote_value="none" if theirs is None else str(theirs),
                        fix_data={"binding_id": binding.id},
                    )
                )
        return Comparison(compared=len(bindings), differences=differences)

    def _test_push_scores(self, mismatches):
        """Odoo's score wins: sent through the outbound queue."""
        refused = {}
        for mismatch in mismatches:
            binding = self.env["test.partner.binding"].browse(mismatch.fix_data["binding_id"])
            if not binding.exists():
                refused[mismatch.id] = "The partner is no longer bound."
                continue
            self._send_later(
                "partner.score", self._test_score_key(binding), {"score": binding.odoo_id.color}
            )
        return refused

    def _test_compare_notes(self, run):
        """Nothing to compare: the window of the run is what is tested."""
        answer = self._test_client().get(f"/ping?since={run.window_start.isoformat()}").json()
        return Comparison(compared=1 if answer else 0)

    # --- remote -------------------------------------------------------------

    def _test_client(self, correlation_id=None):
        return self._http_client(
            correlation_id=correlation_id,
            headers={"Authorization": f"Bearer {self.sudo().api_token}"},
        )

    def _test_connection(self):
        answer = self._test_client().get("/ping").json()
        return f"The test remote answered: {answer['service']}"

    def _webhook_signature_ok(self, raw_body, headers):
        if self.backend_type != "test":
            return super()._webhook_signature_ok(raw_body, headers)
        return self._webhook_hmac_base64_ok(raw_body, headers.get("X-Test-Signature"))

    def _webhook_message(self, payload, headers):
        if self.backend_type != "test":
            return super()._webhook_message(payload, headers)
        return {
            "topic": headers.get("X-Test-Topic"),
            "idempotency_key": headers.get("X-Test-Delivery"),
            "correlation_id": headers.get("X-Correlation-Id"),
        }

    # --- handlers -------------------------------------------------------------

    def _test_upsert_partner(self, event, payload):
        """Create or update the partner bound to the remote id (idempotent)."""
        Binding = self.env["test.partner.binding"]
        binding = Binding._find(self, payload["id"])
        digest = payload_hash(payload)
        if binding and binding._is_unchanged(digest):
            return binding.odoo_id
        vals = {"name": payload["name"], "email": payload.get("email")}
        if payload.get("tag"):
            # Data the remote names and Odoo must already have: support staff
            # create it, then requeue.
            tag = self.env["res.partner.category"].search([("name", "=", payload["tag"])], limit=1)
            if not tag:
                raise UserError(
                    self.env._(
                        "The contact tag %(tag)s does not exist in Odoo: create it, then "
                        "requeue this event.",
                        tag=payload["tag"],
                    )
                )
            vals["category_id"] = [Command.link(tag.id)]
        if payload.get("fetch_details"):
            details = self._test_client(event.correlation_id).get(f"/partners/{payload['id']}")
            vals["ref"] = details.json()["ref"]
        if binding:
            binding.odoo_id.write(vals)
        else:
            binding = Binding._bind(self, payload["id"], self.env["res.partner"].create(vals))
        binding._mark_synced(payload_hash=digest)
        return binding.odoo_id

    def _test_partner_missing(self, event, payload):
        if self.env["test.partner.binding"]._find(self, payload["partner_id"]):
            return None
        key = f"partner:{payload['partner_id']}"
        return f"Partner {payload['partner_id']} is not imported yet.", key

    def _test_set_note(self, event, payload):
        partner = self.env["test.partner.binding"]._find(self, payload["partner_id"]).odoo_id
        partner.comment = payload["note"]
        return partner

    def _test_ticket_customer_missing(self, event, payload):
        customer = payload.get("customer_id")
        if not customer or self.env["test.partner.binding"]._find(self, customer):
            return None
        return f"Customer {customer} is not imported yet.", f"partner:{customer}"

    def _test_apply_ticket(self, event, payload):
        """Record a store sale once (a replay finds it), check its voucher with
        the remote and add it to its customer's total."""
        Ticket = self.env["test.ticket"]
        ticket = Ticket.search([("backend_id", "=", self.id), ("uuid", "=", payload["uuid"])])
        if ticket:
            return ticket
        vals = {
            "backend_id": self.id,
            "uuid": payload["uuid"],
            "store": payload["store"],
            "register": payload["register"],
            "seq": payload["seq"],
            "amount": payload["amount"],
        }
        if payload.get("voucher"):
            voucher = self._test_client(event.correlation_id).get(f"/vouchers/{payload['voucher']}")
            vals["voucher_value"] = voucher.json()["value"]
        if payload.get("customer_id"):
            partner = self.env["test.partner.binding"]._find(self, payload["customer_id"]).odoo_id
            vals["partner_id"] = partner.id
            partner.test_store_total += payload["amount"]
        return Ticket.create(vals)

    def _test_amend_ticket(self, event, payload):
        """Correct the amount of a recorded sale; a sale not recorded is an error."""
        ticket = self.env["test.ticket"].search(
            [("backend_id", "=", self.id), ("uuid", "=", payload["uuid"])]
        )
        if not ticket:
            raise UserError(self.env._("No ticket %(uuid)s to amend.", uuid=payload["uuid"]))
        ticket.amount = payload["amount"]
        return ticket

    def _test_send_scores(self, items):
        response = self._test_client().post(
            "/scores",
            json={"scores": [{"key": item.coalescing_key, **item.payload} for item in items]},
        )
        refused = {r["key"]: r["error"] for r in response.json()["results"] if not r["ok"]}
        return {
            item.id: refused[item.coalescing_key]
            for item in items
            if item.coalescing_key in refused
        }
