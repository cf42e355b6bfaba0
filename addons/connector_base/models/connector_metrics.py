from datetime import timedelta

from odoo import fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from .connector_event import OPEN_STATES

PERIODS = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
# Open events that still move on their own: a failed event waits for a
# person, so it counts in the backlog but not in the oldest pending age.
PENDING_STATES = ("received", "queued", "processing", "waiting")
# Events the remote pushed to us (webhooks, uploaded batches): the lag
# percentiles are theirs.
PUSHED_SOURCES = ("webhook", "upload")
# Outbound changes still to send.
OUTBOUND_PENDING_STATES = ("pending", "sending")


class ConnectorBackend(models.Model):
    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    def _connector_metrics(self, period="day"):
        """How each flow of these backends is doing, over the last ``period``.

        ``period`` is ``hour``, ``day`` or ``week``. Returns a dict keyed by
        ``(backend_id, flow)`` (``flow`` False for rows without one), each value
        a dict of:

        - ``applied_per_minute`` / ``sent_per_minute``: events applied (done)
          and outbound changes sent in the period, per minute;
        - ``backlog``: open events now (received, queued, processing,
          waiting, failed); ``failed`` and ``waiting``: those of them failed
          and waiting; ``outbound_pending``: changes still to send, and
          ``outbound_failed``: changes given up on;
        - ``oldest_pending_age``: seconds since the oldest event still to be
          applied (not failed) was received, or the oldest change still to
          send was queued, whichever is older (0 when none);
        - ``lag_p50`` / ``lag_p95``: seconds from the moment an event occurred
          to the moment it was applied, for events the remote pushed
          (webhooks, uploads) applied in the period (None when none was):
          what a backfill reads is as old as the remote's data, not late;
        - ``error_rate``: events that failed over events processed (done,
          failed, ignored by a person or skipped as stale) in the period
          (None when none was processed);
        - ``duplicates``: redeliveries received in the period.

        Two aggregations, one per table, filtered on indexed columns: the
        backlog and what the period saw, not the whole history.
        """
        if period not in PERIODS:
            raise UserError(
                self.env._(
                    "Unknown metrics period %(period)r: use one of %(periods)s.",
                    period=period,
                    periods=", ".join(PERIODS),
                )
            )
        if not self:
            return {}
        now = fields.Datetime.now()
        since = now - PERIODS[period]
        minutes = PERIODS[period].total_seconds() / 60
        metrics = {}

        def flow_metrics(key):
            return metrics.setdefault(
                key,
                {
                    "applied_per_minute": 0.0,
                    "sent_per_minute": 0.0,
                    "backlog": 0,
                    "failed": 0,
                    "waiting": 0,
                    "outbound_pending": 0,
                    "outbound_failed": 0,
                    "oldest_pending_age": 0,
                    "lag_p50": None,
                    "lag_p95": None,
                    "error_rate": None,
                    "duplicates": 0,
                },
            )

        def age(oldest):
            return max(0, int((now - oldest).total_seconds())) if oldest else 0

        done = SQL("state = 'done' AND processed_at >= %s", since)
        # Lag is how late the remote's pushes are applied. A read of the
        # remote (a backfill, a manual import) brings what changed hours or
        # days ago on purpose: its age is not a delay of the sync, and a new
        # backend's first backfill would breach every SLA for an hour.
        pushed = SQL("%s AND source IN %s", done, PUSHED_SOURCES)
        self.env.cr.execute(
            SQL(
                """
                SELECT backend_id, flow,
                       count(*) FILTER (WHERE %(done)s),
                       count(*) FILTER (WHERE state = 'failed' AND processed_at >= %(since)s),
                       count(*) FILTER (WHERE state IN ('done', 'failed', 'ignored', 'stale')
                                          AND processed_at >= %(since)s),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_seconds)
                           FILTER (WHERE %(pushed)s),
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY lag_seconds)
                           FILTER (WHERE %(pushed)s),
                       count(*) FILTER (WHERE state = 'duplicate' AND received_at >= %(since)s),
                       count(*) FILTER (WHERE state IN %(open)s),
                       count(*) FILTER (WHERE state = 'failed'),
                       count(*) FILTER (WHERE state = 'waiting'),
                       min(received_at) FILTER (WHERE state IN %(pending)s)
                  FROM connector_event
                 WHERE backend_id IN %(backends)s
                   AND (processed_at >= %(since)s
                        OR state IN %(open)s
                        OR (state = 'duplicate' AND received_at >= %(since)s))
                 GROUP BY backend_id, flow
                """,
                done=done,
                pushed=pushed,
                since=since,
                open=OPEN_STATES,
                pending=PENDING_STATES,
                backends=tuple(self.ids),
            )
        )
        for row in self.env.cr.fetchall():
            (backend_id, flow, applied, failed_now, processed, p50, p95) = row[:7]
            (duplicates, backlog, failed, waiting, oldest) = row[7:]
            values = flow_metrics((backend_id, flow or False))
            values.update(
                applied_per_minute=applied / minutes,
                error_rate=failed_now / processed if processed else None,
                lag_p50=p50,
                lag_p95=p95,
                duplicates=duplicates,
                backlog=backlog,
                failed=failed,
                waiting=waiting,
                oldest_pending_age=age(oldest),
            )
        self.env.cr.execute(
            SQL(
                """
                SELECT backend_id, flow,
                       count(*) FILTER (WHERE state = 'sent' AND sent_at >= %(since)s),
                       count(*) FILTER (WHERE state IN %(pending)s),
                       count(*) FILTER (WHERE state = 'failed'),
                       min(create_date) FILTER (WHERE state IN %(pending)s)
                  FROM connector_outbound
                 WHERE backend_id IN %(backends)s
                   AND (sent_at >= %(since)s OR state IN %(pending)s OR state = 'failed')
                 GROUP BY backend_id, flow
                """,
                since=since,
                pending=OUTBOUND_PENDING_STATES,
                backends=tuple(self.ids),
            )
        )
        for backend_id, flow, sent, pending, failed, oldest in self.env.cr.fetchall():
            values = flow_metrics((backend_id, flow or False))
            values.update(
                sent_per_minute=sent / minutes,
                outbound_pending=pending,
                outbound_failed=failed,
                oldest_pending_age=max(values["oldest_pending_age"], age(oldest)),
            )
        return metrics
