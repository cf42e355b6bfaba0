from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.tests import tagged

from .common import STORE, PosCase


@tagged("post_install", "-at_install")
class TestPosGaps(PosCase):
    """Holes in a register's ticket numbers: shown on the store, cleared when
    the late tickets arrive, raised by the health check past their SLA."""

    def ring_with_a_gap(self):
        """Five sales on R1, the second and third held back by the POS."""
        tickets = [self.pos.sale(STORE, "R1", [("TSH-001-S-BLK", 1)]) for _ in range(5)]
        for ticket in tickets[1:3]:
            self.pos.hold(ticket)
        self.push()
        return tickets

    def gaps(self):
        self.store.invalidate_recordset(["gap_count", "gap_summary"])
        return self.store.gap_count, self.store.gap_summary

    def gap_alerts(self):
        checks = self.backend._connector_health_checks()[self.backend.id]
        return [message for code, message in checks if code == "pos_gaps"]

    def test_gap_is_shown_on_the_store_then_cleared(self):
        tickets = self.ring_with_a_gap()
        self.pos.sale(STORE, "R2", [("SOC-006-36-40", 1)])
        self.push()
        count, summary = self.gaps()
        first, last = tickets[1]["sequence"], tickets[2]["sequence"]
        self.assertEqual(count, 2)
        self.assertRegex(
            summary,
            rf"^Register R1: missing tickets {first}-{last} since \d{{4}}-\d\d-\d\d \d\d:\d\d$",
        )
        self.pos.release()
        self.push()
        self.assertEqual(self.gaps(), (0, False))

    def test_gap_past_the_sla_raises_a_health_alert(self):
        tickets = self.ring_with_a_gap()
        now = fields.Datetime.now()
        self.assertEqual(self.gap_alerts(), [], "a fresh gap is no alert yet")
        sla = self.backend._policy("tickets_in").sla_lag_minutes
        with freeze_time(now + timedelta(minutes=sla + 1)):
            [alert] = self.gap_alerts()
        self.assertIn(
            f"{self.store.display_name}, Register R1: missing tickets "
            f"{tickets[1]['sequence']}-{tickets[2]['sequence']}",
            alert,
        )
        self.store.gap_alert_minutes = sla + 30
        with freeze_time(now + timedelta(minutes=sla + 1)):
            self.assertEqual(self.gap_alerts(), [], "the store's own SLA is longer")
        self.pos.release()
        self.push()
        with freeze_time(now + timedelta(minutes=sla + 60)):
            self.assertEqual(self.gap_alerts(), [])
