import json
from datetime import timedelta

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.http_client import RemoteRetryableError
from odoo.addons.connector_base.components.topics import InboundTopic
from odoo.addons.queue_job.exception import RetryableJobError

from ..components.closing import closing_key
from ..components.legacy import (
    LegacyMappingError,
    closing_day,
    closure_payload,
    closure_time,
    sale_tickets,
)
from ..components.ticket import pos_time, ticket_time
from .connector_pos_closing import CLOSING_TOPIC
from .pos_backend import TICKET_TOPIC

PULL_FLOW = "tickets_poll"
LEGACY_WEBHOOK_ROUTE = "/connector/pos/v1/fleets/<string:fleet>/legacy-webhooks"
# What the poller reads of the legacy API, in this order: what the sales
# refer to first, then the sales, then the register closures read before
# the sales (see _pos_pull).
REFERENCE_COLLECTIONS = ("outlets", "registers", "taxes", "payment_types", "products", "customers")
CLOSURES = "register_closures"
SALES = "sales"
STEPS = (*REFERENCE_COLLECTIONS, "closures_seen", SALES, CLOSURES)
DEFAULT_PAGE_SIZE = 200
# A sale or closure the fleet cannot convert yet (its outlet without a store,
# a payment type without a tender): kept as read, to fail with its reason
# and be converted when requeued, while the read and the other stores go on.
LEGACY_TOPIC = "legacy.record"
LEGACY_SCHEMA = {
    "collection": {"type": "string", "required": True, "allowed": [SALES, CLOSURES]},
    "record": {
        "type": "dict",
        "required": True,
        "schema": {"id": {"type": "string", "required": True, "empty": False}},
    },
}


def legacy_key(payload):
    """A legacy record's versions are converted in order, a failed one holding the next."""
    return f"legacy:{payload['collection']}:{payload['record']['id']}"


def legacy_message(collection, record, occurred_at):
    return {
        "topic": LEGACY_TOPIC,
        "payload": {"collection": collection, "record": record},
        "idempotency_key": f"legacy:{collection}:{record['id']}:{record.get('version')}",
        "occurred_at": occurred_at,
    }


# The ticket numbers of a register's business day read so far (duplicates
# excepted); sales and returns only, as the legacy closure counts them.
SEQUENCES_SQL = """
SELECT min((payload->>'sequence')::numeric), max((payload->>'sequence')::numeric), count(*)
  FROM connector_event
 WHERE backend_id = %(backend_id)s
   AND sequence_key = %(register_key)s
   AND topic = %(topic)s
   AND duplicate_of_id IS NULL
   AND payload->>'business_day' = %(day)s
   AND payload->>'type' IN ('sale', 'return')
"""


class ConnectorPosLegacyRecord(models.Model):
    """A record of a polled legacy POS that its sales refer to by id: an
    outlet (mapped to a store), a register, a payment type (mapped to a
    tender), a tax (its name is the fleet's tax code), a product (its SKU),
    a customer. Read by the poller, by cursor, as the POS changes them.

    Also a sale that a return names but that was rung up before the fleet's
    "Read sales from": read by its id when the return was, never a ticket
    (the cursor is past it), kept so that the return fails saying so rather
    than waiting for it."""

    _name = "connector.pos.legacy.record"
    _description = "Legacy POS Record"
    _order = "backend_id, collection, name"

    backend_id = fields.Many2one("connector.backend", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    collection = fields.Selection(
        [
            ("outlets", "Outlet"),
            ("registers", "Register"),
            ("taxes", "Tax"),
            ("payment_types", "Payment type"),
            ("products", "Product"),
            ("customers", "Customer"),
            ("sales", "Sale before Read sales from"),
        ],
        required=True,
        readonly=True,
    )
    legacy_id = fields.Char(string="ID in the POS", required=True, readonly=True)
    name = fields.Char(readonly=True)
    code = fields.Char(
        readonly=True,
        help="Register: its code on the tickets. Tax: the tax code (map it in Tax codes). "
        "Product: its SKU. Customer: its loyalty code.",
    )
    rate = fields.Char(string="Tax rate", readonly=True)
    barcode = fields.Char(readonly=True)
    email = fields.Char(readonly=True)
    phone = fields.Char(readonly=True)
    time_zone = fields.Char(readonly=True)
    outlet_ref = fields.Char(string="Outlet ID", readonly=True)
    sale_date = fields.Datetime(readonly=True, help="Sale: when it was rung up.")
    store_id = fields.Many2one(
        "connector.pos.store",
        domain="[('backend_id', '=', backend_id)]",
        help="Outlet: the fleet's store its sales and closures are of.",
    )
    tender_type = fields.Selection(
        lambda self: self.env["connector.pos.tender"]._fields["tender_type"].selection,
        string="Tender",
        help="Payment type: the tender its payments are (Tenders tab maps the tender).",
    )

    _legacy_uniq = models.Constraint(
        "UNIQUE (backend_id, collection, legacy_id)", "This legacy record is known already."
    )

    @api.depends("collection", "name", "code")
    def _compute_display_name(self):
        for record in self:
            record.display_name = record.name or record.code or record.legacy_id

    @api.model
    def _values(self, collection, data):
        """What is kept of a record of ``collection`` as the legacy API gives it."""
        values = {"name": data.get("name")}
        if collection == "outlets":
            values["time_zone"] = data.get("time_zone")
        elif collection == "registers":
            values.update(code=data.get("name"), outlet_ref=data.get("outlet_id"))
        elif collection == "taxes":
            values.update(code=data.get("name"), rate=str(data.get("rate") or 0))
        elif collection == "products":
            values.update(code=data.get("sku"), barcode=data.get("barcode"))
        elif collection == "customers":
            values.update(
                name=data.get("customer_code"),
                code=data.get("customer_code"),
                email=data.get("email"),
                phone=data.get("phone"),
            )
        elif collection == "sales":
            values.update(
                name=data.get("receipt_number") or data["id"],
                outlet_ref=data.get("outlet_id"),
                sale_date=pos_time(data["sale_date"]),
            )
        return values

    @api.model
    def _store_page(self, backend, collection, records):
        """Create or update the records of one page read."""
        known = {
            record.legacy_id: record
            for record in self.search(
                [
                    ("backend_id", "=", backend.id),
                    ("collection", "=", collection),
                    ("legacy_id", "in", [data["id"] for data in records]),
                ]
            )
        }
        new = []
        for data in records:
            values = self._values(collection, data)
            record = known.get(data["id"])
            if record:
                record.write(values)
            else:
                new.append(
                    {
                        **values,
                        "backend_id": backend.id,
                        "collection": collection,
                        "legacy_id": data["id"],
                    }
                )
        self.create(new)

    @api.model
    def _refs(self, backend, product_ids=(), customer_ids=()):
        """What the legacy ids mean for ``backend`` (see ``components/legacy.py``):
        every outlet, register, tax and payment type, and the products and
        customers named."""
        domain = [
            ("backend_id", "=", backend.id),
            "|",
            ("collection", "in", ("outlets", "registers", "taxes", "payment_types")),
            "&",
            ("collection", "in", ("products", "customers")),
            ("legacy_id", "in", list(set(product_ids) | set(customer_ids))),
        ]
        refs = {name: {} for name in REFERENCE_COLLECTIONS}
        for record in self.search(domain):
            refs[record.collection][record.legacy_id] = {
                "outlets": lambda r: {
                    "name": r.name,
                    "store": r.store_id.code,
                    "time_zone": r.time_zone,
                },
                "registers": lambda r: {"code": r.code, "outlet_id": r.outlet_ref},
                "taxes": lambda r: {"code": r.code, "rate": r.rate},
                "payment_types": lambda r: {"name": r.name, "tender": r.tender_type},
                "products": lambda r: {"sku": r.code, "barcode": r.barcode},
                "customers": lambda r: {"code": r.code, "email": r.email, "phone": r.phone},
            }[record.collection](record)
        return refs


class ConnectorBackend(models.Model):
    """Pull mode: the fleet's tickets read from a legacy POS back office, by cursor."""

    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    pos_page_size = fields.Integer(
        string="Records per read",
        default=DEFAULT_PAGE_SIZE,
        help="Pull mode: records asked of the POS per request (page_size).",
    )
    pos_prices_include_tax = fields.Boolean(
        string="Shelf prices include taxes",
        default=True,
        help="Pull mode: the stores' prices include taxes (map the tax codes to "
        "price-included taxes). The legacy API gives prices without taxes: the "
        "connector turns them back into the shelf prices.",
    )
    # The records to map (outlets, payment types) and those to look at
    # (registers, taxes); products and customers are many, and only read.
    pos_pull_since = fields.Datetime(
        string="Read sales from",
        help="Pull mode: sales made before this time, and register closures before it, "
        "are read (the cursor goes past them) but not applied: the POS's history before "
        "Odoo took over. Empty: every sale the POS has.",
    )
    pos_legacy_record_ids = fields.One2many(
        "connector.pos.legacy.record",
        "backend_id",
        string="Legacy POS records",
        domain=[("collection", "in", ("outlets", "payment_types", "registers", "taxes"))],
    )
    pos_pull_cursors = fields.Text(
        string="Read up to",
        compute="_compute_pos_pull_cursors",
        help="Pull mode: the version each collection of the POS was read up to.",
    )

    def _compute_pos_pull_cursors(self):
        for backend in self:
            cursors = backend._pos_pull_state() if backend.backend_type == "pos" else {}
            backend.pos_pull_cursors = (
                "\n".join(f"{name}: {cursors[name]}" for name in STEPS if name in cursors) or False
            )

    def _connector_topics(self):
        topics = super()._connector_topics()
        if self.backend_type != "pos":
            return topics
        return {
            **topics,
            LEGACY_TOPIC: InboundTopic(
                flow=PULL_FLOW,
                schema=LEGACY_SCHEMA,
                handler="_pos_apply_legacy_record",
                sequence_key=legacy_key,
                description="A sale or register closure of the polled POS that names what "
                "the fleet has not mapped: converted once it is.",
            ),
        }

    def _pos_apply_legacy_record(self, event, payload):
        """Convert a sale or closure kept as read, now that the fleet may map
        what it names: its tickets or closing are received as a page's are.
        Still unmapped: fails naming what to map."""
        if payload["collection"] == SALES:
            return self._pos_receive_sales([payload["record"]], strict=True)
        return self._pos_receive_closures([payload["record"]], strict=True)

    def _connector_flows(self):
        flows = super()._connector_flows()
        if self.backend_type != "pos":
            return flows
        return [
            *flows,
            {
                "code": PULL_FLOW,
                "name": "Tickets polled (pull mode)",
                "mode": "scheduled",
                "interval_minutes": 2,
                "sla_lag_minutes": 15,
            },
        ]

    # --- the state of the pull: the policy's watermark ------------------------------

    def _pos_pull_state(self, lock=False):
        """``{collection: version read up to, "polled_at": ...}`` of the flow's
        watermark; ``lock``: the policy row locked until the transaction ends,
        so that one page of a fleet is read and stored at a time."""
        self.ensure_one()
        policy = self._policy(PULL_FLOW)
        if lock:
            self.env.cr.execute(
                "SELECT watermark FROM connector_sync_policy WHERE id = %s FOR UPDATE",
                (policy.id,),
            )
            policy.invalidate_recordset(["watermark"])
        try:
            return json.loads(policy.watermark or "{}")
        except ValueError:
            return {}

    def _pos_set_pull_state(self, **values):
        self.ensure_one()
        policy = self._policy(PULL_FLOW)
        state = self._pos_pull_state()
        state.update(values)
        policy.sudo().watermark = json.dumps(state, sort_keys=True)

    # --- scheduling --------------------------------------------------------------------

    @api.model
    def _cron_pos_pull(self):
        """Start the poll of each running pull fleet whose flow's interval has passed."""
        now = fields.Datetime.now()
        fleets = self.search(
            [("backend_type", "=", "pos"), ("pos_mode", "=", "pull"), ("state", "=", "running")]
        )
        for backend in fleets:
            policy = backend._policy(PULL_FLOW)
            polled = backend._pos_pull_state().get("polled_at")
            if not policy.enabled or not policy._interval_passed(polled, now):
                continue
            backend._pos_start_pull()

    def action_pos_pull(self):
        """Poll the POS now (the flow's schedule does it on its own)."""
        for backend in self:
            if backend.pos_mode != "pull":
                raise UserError(
                    self.env._("%s is not in pull mode: its stores upload.", backend.name)
                )
            if not backend._pos_start_pull():
                backend._pos_hint_pull()  # after the read running
        return True

    def _pos_hint_pull(self):
        """The POS says something changed: poll now, unless a poll waits to
        start (its job's identity). The schedule's bookkeeping is not
        written: a read holds it while it stores its page, a webhook must
        not wait for that."""
        self.ensure_one()
        self._pos_queue_pull(STEPS[0])

    @api.depends("backend_type", "pos_fleet_code", "pos_mode")
    def _compute_webhook_address(self):
        return super()._compute_webhook_address()

    def _webhook_address(self):
        if self.backend_type != "pos" or self.pos_mode != "pull" or not self.pos_fleet_code:
            return super()._webhook_address()
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        return base + LEGACY_WEBHOOK_ROUTE.replace("<string:fleet>", self.pos_fleet_code)

    def _pos_start_pull(self):
        """Start a poll now; False when a read of the fleet is running (it
        holds the flow's state while it stores its page): that poll goes on."""
        self.ensure_one()
        policy = self._policy(PULL_FLOW)
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    "SELECT 1 FROM connector_sync_policy WHERE id = %s FOR UPDATE NOWAIT",
                    (policy.id,),
                    log_exceptions=False,
                )
        except psycopg2.errors.LockNotAvailable:
            return False
        self._pos_set_pull_state(polled_at=fields.Datetime.to_string(fields.Datetime.now()))
        self._pos_queue_pull(STEPS[0])
        return True

    def _pos_queue_pull(self, step, until=None):
        """Queue the read of the next page of ``step``, on the flow's channel:
        a fleet's poll never waits for another fleet's, nor for the tickets
        being applied (their own flow)."""
        policy = self._policy(PULL_FLOW)
        # A throttled read spends no attempt; a failing POS many.
        self._connector_delay(
            channel=policy.channel,
            identity_key=f"connector_pos.pull-{self.id}-{step}",
            description=f"{self.name}: read the POS's {step}",
        )._pos_pull(step, until=until)

    # --- one page -------------------------------------------------------------------------

    def _pos_legacy_client(self):
        self.ensure_one()
        token = self.sudo().api_token
        if not (self.base_url and token):
            raise UserError(
                self.env._(
                    "Enter the address of the POS's API and its access token on %s first.",
                    self.name,
                )
            )
        return self._http_client(headers={"Authorization": f"Bearer {token}"})

    def _test_connection(self):
        if self.backend_type != "pos" or self.pos_mode != "pull":
            return super()._test_connection()
        answer = self._pos_legacy_client().get("outlets", params={"page_size": 200}).json()
        outlets = answer.get("data") or []
        return self.env._(
            "Connected: the POS has %(count)s outlet(s): %(names)s.",
            count=len(outlets),
            names=", ".join(o.get("name") or o["id"] for o in outlets) or "-",
        )

    def _pos_get(self, path, params=None):
        """The JSON answer of a GET of the POS's API, in a queue job: a
        throttled or failing POS postpones the job to when it asks
        (Retry-After), else with back-off; a throttle spends no attempt."""
        try:
            with self._retry_on_remote_fault():
                return self._pos_legacy_client().get(path, params=params).json()
        except RetryableJobError as exc:
            cause = exc.__cause__
            if isinstance(cause, RemoteRetryableError) and cause.status == 429:
                exc.ignore_retry = True  # the POS's pace, not a failure of the read
            raise

    def _pos_read_page(self, collection, after, before=None):
        """One page of ``collection`` read after the version ``after``:
        ``(records, version max or None)``."""
        params = {"after": after, "page_size": self.pos_page_size or DEFAULT_PAGE_SIZE}
        if before is not None:
            params["before"] = before
        answer = self._pos_get(collection, params)
        records = answer.get("data") or []
        version = (answer.get("version") or {}).get("max")
        return records, version

    def _pos_pull(self, step, until=None):
        """Read one page of the POS (the queue job) and store what it holds,
        then advance the cursor, in this transaction: a crash or a retry reads
        the page again, and what it stores again is a duplicate.

        The steps: the records the sales refer to; the version of the newest
        register closure (``closures_seen``); the sales to the last one;
        then the closures up to that version, every sale of their day read
        before them. The next page or step is a job of its own.
        """
        self.ensure_one()
        if self.pos_mode != "pull" or self.state not in ("running", "circuit_open"):
            return "not polling: the fleet is not running in pull mode"
        state = self._pos_pull_state(lock=True)
        collection = CLOSURES if step == "closures_seen" else step
        after = state.get(collection, 0)
        before = until if step == CLOSURES else None
        if step == CLOSURES and not until:
            return "no closure to read"
        records, version = self._pos_read_page(collection, after, before)
        full = len(records) >= (self.pos_page_size or DEFAULT_PAGE_SIZE)
        next_step = STEPS[STEPS.index(step) + 1] if step != STEPS[-1] else None
        if step == "closures_seen":
            # Read again once the sales are: only the version is kept now
            # (beyond one page, the others wait for the next poll).
            until = version
            self._pos_queue_pull(SALES, until=until)
            return f"closures up to {until} to read after the sales"
        if step in REFERENCE_COLLECTIONS:
            self.env["connector.pos.legacy.record"].sudo()._store_page(self, step, records)
        elif step == SALES:
            self._pos_receive_sales(records)
        else:
            self._pos_receive_closures(records)
        read_at = fields.Datetime.to_string(fields.Datetime.now())
        if version:
            self._pos_set_pull_state(**{collection: version, "read_at": read_at})
        else:
            self._pos_set_pull_state(read_at=read_at)
        if full:
            self._pos_queue_pull(step, until=until)
        elif next_step:
            self._pos_queue_pull(next_step, until=until)
        return f"{len(records)} {collection} read after {after}"

    # --- sales and closures -------------------------------------------------------------

    def _pos_refs(self, records):
        products = {
            line.get("product_id") for sale in records for line in sale.get("line_items") or []
        }
        customers = {sale.get("customer_id") for sale in records if sale.get("customer_id")}
        return self.env["connector.pos.legacy.record"].sudo()._refs(self, products, customers)

    def _pos_receive_sales(self, sales, strict=False):
        """Store the tickets of a page of sales as events of the ``ticket`` topic,
        each keyed by its UUID (the sale's id): read again, a duplicate. A sale
        naming what the fleet has not mapped is kept as read (``legacy.record``),
        to fail alone with its reason; ``strict``: raise it instead.

        The sale a return names, when rung up before "Read sales from", is
        kept (a legacy record of ``sales``) before the tickets are stored:
        the return then fails saying so instead of waiting for it."""
        refs = self._pos_refs(sales)
        in_page = {sale["id"]: sale for sale in sales}
        before_start = {}
        batch_id = f"pull:{sales[0]['version']}-{sales[-1]['version']}" if sales else ""
        messages = []
        problems = []
        since = self.pos_pull_since
        for sale in sales:
            if since and pos_time(sale["sale_date"]) < since:
                continue  # the POS's history before Odoo took over
            try:
                tickets = sale_tickets(
                    sale,
                    refs,
                    prices_include_tax=self.pos_prices_include_tax,
                    original_lines=lambda sale_id: self._pos_original_lines(
                        sale_id, in_page, refs, before_start
                    ),
                    batch_id=batch_id,
                )
            except LegacyMappingError as exc:
                problems.append(str(exc))
                messages.append(legacy_message(SALES, sale, pos_time(sale["updated_at"])))
                continue
            messages.extend(
                {
                    "topic": TICKET_TOPIC,
                    "payload": ticket,
                    "idempotency_key": ticket["uuid"],
                    "occurred_at": ticket_time(ticket),
                }
                for ticket in tickets
            )
        if problems and strict:
            raise UserError(
                self.env._(
                    "%(backend)s: the POS's sales name what the fleet has not mapped: "
                    "%(problems)s.",
                    backend=self.name,
                    problems="; ".join(dict.fromkeys(problems)),
                )
            )
        if before_start:
            self.env["connector.pos.legacy.record"].sudo()._store_page(
                self, SALES, list(before_start.values())
            )
        return self.env["connector.event"]._receive_many(self, messages, source="poll")

    def _pos_original_lines(self, sale_id, in_page, refs, before_start=None):
        """``[(line id, sku, quantity)]`` of the sale ``sale_id`` a return names:
        from the page, else from its ticket already stored, else read from the POS.
        A sale rung up before "Read sales from" is added to ``before_start``."""
        sale = in_page.get(sale_id)
        if sale is None:
            event = self.env["connector.event"]._find_original(self, sale_id)
            if event and isinstance(event.payload, dict):
                return [
                    (line["line_uuid"], line.get("sku"), line["quantity"])
                    for line in event.payload.get("lines") or []
                ]
            sale = self._pos_get(f"sales/{sale_id}").get("data") or {}
            refs = {**refs, "products": {**refs["products"], **self._pos_refs([sale])["products"]}}
        since = self.pos_pull_since
        if (
            before_start is not None
            and since
            and sale.get("sale_date")
            and pos_time(sale["sale_date"]) < since
        ):
            before_start[sale_id] = sale
        return [
            (
                line["id"],
                (refs["products"].get(line["product_id"]) or {}).get("sku") or line["product_id"],
                line["quantity"],
            )
            for line in sale.get("line_items") or []
        ]

    def _pos_unread_original(self, payload):
        """The sale a return of this pull fleet refunds, when that sale was
        rung up before "Read sales from" and so never read as a ticket (a
        ``sales`` legacy record), or an empty recordset. Its ticket stored or
        applied after all: the return waits for it as any other. (A void is
        the sale's own record turned VOIDED, dated as the sale: one of a sale
        before the start is read past with it.)"""
        Record = self.env["connector.pos.legacy.record"].sudo()
        original = payload.get("original_uuid")
        if self.pos_mode != "pull" or payload.get("type") != "return" or not original:
            return Record
        sale = Record.search(
            [
                ("backend_id", "=", self.id),
                ("collection", "=", SALES),
                ("legacy_id", "=", str(original)),
            ],
            limit=1,
        )
        if (
            not sale
            or self.env["connector.event"].sudo()._find_original(self, original)
            or self.env["pos.order"].sudo().search_count([("uuid", "=", original)], limit=1)
        ):
            return Record
        return sale

    def _pos_ticket_blocked(self, event, payload):
        """A return of a sale rung up before "Read sales from" does not wait
        for it: that sale is never read. Applying it fails, saying why."""
        if self._pos_unread_original(payload):
            return None
        return super()._pos_ticket_blocked(event, payload)

    def _pos_apply_ticket(self, event, payload):
        sale = self._pos_unread_original(payload)
        if sale:
            since = self.pos_pull_since
            raise UserError(
                self.env._(
                    "Return %(store)s/%(register)s #%(sequence)s refunds the sale %(sale)s "
                    "(%(uuid)s) rung up on %(date)s UTC, before the fleet's \"Read sales "
                    'from"%(since)s: Odoo did not read that sale and will not (the POS is '
                    "read past it), so it has nothing to refund. Record the refund by hand "
                    "in Point of Sale, then Ignore this event.",
                    store=payload.get("store"),
                    register=payload.get("register"),
                    sequence=payload.get("sequence"),
                    sale=sale.name,
                    uuid=sale.legacy_id,
                    date=fields.Datetime.to_string(sale.sale_date),
                    since=f" ({fields.Datetime.to_string(since)} UTC)"
                    if since and since > sale.sale_date
                    else self.env._(" when the POS was read"),
                )
            )
        return super()._pos_apply_ticket(event, payload)

    def _pos_receive_closures(self, closures, strict=False):
        """Store a page of register closures as events of the ``closing`` topic,
        keyed by the closure's id: read again, a duplicate. One naming what the
        fleet has not mapped is kept as read, as a sale is (``strict``: raised)."""
        refs = self.env["connector.pos.legacy.record"].sudo()._refs(self)
        problems = []
        Event = self.env["connector.event"]
        since = self.pos_pull_since
        for closure in closures:
            if since and closure_time(closure) < since:
                continue
            try:
                outlet = refs["outlets"].get(closure["outlet_id"]) or {}
                register = refs["registers"].get(closure["register_id"]) or {}
                sequences = self._pos_day_sequences(
                    outlet.get("store"), register.get("code"), closing_day(closure, outlet)
                )
                payload = closure_payload(closure, refs, sequences)
            except LegacyMappingError as exc:
                problems.append(str(exc))
                if not strict:
                    Event._receive(
                        self,
                        source="poll",
                        **Event._message_args(
                            legacy_message(CLOSURES, closure, closure_time(closure))
                        ),
                    )
                continue
            Event._receive(
                self,
                CLOSING_TOPIC,
                payload,
                closing_key(payload["store"], payload["closing_id"]),
                occurred_at=closure_time(closure),
                source="poll",
            )
        if problems and strict:
            raise UserError(
                self.env._(
                    "%(backend)s: the POS's register closures name what the fleet has not "
                    "mapped: %(problems)s.",
                    backend=self.name,
                    problems="; ".join(dict.fromkeys(problems)),
                )
            )

    def _pos_day_sequences(self, store, register, day):
        """``(first, last, count)`` of the ticket numbers of a register's day read."""
        self.env["connector.event"].flush_model()
        self.env.cr.execute(
            SEQUENCES_SQL,
            {
                "backend_id": self.id,
                "register_key": f"{store}/{register}",
                "topic": TICKET_TOPIC,
                "day": day,
            },
        )
        first, last, count = self.env.cr.fetchone()
        return int(first or 0), int(last or 0), count

    # --- health ------------------------------------------------------------------------

    def _connector_health_checks(self):
        """A pull fleet whose POS has not been read for longer than its flow's
        SLA: a POS down for long, a read failing (an outlet to map)."""
        checks = super()._connector_health_checks()
        now = fields.Datetime.now()
        fleets = self.filtered(
            lambda b: b.backend_type == "pos" and b.pos_mode == "pull" and b.state == "running"
        )
        for backend in fleets:
            policy = backend._policy(PULL_FLOW)
            state = backend._pos_pull_state()
            since = state.get("read_at") or state.get("polled_at")
            if not policy.enabled or not since:
                continue
            since = fields.Datetime.to_datetime(since)
            if now - since <= timedelta(minutes=policy.sla_lag_minutes or 15):
                continue
            failure = backend._pos_last_read_failure()
            checks[backend.id].append(
                (
                    "pos_pull",
                    self.env._(
                        "The POS of %(backend)s has not been read since %(since)s UTC.%(why)s",
                        backend=backend.name,
                        since=fields.Datetime.to_string(since),
                        why=f" {failure}" if failure else "",
                    ),
                )
            )
        return checks

    def _pos_last_read_failure(self):
        """What the last failed read job of this fleet said, or None."""
        self.ensure_one()
        for job in (
            self.env["queue.job"]
            .sudo()
            .search(
                [
                    ("model_name", "=", "connector.backend"),
                    ("method_name", "=", "_pos_pull"),
                    ("state", "=", "failed"),
                ],
                order="date_created desc, id desc",
                limit=50,
            )
        ):
            if self.id in job.records.ids:
                lines = (job.exc_info or "").strip().splitlines()
                return job.exc_message or (lines[-1] if lines else None)
        return None

    def _health_check_labels(self):
        return {
            **super()._health_check_labels(),
            "pos_pull": self.env._("The POS is not read"),
        }
