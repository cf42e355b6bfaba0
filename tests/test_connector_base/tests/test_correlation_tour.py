from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install")
class TestCorrelationTour(HttpCase):
    """The correlation view in a real browser: type a key, follow, open a row."""

    def test_support_follows_a_key_and_opens_a_row(self):
        backend = self.env["connector.backend"].create(
            {"name": "Tour remote", "backend_type": "test", "state": "running"}
        )
        backend._send_later("partner.score", "score:77", {"score": 3})
        self.start_tour("/odoo", "connector_correlation_tour", login="admin")

    def test_support_opens_the_timeline_from_an_event(self):
        backend = self.env["connector.backend"].create(
            {"name": "Tour remote", "backend_type": "test", "state": "running"}
        )
        self.env["connector.event"]._receive(
            backend, "partner.upsert", {"id": 88, "name": "Ada"}, "tour-88"
        )
        self.start_tour("/odoo", "connector_correlation_event_tour", login="admin")
