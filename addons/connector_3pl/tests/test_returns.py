from odoo.tests import TransactionCase

from odoo.addons.connector_base.tests.common import trap_jobs
from odoo.addons.queue_job.exception import RetryableJobError

from .common import TplCaseMixin, connect_3pl


class TestReturns(TplCaseMixin, TransactionCase):
    """Returns of the 3PL's deliveries: announced under their RMA, received
    where each condition sends the goods."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry_enter_test_mode_cls()
        connect_3pl(cls, sku_count=2, on_hand=10)
        cls.sku_a, cls.sku_b = cls.skus
        cls.stock = cls.warehouse.lot_stock_id

    def setUp(self):
        super().setUp()
        self._seen_webhooks = {m["message_id"] for m in self.tpl.webhook_messages()}

    # --- helpers ---------------------------------------------------------------------

    def shipped(self, lines, trap):
        """A delivery of ``lines`` released and shipped by the 3PL."""
        picking = self.release(lines, trap)
        self.tpl.ship(picking.name)
        self.receive_webhooks("order.shipped")
        self.run_jobs(trap)
        self.assertEqual(picking.state, "done")
        return picking

    def make_return(self, delivery, lines):
        """The return of ``lines`` of ``delivery``, made with Odoo's wizard."""
        wizard = (
            self.env["stock.return.picking"]
            .with_context(active_id=delivery.id, active_model="stock.picking")
            .create({"picking_id": delivery.id})
        )
        for line in wizard.product_return_moves:
            line.quantity = lines.get(line.product_id.default_code, 0)
        action = wizard.action_create_returns()
        return self.env["stock.picking"].browse(action["res_id"])

    def announced(self, lines, trap):
        """A shipped delivery's return of ``lines``, announced to the 3PL."""
        delivery = self.shipped(lines, trap)
        picking = self.make_return(delivery, lines)
        self.run_jobs(trap)
        binding = picking.tpl_return_binding_ids
        self.assertEqual(binding.state, "announced", binding.tpl_message)
        return picking, binding

    def tpl_returns(self, rma):
        return [r for r in self.tpl.returns() if r["reference_id"] == rma]

    def received(self, picking):
        """``{(sku, location): quantity}`` of the return's done moves."""
        found = {}
        for move in picking.move_ids.filtered(lambda m: m.state == "done"):
            key = (move.product_id.default_code, move.location_dest_id)
            found[key] = found.get(key, 0) + move.quantity
        return found

    # --- tests ----------------------------------------------------------------------------

    def test_returns_have_a_flow_of_their_own(self):
        self.assertEqual(self.backend._policy("returns").mode, "realtime")

    def test_mixed_dispositions_go_to_their_locations(self):
        with trap_jobs() as trap:
            picking, binding = self.announced({self.sku_a: 3, self.sku_b: 1}, trap)
            (tpl_return,) = self.tpl_returns(picking.name)
            ids = self.tpl.inventory_ids()
            self.assertEqual(
                {item["id"]: item["quantity"] for item in tpl_return["inventory"]},
                {ids[self.sku_a]: 3, ids[self.sku_b]: 1},
            )
            self.assertEqual(binding.external_id, str(tpl_return["id"]))
            self.tpl.complete_return(
                picking.name,
                [
                    (self.sku_a, 2, "Restock", "SELLABLE"),
                    (self.sku_a, 1, "Quarantine", "CARRIER_DAMAGED"),
                    (self.sku_b, 1, "Dispose", "DEFECTIVE"),
                ],
            )
            (event,) = self.receive_webhooks("return.completed")
            self.run_jobs(trap)
        self.assertEqual(event.state, "done", event.error_message)
        self.assertEqual(picking.state, "done")
        inspect = self.backend.tpl_inspect_location_id
        scrap = self.backend._tpl_default_scrap_location()
        self.assertEqual(inspect.warehouse_id, self.warehouse)
        self.assertEqual(scrap.usage, "inventory")
        self.assertEqual(
            self.received(picking),
            {(self.sku_a, self.stock): 2, (self.sku_a, inspect): 1, (self.sku_b, self.stock): 1},
        )
        # Disposed of at the 3PL: received, so that the sale counts it
        # returned, then scrapped from stock with the return as its origin.
        (scrapped,) = self.env["stock.scrap"].search([("origin", "=", picking.name)])
        self.assertEqual(
            (scrapped.product_id, scrapped.scrap_qty, scrapped.scrap_location_id, scrapped.state),
            (self.product(self.sku_b), 1, scrap, "done"),
        )
        self.assertEqual(self.product(self.sku_b).with_context(location=scrap.id).qty_available, 1)
        self.assertEqual(
            self.product(self.sku_a).with_context(location=self.stock.id).qty_available, 9
        )
        self.assertEqual(
            self.product(self.sku_a).with_context(location=inspect.id).qty_available, 1
        )
        self.assertFalse(picking.backorder_ids)
        delivered = picking.return_id.move_ids.filtered(
            lambda m: m.product_id == self.product(self.sku_a)
        )
        self.assertEqual(sum(delivered.returned_move_ids.mapped("quantity")), 3, "all returned")
        self.assertEqual(binding.state, "received")
        self.assertEqual(binding.refund_state, "partial")
        self.assertEqual((binding.sellable_qty, binding.unsellable_qty), (2, 2))
        self.assertIn("2 sellable", picking.tpl_rma_received)
        self.assertIn("1 carrier damaged", picking.tpl_rma_received)
        self.assertIn(f"{self.sku_b}: 1 defective, Dispose", binding.processed)

    def test_disposition_of_the_backend_overrides_the_default(self):
        quality = self.env["stock.location"].create(
            {
                "name": "Quality",
                "usage": "internal",
                "location_id": self.warehouse.view_location_id.id,
            }
        )
        self.env["tpl.return.disposition"].create(
            {
                "backend_id": self.backend.id,
                "condition": "SELLABLE",
                "disposition": "inspect",
                "location_id": quality.id,
            }
        )
        with trap_jobs() as trap:
            picking, binding = self.announced({self.sku_a: 1}, trap)
            self.tpl.complete_return(picking.name, [(self.sku_a, 1, "Restock", "SELLABLE")])
            self.receive_webhooks("return.completed")
            self.run_jobs(trap)
        self.assertEqual(self.received(picking), {(self.sku_a, quality): 1})
        self.assertEqual(binding.refund_state, "eligible")

    def test_partial_return_leaves_the_rest_expected(self):
        with trap_jobs() as trap:
            picking, binding = self.announced({self.sku_a: 3}, trap)
            self.tpl.complete_return(picking.name, [(self.sku_a, 2, "Restock", "SELLABLE")])
            self.receive_webhooks("return.completed")
            self.run_jobs(trap)
            self.assertEqual(picking.state, "done")
            self.assertEqual(self.received(picking), {(self.sku_a, self.stock): 2})
            backorder = picking.backorder_ids
            self.assertEqual(len(backorder), 1)
            self.assertEqual(backorder.move_ids.product_uom_qty, 1)
            self.assertNotIn(backorder.state, ("done", "cancel"))
            # The rest of the same RMA: expected, never announced again (OCA/rma#418).
            self.assertFalse(backorder.tpl_return_binding_ids)
            self.assertEqual(backorder.tpl_rma_state, "partial")
            self.assertFalse(self.outbound(backorder, "return.expect"))
            self.run_jobs(trap)
        self.assertEqual(len(self.tpl_returns(picking.name)), 1)
        self.assertEqual(
            len(self.tpl.returns()), len({r["reference_id"] for r in self.tpl.returns()})
        )
        self.assertEqual(binding.state, "partial")
        self.assertEqual(binding.refund_state, "partial")
        self.assertIn("1 still expected", binding.received_summary)

    def test_rma_announced_once_under_a_lost_answer(self):
        with trap_jobs() as trap:
            delivery = self.shipped({self.sku_a: 1}, trap)
            picking = self.make_return(delivery, {self.sku_a: 1})
            self.tpl.faults.add("drop", endpoint="return_create", apply=True, limit=1)
            with self.assertRaises(RetryableJobError):
                self.backend._flush_outbound("return.expect")
            self.assertEqual(picking.tpl_rma_state, "queued")
            self.assertEqual(len(self.tpl_returns(picking.name)), 1, "made, answer lost")
            self.run_jobs(trap)
        binding = picking.tpl_return_binding_ids
        self.assertEqual(binding.state, "announced", binding.tpl_message)
        (tpl_return,) = self.tpl_returns(picking.name)
        self.assertEqual(binding.external_id, str(tpl_return["id"]))

    def test_a_fault_on_one_return_leaves_another_announced(self):
        """Each return is announced on its own: the 3PL failing on the second
        leaves the first expected, as the 3PL has it, and spends none of its
        attempts."""
        with trap_jobs() as trap:
            first_delivery = self.shipped({self.sku_a: 1}, trap)
            second_delivery = self.shipped({self.sku_b: 1}, trap)
            order = second_delivery.tpl_binding_ids.filtered("external_id")[:1].external_id
            self.tpl.faults.add("error", endpoint=f"*/order/{order}", status=503, limit=1)
            first = self.make_return(first_delivery, {self.sku_a: 1})
            second = self.make_return(second_delivery, {self.sku_b: 1})
            # Not assertRaises: its savepoint would take back what was recorded.
            retried = None
            try:
                self.backend._flush_outbound("return.expect")
            except RetryableJobError as exc:
                retried = exc
            self.assertIn("503", str(retried), "the 3PL's fault on the second is retried")
            self.assertEqual(first.tpl_return_binding_ids.state, "announced")
            self.assertEqual(self.outbound(first, "return.expect").attempt, 1)
            self.assertEqual(second.tpl_return_binding_ids.state, "queued")
            self.run_jobs(trap)
        self.assertEqual(second.tpl_return_binding_ids.state, "announced")
        self.assertEqual(len(self.tpl_returns(first.name)), 1)
        self.assertEqual(len(self.tpl_returns(second.name)), 1)

    def test_completion_read_by_id_then_its_webhook_is_a_duplicate(self):
        with trap_jobs() as trap:
            picking, binding = self.announced({self.sku_b: 2}, trap)
            self.tpl.complete_return(picking.name, [(self.sku_b, 2, "Restock", "SELLABLE")])
            self.backend.action_tpl_read_returns()
            self.run_jobs(trap)
            self.assertEqual(picking.state, "done")
            (event,) = self.receive_webhooks("return.completed")
            self.run_jobs(trap)
        self.assertEqual(event.state, "duplicate")
        self.assertEqual(binding.refund_state, "eligible")
        self.assertEqual(self.received(picking), {(self.sku_b, self.stock): 2})

    def test_a_return_the_3pl_cannot_take_is_refused_with_why(self):
        with trap_jobs() as trap:
            delivery = self.shipped({self.sku_a: 1}, trap)
            picking = self.make_return(delivery, {self.sku_a: 1})
            self.product(self.sku_a).default_code = "GONE-AT-3PL"
            self.run_jobs(trap)
        binding = picking.tpl_return_binding_ids
        self.assertEqual(binding.state, "rejected")
        self.assertIn("does not stock GONE-AT-3PL", binding.tpl_message)
        self.assertEqual(self.outbound(picking, "return.expect").state, "failed")
        checks = self.backend._connector_health_checks()[self.backend.id]
        self.assertIn("tpl_return_refused", [code for code, _message in checks])

    def test_the_schedule_reads_a_completion_whose_webhook_was_lost(self):
        with trap_jobs() as trap:
            picking, binding = self.announced({self.sku_a: 1}, trap)
            self.tpl.complete_return(picking.name, [(self.sku_a, 1, "Dispose", "EXPIRED")])
            self.env["connector.backend"]._cron_tpl_read_returns()
            self.run_jobs(trap)
        self.assertEqual(picking.state, "done")
        scrap = self.backend._tpl_default_scrap_location()
        self.assertEqual(self.received(picking), {(self.sku_a, self.stock): 1})
        self.assertEqual(
            self.env["stock.scrap"].search([("origin", "=", picking.name)]).scrap_location_id,
            scrap,
        )
        self.assertEqual(binding.refund_state, "none")

    def test_bad_completion_fails_with_its_reason(self):
        with trap_jobs() as trap:
            picking, binding = self.announced({self.sku_a: 2}, trap)
            data = self.tpl.return_order(picking.name)
            data["status"] = "Completed"
            data["inventory"][0]["action_taken"] = [
                {"action": "Restock", "action_reason": "LIKE_NEW", "quantity_processed": 2}
            ]
            data["inventory"].append(
                {
                    "id": 1,
                    "sku": "NOT-RETURNED",
                    "quantity": 1,
                    "action_taken": [
                        {"action": "Restock", "action_reason": "SELLABLE", "quantity_processed": 1}
                    ],
                }
            )
            event = self.env["connector.event"]._receive(
                self.backend,
                "return.completed",
                {"topic": "return.completed", "event_time": None, "data": data},
                "bad-return-completion",
            )
            self.run_jobs(trap)
        self.assertEqual(event.state, "failed")
        self.assertIn("unknown condition 'LIKE_NEW'", event.error_message)
        self.assertIn("NOT-RETURNED: not on the return", event.error_message)
        self.assertNotEqual(picking.state, "done")
        self.assertEqual(binding.state, "announced")

    def test_a_return_refunded_before_it_came_back_stays_refunded(self):
        # A sales channel that refunded the customer already (its refund with restock).
        channel = self.env["connector.backend"].create({"name": "Web store", "backend_type": "3pl"})
        Backend = self.env["connector.backend"]
        with trap_jobs() as trap:
            delivery = self.shipped({self.sku_a: 2}, trap)
            picking = self.make_return(delivery, {self.sku_a: 2})
            self.assertEqual(Backend._receive_return_remotely(picking, channel), self.backend)
            self.assertEqual(Backend._receive_return_remotely(picking, channel), self.backend)
            self.run_jobs(trap)
            binding = picking.tpl_return_binding_ids
            self.assertEqual(binding.state, "announced", binding.tpl_message)
            self.assertEqual(len(self.tpl_returns(picking.name)), 1)
            self.assertEqual((binding.refund_state, binding.refunded_by_id), ("refunded", channel))
            self.tpl.complete_return(picking.name, [(self.sku_a, 2, "Dispose", "DEFECTIVE")])
            self.receive_webhooks("return.completed")
            self.run_jobs(trap)
        self.assertEqual(picking.state, "done")
        self.assertEqual(binding.state, "received")
        # Nothing came back sellable, but the money went back already: said so.
        self.assertEqual(binding.refund_state, "refunded")
        self.assertEqual(picking.tpl_rma_refund_state, "refunded")

    def test_with_the_returns_flow_off_odoo_receives_the_return_itself(self):
        self.backend._policy("returns").enabled = False
        with trap_jobs() as trap:
            delivery = self.shipped({self.sku_b: 1}, trap)
            picking = self.make_return(delivery, {self.sku_b: 1})
            self.assertFalse(self.env["connector.backend"]._receive_return_remotely(picking))
            self.run_jobs(trap)
        self.assertFalse(picking.tpl_return_binding_ids)
        self.assertFalse(self.tpl_returns(picking.name))

    def test_a_delivery_the_3pl_never_had_comes_back_to_odoo(self):
        # Validated in Odoo alone (released to no 3PL): its goods never left
        # through the 3PL, its return is not the 3PL's to receive.
        self.backend._policy("releases_out").enabled = False
        with trap_jobs() as trap:
            delivery = self.make_delivery({self.sku_a: 1})
            delivery.move_ids.quantity = 1
            delivery.move_ids.picked = True
            delivery._action_done()
            picking = self.make_return(delivery, {self.sku_a: 1})
            self.assertFalse(self.env["connector.backend"]._receive_return_remotely(picking))
            self.run_jobs(trap)
        self.assertFalse(picking.tpl_return_binding_ids)
        self.assertFalse(self.tpl_returns(picking.name))
