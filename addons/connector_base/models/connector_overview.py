import json
from datetime import timedelta

from odoo import fields, models
from odoo.tools import SQL

# The overview's figures: the metrics of the last hour (the period the
# health check judges SLAs on), and the events applied per hour over a day.
OVERVIEW_PERIOD = "hour"
GRAPH_HOURS = 24

OVERVIEW_STATES = [
    ("draft", "Draft"),
    ("running", "Running"),
    ("paused", "Paused"),
    ("circuit_open", "Circuit open"),
    ("degraded", "Degraded"),
]
# Odoo's kanban colour index of a failing backend's tile: red.
FAILING_COLOR = 1


def duration_label(seconds):
    """A duration in the words a tile has room for: 45 s, 12 min, 3 h 05, 2 d 4 h."""
    seconds = int(seconds or 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d}"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


class ConnectorBackend(models.Model):
    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    # The tile of each backend on the Connectors overview. Not stored: computed
    # together, for every backend the view shows, by a fixed number of
    # aggregations (see _compute_overview).
    overview_state = fields.Selection(
        OVERVIEW_STATES,
        compute="_compute_overview",
        help="Degraded: running, but a health check fails or a flow is behind its SLA.",
    )
    overview_color = fields.Integer(compute="_compute_overview")
    overview_failed_count = fields.Integer(string="Failed", compute="_compute_overview")
    overview_waiting_count = fields.Integer(string="Waiting", compute="_compute_overview")
    overview_backlog_count = fields.Integer(
        string="Backlog",
        compute="_compute_overview",
        help="Events received and not processed yet (received, queued, processing).",
    )
    overview_outbound_pending_count = fields.Integer(string="To send", compute="_compute_overview")
    overview_mismatch_count = fields.Integer(
        string="Mismatches",
        compute="_compute_overview",
        help="Open mismatches found by the reconciliations, neither fixed nor accepted.",
    )
    overview_oldest_pending_age = fields.Integer(
        string="Oldest pending (s)",
        compute="_compute_overview",
        help="Seconds the oldest event still to be applied, or change still to send, waits.",
    )
    overview_oldest_pending = fields.Char(string="Oldest pending", compute="_compute_overview")
    overview_lag_p95 = fields.Integer(
        string="Lag p95 (s)",
        compute="_compute_overview",
        help="Over the last hour, of the flow furthest from its SLA.",
    )
    overview_lag_flow = fields.Char(string="Lag of flow", compute="_compute_overview")
    overview_lag_sla_minutes = fields.Integer(string="SLA (minutes)", compute="_compute_overview")
    overview_lag = fields.Char(string="Lag p95", compute="_compute_overview")
    overview_sla_breached = fields.Boolean(
        string="SLA breached",
        compute="_compute_overview",
        help="A flow's oldest pending message or lag p95 over the last hour is past its SLA.",
    )
    overview_lag_breached = fields.Boolean(
        string="Lag past SLA",
        compute="_compute_overview",
        help="A flow's lag p95 over the last hour is past its SLA.",
    )
    overview_pending_breached = fields.Boolean(
        string="Pending past SLA",
        compute="_compute_overview",
        help="A flow's oldest pending message has waited longer than its SLA.",
    )
    overview_last_webhook_at = fields.Datetime(
        string="Last webhook received", compute="_compute_overview"
    )
    overview_last_sent_at = fields.Datetime(
        string="Last outbound sent", compute="_compute_overview"
    )
    overview_graph = fields.Text(compute="_compute_overview")

    def _compute_overview(self):
        """Every figure of the tiles of these backends in six statements,
        whatever their number: the metrics of the last hour (two
        aggregations), the last webhook and last send (one), the events
        applied per hour over a day (one), the open mismatches (one), the
        policies (one)."""
        backends = self.filtered("id")
        (self - backends).update(self._overview_empty_values())
        if not backends:
            return
        backends = backends.with_prefetch(backends.ids)
        self.env["connector.event"].flush_model()
        self.env["connector.outbound"].flush_model()
        metrics = backends._connector_metrics(OVERVIEW_PERIOD)
        lasts = backends._overview_last_exchanges()
        graphs = backends._overview_graphs()
        mismatches = backends._reconciliation_open_counts()
        for backend in backends:
            flows = {
                flow: values
                for (backend_id, flow), values in metrics.items()
                if backend_id == backend.id
            }
            values = backend._overview_empty_values()
            for flow_values in flows.values():
                values["overview_failed_count"] += flow_values["failed"]
                values["overview_waiting_count"] += flow_values["waiting"]
                values["overview_backlog_count"] += (
                    flow_values["backlog"] - flow_values["failed"] - flow_values["waiting"]
                )
                values["overview_outbound_pending_count"] += flow_values["outbound_pending"]
                values["overview_oldest_pending_age"] = max(
                    values["overview_oldest_pending_age"], flow_values["oldest_pending_age"]
                )
            values.update(backend._overview_lag(metrics))
            values.update(backend._overview_sla_breaches(metrics))
            age = values["overview_oldest_pending_age"]
            values["overview_oldest_pending"] = duration_label(age) if age else False
            failing = backend.health_state == "failing"
            values["overview_color"] = FAILING_COLOR if failing else 0
            state = backend.state
            if state == "running" and (failing or values["overview_sla_breached"]):
                state = "degraded"
            values["overview_state"] = state
            last_webhook, last_sent = lasts.get(backend.id, (False, False))
            values["overview_last_webhook_at"] = last_webhook
            values["overview_last_sent_at"] = last_sent
            values["overview_graph"] = graphs[backend.id]
            values["overview_mismatch_count"] = mismatches[backend.id]
            backend.update(values)

    def _overview_empty_values(self):
        return {
            "overview_state": False,
            "overview_color": 0,
            "overview_failed_count": 0,
            "overview_waiting_count": 0,
            "overview_backlog_count": 0,
            "overview_outbound_pending_count": 0,
            "overview_mismatch_count": 0,
            "overview_oldest_pending_age": 0,
            "overview_oldest_pending": False,
            "overview_lag_p95": 0,
            "overview_lag_flow": False,
            "overview_lag_sla_minutes": 0,
            "overview_lag": False,
            "overview_sla_breached": False,
            "overview_lag_breached": False,
            "overview_pending_breached": False,
            "overview_last_webhook_at": False,
            "overview_last_sent_at": False,
            "overview_graph": json.dumps([]),
        }

    def _overview_sla_breaches(self, metrics):
        """Whether a flow's lag p95, or its oldest pending message, is past
        the flow's SLA: the rule of the health check (_health_sla_breaches),
        told apart so that the tile reddens the figure that is late."""
        self.ensure_one()
        lag_breached = pending_breached = False
        for policy in self.policy_ids.filtered("sla_lag_minutes"):
            values = metrics.get((self.id, policy.flow))
            if not values:
                continue
            limit = policy.sla_lag_minutes * 60
            lag_breached |= (values["lag_p95"] or 0) > limit
            pending_breached |= values["oldest_pending_age"] > limit
        return {
            "overview_lag_breached": lag_breached,
            "overview_pending_breached": pending_breached,
            "overview_sla_breached": lag_breached or pending_breached,
        }

    def _overview_lag(self, metrics):
        """The lag p95 over the last hour of the flow closest to (or furthest
        past) its SLA, with that SLA: what the tile shows of lag."""
        self.ensure_one()
        worst = None
        for policy in self.policy_ids:
            values = metrics.get((self.id, policy.flow))
            if not values or values["lag_p95"] is None or not policy.sla_lag_minutes:
                continue
            ratio = values["lag_p95"] / (policy.sla_lag_minutes * 60)
            if worst is None or ratio > worst[0]:
                worst = (ratio, policy, values["lag_p95"])
        if worst is None:
            return {}
        _ratio, policy, lag = worst
        return {
            "overview_lag_p95": round(lag),
            "overview_lag_flow": policy.name,
            "overview_lag_sla_minutes": policy.sla_lag_minutes,
            "overview_lag": self.env._(
                "%(lag)s (SLA %(sla)s min, %(flow)s)",
                lag=duration_label(lag),
                sla=policy.sla_lag_minutes,
                flow=policy.name,
            ),
        }

    def _overview_last_exchanges(self):
        """``{backend_id: (last webhook received, last outbound change sent)}``.

        One statement; each maximum is read from the end of a partial index
        of (backend, time), so it costs a few index pages per backend whatever
        the size of the tables.
        """
        self.env.cr.execute(
            SQL(
                """
                SELECT b.id,
                       (SELECT max(e.received_at) FROM connector_event e
                         WHERE e.backend_id = b.id AND e.source = 'webhook'),
                       (SELECT max(o.sent_at) FROM connector_outbound o
                         WHERE o.backend_id = b.id AND o.state = 'sent')
                  FROM unnest(%s::int[]) AS b(id)
                """,
                list(self.ids),
            )
        )
        return {row[0]: (row[1] or False, row[2] or False) for row in self.env.cr.fetchall()}

    def _overview_graphs(self):
        """``{backend_id: dashboard_graph JSON}``: the events applied in each of
        the last 24 hours, one aggregation on the processed_at index."""
        now = fields.Datetime.now()
        first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(
            hours=GRAPH_HOURS - 1
        )
        self.env.cr.execute(
            SQL(
                """
                SELECT backend_id, date_trunc('hour', processed_at), count(*)
                  FROM connector_event
                 WHERE processed_at >= %s AND state = 'done' AND backend_id IN %s
                 GROUP BY 1, 2
                """,
                first_hour,
                tuple(self.ids),
            )
        )
        counts = {(backend_id, hour): count for backend_id, hour, count in self.env.cr.fetchall()}
        hours = [first_hour + timedelta(hours=n) for n in range(GRAPH_HOURS)]
        labels = [fields.Datetime.context_timestamp(self, hour).strftime("%H:00") for hour in hours]
        key = self.env._("Events applied")
        graphs = {}
        for backend_id in self.ids:
            values = [
                {"label": label, "value": counts.get((backend_id, hour), 0), "type": "past"}
                for label, hour in zip(labels, hours, strict=True)
            ]
            graphs[backend_id] = json.dumps(
                [{"key": key, "values": values, "is_sample_data": False}]
            )
        return graphs

    # --- the tile's links -------------------------------------------------------

    def _overview_events_action(self, search_filter):
        """The event list of this backend with one of its search filters on."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_base.action_connector_event"
        )
        action["context"] = {
            "search_default_backend_id": self.id,
            f"search_default_{search_filter}": 1,
        }
        return action

    def action_overview_failed(self):
        """The failed events of this backend."""
        return self._overview_events_action("failed")

    def action_overview_waiting(self):
        """The events of this backend that wait for an earlier message or a record."""
        return self._overview_events_action("waiting")

    def action_overview_backlog(self):
        """The events of this backend received and not processed yet."""
        return self._overview_events_action("backlog")

    def action_overview_outbound(self):
        """The changes of this backend still to send."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_base.action_connector_outbound"
        )
        # Pending and Sending: one group of filters, OR-ed.
        action["context"] = {
            "search_default_backend_id": self.id,
            "search_default_pending": 1,
            "search_default_sending": 1,
        }
        return action

    def action_view_outbound_failed(self):
        """The changes of this backend the remote refused or that ran out of attempts."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_base.action_connector_outbound"
        )
        action["context"] = {"search_default_backend_id": self.id, "search_default_failed": 1}
        return action

    def action_replay_window(self):
        """The replay wizard, for this backend."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_base.action_connector_event_replay"
        )
        action["context"] = {"default_backend_id": self.id}
        return action
