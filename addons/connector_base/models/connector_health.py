import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

# A job waiting this long while none started means queue_job's runner is
# not running (or not reaching this database).
RUNNER_STALL_MINUTES = 10
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

    def _connector_health_checks(self):
        """The failing health checks of each backend.

        Returns a dict ``{backend_id: [(code, message), ...]}`` (an empty list
        for a healthy backend). Codes: ``runner`` (queue_job's runner seems
        stopped), ``circuit`` (circuit open), ``sla`` (a flow past its SLA).
        Rejected credentials are not checked: the backend records the last
        remote failure, not whether the remote refused the credentials.
        """
        checks = {backend.id: [] for backend in self}
        if not self:
            return checks
        runner = self._health_runner_stalled()
        metrics = self._connector_metrics("hour")
        for backend in self:
            failing = checks[backend.id]
            if runner and backend.state in CHECKED_STATES:
                failing.append(("runner", runner))
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

    def _health_runner_stalled(self):
        """A plain-words message when jobs wait for more than
        ``RUNNER_STALL_MINUTES`` while none started in that time, else ''."""
        since = fields.Datetime.now() - timedelta(minutes=RUNNER_STALL_MINUTES)
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
            minutes=RUNNER_STALL_MINUTES,
        )

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

    def _health_check_summary(self, code):
        """The activity summary of a failing check, in plain words."""
        labels = {
            "runner": self.env._("Queue jobs are not running"),
            "circuit": self.env._("Circuit open: the remote keeps failing"),
            "sla": self.env._("A flow is behind its SLA"),
        }
        return self.env._("Connector health: %(check)s", check=labels.get(code, code))

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
                backend.write(health)
        return checks
