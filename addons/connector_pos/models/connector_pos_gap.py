from collections import defaultdict
from datetime import timedelta

from odoo import fields, models

from odoo.addons.connector_base.models.connector_health import CHECKED_STATES

from ..components.closing import ranges_text
from .pos_backend import TICKET_TOPIC

# Gaps are looked for among the tickets received in the last days: a hole
# older than that has long been raised, and the query stays bounded by the
# index below however long the fleet has been selling.
GAP_LOOKBACK_DAYS = 7
# The holes in each register's ticket numbers: a window function over the
# numbers received, in the database (never every ticket loaded). The time of
# a hole is when the first ticket after it arrived: since then it is known.
GAPS_SQL = """
SELECT backend_id, store, register, previous + 1, number - 1, received_at
  FROM (
        SELECT backend_id,
               payload->>'store' AS store,
               payload->>'register' AS register,
               (payload->>'sequence')::numeric AS number,
               lag((payload->>'sequence')::numeric) OVER (
                   PARTITION BY backend_id, sequence_key
                   ORDER BY (payload->>'sequence')::numeric
               ) AS previous,
               received_at
          FROM connector_event
         WHERE backend_id = ANY(%(backend_ids)s)
           AND topic = %(topic)s
           AND duplicate_of_id IS NULL
           AND received_at >= %(since)s
           AND jsonb_typeof(payload->'sequence') = 'number'
           AND (%(store)s::varchar IS NULL OR payload->>'store' = %(store)s::varchar)
       ) numbered
 WHERE number > previous + 1
 ORDER BY backend_id, store, register, previous
"""


class ConnectorEvent(models.Model):
    _inherit = "connector.event"  # pylint: disable=consider-merging-classes-inherited

    # What the gap query reads: a fleet's tickets received lately.
    _pos_ticket_received_idx = models.Index(
        "(backend_id, received_at) WHERE topic = 'ticket' AND duplicate_of_id IS NULL"
    )


class ConnectorPosStore(models.Model):
    """The gaps of a store's registers: tickets numbered but not received."""

    _inherit = "connector.pos.store"  # pylint: disable=consider-merging-classes-inherited

    gap_alert_minutes = fields.Integer(
        string="Raise a gap after (minutes)",
        help="A register's missing tickets are raised as a health alert once the gap is this "
        "old. 0: the SLA of the fleet's Tickets in flow.",
    )
    gap_count = fields.Integer(string="Missing tickets", compute="_compute_gaps")
    gap_summary = fields.Text(string="Gaps", compute="_compute_gaps")

    def _compute_gaps(self):
        # One store (its form): only its registers are looked at.
        gaps = self.backend_id._pos_gaps(self.code if len(self) == 1 else None)
        for store in self:
            mine = gaps.get((store.backend_id.id, store.code), [])
            store.gap_count = sum(gap["last"] - gap["first"] + 1 for gap in mine)
            store.gap_summary = "\n".join(store._gap_line(gap) for gap in mine) or False

    def _gap_line(self, gap):
        """``Register R1: missing tickets 4051-4060 since 30/11 10:42``, in the user's time."""
        since = fields.Datetime.context_timestamp(self, gap["since"])
        return self.env._(
            "Register %(register)s: missing tickets %(numbers)s since %(since)s",
            register=gap["register"],
            numbers=ranges_text([(gap["first"], gap["last"])]),
            since=since.strftime("%Y-%m-%d %H:%M"),
        )

    def _gap_alert_minutes(self):
        self.ensure_one()
        return self.gap_alert_minutes or self.backend_id._policy("tickets_in").sla_lag_minutes or 15


class ConnectorBackend(models.Model):
    """Gaps in the registers' ticket numbers: shown on the stores, raised by
    the health check past their SLA."""

    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    def _pos_gaps(self, store_code=None):
        """``{(backend id, store code): [{register, first, last, since}]}`` of the
        holes in the registers' ticket numbers received lately."""
        # A polled POS numbers no void nor no-sale, and its parked sales come
        # when closed: its holes are no missing tickets (its cursor misses none).
        backends = self.filtered(lambda b: b.backend_type == "pos" and b.pos_mode != "pull")
        if not backends:
            return {}
        self.env["connector.event"].flush_model()
        self.env.cr.execute(
            GAPS_SQL,
            {
                "backend_ids": backends.ids,
                "topic": TICKET_TOPIC,
                "since": fields.Datetime.now() - timedelta(days=GAP_LOOKBACK_DAYS),
                "store": store_code,
            },
        )
        gaps = defaultdict(list)
        for backend_id, store, register, first, last, since in self.env.cr.fetchall():
            gaps[(backend_id, store)].append(
                {"register": register, "first": int(first), "last": int(last), "since": since}
            )
        return gaps

    def _connector_health_checks(self):
        checks = super()._connector_health_checks()
        fleets = self.filtered(lambda b: b.backend_type == "pos" and b.state in CHECKED_STATES)
        if not fleets:
            return checks
        now = fields.Datetime.now()
        stores = {
            (store.backend_id.id, store.code): store
            for store in self.env["connector.pos.store"].search([("backend_id", "in", fleets.ids)])
        }
        late = defaultdict(list)
        for (backend_id, code), gaps in fleets._pos_gaps().items():
            store = stores.get((backend_id, code))
            if not store:
                continue
            limit = timedelta(minutes=store._gap_alert_minutes())
            late[backend_id].extend(
                f"{store.display_name}, {store._gap_line(gap)}"
                for gap in gaps
                if now - gap["since"] > limit
            )
        for backend_id, lines in late.items():
            if lines:
                checks[backend_id].append(
                    (
                        "pos_gaps",
                        self.env._(
                            "Tickets are missing past their SLA; ask the stores to upload them "
                            "again, or accept the difference at the close:\n%s",
                            "\n".join(lines),
                        ),
                    )
                )
        return checks

    def _health_check_labels(self):
        return {
            **super()._health_check_labels(),
            "pos_gaps": self.env._("Store tickets are missing"),
        }
