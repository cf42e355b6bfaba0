from collections import defaultdict

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from odoo.addons.connector_base.components.reconciliation import (
    Comparison,
    Difference,
    Reconciliation,
)
from odoo.addons.connector_base.components.topics import InboundTopic

from ..components.closing import (
    CLOSING_SCHEMA,
    check_closing,
    closing_key,
    missing_sequences,
    ranges_text,
    sequence_ranges,
    totals_by_tender,
)
from ..components.ticket import pos_time, register_key
from .pos_backend import TICKET_TOPIC

CLOSING_ROUTE = "/connector/pos/v1/fleets/<string:fleet>/closings"
CLOSING_TOPIC = "closing"
# The reconciliation of the Z reports of a business day with the tickets received.
CLOSING_RECONCILIATION = "closings"
CLOSING_STATES = [
    ("received", "Received"),
    ("mismatch", "Differs"),
    ("agreed", "Agrees"),
    ("closed", "Day closed"),
]
# Ticket events still to be applied: a closing waits for them before comparing.
# Not 'processing': that state is only seen inside the job applying the
# ticket, which wakes the closing when it is done.
PENDING_TICKETS_SQL = """
SELECT 1
  FROM connector_event
 WHERE backend_id = %(backend_id)s
   AND sequence_key = %(register_key)s
   AND topic = %(topic)s
   AND state IN ('received', 'queued')
   AND payload->>'business_day' = %(day)s
 LIMIT 1
"""
# The ticket numbers received of a register's business day (duplicates are
# stored without payload, so each ticket counts once).
RECEIVED_SEQUENCES_SQL = """
SELECT (payload->>'sequence')::numeric
  FROM connector_event
 WHERE backend_id = %(backend_id)s
   AND sequence_key = %(register_key)s
   AND topic = %(topic)s
   AND duplicate_of_id IS NULL
   AND payload->>'business_day' = %(day)s
   AND jsonb_typeof(payload->'sequence') = 'number'
"""

RECEIVED_IN_RANGE_SQL = """
SELECT count(DISTINCT (payload->>'sequence')::numeric)
  FROM connector_event
 WHERE backend_id = %(backend_id)s
   AND sequence_key = %(register_key)s
   AND topic = %(topic)s
   AND duplicate_of_id IS NULL
   AND payload->>'business_day' = %(day)s
   AND jsonb_typeof(payload->'sequence') = 'number'
   AND (payload->>'sequence')::numeric BETWEEN %(first)s AND %(last)s
"""


def closing_sequence_key(payload):
    """The closings of a store are applied one at a time, in the order closed."""
    return f"closings:{payload['store']}"


class ConnectorPosClosing(models.Model):
    """A register's close of a business day (Z report), as the POS counted it,
    and how it compares with what Odoo received.

    When the closings of every register that sold agree with the tickets,
    the store's day (its Point of Sale session) is closed and posted, Odoo's
    way; while one differs, its mismatches say what is missing and the day
    stays open until the tickets arrive or a manager accepts the difference.
    """

    _name = "connector.pos.closing"
    _description = "POS Register Closing (Z report)"
    _inherit = ["mail.thread"]
    _order = "business_day desc, store_id, register"
    _rec_name = "closing_ref"

    backend_id = fields.Many2one("connector.backend", required=True, ondelete="cascade", index=True)
    store_id = fields.Many2one("connector.pos.store", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    currency_id = fields.Many2one(related="store_id.config_id.currency_id")
    closing_ref = fields.Char(string="Closing ID", required=True, readonly=True)
    register = fields.Char(required=True, readonly=True)
    business_day = fields.Date(required=True, readonly=True)
    closed_at = fields.Datetime(readonly=True)
    first_sequence = fields.Integer(string="First ticket", readonly=True)
    last_sequence = fields.Integer(string="Last ticket", readonly=True)
    ticket_count = fields.Integer(string="Tickets", readonly=True)
    total_ids = fields.One2many(
        "connector.pos.closing.total", "closing_id", string="Totals per tender", readonly=True
    )
    event_id = fields.Many2one("connector.event", readonly=True)
    state = fields.Selection(
        CLOSING_STATES, default="received", required=True, readonly=True, tracking=True
    )
    session_id = fields.Many2one("pos.session", string="Store day", readonly=True)
    mismatch_ids = fields.One2many(
        "connector.reconciliation.mismatch", "pos_closing_id", string="Differences", readonly=True
    )
    accepted_by_id = fields.Many2one("res.users", string="Difference accepted by", readonly=True)
    accepted_at = fields.Datetime(string="Difference accepted at", readonly=True)
    audit_ids = fields.One2many("connector.pos.closing.audit", "closing_id", readonly=True)
    close_error = fields.Text(
        string="Why the day is not closed",
        readonly=True,
        help="What Point of Sale answered when the store's day was closed, if it refused.",
    )

    _register_day_uniq = models.UniqueIndex("(store_id, register, business_day)")

    # --- intake ----------------------------------------------------------------------

    @api.model
    def _receive(self, store, document):
        """Store a checked closing of ``store`` as an event, its closing id its
        idempotency key; the intake's answer."""
        event = self.env["connector.event"]._receive(
            store.backend_id,
            CLOSING_TOPIC,
            document,
            closing_key(store.code, document["closing_id"]),
            occurred_at=pos_time(document["closed_at"]),
            source="upload",
        )
        return {
            "closing_id": document["closing_id"],
            "status": "already_received" if event.state == "duplicate" else "stored",
        }

    @api.model
    def _store(self, backend, event, payload):
        """The closing record of a register's day, made or updated (a register
        may send its Z report again, corrected)."""
        closing = check_closing(payload)
        store = backend._pos_store(closing["store"])
        if not store:
            raise UserError(
                self.env._(
                    "Fleet %(backend)s has no active store %(store)s: add it (Stores tab), "
                    "then requeue this event.",
                    backend=backend.name,
                    store=closing["store"],
                )
            )
        values = {
            "closing_ref": closing["closing_id"],
            "closed_at": pos_time(closing["closed_at"]),
            "first_sequence": closing["first_sequence"],
            "last_sequence": closing["last_sequence"],
            "ticket_count": closing["ticket_count"],
            "event_id": event.id if event else False,
            "close_error": False,
            "total_ids": [(5, 0, 0)]
            + [
                (0, 0, {"tender_type": tender, "amount": float(value)})
                for tender, value in totals_by_tender(closing).items()
            ],
        }
        record = self.search(
            [
                ("store_id", "=", store.id),
                ("register", "=", closing["register"]),
                ("business_day", "=", closing["business_day"]),
            ],
            limit=1,
        )
        if record.state == "closed":
            raise UserError(
                self.env._(
                    "Register %(register)s of %(store)s sent its closing of %(day)s again, "
                    "the day is closed already: nothing changes.",
                    register=record.register,
                    store=store.display_name,
                    day=record.business_day,
                )
            )
        if record:
            record.write({**values, "state": "received"})
            return record
        return self.create(
            {
                **values,
                "backend_id": backend.id,
                "store_id": store.id,
                "register": closing["register"],
                "business_day": closing["business_day"],
            }
        )

    # --- comparison -------------------------------------------------------------------

    def _label(self):
        return f"{self.store_id.code}/{self.register} {self.business_day}"

    def _received_sequences(self):
        """The ticket numbers Odoo received of this register's day."""
        self.ensure_one()
        self.env["connector.event"].flush_model()
        self.env.cr.execute(
            RECEIVED_SEQUENCES_SQL,
            {
                "backend_id": self.backend_id.id,
                "register_key": f"{self.store_id.code}/{self.register}",
                "topic": TICKET_TOPIC,
                "day": fields.Date.to_string(self.business_day),
            },
        )
        return [int(row[0]) for row in self.env.cr.fetchall()]

    def _received_every_number(self):
        """Whether every ticket number from first to last was received."""
        self.ensure_one()
        self.env["connector.event"].flush_model()
        self.env.cr.execute(
            RECEIVED_IN_RANGE_SQL,
            {
                "backend_id": self.backend_id.id,
                "register_key": f"{self.store_id.code}/{self.register}",
                "topic": TICKET_TOPIC,
                "day": fields.Date.to_string(self.business_day),
                "first": self.first_sequence,
                "last": self.last_sequence,
            },
        )
        return self.env.cr.fetchone()[0] == self.last_sequence - self.first_sequence + 1

    def _paid_in_odoo(self):
        """``{payment method: amount}`` of the register's orders of the day in Odoo."""
        self.ensure_one()
        return dict(
            self.env["pos.payment"]._read_group(
                [
                    ("pos_order_id.connector_pos_store_id", "=", self.store_id.id),
                    ("pos_order_id.connector_pos_register", "=", self.register),
                    ("pos_order_id.session_id.connector_pos_business_day", "=", self.business_day),
                ],
                ["payment_method_id"],
                ["amount:sum"],
            )
        )

    def _counted(self):
        """``{payment method: amount}`` the Z report counts, its tenders mapped
        as the tickets' are; and the tenders it counts money in that are not
        mapped."""
        self.ensure_one()
        methods = self.env["connector.pos.tender"]._methods_of(self.store_id)
        counted = defaultdict(float)
        unmapped = []
        for total in self.total_ids:
            method = methods.get(total.tender_type)
            if method:
                counted[method] += total.amount
            elif not self.store_id.config_id.currency_id.is_zero(total.amount):
                # A tender the store did not take this day (a legacy POS
                # lists every payment type, zeros included) needs no method.
                unmapped.append(total.tender_type)
        return counted, unmapped

    def _differences(self):
        """What differs between this Z report and what Odoo received, as the
        reconciliation framework records it (one mismatch per key)."""
        self.ensure_one()
        label = self._label()
        data = {"closing_id": self.id}
        differences = []
        if self.backend_id.pos_mode == "pull":
            # A polled POS's closure carries its totals, not the ticket numbers
            # it covers; its cursor misses no sale: the amounts are compared.
            return differences + self._amount_differences(label, data)
        received = self._received_sequences()
        first, last = self.first_sequence, self.last_sequence
        missing = missing_sequences(first, last, received)
        if missing:
            count = sum(end - start + 1 for start, end in missing)
            differences.append(
                Difference(
                    key=f"{label} missing tickets",
                    what=self.env._(
                        "%(count)s ticket(s) of the Z report not received: %(numbers)s",
                        count=count,
                        numbers=ranges_text(missing),
                    ),
                    odoo_value=self.env._("%s received", len(received)),
                    remote_value=self.env._(
                        "%(count)s (%(first)s-%(last)s)",
                        count=self.ticket_count,
                        first=first,
                        last=last,
                    ),
                    fix_data=data,
                )
            )
        beyond = sorted(number for number in received if not first <= number <= last)
        if beyond:
            differences.append(
                Difference(
                    key=f"{label} tickets beyond the Z report",
                    what=self.env._(
                        "Tickets received of this day that the Z report (%(first)s-%(last)s) "
                        "does not count: %(numbers)s",
                        first=first,
                        last=last,
                        numbers=ranges_text(sequence_ranges(beyond)),
                    ),
                    odoo_value=str(len(beyond)),
                    remote_value="0",
                    fix_data=data,
                )
            )
        if not missing and not beyond and len(received) != self.ticket_count:
            differences.append(
                Difference(
                    key=f"{label} ticket count",
                    what=self.env._("The number of tickets differs"),
                    odoo_value=str(len(received)),
                    remote_value=str(self.ticket_count),
                    fix_data=data,
                )
            )
        return differences + self._amount_differences(label, data)

    def _amount_differences(self, label, data):
        """What differs between the Z report's totals per tender and the
        payments of the register's orders of the day in Odoo."""
        differences = []
        counted, unmapped = self._counted()
        for tender in unmapped:
            differences.append(
                Difference(
                    key=f"{label} tender {tender}",
                    what=self.env._(
                        "The tender %(tender)s is not mapped to a payment method (Tenders tab)",
                        tender=tender,
                    ),
                    remote_value=tender,
                    fix_data=data,
                )
            )
        paid = self._paid_in_odoo()
        currency = self.currency_id
        for method in sorted(set(counted) | set(paid), key=lambda m: m.id):
            odoo, pos = paid.get(method, 0.0), counted.get(method, 0.0)
            if currency.compare_amounts(odoo, pos):
                differences.append(
                    Difference(
                        key=f"{label} {method.name}",
                        what=self.env._(
                            "%(method)s: Odoo has %(difference)s %(more)s than the Z report",
                            method=method.name,
                            difference=f"{abs(odoo - pos):.{currency.decimal_places}f}",
                            more=self.env._("more") if odoo > pos else self.env._("less"),
                        ),
                        odoo_value=f"{odoo:.{currency.decimal_places}f}",
                        remote_value=f"{pos:.{currency.decimal_places}f}",
                        fix_data=data,
                    )
                )
        return differences

    def _counted_cash(self, session):
        """The cash in the drawer at the close: what the day started with,
        plus the cash the Z reports of the day count."""
        cash_methods = session.payment_method_ids.filtered("is_cash_count")
        counted = 0.0
        for closing in self:
            by_method, _unmapped = closing._counted()
            counted += sum(value for method, value in by_method.items() if method in cash_methods)
        return session.cash_register_balance_start + counted

    # --- what support staff do ------------------------------------------------------

    def action_recheck(self):
        """Compare the closings of this day with the tickets received again now."""
        self.env["connector.pos.closing.audit"]._log(self, "recheck")
        for (backend, day), _closings in self.grouped(
            lambda c: (c.backend_id, c.business_day)
        ).items():
            run = backend.sudo()._pos_reconcile_closings(day)
            if run.state == "failed":
                raise UserError(run.error_message)
        return True

    def action_accept_difference(self):
        """The manager accepts what differs (tickets the store lost, a miscounted
        drawer): the store's day is closed as Odoo has it, the cash counted as
        the Z report says; the acceptance is recorded on each mismatch."""
        if not self.env.user.has_group("connector_base.group_connector_manager"):
            raise AccessError(
                self.env._("Only connector managers may accept the difference of a closing.")
            )
        mismatches = self.mismatch_ids.filtered(lambda m: m.state == "open")
        if not mismatches:
            raise UserError(self.env._("This closing has no open difference to accept."))
        mismatches.action_accept()
        return True

    def _difference_accepted(self):
        """The closings whose every mismatch is now accepted agree: the day of
        their store is closed when its other registers agree too."""
        agreed = self.filtered(
            lambda c: c.state == "mismatch" and all(m.state != "open" for m in c.mismatch_ids)
        )
        agreed.write(
            {
                "state": "agreed",
                "accepted_by_id": self.env.user.id,
                "accepted_at": fields.Datetime.now(),
            }
        )
        self.env["connector.pos.closing.audit"]._log(
            agreed, "accept", "; ".join(agreed.mismatch_ids.mapped("what"))
        )
        for closing in agreed:
            closing.message_post(
                body=self.env._(
                    "Difference accepted by %(user)s: %(what)s",
                    user=self.env.user.name,
                    what="; ".join(closing.mismatch_ids.mapped("what")),
                )
            )
        for (backend, store, day), _closings in agreed.grouped(
            lambda c: (c.backend_id, c.store_id, c.business_day)
        ).items():
            backend._pos_close_store_day(store, day)


class ConnectorPosClosingTotal(models.Model):
    """What a Z report counts for one tender."""

    _name = "connector.pos.closing.total"
    _description = "POS Closing Total per Tender"
    _order = "closing_id, tender_type"

    closing_id = fields.Many2one(
        "connector.pos.closing", required=True, ondelete="cascade", index=True
    )
    currency_id = fields.Many2one(related="closing_id.currency_id")
    tender_type = fields.Char(string="Tender", required=True)
    amount = fields.Monetary()


class ConnectorEvent(models.Model):
    _inherit = "connector.event"  # pylint: disable=consider-merging-classes-inherited

    def _fail(self, kind, exc, trace=None):
        """A ticket that fails is no longer one a closing should wait for: what
        waits on its register is looked at again, as when a ticket is applied."""
        result = super()._fail(kind, exc, trace)
        tickets = self.filtered(
            lambda e: (
                e.topic == TICKET_TOPIC and e.sequence_key and e.backend_id.backend_type == "pos"
            )
        )
        if tickets:
            self.env["connector.event"]._wake_waiters_of(tickets)
        return result


class ConnectorReconciliationMismatch(models.Model):
    """A difference of a Z report belongs to its closing."""

    _inherit = "connector.reconciliation.mismatch"

    pos_closing_id = fields.Many2one(
        "connector.pos.closing",
        string="POS closing",
        readonly=True,
        ondelete="cascade",
        index="btree_not_null",
    )

    def action_accept(self):
        """Accepting the last difference of a closing lets its store's day close:
        a connector manager's decision, as it posts the day as Odoo has it."""
        closings = self.filtered(lambda m: m.state == "open").pos_closing_id
        if closings and not self.env.user.has_group("connector_base.group_connector_manager"):
            raise AccessError(
                self.env._("Only connector managers may accept the difference of a closing.")
            )
        result = super().action_accept()
        if closings:
            closings.sudo()._difference_accepted()
        return result


class ConnectorReconciliationRun(models.Model):
    _inherit = "connector.reconciliation.run"

    def _record(self, comparison):
        """After a comparison of closings: each closing's state, and the days
        that now agree closed."""
        result = super()._record(comparison)
        if self.kind == CLOSING_RECONCILIATION and self.backend_id.backend_type == "pos":
            self.backend_id._pos_after_closing_run(self)
        return result


class PosSession(models.Model):
    _inherit = "pos.session"  # pylint: disable=consider-merging-classes-inherited

    def _connector_pos_close(self, counted_cash):
        """Close the store's day as a cashier closes it in Point of Sale: the
        cash counted, then the session closed and posted. A refusal of Point
        of Sale is raised with its message."""
        self.ensure_one()
        if self.config_id.cash_control:
            result = self.post_closing_cash_details(counted_cash)
            if not result.get("successful", True):
                raise UserError(result.get("message") or str(result))
        result = self.close_session_from_ui()
        if not result.get("successful"):
            raise UserError(
                self.env._(
                    "Point of Sale did not close %(session)s: %(message)s",
                    session=self.name,
                    message=result.get("message") or result,
                )
            )


class ConnectorBackend(models.Model):
    """The Z reports of a POS fleet: their topic, their reconciliation, and
    the close of a store's day."""

    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    pos_closing_ids = fields.One2many("connector.pos.closing", "backend_id", string="Closings")
    pos_closing_open_count = fields.Integer(
        string="Open closes",
        compute="_compute_pos_closing_open_count",
        help="Register closings whose store's day is not closed yet.",
    )

    def _compute_pos_closing_open_count(self):
        counts = dict(
            self.env["connector.pos.closing"]._read_group(
                [("backend_id", "in", self.ids), ("state", "!=", "closed")],
                ["backend_id"],
                ["__count"],
            )
        )
        for backend in self:
            backend.pos_closing_open_count = counts.get(backend._origin, 0)

    def action_pos_view_closings(self):
        """The fleet's store closes, those of days not closed first."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_pos.action_connector_pos_closing"
        )
        action["domain"] = [("backend_id", "=", self.id)]
        return action

    def _connector_topics(self):
        topics = super()._connector_topics()
        if self.backend_type != "pos":
            return topics
        return {
            **topics,
            CLOSING_TOPIC: InboundTopic(
                flow="tickets_in",
                schema=CLOSING_SCHEMA,
                handler="_pos_apply_closing",
                sequence_key=closing_sequence_key,
                prerequisite="_pos_closing_blocked",
                # A register's wrong closing holds no other register's.
                failed_holds_key=False,
                description="A register's close of day (Z report).",
            ),
        }

    def _connector_reconciliations(self):
        if self.backend_type != "pos":
            return super()._connector_reconciliations()
        return {
            **super()._connector_reconciliations(),
            CLOSING_RECONCILIATION: Reconciliation(
                kind=CLOSING_RECONCILIATION,
                label="Store closes (Z reports)",
                compare="_pos_compare_closings",
                period="day",
                flow="tickets_in",
                description="Each register's Z report of a business day against the tickets "
                "received: ticket numbers, count, and amounts per mapped tender.",
            ),
        }

    # --- the closing event --------------------------------------------------------------

    def _pos_closing_blocked(self, event, payload):
        """A closing waits while tickets of its register and day are still to
        be applied: compared earlier, it would find them missing. It waits on
        its register's sequence key, which each ticket applied (or failed)
        wakes."""
        if not event or not self._pos_tickets_pending(payload):
            return None
        return (
            self.env._(
                "Waiting for the tickets of register %(register)s of %(day)s still queued, "
                "to compare them with the Z report.",
                register=f"{payload['store']}/{payload['register']}",
                day=payload["business_day"],
            ),
            register_key(payload),
        )

    def _pos_tickets_pending(self, payload):
        """Whether tickets of the register and business day of ``payload`` are
        still to be applied (received or queued)."""
        self.env["connector.event"].flush_model()
        self.env.cr.execute(
            PENDING_TICKETS_SQL,
            {
                "backend_id": self.id,
                "register_key": register_key(payload),
                "topic": TICKET_TOPIC,
                "day": payload["business_day"],
            },
        )
        return bool(self.env.cr.fetchone())

    def _pos_apply_closing(self, event, payload):
        """Apply one closing: the handler of the ``closing`` topic."""
        closing = self.env["connector.pos.closing"]._store(self, event, payload)
        run = self._pos_reconcile_closings(closing.business_day)
        if run.state == "failed":
            raise UserError(run.error_message)
        if closing.close_error:
            raise UserError(closing.close_error)
        return closing

    def _pos_apply_ticket(self, event, payload):
        """A ticket applied may be one a closing of its day misses: the closing
        is compared again. (One waiting for its register's tickets is woken
        by the framework, which wakes what waits on a ticket's register.)"""
        record = super()._pos_apply_ticket(event, payload)
        differing = self._pos_differing_closing(payload)
        # Compared again once no ticket number is missing any more and the
        # register's others are applied: a lost batch of 500 sent again makes
        # one comparison, not 500.
        if (
            differing
            and (self.pos_mode == "pull" or differing._received_every_number())
            and not self._pos_tickets_pending(payload)
        ):
            self._pos_reconcile_closings(fields.Date.to_date(payload["business_day"]))
            self.env["connector.event"]._batch_memo().pop(
                ("connector_pos.differing", self.id), None
            )
        return record

    def _pos_differing_closing(self, payload):
        """The closing of the ticket's register and day that differs from the
        tickets, if any. The fleet's differing closings are read once per
        batch job of tickets (almost always none), not once per ticket."""
        Closing = self.env["connector.pos.closing"]
        memo = self.env["connector.event"]._batch_memo()
        key = ("connector_pos.differing", self.id)
        if key not in memo:
            memo[key] = {
                (closing.store_id.code, closing.register, closing.business_day): closing.id
                for closing in Closing.search(
                    [("backend_id", "=", self.id), ("state", "=", "mismatch")]
                )
            }
        day = fields.Date.to_date(payload["business_day"])
        return Closing.browse(memo[key].get((payload["store"], payload["register"], day)))

    # --- the reconciliation ---------------------------------------------------------------

    def _pos_reconcile_closings(self, day):
        """Compare the closings of ``day`` still open with the tickets received,
        now, as a run of the reconciliation framework; returns the run."""
        self.ensure_one()
        declaration = self._get_reconciliation(CLOSING_RECONCILIATION)
        # One comparison of a fleet's day at a time: two registers closing
        # side by side would each record the other's differences.
        self.env.cr.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"connector_pos.closings-{self.id}-{day}",),
        )
        start, end = declaration.window(day)
        run = (
            self.env["connector.reconciliation.run"]
            .sudo()
            .create(
                {
                    "backend_id": self.id,
                    "kind": CLOSING_RECONCILIATION,
                    "kind_label": declaration.label,
                    "window_start": start,
                    "window_end": end,
                }
            )
        )
        run._execute()
        return run

    def _pos_open_closings(self, day):
        return self.env["connector.pos.closing"].search(
            [
                ("backend_id", "=", self.id),
                ("business_day", "=", day),
                ("state", "in", ("received", "mismatch", "agreed")),
            ]
        )

    def _pos_compare_closings(self, run):
        """The compare method of the ``closings`` reconciliation: the closings
        of the run's day not closed yet, each against the tickets received."""
        closings = self._pos_open_closings(run.window_start.date())
        differences = [difference for closing in closings for difference in closing._differences()]
        return Comparison(compared=len(closings), differences=differences)

    def _pos_after_closing_run(self, run):
        """Each compared closing agrees or differs; the stores whose closings
        all agree get their day closed."""
        Mismatch = self.env["connector.reconciliation.mismatch"].sudo()
        mismatches = Mismatch.search(
            [
                ("backend_id", "=", self.id),
                ("kind", "=", CLOSING_RECONCILIATION),
                ("window_start", "=", run.window_start),
                ("state", "in", ("open", "accepted")),
                ("pos_closing_id", "=", False),
            ]
        )
        for mismatch in mismatches:
            mismatch.pos_closing_id = (mismatch.fix_data or {}).get("closing_id")
        closings = self._pos_open_closings(run.window_start.date())
        for closing in closings:
            differs = any(m.state == "open" for m in closing.mismatch_ids)
            state = "mismatch" if differs else "agreed"
            if closing.state != state:
                closing.state = state
        for store in closings.filtered(lambda c: c.state == "agreed").store_id:
            try:
                with self.env.cr.savepoint():
                    self._pos_close_store_day(store, run.window_start.date())
            except UserError as exc:
                # Kept on the closings for support; the comparison stays recorded.
                closings.filtered(lambda c, s=store: c.store_id == s).close_error = str(exc)

    def _pos_close_store_day(self, store, day):
        """Close ``store``'s day when every register that sold has a closing
        that agrees (or whose difference was accepted). Returns whether it did."""
        closings = self.env["connector.pos.closing"].search(
            [("store_id", "=", store.id), ("business_day", "=", day)]
        )
        if not closings or any(c.state not in ("agreed", "closed") for c in closings):
            return False
        session = self.env["pos.session"].search(
            [
                ("config_id", "=", store.config_id.id),
                ("connector_pos_business_day", "=", day),
                ("rescue", "=", False),
            ],
            order="id desc",
            limit=1,
        )
        sold = set()
        if session:
            sold = {
                register
                for (register,) in self.env["pos.order"]._read_group(
                    [("session_id", "=", session.id)], ["connector_pos_register"]
                )
                if register
            }
        if sold - set(closings.mapped("register")):
            return False  # a register that sold has not closed yet
        if session and session.state != "closed":
            session._connector_pos_close(closings._counted_cash(session))
        closings.write({"state": "closed", "session_id": session.id, "close_error": False})
        return True
