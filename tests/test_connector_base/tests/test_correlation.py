from odoo.exceptions import UserError

from .common import ConnectorCase, trap_jobs


class TestCorrelation(ConnectorCase):
    """What the framework reads in a key, whatever the connector: a message's
    correlation id, the key messages and outbound changes are stored under."""

    def follow(self, key):
        action = self.env["connector.correlation"].action_follow(key)
        return self.env["connector.correlation"].browse(action["res_id"])

    def rows(self, correlation):
        return [(line.kind, line.ref, line.state) for line in correlation.line_ids]

    def test_correlation_id_brings_the_messages_of_its_aggregate_and_their_record(self):
        with trap_jobs() as trap:
            first = self.receive("partner.upsert", {"id": 41, "name": "Ada"}, "m-1")
            second = self.receive("partner.upsert", {"id": 41, "name": "Ada L."}, "m-2")
            self.receive("partner.upsert", {"id": 42, "name": "Grace"}, "m-3")
            self.run_jobs(trap)
        self.assertEqual((first.state, second.state), ("done", "done"))

        correlation = self.follow(first.correlation_id)

        events = correlation.line_ids.filtered(lambda line: line.kind == "event")
        self.assertEqual(events.mapped("res_id"), [first.id, second.id])
        self.assertEqual(set(events.mapped("ref")), {"partner:41"})
        records = correlation.line_ids.filtered(lambda line: line.kind == "record")
        self.assertEqual(
            [(line.res_model, line.res_id) for line in records],
            [("res.partner", first._produced_record().id)],
        )
        # The same timeline from the event's form.
        action = second.action_follow()
        self.assertEqual(
            self.rows(self.env["connector.correlation"].browse(action["res_id"])),
            self.rows(correlation),
        )

    def test_pending_change_shows_the_job_that_will_send_it(self):
        # Not trapped: the flush job is stored, as in production.
        item = self.backend._send_later("partner.score", "score:41", {"score": 3})
        correlation = self.follow("score:41")
        self.assertEqual(
            [(line.kind, line.name, line.state, line.tone) for line in correlation.line_ids],
            [
                ("outbound", "partner.score", "Pending", "warning"),
                ("job", f"{self.backend.name}: send partner.score", "Pending", "info"),
            ],
        )
        outbound = correlation.line_ids.filtered(lambda line: line.kind == "outbound")
        self.assertEqual(outbound.action_open()["res_id"], item.id)

    def test_unknown_key_is_an_empty_timeline_that_says_so(self):
        correlation = self.follow("nobody-knows-me")
        self.assertFalse(correlation.line_ids)
        self.assertIn("Nothing is known about “nobody-knows-me”", correlation.summary)

    def test_empty_key_is_refused(self):
        correlation = self.env["connector.correlation"].create({"key": ""})
        with self.assertRaisesRegex(UserError, "Type the business key to follow"):
            correlation.action_search()
