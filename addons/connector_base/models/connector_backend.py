import logging
import math
from contextlib import contextmanager
from datetime import timedelta

import psycopg2

from odoo import api, fields, models, tools
from odoo.exceptions import UserError
from odoo.sql_db import Cursor

from odoo.addons.queue_job.exception import RetryableJobError

from ..components.http_client import (
    CircuitOpenError,
    HttpClient,
    RateLimiter,
    RemoteError,
    RemoteRetryableError,
)
from ..components.signature import hmac_sha256_base64, signature_matches

_logger = logging.getLogger(__name__)

# What a webhook's intake reads of its backend (see _webhook_backend).
WEBHOOK_INTAKE_FIELDS = (
    "name",
    "state",
    "backend_type",
    "company_id",
    "max_body_kb",
    "webhook_secret",
    "webhook_secret_previous",
    "webhook_secret_rotated_at",
    "webhook_secret_grace_minutes",
)
# Connector jobs count their own attempts (per event, per outbound change) and
# give up on their own; queue_job's limit is only the safety net against a job
# that kills its worker over and over.
JOB_MAX_RETRIES = 100
# Deliveries made ready under this context key are not handed to the remote
# that ships for their warehouse (a 3PL): their caller is validating goods
# that already left another way (a sales channel fulfilled them), and makes
# ready itself, outside it, what is left to ship.
NO_SHIPPING_CONTEXT = "connector_delivered_elsewhere"

BACKEND_STATES = [
    ("draft", "Draft"),
    ("running", "Running"),
    ("paused", "Paused"),
    ("circuit_open", "Circuit open"),
]


class ConnectorBackend(models.Model):
    """One external system the retailer syncs with: a Shopify store, a POS fleet...

    A single concrete model that every connector extends (``backend_type``
    gets a ``selection_add``, fields and behaviour are added by ``_inherit``,
    dispatched on the type), like Odoo's ``payment.provider``: the exception
    queue, dashboards, record rules and channels work across all connectors.
    """

    _name = "connector.backend"
    _description = "Connector Backend"
    _inherit = ["mail.thread"]
    _order = "sequence, name, id"

    name = fields.Char(required=True, tracking=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True, tracking=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, tracking=True
    )
    backend_type = fields.Selection(
        selection=[],
        string="Type",
        required=True,
        tracking=True,
        help="The kind of external system; each connector addon adds its own.",
    )
    state = fields.Selection(
        BACKEND_STATES,
        default="draft",
        required=True,
        tracking=True,
        copy=False,
        help="Draft and Paused: messages are received and kept, not processed. "
        "Circuit open: the remote keeps failing; outbound calls wait for it.",
    )
    environment = fields.Selection(
        [("sandbox", "Sandbox"), ("production", "Production")],
        default="sandbox",
        required=True,
        tracking=True,
    )

    # Credentials: connector managers only, never shown to other users,
    # never logged (the HTTP client redacts them), never in job arguments.
    api_token = fields.Char(
        string="API token", groups="connector_base.group_connector_manager", copy=False
    )
    webhook_secret = fields.Char(groups="connector_base.group_connector_manager", copy=False)
    webhook_secret_previous = fields.Char(
        string="Previous webhook secret",
        groups="connector_base.group_connector_manager",
        copy=False,
        help="Still accepted until the grace period ends, as remotes may sign "
        "with the old secret for a while after a rotation.",
    )
    webhook_secret_rotated_at = fields.Datetime(readonly=True, copy=False)
    webhook_secret_grace_minutes = fields.Integer(default=60)

    # HTTP settings
    base_url = fields.Char(string="Base URL", tracking=True)
    timeout = fields.Integer(string="Timeout (s)", default=30)
    rate_limit = fields.Float(
        string="Rate limit (requests/s)",
        default=0.0,
        help="Most requests per second to the remote from one Odoo worker; 0: no limit.",
    )
    max_body_kb = fields.Integer(
        string="Largest webhook body (KB)",
        default=2048,
        help="Larger webhook bodies are refused with HTTP 413 before being read.",
    )

    # Circuit breaker
    circuit_threshold = fields.Integer(
        string="Failures before opening",
        default=5,
        help="Consecutive transient failures of the remote that open the circuit.",
    )
    circuit_cooldown = fields.Integer(
        string="Cool-down (s)",
        default=60,
        help="Seconds the circuit stays open before one probe request is let through.",
    )
    consecutive_failures = fields.Integer(default=0, readonly=True, copy=False)
    circuit_opened_at = fields.Datetime(readonly=True, copy=False)
    circuit_probe_at = fields.Datetime(readonly=True, copy=False)
    last_failure = fields.Text(string="Last remote failure", readonly=True, copy=False)
    last_failure_at = fields.Datetime(readonly=True, copy=False)
    # Rejected webhooks are counted by inserting rows (connector.webhook.rejection),
    # never by updating this row: see there why. The daily purge folds them here.
    webhook_rejected_count = fields.Integer(
        string="Rejected webhooks",
        compute="_compute_webhook_rejected",
        help="Webhooks refused for a missing or wrong signature.",
    )
    webhook_rejected_at = fields.Datetime(
        string="Last rejected webhook", compute="_compute_webhook_rejected"
    )
    webhook_address = fields.Char(
        string="Webhooks sent to",
        compute="_compute_webhook_address",
        help="Where the remote sends this backend's webhooks: give it to the remote as is.",
    )
    webhook_rejected_folded = fields.Integer(default=0, readonly=True, copy=False)
    webhook_rejected_folded_at = fields.Datetime(readonly=True, copy=False)

    connector_user_id = fields.Many2one(
        "res.users",
        string="Connector user",
        readonly=True,
        copy=False,
        ondelete="restrict",
        help="Who the backend's jobs run as: the creator of the records they make and the "
        "author of their messages, whoever received or requeued the message. Created with "
        "the backend; it has no password and cannot log in.",
    )

    retention_days = fields.Integer(
        string="Keep processed events (days)",
        default=30,
        help="Done, duplicate and ignored events older than this are purged; 0: kept forever.",
    )
    policy_ids = fields.One2many("connector.sync.policy", "backend_id", string="Sync policies")
    event_failed_count = fields.Integer(compute="_compute_event_counts")
    event_waiting_count = fields.Integer(compute="_compute_event_counts")
    event_backlog_count = fields.Integer(compute="_compute_event_counts")

    _name_company_uniq = models.Constraint(
        "UNIQUE (name, company_id)", "A backend with this name already exists in this company."
    )

    def _compute_event_counts(self):
        counts = {
            (backend.id, state): count
            for backend, state, count in self.env["connector.event"]._read_group(
                # Open states only: done and duplicate rows are most of the table.
                [
                    ("backend_id", "in", self.ids),
                    ("state", "in", ("received", "queued", "processing", "waiting", "failed")),
                ],
                ["backend_id", "state"],
                ["__count"],
            )
        }
        for backend in self:
            backend.event_failed_count = counts.get((backend.id, "failed"), 0)
            backend.event_waiting_count = counts.get((backend.id, "waiting"), 0)
            backend.event_backlog_count = sum(
                counts.get((backend.id, state), 0) for state in ("received", "queued", "processing")
            )

    # --- what a connector declares ----------------------------------------

    def _connector_flows(self):
        """Flows of this backend's type, for its sync policy lines.

        A list of dicts: ``code``, ``name``, and optionally ``mode``
        (realtime / micro_batch / scheduled), ``interval_minutes``,
        ``sla_lag_minutes``. Connectors extend it for their type.
        """
        self.ensure_one()
        return []

    def _connector_topics(self):
        """Inbound and outbound topics of this backend's type.

        ``{topic: InboundTopic | OutboundTopic}``; connectors extend it for
        their type (see ``components/topics.py``).
        """
        self.ensure_one()
        return {}

    def _get_topic(self, topic, kind=None):
        """The declaration of ``topic``, or a UserError naming what is known."""
        self.ensure_one()
        topics = self._connector_topics()
        declaration = topics.get(topic)
        if declaration is None or (kind and not isinstance(declaration, kind)):
            raise UserError(
                self.env._(
                    "Backend %(backend)s does not know the topic %(topic)r. Known topics: "
                    "%(known)s.",
                    backend=self.display_name,
                    topic=topic,
                    known=", ".join(sorted(topics)) or "none",
                )
            )
        return declaration

    def _test_connection(self):
        """Call the remote once and return a short description of what answered.

        Connectors implement it for their type; raise ``RemoteError`` on failure.
        """
        raise UserError(self.env._("Connection test is not available for backends of this type."))

    def _webhook_secrets(self):
        """Secrets a webhook may be signed with: the current one, and the
        previous one during the grace period after a rotation."""
        self.ensure_one()
        backend = self.sudo()
        secrets = [backend.webhook_secret]
        rotated_at = backend.webhook_secret_rotated_at
        grace = timedelta(minutes=backend.webhook_secret_grace_minutes or 0)
        if (
            backend.webhook_secret_previous
            and rotated_at
            and fields.Datetime.now() < rotated_at + grace
        ):
            secrets.append(backend.webhook_secret_previous)
        return [secret for secret in secrets if secret]

    def _webhook_hmac_base64_ok(self, raw_body, received):
        """The common rule: ``received`` is the base64 HMAC-SHA256 of the raw
        body keyed with one of the backend's webhook secrets (compared in
        constant time)."""
        return any(
            signature_matches(hmac_sha256_base64(secret, raw_body), received)
            for secret in self._webhook_secrets()
        )

    def _webhook_signature_ok(self, raw_body, headers):
        """Whether a webhook body is signed by the remote; each connector
        implements its rule with ``components.signature``. Refuses by default."""
        return False

    @api.depends("backend_type")
    def _compute_webhook_address(self):
        for backend in self:
            backend.webhook_address = backend._webhook_address() or False

    def _webhook_address(self):
        """The public address the remote sends this backend's webhooks to;
        each connector that receives webhooks implements it. None by default."""
        return False

    def _webhook_message(self, payload, headers):
        """What identifies a webhook delivery: a dict with ``topic``,
        ``idempotency_key`` and optionally ``occurred_at`` and ``correlation_id``."""
        return {}

    # --- sync policies --------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        backends = super().create(vals_list)
        self.env.registry.clear_cache()  # _webhook_backend_values
        backends._ensure_sync_policies()
        backends._connector_user()
        return backends

    def write(self, vals):
        if vals.get("webhook_secret"):
            # Keep the old secret valid for the grace period of a rotation.
            for backend in self.sudo():
                if backend.webhook_secret and backend.webhook_secret != vals["webhook_secret"]:
                    super(ConnectorBackend, backend).write(
                        {
                            "webhook_secret_previous": backend.webhook_secret,
                            "webhook_secret_rotated_at": fields.Datetime.now(),
                        }
                    )
        res = super().write(vals)
        self.env.registry.clear_cache()  # _webhook_backend_values
        if "backend_type" in vals:
            self._ensure_sync_policies()
        if {"name", "backend_type", "company_id"} & set(vals):
            # The connector user says which backend it works for, and where.
            for backend in self.sudo().filtered("connector_user_id"):
                backend.connector_user_id.write(backend._connector_user_values(update=True))
        if vals.get("state") == "running":
            self._resume_processing()
        return res

    def unlink(self):
        users = self.sudo().connector_user_id
        res = super().unlink()
        self.env.registry.clear_cache()  # _webhook_backend_values
        # Kept as the creator of what they made, archived as they work for no one now.
        users.active = False
        return res

    # --- the connector user ------------------------------------------------------

    def _connector_user(self):
        """The user the jobs of these backends run as, created when missing
        (a backend made before connector users existed gets its own on first
        use). Creating a user takes an administrator's rights: the framework's."""
        Users = self.env["res.users"].sudo().with_context(active_test=False)
        for backend in self.sudo().filtered(lambda b: not b.connector_user_id):
            values = backend._connector_user_values()
            # One that was unlinked from its backend is found again by its login.
            user = Users.search([("login", "=", values["login"])], limit=1)
            if user:
                user.write({**backend._connector_user_values(update=True), "active": True})
            else:
                user = Users.with_context(no_reset_password=True).create(values)
            backend.connector_user_id = user
        return self.sudo().connector_user_id

    def _connector_user_values(self, update=False):
        """What the connector user of this backend is: an internal user of the
        backend's company in the "Connector robot" group (each connector adds
        the rights its flows need to that group), never emailed."""
        self.ensure_one()
        kind = dict(self._fields["backend_type"]._description_selection(self.env)).get(
            self.backend_type, self.backend_type
        )
        values = {
            "name": self.env._("%(kind)s connector: %(backend)s", kind=kind, backend=self.name),
            "company_id": self.company_id.id,
            "company_ids": [fields.Command.link(self.company_id.id)],
        }
        if update:
            return values
        return {
            **values,
            "login": f"connector.backend.{self.id}",
            "group_ids": [
                fields.Command.set(self.env.ref("connector_base.group_connector_robot").ids)
            ],
            "notification_type": "inbox",
        }

    @api.model
    def _webhook_backend(self, domain):
        """The backend a webhook's ``domain`` (a tuple of conditions) names,
        with what the intake reads of it already in this environment's cache:
        every webhook asks, and the answer only changes when an administrator
        edits a backend (which clears the cache). The state may lag the
        circuit breaker's: the intake only tells a running backend from a
        paused one."""
        found = self._webhook_backend_values(domain)
        if not found:
            return self.browse()
        backend_id, values = found
        backend = self.browse(backend_id)
        for name, value in values:
            self._fields[name]._update_cache(backend, value)
        return backend

    @api.model
    @tools.ormcache("domain")
    def _webhook_backend_values(self, domain):
        backend = self.sudo().search(list(domain), limit=1)
        if not backend:
            return None
        return backend.id, tuple(
            (name, backend._fields[name].convert_to_cache(backend[name], backend))
            for name in WEBHOOK_INTAKE_FIELDS
        )

    @api.model
    def _ensure_all_sync_policies(self):
        """Every backend, archived ones too, gets the policy line of each flow its
        type declares. A connector's data calls it on install and update, so
        that backends made before a flow existed gain it."""
        types = [value for value, _label in self._fields["backend_type"].selection]
        self.with_context(active_test=False).search(
            [("backend_type", "in", types)]
        )._ensure_sync_policies()

    def _ensure_sync_policies(self):
        """Create the policy line of every flow the backend's type declares."""
        Policy = self.env["connector.sync.policy"]
        for backend in self:
            existing = set(backend.policy_ids.mapped("flow"))
            Policy.create(
                [
                    {
                        "backend_id": backend.id,
                        "flow": flow["code"],
                        "name": flow["name"],
                        "mode": flow.get("mode", "realtime"),
                        "interval_minutes": flow.get("interval_minutes", 5),
                        "sla_lag_minutes": flow.get("sla_lag_minutes", 15),
                    }
                    for flow in backend._connector_flows()
                    if flow["code"] not in existing
                ]
            )

    def _policy(self, flow):
        """The sync policy line of ``flow``; UserError when the flow is unknown."""
        self.ensure_one()
        policy = self.policy_ids.filtered(lambda p: p.flow == flow)[:1]
        if not policy:
            raise UserError(
                self.env._(
                    "Backend %(backend)s has no sync policy for the flow %(flow)r.",
                    backend=self.display_name,
                    flow=flow,
                )
            )
        return policy

    # --- between connectors -----------------------------------------------------
    # Connectors never import each other: one asks here, another answers by
    # overriding. The connector framework does not depend on stock, so the
    # question is asked of the backends, about a picking.

    @api.model
    def _receive_return_remotely(self, picking, refunded_by=None):
        """The backend of the remote system that receives the return
        ``picking`` (it validates the return when that system reports what
        came back), after telling it to expect the return; empty when Odoo
        receives the return itself, to be validated by the caller.

        ``refunded_by``: the backend the money already went back through (a
        sales channel's refund with restock), so that the return no longer
        decides whether the customer is refunded."""
        return self.browse()

    @api.model
    def _delivered_elsewhere(self, picking):
        """Whether the goods of the delivery ``picking`` already left another
        way (a sales channel fulfilled them outside Odoo), so that the remote
        shipping for its warehouse must not ship them: a connector that knows
        answers by overriding."""
        return False

    # --- actions ------------------------------------------------------------

    def action_test_connection(self):
        self.ensure_one()
        try:
            answer = self._test_connection()
        except RemoteError as exc:
            raise UserError(
                self.env._(
                    "Connection to %(backend)s failed: %(error)s",
                    backend=self.display_name,
                    error=exc,
                )
            ) from exc
        return self._notify(self.env._("Connection works"), answer, kind="success")

    def _notify(self, title, message, sticky=False, kind=None):
        """The client action of a button that reports what it did in a notification."""
        params = {"title": title, "message": message, "sticky": sticky}
        if kind:
            params["type"] = kind
        return {"type": "ir.actions.client", "tag": "display_notification", "params": params}

    def action_start(self):
        self.write({"state": "running"})

    def action_pause(self):
        self.write({"state": "paused"})

    def action_close_circuit(self):
        """Support closes the circuit by hand once the remote is known to be back."""
        self._set_circuit_closed()

    def _resume_processing(self):
        """Queue what arrived while the backend was not running."""
        events = self.env["connector.event"].search(
            [("backend_id", "in", self.ids), ("state", "=", "received")], order="occurred_at, id"
        )
        events._enqueue()
        for backend in self:
            for topic in {
                item.topic
                for item in self.env["connector.outbound"].search(
                    [("backend_id", "=", backend.id), ("state", "=", "pending")]
                )
            }:
                backend._schedule_outbound_flush(topic)

    def action_view_events(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_base.action_connector_event"
        )
        action["domain"] = [("backend_id", "=", self.id)]
        action["context"] = {"search_default_group_state": 1}
        return action

    def action_view_exceptions(self):
        """The exceptions list, this backend chosen in its filter panel."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_base.action_connector_exceptions"
        )
        action["context"] = {"searchpanel_default_backend_id": self.id}
        return action

    # --- remote calls ---------------------------------------------------------

    def _http_client(self, correlation_id=None, **kwargs):
        """An :class:`HttpClient` on this backend's settings and circuit breaker.

        Connectors pass their authentication headers in ``headers`` and the
        secrets to redact in ``secrets``.
        """
        self.ensure_one()
        sudo = self.sudo()
        secrets = [sudo.api_token, sudo.webhook_secret, *kwargs.pop("secrets", ())]
        return HttpClient(
            kwargs.pop("base_url", None) or self.base_url or "",
            timeout=self.timeout or 30,
            secrets=secrets,
            rate_limiter=(
                RateLimiter.for_key((self.env.cr.dbname, self.id), self.rate_limit)
                if self.rate_limit > 0
                else None
            ),
            breaker=CircuitBreaker(self),
            correlation_id=correlation_id,
            session_key=(self.env.cr.dbname, self.id),
            **kwargs,
        )

    def _connector_delay(self, **options):
        """``with_delay`` for a connector's own job on this backend: retried as
        the framework's jobs are (JOB_MAX_RETRIES, the job function's
        back-off), so that an outage or a clash with another job postpones it
        and never gives it up at queue_job's default fifth attempt."""
        return self.with_delay(max_retries=JOB_MAX_RETRIES, **options)

    @contextmanager
    def _retry_on_remote_fault(self):
        """In a queue job that calls the remote: a transient fault asks queue_job
        to run the job again after the remote's Retry-After (or the job
        function's back-off), without counting a retry while the remote is
        known to be down (circuit open); anything else fails the job as usual."""
        try:
            yield
        except RemoteRetryableError as exc:
            spent, is_open, wait = self._transient_fault_outlook(exc)
            seconds = (
                exc.retry_after if exc.retry_after is not None else (wait if is_open else None)
            )
            raise RetryableJobError(
                str(exc),
                seconds=max(1, math.ceil(seconds)) if seconds is not None else None,
                ignore_retry=not spent,
            ) from exc

    @contextmanager
    def _new_transaction(self, read_committed=False):
        """An environment on a cursor of its own, committed when the block ends
        (rolled back if it raises): work that must outlive, or not wait for,
        the caller's transaction.

        ``read_committed``: for short statements that take rows other
        transactions change meanwhile (claims, bookkeeping); each statement
        sees what is committed instead of failing on a stale snapshot.
        """
        self.env.flush_all()  # a test's cursors share one transaction: show them this one's
        with self.env.registry.cursor() as cr:
            # A test cursor shares the test's transaction: its isolation is the test's.
            if read_committed and isinstance(cr, Cursor):
                cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            yield self.env(cr=cr)

    def _circuit_status_now(self):
        """:meth:`_circuit_status` as committed now, whatever this transaction saw."""
        self.ensure_one()
        with self._new_transaction(read_committed=True) as env:
            return self.with_env(env)._circuit_status()

    def _transient_fault_outlook(self, exc):
        """``(spent, is_open, wait)`` after a transient fault of the remote.

        ``spent``: whether it counts as an attempt of the message that met it.
        It does not while the remote is known to be down (the circuit is open,
        or this very failure opened it): an outage of hours postpones work, it
        does not use up the attempts of what waits. Nor does a throttled
        answer (HTTP 429): the remote asked to wait, which the retry does; a
        rate limit shared with a busy flow (a minute's calls taken by the
        journal sender) would otherwise fail what only had to wait its turn.
        ``wait``: seconds until the circuit lets a probe through.
        """
        is_open, wait = self._circuit_status_now()
        spent = not isinstance(exc, CircuitOpenError) and not is_open and not exc.throttled
        return spent, is_open, wait

    def _retry_delay(self, exc, retries, circuit_wait=None):
        """Seconds before the next try: what the remote asked, else until the
        circuit's probe, else an exponential back-off on ``retries``."""
        if exc.retry_after is not None:
            seconds = exc.retry_after
        elif circuit_wait is not None:
            seconds = circuit_wait or self.circuit_cooldown or 60
        else:
            seconds = 10 * 2 ** min(retries, 8)
        return max(1, math.ceil(seconds))

    @contextmanager
    def _health_env(self):
        """An environment on its own cursor, so that health bookkeeping
        (failures, circuit, rejected webhooks) is kept even when the job that
        saw the failure rolls back to be retried."""
        with self._new_transaction(read_committed=True) as env:
            env.cr.execute("SET LOCAL lock_timeout = '5s'")
            yield env

    def _update_health(self, sql, params):
        """Run one UPDATE of health columns of this backend on its own cursor."""
        self.flush_recordset()
        try:
            with self._health_env() as env:
                env.cr.execute(sql, params, log_exceptions=False)
        except psycopg2.errors.LockNotAvailable:
            _logger.info("backend %s: health not recorded (row busy)", self.id)
        self.invalidate_recordset(
            [
                "state",
                "consecutive_failures",
                "circuit_opened_at",
                "circuit_probe_at",
                "last_failure",
                "last_failure_at",
                "webhook_rejected_count",
                "webhook_rejected_at",
            ]
        )

    def _record_rejected_webhook(self):
        """Count a webhook refused for its signature: one INSERT in the
        request's transaction, which waits on no lock of this backend."""
        self.ensure_one()
        self.env["connector.webhook.rejection"]._record(self.id)
        self.invalidate_recordset(["webhook_rejected_count", "webhook_rejected_at"])

    def _compute_webhook_rejected(self):
        rows = {
            backend.id: (count, last)
            for backend, count, last in self.env["connector.webhook.rejection"]
            .sudo()
            ._read_group(
                [("backend_id", "in", self.ids)], ["backend_id"], ["__count", "rejected_at:max"]
            )
        }
        for backend in self:
            count, last = rows.get(backend.id, (0, False))
            backend.webhook_rejected_count = backend.webhook_rejected_folded + count
            backend.webhook_rejected_at = max(
                filter(None, (backend.webhook_rejected_folded_at, last)), default=False
            )

    def _set_circuit_closed(self):
        for backend in self:
            backend._update_health(
                "UPDATE connector_backend SET consecutive_failures = 0, circuit_opened_at = NULL, "
                "circuit_probe_at = NULL, state = CASE WHEN state = 'circuit_open' THEN 'running' "
                "ELSE state END WHERE id = %s",
                (backend.id,),
            )

    def _circuit_status(self):
        """``(is_open, seconds)``: whether the circuit is open, and how long
        until it lets one probe through (0: the probe may go now).

        Read from the database, not the cache: another worker may have opened
        or closed the circuit meanwhile."""
        self.ensure_one()
        self.flush_recordset(["state", "circuit_opened_at", "circuit_probe_at"])
        self.env.cr.execute(
            "SELECT state, circuit_opened_at, circuit_probe_at "
            "FROM connector_backend WHERE id = %s",
            (self.id,),
        )
        state, opened_at, probe_at = self.env.cr.fetchone()
        if state != "circuit_open":
            return False, 0
        now = fields.Datetime.now()
        cooldown = timedelta(seconds=self.circuit_cooldown or 60)
        reopen_at = max(opened_at or now, probe_at or opened_at or now) + cooldown
        return True, max(0.0, (reopen_at - now).total_seconds())


class CircuitBreaker:
    """The circuit breaker of one backend, as the HTTP client sees it.

    Closed: requests go. After ``circuit_threshold`` consecutive transient
    failures the backend goes to *circuit open*: requests are refused at once
    (outbound jobs are postponed) until ``circuit_cooldown`` has passed; then
    one probe request goes through (half-open). A success closes the circuit,
    a failure opens it for another cool-down.
    """

    def __init__(self, backend):
        self.backend = backend

    def before_request(self):
        backend = self.backend
        is_open, wait = backend._circuit_status()
        if wait > 0:
            raise CircuitOpenError(
                backend.env._(
                    "Circuit open for %(backend)s: the remote kept failing; next try in %(s)d s.",
                    backend=backend.display_name,
                    s=wait,
                ),
                retry_after=wait,
            )
        if is_open:
            # Half-open: claim the probe so that one request, not all, tests the remote.
            backend._update_health(
                "UPDATE connector_backend SET circuit_probe_at = %s WHERE id = %s",
                (fields.Datetime.now(), backend.id),
            )

    def record_success(self, authorized=False):
        backend = self.backend
        backend.env.cr.execute(
            "SELECT consecutive_failures, state, auth_rejected_at FROM connector_backend "
            "WHERE id = %s",
            (backend.id,),
        )
        failures, state, auth_rejected_at = backend.env.cr.fetchone()
        if failures or state == "circuit_open":
            backend._set_circuit_closed()
            _logger.info("backend %s: remote answered again, circuit closed", backend.id)
        if authorized and auth_rejected_at:
            backend._record_auth_accepted()

    def record_auth_rejected(self, message):
        self.backend._record_auth_rejected(message)

    def record_failure(self, message):
        backend = self.backend
        backend._update_health(
            "UPDATE connector_backend SET consecutive_failures = "
            "COALESCE(consecutive_failures, 0) + 1, last_failure = %(message)s, "
            "last_failure_at = %(now)s, "
            "circuit_opened_at = CASE WHEN state = 'circuit_open' "
            "  OR COALESCE(consecutive_failures, 0) + 1 >= GREATEST(circuit_threshold, 1) "
            "  THEN %(now)s ELSE circuit_opened_at END, "
            "state = CASE WHEN state = 'running' "
            "  AND COALESCE(consecutive_failures, 0) + 1 >= GREATEST(circuit_threshold, 1) "
            "  THEN 'circuit_open' ELSE state END "
            "WHERE id = %(id)s",
            {"message": message[:2000], "now": fields.Datetime.now(), "id": backend.id},
        )
