from odoo.exceptions import UserError
from odoo.tests import TransactionCase, new_test_user

from odoo.addons.connector_shopify.models.shopify_backend import order_shard
from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job as QueueJob

from .common import connect_store


class TestCorrelation(TransactionCase):
    """Support follows an order number or a SKU: every message, job, record
    and outbound call about it, in time order, with its state."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        connect_store(cls, sku_count=2, on_hand=20, seed=31, products=8)
        cls.carrier = cls.env["delivery.carrier"].create(
            {"name": "DHL Express", "product_id": cls.backend.shopify_shipping_product_id.id}
        )
        cls.Correlation = cls.env["connector.correlation"]

    def run_jobs(self, rounds=20):
        """Run the stored jobs as queue_job's runner would, in the test's
        transaction, and those they queue in turn, until none is left."""
        Job = self.env["queue.job"]
        for _ in range(rounds):
            pending = Job.search([("state", "=", "pending")], order="id")
            if not pending:
                return
            for record in pending:
                job = QueueJob.load(self.env, record.uuid)
                job.set_started()
                job.store()
                try:
                    result = job.perform()
                except RetryableJobError:
                    job.set_pending()
                    job.store()
                    continue
                job.set_done(result=result)
                job.store()
        self.fail("jobs still pending after the rounds")

    def import_order(self, lines):
        payload = self.shop.create_order(lines)
        Event = self.env["connector.event"]
        event = Event._receive(self.backend, "orders/create", payload, f"wh-{payload['id']}")
        # Shopify delivers it twice: the second copy is set aside.
        Event._receive(self.backend, "orders/create", payload, f"wh-{payload['id']}")
        self.run_jobs()
        self.assertEqual(event.state, "done", event.error_message)
        return payload, event

    def deliver(self, sale, tracking):
        picking = sale.picking_ids
        for move in picking.move_ids:
            move.quantity = move.product_uom_qty
        picking.write({"carrier_id": self.carrier.id, "carrier_tracking_ref": tracking})
        picking.move_ids.picked = True
        picking.with_context(cancel_backorder=False)._action_done()
        self.run_jobs()
        return picking

    def timeline(self, correlation):
        return [(line.kind, line.name, line.state) for line in correlation.line_ids]

    def assert_time_ordered(self, correlation):
        times = correlation.line_ids.mapped("time")
        self.assertTrue(all(times), "every row has its time")
        self.assertEqual(times, sorted(times), self.timeline(correlation))

    def open(self, action):
        self.assertEqual(action["res_model"], "connector.correlation")
        return self.Correlation.browse(action["res_id"])

    def test_order_name_lists_its_messages_jobs_sale_order_and_fulfillment(self):
        payload, event = self.import_order([(self.skus[0], 2)])
        sale = event._produced_record()
        picking = self.deliver(sale, "TRACK-9")

        correlation = self.open(self.Correlation.action_follow(payload["name"]))

        self.assert_time_ordered(correlation)
        lines = correlation.line_ids
        events = lines.filtered(lambda line: line.kind == "event")
        self.assertEqual(
            sorted(events.mapped("state")), ["Done", "Duplicate"], self.timeline(correlation)
        )
        self.assertEqual(set(events.mapped("ref")), {f"order:{payload['id']}"})
        self.assertIn(sale.name, events.filtered(lambda line: line.state == "Done").detail)
        jobs = lines.filtered(lambda line: line.kind == "job")
        self.assertEqual(
            [(line.name, line.state) for line in jobs],
            [
                # The batch job of the order's key space, which applied it.
                (f"{self.backend.name}: orders/create {order_shard(payload)}", "Done"),
                (f"{self.backend.name}: send fulfillment.create", "Done"),
            ],
        )
        self.assertEqual(jobs[0].res_id, event.sudo().job_ids.id)
        records = {
            (line.res_model, line.res_id): line.state for line in lines if line.kind == "record"
        }
        self.assertEqual(records[("sale.order", sale.id)], "Sales Order")
        self.assertEqual(records[("stock.picking", picking.id)], "Done")
        outbound = lines.filtered(lambda line: line.kind == "outbound")
        self.assertEqual(
            [(line.name, line.ref, line.state) for line in outbound],
            [("fulfillment.create", f"picking:{picking.id}", "Sent")],
        )
        fulfillment = self.shop.fulfillments(payload["name"])[0]
        self.assertEqual(outbound.detail, fulfillment["admin_graphql_api_id"])
        # A message comes before the job that applies it.
        kinds = lines.mapped("kind")
        self.assertLess(kinds.index("event"), kinds.index("job"))
        self.assertIn(payload["name"], correlation.summary)
        self.assertIn(sale.name, correlation.summary)

        # The same story from the sale order, from its message, by the order's id.
        for action in (
            sale.action_follow_shopify_order(),
            event.action_follow(),
            self.Correlation.action_follow(str(payload["id"])),
        ):
            self.assertEqual(self.timeline(self.open(action)), self.timeline(correlation))

    def test_order_that_never_became_a_sale_order_is_found_by_its_id(self):
        # A variant the store sells and Odoo does not know: the import fails.
        unknown = sorted({row["sku"] for row in self.shop.inventory()} - set(self.skus))[0]
        payload = self.shop.create_order([(unknown, 1)])
        event = self.env["connector.event"]._receive(
            self.backend, "orders/create", payload, f"wh-{payload['id']}"
        )
        self.run_jobs()
        self.assertEqual(event.state, "failed")

        by_name = self.open(self.Correlation.action_follow(payload["name"]))
        self.assertFalse(by_name.line_ids)
        self.assertIn("found by its id", by_name.summary)

        by_id = self.open(self.Correlation.action_follow(str(payload["id"])))
        self.assertEqual(
            [(line.kind, line.state, line.tone) for line in by_id.line_ids],
            [("event", "Failed", "danger"), ("job", "Done", "success")],
        )
        self.assertIn(unknown, by_id.line_ids[0].detail)

    def test_row_opens_what_it_shows(self):
        payload, event = self.import_order([(self.skus[1], 1)])
        correlation = self.open(self.Correlation.action_follow(payload["name"]))
        # Rows made in one transaction share their time: each row is checked
        # by what it shows, whatever their order.
        records = correlation.line_ids.filtered(lambda line: line.kind == "record")
        self.assertEqual(sorted(records.mapped("res_model")), ["sale.order", "stock.picking"])
        for row in records:
            action = row.action_open()
            self.assertEqual((action["res_model"], action["res_id"]), (row.res_model, row.res_id))
        order_row = records.filtered(lambda line: line.res_model == "sale.order")
        self.assertEqual(order_row.res_id, event.res_id)
        picking_row = records - order_row
        self.assertIn(
            picking_row.res_id, self.env["sale.order"].browse(event.res_id).picking_ids.ids
        )

    def test_support_user_sees_every_state_and_opens_what_they_may_read(self):
        payload, event = self.import_order([(self.skus[1], 1)])
        support = new_test_user(
            self.env, login="rs_follow_robot", groups="connector_base.group_connector_user"
        )
        Correlation = self.Correlation.with_user(support)
        correlation = self.open(Correlation.action_follow(payload["name"]))
        rows = {(line.kind, line.res_model): line for line in correlation.line_ids}
        self.assertEqual(
            sorted((line.kind, line.res_model, line.state) for line in correlation.line_ids),
            [
                ("event", "connector.event", "Done"),
                ("event", "connector.event", "Duplicate"),
                ("job", "queue.job", "Done"),
                ("record", "sale.order", "Sales Order"),
                ("record", "stock.picking", "Ready"),
            ],
        )
        done = correlation.line_ids.filtered(
            lambda line: line.kind == "event" and line.state == "Done"
        )
        self.assertEqual(done.action_open()["res_id"], event.id)
        # No sales or job rights: the sale order and the job are named, not opened.
        self.assertIn(event.record_name, rows["record", "sale.order"].name)
        for row in (rows["record", "sale.order"], rows["job", "queue.job"]):
            with self.assertRaisesRegex(UserError, "You may not open"):
                row.action_open()

    def test_sku_lists_its_stock_changes_sent(self):
        product = self.products[0]
        binding = self.env["shopify.product.binding"].search([("odoo_id", "=", product.id)])
        location = self.backend.shopify_location_ids
        stock = self.env.ref("stock.warehouse0").lot_stock_id
        self.env["stock.quant"]._update_available_quantity(product, stock, 5)
        self.run_jobs()
        self.assertEqual(self.shop.inventory(product.default_code)[0]["available"], 25)

        correlation = self.open(product.action_follow_sku())

        self.assert_time_ordered(correlation)
        outbound = correlation.line_ids.filtered(lambda line: line.kind == "outbound")
        self.assertEqual(
            [(line.name, line.ref, line.state) for line in outbound],
            [("inventory.set", f"{binding.inventory_item_id}@{location.external_id}", "Sent")],
        )
        jobs = correlation.line_ids.filtered(lambda line: line.kind == "job")
        self.assertEqual(jobs.mapped("state"), ["Done"])
        records = correlation.line_ids.filtered(lambda line: line.kind == "record")
        self.assertEqual(
            [(r.res_model, r.res_id) for r in records], [("product.product", product.id)]
        )
        self.assertIn(product.default_code, correlation.summary)
        # From the product's form too.
        self.assertEqual(
            self.timeline(self.open(product.product_tmpl_id.action_follow_sku())),
            self.timeline(correlation),
        )

    def test_unknown_key_is_a_clear_empty_result(self):
        correlation = self.open(self.Correlation.action_follow("#999999"))
        self.assertFalse(correlation.line_ids)
        self.assertIn("Nothing is known about “#999999”", correlation.summary)
        self.assertIn(self.backend.name, correlation.summary)

    def test_empty_key_is_refused_with_what_to_type(self):
        correlation = self.Correlation.create({"key": "   "})
        with self.assertRaisesRegex(UserError, "Type the business key to follow"):
            correlation.action_search()
