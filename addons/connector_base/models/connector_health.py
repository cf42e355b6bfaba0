import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..components.conflicts import PG_CONCURRENCY_ERRORS, expected_conflicts

_logger = logging.getLogger(__name__)

# A job waiting this long while none started means queue_job's runner is
# not running (or not reaching this database).
RUNNER_STALL_MINUTES = 10
# queue_job's runner puts back an enqueued job that no worker started within
# seconds: one enqueued this long means the runner is frozen with it.
JOB_ENQUEUED_STUCK_MINUTES = 10
# Connector jobs take seconds (a page, a batch): one started this long holds
# its channel's capacity, and the jobs behind it wait.
JOB_STARTED_STUCK_MINUTES = 60
# Webhooks refused for their signature within the last hour, none accepted
# since the first of them: the remote signs with another secret, and what it
# sends is lost. A remote retries a refused delivery, so a real one refused
# counts several times; a stray bad request does not reach this.
WEBHOOK_REFUSED_ALERT = 3
# System parameters that override the thresholds above (minutes, decimals
# allowed): an administrator tunes them, the reliability suite shortens them.
THRESHOLD_PARAMETERS = {
    "connector_base.health_runner_stall_minutes": RUNNER_STALL_MINUTES,
    "connector_base.health_job_enqueued_minutes": JOB_ENQUEUED_STUCK_MINUTES,
    "connector_base.health_job_started_minutes": JOB_STARTED_STUCK_MINUTES,
}
# Jobs of a backend, whichever way they were queued: on one of its flows'
# channels (root.connector.backend_<id>.<flow>), on the backend record itself,
# on one of its events, or its dispatcher (identity key connector.dispatch-<id>).
# queue_job keeps the records as a JSON document inside a JSON string: #>> '{}'
# unwraps it.
JOB_BACKEND_SQL = SQL(
    """
    COALESCE(
        substring(j.channel FROM '^root\\.connector\\.backend_(\\d+)(?:\\.|$)')::integer,
        CASE WHEN j.model_name = 'connector.backend'
             AND jsonb_array_length((j.records #>> '{}')::jsonb -> 'ids') = 1
             THEN ((j.records #>> '{}')::jsonb -> 'ids' ->> 0)::integer END,
        (SELECT e.backend_id FROM connector_event_queue_job_rel r
           JOIN connector_event e ON e.id = r.connector_event_id
          WHERE r.queue_job_id = j.id LIMIT 1),
        substring(j.identity_key FROM '^connector\\.dispatch-(\\d+)$')::integer
    )
    """
)
# Backends whose jobs are expected to run: a draft or paused backend keeps
# its messages on purpose.
CHECKED_STATES = ("running", "circuit_open")


class MailActivity(models.Model):
    _inherit = "mail.activity"

    connector_health_check = fields.Char(
        readonly=True,
        index="btree_not_null",
        help="The connector health check this activity reports; closed when it passes again.",
    )


class ConnectorBackend(models.Model):
    _name = "connector.backend"
    _inherit = ["connector.backend", "mail.activity.mixin"]

    responsible_id = fields.Many2one(
        "res.users",
        default=lambda self: self.env.user,
        tracking=True,
        help="Gets an activity when a health check of this backend fails.",
    )
    health_state = fields.Selection(
        [("ok", "OK"), ("failing", "Failing")],
        default="ok",
        readonly=True,
        copy=False,
        help="Result of the last scheduled health check.",
    )
    health_message = fields.Text(readonly=True, copy=False)
    auth_rejected_at = fields.Datetime(
        string="Credentials rejected at",
        readonly=True,
        copy=False,
        help="When the remote last refused the credentials (HTTP 401 or 403); cleared by "
        "the next call it accepts.",
    )
    auth_rejected_message = fields.Text(string="Credentials rejected", readonly=True, copy=False)

    def _connector_health_checks(self):
        """The failing health checks of each backend.

        Returns a dict ``{backend_id: [(code, message), ...]}`` (an empty list
        for a healthy backend). Codes: ``runner`` (queue_job's runner seems
        stopped), ``channel`` (a job of the backend enqueued or started far
        too long), ``circuit`` (circuit open), ``sla`` (a flow past its SLA),
        ``credentials`` (the remote refused the credentials),
        ``webhook_signature`` (webhooks refused for their signature, none
        accepted).

        Connectors extend it for their type: call ``super()``, then append
        their own ``(code, message)`` to the lists of their backends (and give
        the code a label in :meth:`_health_check_labels`). A check that calls
        the remote should not do so on every run (the cron runs every 5
        minutes): reuse a recent result.
        """
        checks = {backend.id: [] for backend in self}
        if not self:
            return checks
        runner = self._health_runner_stalled()
        stuck = self._health_stuck_jobs()
        refused = self._health_webhooks_refused()
        metrics = self._connector_metrics("hour")
        for backend in self:
            failing = checks[backend.id]
            if runner and backend.state in CHECKED_STATES:
                failing.append(("runner", runner))
            if backend.id in stuck:
                failing.append(("channel", stuck[backend.id]))
            if backend.id in refused:
                failing.append(("webhook_signature", refused[backend.id]))
            if backend.auth_rejected_at:
                failing.append(("credentials", backend._health_credentials_message()))
            if backend.state == "circuit_open":
                failing.append(
                    (
                        "circuit",
                        self.env._(
                            "The remote keeps failing: outbound calls of %(backend)s wait "
                            "until it answers again (circuit open since %(since)s UTC). "
                            "Check the remote, then close the circuit.",
                            backend=backend.display_name,
                            since=fields.Datetime.to_string(backend.circuit_opened_at) or "-",
                        ),
                    )
                )
            breaches = backend._health_sla_breaches(metrics)
            if breaches:
                failing.append(("sla", "\n".join(breaches)))
        return checks

    @api.model
    def _health_minutes(self, parameter):
        """The threshold of ``parameter`` (a key of ``THRESHOLD_PARAMETERS``):
        the system parameter when set, else the default."""
        value = self.env["ir.config_parameter"].sudo().get_param(parameter)
        try:
            minutes = float(value) if value else 0.0
        except ValueError:
            minutes = 0.0  # refused when written: see ir.config.parameter
        return minutes if 0 < minutes <= 60 * 24 * 365 else THRESHOLD_PARAMETERS[parameter]

    @staticmethod
    def _health_minutes_text(minutes):
        return f"{minutes:g}"

    def _health_runner_stalled(self):
        """A plain-words message when jobs wait for more than
        ``RUNNER_STALL_MINUTES`` while none started in that time, else ''."""
        minutes = self._health_minutes("connector_base.health_runner_stall_minutes")
        since = fields.Datetime.now() - timedelta(minutes=minutes)
        self.env["queue.job"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                SELECT count(*), min(COALESCE(eta, date_enqueued, date_created)),
                       EXISTS (SELECT 1 FROM queue_job WHERE date_started >= %(since)s)
                  FROM queue_job
                 WHERE state IN ('pending', 'enqueued')
                   AND COALESCE(eta, date_enqueued, date_created) <= %(since)s
                """,
                since=since,
            )
        )
        waiting, oldest, started = self.env.cr.fetchone()
        if not waiting or started:
            return ""
        return self.env._(
            "Queue jobs are not running: %(count)s job(s) have waited since %(oldest)s UTC and "
            "none started in the last %(minutes)s minutes. Check that the queue_job runner "
            "is running for this database.",
            count=waiting,
            oldest=fields.Datetime.to_string(oldest),
            minutes=self._health_minutes_text(minutes),
        )

    def _health_stuck_jobs(self):
        """``{backend id: message}`` for the backends with a job enqueued for
        more than ``JOB_ENQUEUED_STUCK_MINUTES`` or started for more than
        ``JOB_STARTED_STUCK_MINUTES``: its channel is stuck behind it."""
        now = fields.Datetime.now()
        enqueued = self._health_minutes("connector_base.health_job_enqueued_minutes")
        started = self._health_minutes("connector_base.health_job_started_minutes")
        self.env["queue.job"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                SELECT backend_id, state, count(*), min(since),
                       (array_agg(name ORDER BY since))[1],
                       (array_agg(channel ORDER BY since))[1]
                  FROM (SELECT %(backend)s AS backend_id, j.state, j.name, j.channel,
                               CASE WHEN j.state = 'started' THEN j.date_started
                                    ELSE j.date_enqueued END AS since
                          FROM queue_job j
                         WHERE (j.state = 'enqueued' AND j.date_enqueued <= %(enqueued)s)
                            OR (j.state = 'started' AND j.date_started <= %(started)s)) jobs
                 WHERE backend_id IN %(ids)s
                 GROUP BY backend_id, state
                 ORDER BY backend_id, state DESC
                """,
                backend=JOB_BACKEND_SQL,
                enqueued=now - timedelta(minutes=enqueued),
                started=now - timedelta(minutes=started),
                ids=tuple(self.ids),
            )
        )
        messages = {}
        for backend_id, state, count, since, name, channel in self.env.cr.fetchall():
            if state == "started":
                line = self.env._(
                    "%(count)s job(s) started more than %(minutes)s minutes ago and still "
                    "running, the oldest %(name)r since %(since)s UTC on channel %(channel)s: "
                    "the jobs behind it in that channel wait. Open it in Queue Jobs; if it "
                    "hangs, restart the Odoo worker running it (the job is then requeued).",
                    count=count,
                    minutes=self._health_minutes_text(started),
                    name=name,
                    since=fields.Datetime.to_string(since),
                    channel=channel,
                )
            else:
                line = self.env._(
                    "%(count)s job(s) handed to a worker more than %(minutes)s minutes ago and "
                    "never started, the oldest %(name)r since %(since)s UTC on channel "
                    "%(channel)s. Check that the Odoo workers and queue_job's runner are "
                    "running and reach each other (the runner's host and port).",
                    count=count,
                    minutes=self._health_minutes_text(enqueued),
                    name=name,
                    since=fields.Datetime.to_string(since),
                    channel=channel,
                )
            messages[backend_id] = "\n".join(filter(None, (messages.get(backend_id), line)))
        return messages

    def _health_webhooks_refused(self):
        """``{backend id: message}`` for the backends that refused at least
        ``WEBHOOK_REFUSED_ALERT`` webhooks for their signature in the last
        hour and accepted none since the first of them."""
        self.env["connector.webhook.rejection"].flush_model()
        self.env["connector.event"].flush_model(["backend_id", "received_at", "source"])
        self.env.cr.execute(
            SQL(
                """
                SELECT r.backend_id, count(*), min(r.rejected_at)
                  FROM connector_webhook_rejection r
                 WHERE r.backend_id IN %(ids)s AND r.rejected_at >= %(since)s
                 GROUP BY r.backend_id
                HAVING count(*) >= %(alert)s
                   AND NOT EXISTS (
                       SELECT 1 FROM connector_event e
                        WHERE e.backend_id = r.backend_id AND e.source = 'webhook'
                          -- stored to the second, unlike the rejections
                          AND e.received_at >= date_trunc('second', min(r.rejected_at)))
                """,
                ids=tuple(self.ids),
                since=fields.Datetime.now() - timedelta(hours=1),
                alert=WEBHOOK_REFUSED_ALERT,
            )
        )
        return {
            backend_id: self.env._(
                "%(count)s webhooks were refused for their signature since %(first)s UTC and "
                "none was accepted: the remote signs them with another secret, and what it "
                "sends does not reach Odoo. Copy the remote's webhook signing secret into the "
                "Webhook secret of the Connection tab (the remote sends again what was "
                "refused for a while).",
                count=count,
                first=fields.Datetime.to_string(first),
            )
            for backend_id, count, first in self.env.cr.fetchall()
        }

    def _health_credentials_message(self):
        """What to fix when the remote refused this backend's credentials."""
        self.ensure_one()
        return self.env._(
            "%(backend)s refused the credentials at %(at)s UTC (%(answer)s). Enter a valid "
            "API token (not revoked, with the access the connector needs) in the Connection "
            "tab and press Test connection: the check passes with the first accepted call.",
            backend=self.display_name,
            at=fields.Datetime.to_string(self.auth_rejected_at),
            answer=(self.auth_rejected_message or "-").splitlines()[0][:300],
        )

    def _record_auth_rejected(self, message):
        """The remote answered 401 or 403: kept on the backend's own cursor,
        as the job that met it may roll back."""
        self.ensure_one()
        self._update_health(
            "UPDATE connector_backend SET auth_rejected_at = %s, auth_rejected_message = %s "
            "WHERE id = %s",
            (fields.Datetime.now(), message[:2000], self.id),
        )
        self.invalidate_recordset(["auth_rejected_at", "auth_rejected_message"])

    def _record_auth_accepted(self):
        """The remote accepted the credentials again: the rejection is over."""
        self.ensure_one()
        self._update_health(
            "UPDATE connector_backend SET auth_rejected_at = NULL, auth_rejected_message = NULL "
            "WHERE id = %s AND auth_rejected_at IS NOT NULL",
            (self.id,),
        )
        self.invalidate_recordset(["auth_rejected_at", "auth_rejected_message"])

    def _health_sla_breaches(self, metrics):
        """One line per flow of this backend whose lag p95 over the last hour
        or whose oldest pending message is past the flow's SLA."""
        self.ensure_one()
        breaches = []
        for policy in self.policy_ids.filtered("sla_lag_minutes"):
            values = metrics.get((self.id, policy.flow))
            if not values:
                continue
            limit = policy.sla_lag_minutes * 60
            lag = values["lag_p95"] or 0
            oldest = values["oldest_pending_age"]
            if lag > limit or oldest > limit:
                breaches.append(
                    self.env._(
                        "%(flow)s is behind its SLA of %(sla)s minutes: the oldest pending "
                        "message waits for %(oldest)s minutes, lag p95 over the last hour is "
                        "%(lag)s minutes.",
                        flow=policy.name,
                        sla=policy.sla_lag_minutes,
                        oldest=oldest // 60,
                        lag=int(lag // 60),
                    )
                )
        return breaches

    def _health_check_labels(self):
        """``{code: label}`` of the health checks; connectors add theirs."""
        return {
            "runner": self.env._("Queue jobs are not running"),
            "channel": self.env._("A job channel is stuck"),
            "circuit": self.env._("Circuit open: the remote keeps failing"),
            "sla": self.env._("A flow is behind its SLA"),
            "credentials": self.env._("The remote rejected the credentials"),
            "webhook_signature": self.env._("Webhooks are refused for their signature"),
        }

    def _health_check_summary(self, code):
        """The activity summary of a failing check, in plain words."""
        label = self._health_check_labels().get(code, code)
        return self.env._("Connector health: %(check)s", check=label)

    @api.model
    def _connector_run_health_checks(self):
        """Scheduled: run the health checks of every backend, raise one
        activity per failing check for the backend's responsible, and mark it
        done when the check passes again."""
        # A draft backend is being set up: nothing to watch yet.
        backends = self.search([("state", "!=", "draft")])
        checks = backends._connector_health_checks()
        Activity = self.env["mail.activity"].sudo()
        open_activities = Activity.search(
            [
                ("res_model", "=", self._name),
                ("res_id", "in", backends.ids),
                ("connector_health_check", "!=", False),
            ]
        )
        for backend in backends:
            failing = dict(checks[backend.id])
            mine = open_activities.filtered(lambda a, b=backend: a.res_id == b.id)
            for activity in mine:
                if activity.connector_health_check not in failing:
                    activity.action_feedback(feedback=self.env._("Resolved"))
            known = set(mine.mapped("connector_health_check"))
            for code, message in failing.items():
                if code in known:
                    continue
                backend.sudo().activity_schedule(
                    "mail.mail_activity_data_todo",
                    summary=self._health_check_summary(code),
                    note=message,
                    user_id=(backend.responsible_id or self.env.user).id,
                    connector_health_check=code,
                )
            health = {
                "health_state": "failing" if failing else "ok",
                "health_message": "\n".join(failing.values()) or False,
            }
            # Written only when it changes: the row is also updated by the
            # circuit breaker's own transactions, keep out of their way.
            if any(backend[name] != value for name, value in health.items()):
                backend._write_health(health)
        return checks

    def _write_health(self, health):
        """Write the health summary in a savepoint: a job's circuit breaker
        that updated the row since this run began wins, and the next run
        (a minute later) writes the summary, which the activities already
        carry meanwhile."""
        self.ensure_one()
        try:
            with expected_conflicts(), self.env.cr.savepoint():
                self.write(health)
        except PG_CONCURRENCY_ERRORS as exc:
            self.invalidate_recordset(list(health))
            _logger.info(
                "health of %s written on the next run, the row changed meanwhile: %s",
                self.name,
                exc,
            )
