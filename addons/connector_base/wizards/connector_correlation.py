from datetime import datetime

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.fields import Command, Domain

# The newest rows of each kind shown for one key: a SKU's stock changes over
# the years are many, its story of today is what support looks at.
ROW_LIMIT = 200
# Rows of one instant in the order things happen: a message, the job that
# applies it, the record it makes, the call that tells the remote.
KIND_RANK = {"event": 0, "job": 1, "record": 2, "outbound": 3}
EVENT_TONES = {
    "done": "success",
    "failed": "danger",
    "waiting": "warning",
    "duplicate": "muted",
    "ignored": "muted",
}
JOB_TONES = {"done": "success", "failed": "danger", "cancelled": "muted"}
OUTBOUND_TONES = {"sent": "success", "failed": "danger", "cancelled": "muted", "pending": "warning"}


class ConnectorCorrelation(models.TransientModel):
    """Follow one business key across systems: every message received about
    it, every job that worked on it, the Odoo records it became and every
    call made to a remote about it, in time order, with their states.

    Connectors say what their keys name (``connector.backend._correlate``);
    the framework looks each kind up on indexed columns and lists them.
    """

    _name = "connector.correlation"
    _description = "Follow a Business Key"
    _rec_name = "key"

    key = fields.Char(
        string="Business key",
        help="A Shopify order number (#1001), a SKU, a message's correlation id, or the "
        "key a message is stored under (order:4501).",
    )
    backend_id = fields.Many2one(
        "connector.backend", help="Only this backend; empty: every backend you can see."
    )
    summary = fields.Text(readonly=True)
    line_ids = fields.One2many("connector.correlation.line", "correlation_id", readonly=True)

    @api.model
    def action_follow(self, key, backend=None):
        """The timeline of ``key``, opened (the buttons of sale orders,
        products and events)."""
        correlation = self.create({"key": key, "backend_id": backend.id if backend else False})
        correlation.action_search()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Follow %(key)s", key=key),
            "res_model": self._name,
            "res_id": correlation.id,
            "view_mode": "form",
            "target": "current",
        }

    def action_search(self):
        """List everything about the key, oldest first."""
        self.ensure_one()
        key = (self.key or "").strip()
        if not key:
            raise UserError(
                self.env._(
                    "Type the business key to follow: a Shopify order number such as "
                    "#1001, a SKU, or a message's correlation id."
                )
            )
        backends = self.backend_id or self.env["connector.backend"].search(
            [("company_id", "in", self.env.companies.ids)]
        )
        rows, meanings = self._timeline(key, backends)
        self.write(
            {
                "key": key,
                "line_ids": [Command.clear()] + [Command.create(row) for row in rows],
                "summary": self._summary(key, backends, rows, meanings),
            }
        )
        return True

    # --- gathering --------------------------------------------------------------

    def _timeline(self, key, backends):
        """``(rows, meanings)``: the timeline's rows, oldest first, and how
        each backend read the key."""
        scopes = {backend: backend._correlate(key) for backend in backends}
        events = self._direct_events(key, backends)
        outbound = self._direct_outbound(key, backends)
        # A message found by its own id brings the rest of its aggregate.
        for event in events:
            scopes[event.backend_id].add(sequence_keys=[event.sequence_key])
        for item in outbound:
            scopes[item.backend_id].add(coalescing_keys=[item.coalescing_key])
        events |= self._scope_events(scopes)
        outbound |= self._scope_outbound(scopes)
        rows = (
            self._event_rows(events)
            + self._job_rows(events, outbound)
            + self._record_rows(scopes, events, outbound)
            + self._outbound_rows(outbound)
        )
        rows.sort(
            key=lambda row: (row["time"] or datetime.min, KIND_RANK[row["kind"]], row["res_id"])
        )
        for sequence, row in enumerate(rows):
            row["sequence"] = sequence
        meanings = [
            (backend, scope.meanings) for backend, scope in scopes.items() if scope.meanings
        ]
        return rows, meanings

    def _direct_events(self, key, backends):
        """Messages whose own id is the key: correlation id or idempotency key."""
        Event = self.env["connector.event"]
        return Event.search(
            [("correlation_id", "=", key), ("backend_id", "in", backends.ids)], limit=ROW_LIMIT
        ) | Event.search(
            # The unique index of originals: backend, then key.
            [
                ("backend_id", "in", backends.ids),
                ("idempotency_key", "=", key),
                ("duplicate_of_id", "=", False),
            ],
            limit=ROW_LIMIT,
        )

    def _direct_outbound(self, key, backends):
        return self.env["connector.outbound"].search(
            [("correlation_id", "=", key), ("backend_id", "in", backends.ids)], limit=ROW_LIMIT
        )

    def _scope_events(self, scopes):
        # One branch per backend: the (backend, sequence key, occurred_at) index.
        domain = Domain.OR(
            [("backend_id", "=", backend.id), ("sequence_key", "in", sorted(scope.sequence_keys))]
            for backend, scope in scopes.items()
            if scope.sequence_keys
        )
        if domain.is_false():
            return self.env["connector.event"]
        return self.env["connector.event"].search(
            domain, order="occurred_at desc, id desc", limit=ROW_LIMIT
        )

    def _scope_outbound(self, scopes):
        domain = Domain.OR(
            [
                ("coalescing_key", "in", sorted(scope.coalescing_keys)),
                ("backend_id", "=", backend.id),
            ]
            for backend, scope in scopes.items()
            if scope.coalescing_keys
        )
        if domain.is_false():
            return self.env["connector.outbound"]
        return self.env["connector.outbound"].search(domain, order="id desc", limit=ROW_LIMIT)

    # --- rows -------------------------------------------------------------------

    def _row(self, kind, record, time, **values):
        return {
            "kind": kind,
            "time": time,
            "res_model": record._name,
            "res_id": record.id,
            "can_open": True,
            "tone": False,
            **values,
        }

    def _state_label(self, record, field_name="state"):
        field = record._fields.get(field_name)
        if not field or field.type != "selection":
            return False
        return dict(field._description_selection(self.env)).get(record[field_name])

    def _event_rows(self, events):
        return [
            self._row(
                "event",
                event,
                event.received_at,
                done_at=event.processed_at,
                backend_id=event.backend_id.id,
                name=self.env._(
                    "%(topic)s received (%(origin)s)",
                    topic=event.topic,
                    origin=self._state_label(event, "source"),
                ),
                ref=event.sequence_key or event.idempotency_key,
                state=self._state_label(event),
                tone=EVENT_TONES.get(event.state, "info"),
                detail=event.error_message or self._made(event),
            )
            for event in events
        ]

    def _made(self, event):
        # sudo: the record's name, whoever may read the record itself.
        name = event.sudo().record_name
        return name and self.env._("Made %(name)s", name=name)

    def _job_rows(self, events, outbound):
        """The jobs that processed the events, sent the outbound changes, or
        will send the pending ones. Read with the system's rights: support
        staff see a job's state; only job managers open it."""
        cr = self.env.cr
        job_ids, backend_of = set(), {}
        if events:
            self.env["connector.event"].flush_model(["job_ids"])
            cr.execute(
                "SELECT connector_event_id, queue_job_id FROM connector_event_queue_job_rel "
                "WHERE connector_event_id IN %s",
                (tuple(events.ids),),
            )
            for event_id, job_id in cr.fetchall():
                job_ids.add(job_id)
                backend_of[job_id] = events.browse(event_id).backend_id
        Job = self.env["queue.job"].sudo()
        by_uuid = {item.claim_job_uuid: item.backend_id for item in outbound if item.claim_job_uuid}
        by_identity = {
            f"connector.outbound-{item.backend_id.id}-{item.topic}": item.backend_id
            for item in outbound
            if item.state == "pending"
        }
        # A queued event of a batched topic may wait for a later job of its
        # key space than the one it was queued with.
        batch_keys = events.filtered(lambda e: e.state == "queued").sudo()._batch_job_keys()
        by_identity.update(
            (key, event.backend_id) for event, keys in batch_keys.items() for key in keys
        )
        jobs = Job.browse(job_ids)
        if by_uuid:
            found = Job.search([("uuid", "in", list(by_uuid))])
            backend_of.update({job.id: by_uuid[job.uuid] for job in found})
            jobs |= found
        if by_identity:
            found = Job.search(
                [
                    ("identity_key", "in", list(by_identity)),
                    ("state", "in", ("pending", "enqueued", "wait_dependencies")),
                ]
            )
            backend_of.update({job.id: by_identity[job.identity_key] for job in found})
            jobs |= found
        can_open = self.env["queue.job"].has_access("read")
        return [
            self._row(
                "job",
                job,
                job.date_created,
                done_at=job.date_done,
                backend_id=backend_of.get(job.id, self.env["connector.backend"]).id,
                name=job.name,
                state=self._state_label(job),
                tone=JOB_TONES.get(job.state, "info"),
                detail=job.exc_message or job.result,
                can_open=can_open,
            )
            for job in jobs.exists()
        ]

    def _record_rows(self, scopes, events, outbound):
        """The Odoo records the key became: those the connectors name, those
        the events made and those the outbound changes are about. Named for
        everyone (they come from backends the user can read); opened by those
        who may read them."""
        records = {}
        for backend, scope in scopes.items():
            for recordset in scope.records:
                # With the user's rights: a connector may name them as the system.
                for record in recordset.with_env(self.env):
                    records.setdefault((record._name, record.id), (record, backend))
        # What the messages made, and what the outbound changes are about.
        for message in (*events.filtered("res_id"), *outbound.filtered("res_id")):
            if message.res_model not in self.env:
                continue
            record = self.env[message.res_model].browse(message.res_id).exists()
            if record:
                records.setdefault((record._name, record.id), (record, message.backend_id))
        rows = []
        for record, backend in records.values():
            system = record.sudo()
            rows.append(
                self._row(
                    "record",
                    record,
                    system.create_date,
                    backend_id=backend.id,
                    name=f"{record._description}: {system.display_name}",
                    state=self._state_label(system),
                    tone="muted"
                    if system._fields.get("state") and system.state == "cancel"
                    else False,
                    can_open=record.has_access("read"),
                )
            )
        return rows

    def _outbound_rows(self, outbound):
        return [
            self._row(
                "outbound",
                item,
                item.create_date,
                done_at=item.sent_at,
                backend_id=item.backend_id.id,
                name=self.env._(
                    "%(topic)s (%(count)s changes)", topic=item.topic, count=item.change_count
                )
                if item.change_count > 1
                else item.topic,
                ref=item.coalescing_key,
                state=self._state_label(item),
                tone=OUTBOUND_TONES.get(item.state, "info"),
                detail=item.error_message or item.remote_result,
            )
            for item in outbound
        ]

    # --- what the user reads first ----------------------------------------------

    def _summary(self, key, backends, rows, meanings):
        if not rows:
            return self.env._(
                "Nothing is known about “%(key)s” on %(backends)s: no message, job, record or "
                "outbound call. Check the key as the other system shows it: an order number "
                "(#1001), a SKU as on the product, a correlation id. An order that never "
                "reached Odoo is found by its id in the other system.",
                key=key,
                backends=", ".join(backends.mapped("display_name"))
                or self.env._("any backend you can see"),
            )
        counts = dict.fromkeys(KIND_RANK, 0)
        for row in rows:
            counts[row["kind"]] += 1
        lines = [f"{backend.display_name}: {'; '.join(names)}" for backend, names in meanings]
        lines.append(
            self.env._(
                "Messages received: %(events)s, jobs: %(jobs)s, Odoo records: %(records)s, "
                "outbound calls: %(outbound)s.",
                events=counts["event"],
                jobs=counts["job"],
                records=counts["record"],
                outbound=counts["outbound"],
            )
        )
        if any(count >= ROW_LIMIT for count in counts.values()):
            lines.append(self.env._("Only the latest %(n)s of each kind are listed.", n=ROW_LIMIT))
        return "\n".join(lines)
