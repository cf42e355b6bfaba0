import re
from datetime import datetime, time, timedelta

import pytz

from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError

MODES = [
    ("realtime", "Real-time"),
    ("micro_batch", "Micro-batch"),
    ("scheduled", "Scheduled batch"),
]


class ConnectorSyncPolicy(models.Model):
    """How one flow of one backend is synchronised: mode, pace, SLA.

    One line per flow the backend's type declares; each line has its own
    queue_job channel so that a slow flow never holds up another.
    """

    _name = "connector.sync.policy"
    _description = "Connector Sync Policy"
    _order = "backend_id, sequence, id"

    backend_id = fields.Many2one("connector.backend", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    sequence = fields.Integer(default=10)
    flow = fields.Char(
        string="Flow code", required=True, readonly=True, help="Technical code of the flow."
    )
    name = fields.Char(string="Flow", required=True, translate=True)
    enabled = fields.Boolean(default=True)
    mode = fields.Selection(MODES, default="realtime", required=True)
    interval_minutes = fields.Integer(
        string="Every (minutes)",
        default=5,
        help="Micro-batch: how long changes are gathered before one run. "
        "Scheduled batch: how often the scheduled run happens.",
    )
    run_times = fields.Char(
        string="At",
        help="Scheduled batch: the times of day the run happens (for example 09:00, 13:30, "
        "16:00), in the timezone of the company's address (UTC when it has none), instead of "
        "every N minutes: a 3PL's waves, a cut-off.",
    )
    sla_lag_minutes = fields.Integer(
        string="SLA lag (minutes)",
        default=15,
        help="A message older than this and not yet processed breaches the SLA.",
    )
    watermark = fields.Char(
        string="Synced up to",
        readonly=True,
        help="Where the last scheduled read of this flow stopped (a date or a cursor of "
        "the remote); the next one starts there.",
    )
    channel_id = fields.Many2one("queue.job.channel", readonly=True, ondelete="restrict")
    channel = fields.Char(related="channel_id.complete_name", string="Job channel")

    _flow_uniq = models.Constraint(
        "UNIQUE (backend_id, flow)", "A backend has one sync policy per flow."
    )
    _interval_positive = models.Constraint(
        "CHECK (interval_minutes > 0)", "The interval of a sync policy must be positive."
    )

    @api.constrains("run_times")
    def _check_run_times(self):
        for policy in self:
            policy._run_times()

    @api.model_create_multi
    def create(self, vals_list):
        policies = super().create(vals_list)
        for policy in policies:
            policy.channel_id = policy._make_channel()
        self.env.registry.clear_cache()  # _job_settings
        return policies

    def write(self, vals):
        result = super().write(vals)
        self.env.registry.clear_cache()  # _job_settings
        return result

    def unlink(self):
        result = super().unlink()
        self.env.registry.clear_cache()  # _job_settings
        return result

    @api.model
    @tools.ormcache("backend_id", "flow")
    def _job_settings(self, backend_id, flow):
        """``(channel, delay seconds)`` of the jobs of a flow, read once per
        worker: every webhook asks, the settings change seldom."""
        policy = self.sudo().search([("backend_id", "=", backend_id), ("flow", "=", flow)], limit=1)
        if not policy:
            return None, 0
        return policy.channel or None, policy._processing_delay()

    def _make_channel(self):
        """root.connector.<backend id>.<flow>: one channel per backend and flow."""
        Channel = self.env["queue.job.channel"].sudo()
        parent = self.env.ref("connector_base.channel_connector")
        backend_channel = Channel.search(
            [("parent_id", "=", parent.id), ("name", "=", f"backend_{self.backend_id.id}")], limit=1
        ) or Channel.create({"parent_id": parent.id, "name": f"backend_{self.backend_id.id}"})
        flow_name = self.flow.replace(".", "_")
        return Channel.search(
            [("parent_id", "=", backend_channel.id), ("name", "=", flow_name)], limit=1
        ) or Channel.create({"parent_id": backend_channel.id, "name": flow_name})

    def _interval_passed(self, last, now=None):
        """Whether this flow's interval has passed since ``last`` (a datetime
        or its string; empty: never run): the test of a scheduled flow's cron."""
        self.ensure_one()
        if not last:
            return True
        now = now or fields.Datetime.now()
        return fields.Datetime.to_datetime(last) <= now - timedelta(minutes=self.interval_minutes)

    def _run_times(self):
        """The policy's times of day, sorted; ValidationError naming what is not
        a time of day."""
        self.ensure_one()
        times = set()
        for part in filter(None, re.split(r"[\s,;]+", self.run_times or "")):
            found = re.fullmatch(r"([01]?\d|2[0-3])[:h]([0-5]\d)", part)
            if not found:
                raise ValidationError(
                    self.env._(
                        "%(flow)s: %(value)r is not a time of day; write the run times as "
                        "HH:MM, separated by commas (for example 09:00, 13:30).",
                        flow=self.name,
                        value=part,
                    )
                )
            times.add(time(int(found[1]), int(found[2])))
        return sorted(times)

    def _timezone(self):
        tz = self.backend_id.company_id.partner_id.tz
        return pytz.timezone(tz) if tz in pytz.all_timezones_set else pytz.utc

    def _scheduled_runs(self, start, end):
        """The set times of day between ``start`` (excluded) and ``end``
        (included), UTC datetimes, in order."""
        self.ensure_one()
        tz = self._timezone()
        first = pytz.utc.localize(start).astimezone(tz).date()
        last = pytz.utc.localize(end).astimezone(tz).date()
        runs = []
        day = first
        while day <= last:
            for at in self._run_times():
                run = tz.localize(datetime.combine(day, at)).astimezone(pytz.utc)
                run = run.replace(tzinfo=None)
                if start < run <= end:
                    runs.append(run)
            day += timedelta(days=1)
        return runs

    def _next_run(self, now=None):
        """The next set time of day after ``now`` (a UTC datetime), or None
        when the policy has no run times."""
        self.ensure_one()
        now = now or fields.Datetime.now()
        if not self._run_times():
            return None
        runs = self._scheduled_runs(now, now + timedelta(days=2))
        return runs[0] if runs else None

    def _due_since(self, last, now=None):
        """Whether a scheduled run is due when the last one (or the oldest
        thing waiting for one) was at ``last``: a set time of day passed since,
        or, with no set times, the interval."""
        self.ensure_one()
        if not self._run_times():
            return self._interval_passed(last, now)
        now = now or fields.Datetime.now()
        if not last:
            return True
        return bool(self._scheduled_runs(fields.Datetime.to_datetime(last), now))

    def _take_turn(self, now=None):
        """Whether this flow is due (a set time of day passed, or its interval)
        since the scheduled run its watermark holds; when it is, the watermark
        says it ran ``now`` (the caller starts the run)."""
        self.ensure_one()
        now = now or fields.Datetime.now()
        if not self._due_since(self.watermark, now):
            return False
        self.watermark = fields.Datetime.to_string(now)
        return True

    def _processing_delay(self):
        """Seconds to wait before processing a message of this flow."""
        self.ensure_one()
        if self.mode == "micro_batch":
            return self.interval_minutes * 60
        return 0
