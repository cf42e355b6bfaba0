import logging
from collections import defaultdict

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.conflicts import expected_conflicts
from odoo.addons.connector_base.components.http_client import RemoteError, RemoteRetryableError
from odoo.addons.connector_base.components.topics import OutboundTopic
from odoo.addons.queue_job.exception import RetryableJobError

from ..components.client import Refusal
from ..components.journal import journal_body, split_by_distribution, summarise, to_amount, totals
from .finance_export import JOURNAL_TOPIC

_logger = logging.getLogger(__name__)

EXPORT_MODES = [
    ("entry", "One journal per entry"),
    ("summary", "Summarised per day, journal, account, tax and tracking"),
]
# The accounting system takes one manual journal a call: each batch is one
# send, recorded as soon as the remote made it.
JOURNALS_PER_BATCH = 1


class ConnectorBackend(models.Model):
    """What an accounting system backend exports: the posted entries of
    chosen journals, per entry or summarised per day, as manual journals."""

    _inherit = "connector.backend"

    finance_journal_ids = fields.Many2many(
        "account.journal",
        "connector_backend_finance_journal_rel",
        "backend_id",
        "journal_id",
        string="Journals exported",
        help="The posted entries of these Odoo journals go to the accounting system.",
    )
    finance_export_mode = fields.Selection(
        EXPORT_MODES,
        string="Export",
        default="summary",
        help="One manual journal per Odoo entry, or one per day and journal whose lines are "
        "the day's amounts summed per account, tax and tracking (days go once closed).",
    )
    finance_export_from = fields.Date(
        string="Export entries from",
        help="Entries dated before are not exported (kept in the accounting system by other "
        "means before the connector started).",
    )
    finance_export_count = fields.Integer(compute="_compute_finance_export_counts")
    finance_held_count = fields.Integer(compute="_compute_finance_export_counts")

    def _compute_finance_export_counts(self):
        counts = {
            (backend.id, state): count
            for backend, state, count in self.env["finance.export"]._read_group(
                [("backend_id", "in", self.ids)], ["backend_id", "state"], ["__count"]
            )
        }
        for backend in self:
            backend.finance_export_count = sum(
                count for (backend_id, _s), count in counts.items() if backend_id == backend.id
            )
            backend.finance_held_count = counts.get((backend.id, "held"), 0) + counts.get(
                (backend.id, "waiting"), 0
            )

    def _connector_topics(self):
        if self.backend_type != "finance":
            return super()._connector_topics()
        return {
            **super()._connector_topics(),
            JOURNAL_TOPIC: OutboundTopic(
                flow="journals_out",
                sender="_finance_send_journals",
                batch_size=JOURNALS_PER_BATCH,
                description="A batch of posted journal entries, one manual journal.",
            ),
        }

    # --- the run -------------------------------------------------------------------

    @api.model
    def _cron_finance_export(self):
        """Queue the export run of every running accounting system whose
        journals flow is due."""
        for backend in self.search([("backend_type", "=", "finance"), ("state", "=", "running")]):
            policy = backend._policy("journals_out")
            if backend.finance_journal_ids and policy.enabled and policy._take_turn():
                backend._connector_delay(
                    channel=policy.channel,
                    identity_key=f"finance.export.run-{backend.id}",
                    description=f"{backend.name}: export the journals",
                )._finance_export_run()

    def action_finance_export_now(self):
        """The manager's run, now: batches made, held ones whose period
        reopened released, everything ready queued for sending."""
        self.ensure_one()
        if self.backend_type != "finance" or not self.finance_journal_ids:
            raise UserError(self.env._("Choose the journals exported first."))
        if self.state not in ("running", "circuit_open"):
            raise UserError(
                self.env._("Start the backend first: a draft or paused one sends nothing.")
            )
        try:
            made, released = self._finance_export_run()
        except (RetryableJobError, RemoteError) as exc:
            raise UserError(
                self.env._(
                    "The accounting system did not answer (%(error)s): nothing was exported; "
                    "try again in a moment.",
                    error=exc,
                )
            ) from exc
        return self._notify(
            self.env._("Export started"),
            self.env._(
                "%(made)d new batches, %(released)d held or waiting batches released; they are "
                "sent in the background.",
                made=made,
                released=released,
            ),
            kind="success",
        )

    def _finance_export_run(self):
        """Read the accounting system's lock dates, make the batches of the
        entries posted since, release the batches the reopened periods and
        exported predecessors let go, and send. Returns ``(made, released)``."""
        self.ensure_one()
        with self._retry_on_remote_fault():
            self._finance_read_organisation()
        batches = self._finance_make_batches()
        Export = self.env["finance.export"]
        lock = self._finance_lock_date()
        reopened = Export.search(
            [
                ("backend_id", "=", self.id),
                ("state", "=", "held"),
                ("hold_kind", "=", "locked"),
                *([("date", ">", lock)] if lock else []),
            ]
        )
        for batch in reopened:
            batch.message_post(
                body=self.env._(
                    "Released: the accounting system's period is open for %(date)s now.",
                    date=batch.date,
                )
            )
        self._finance_hold_given_up()
        waiting = Export.search([("backend_id", "=", self.id), ("state", "=", "waiting")])
        # The journal sender may release a batch at the same moment (its
        # predecessor just exported): the conflict fails this transaction,
        # which queue_job runs again.
        with expected_conflicts():
            (batches | reopened | waiting)._release()
            self.env.flush_all()
        self._flush_pending(JOURNAL_TOPIC)
        return len(batches), len(reopened | (waiting - batches))

    def _finance_hold_given_up(self):
        """Queued batches whose send the outbound queue gave up (the remote
        kept failing) are shown held, with the queue's reason: requeued from
        the batch or from the outgoing changes, they go again."""
        ready = self.env["finance.export"].search(
            [("backend_id", "=", self.id), ("state", "=", "ready")]
        )
        for batch in ready:
            item = batch.outbound_id
            if item.state == "failed":
                batch._hold("refused", item.error_message)

    def _finance_moves_to_export(self):
        """The posted entries of the exported journals in no batch yet; a
        summarised export takes closed days only.

        A bank statement line's entry waits until the line is reconciled:
        until then it holds the bank's suspense account, which the
        reconciliation replaces by rewriting that entry, and an exported
        entry is never rewritten (a payout's settlement would be refused).
        """
        self.ensure_one()
        domain = [
            ("company_id", "=", self.company_id.id),
            ("journal_id", "in", self.finance_journal_ids.ids),
            ("state", "=", "posted"),
            ("finance_export_link_ids", "not any", [("backend_id", "=", self.id)]),
            "|",
            ("statement_line_id", "=", False),
            ("statement_line_id.is_reconciled", "=", True),
        ]
        if self.finance_export_from:
            domain.append(("date", ">=", self.finance_export_from))
        if self.finance_export_mode == "summary":
            domain.append(("date", "<", fields.Date.context_today(self)))
        return self.env["account.move"].search(domain, order="date, id")

    def _finance_make_batches(self):
        """One batch per entry, or per day and journal (summed): the entries'
        lines as Odoo has them, in the company's currency."""
        self.ensure_one()
        moves = self._finance_moves_to_export()
        groups = defaultdict(lambda: self.env["account.move"])
        for move in moves:
            if self.finance_export_mode == "summary":
                groups[(move.journal_id, move.date)] |= move
            else:
                groups[(move.journal_id, move.date, move.id)] |= move
        Export = self.env["finance.export"]
        batches = Export
        for key, group in groups.items():
            journal, day = key[0], key[1]
            lines = self._finance_lines(group)
            batches |= Export.create(
                {
                    "backend_id": self.id,
                    "journal_id": journal.id,
                    "mode": self.finance_export_mode,
                    "date": day,
                    "entry_date": day,
                    "state": "waiting",
                    "line_ids": [
                        fields.Command.create(
                            {
                                "sequence": index,
                                "account_id": line["account"],
                                "tax_id": line["tax"],
                                "analytic_account_ids": [fields.Command.set(line["analytics"])],
                                "amount": float(line["amount"]),
                                "description": line["description"],
                            }
                        )
                        for index, line in enumerate(lines)
                    ],
                    "link_ids": [
                        fields.Command.create({"backend_id": self.id, "move_id": move.id})
                        for move in group
                    ],
                }
            )
        return batches

    def _finance_lines(self, moves):
        """The lines of a batch of ``moves``: each journal item, spread over its
        analytic distribution; summed per account, tax and tracking when the
        export is summarised."""
        digits = self.company_id.currency_id.decimal_places
        lines = []
        for item in moves.line_ids.filtered(
            lambda i: i.display_type not in ("line_section", "line_note")
        ):
            amount = to_amount(item.balance, digits)
            tax = item.tax_line_id or item.tax_ids[:1]
            for analytics, share in split_by_distribution(
                amount, item.analytic_distribution, digits
            ):
                lines.append(
                    {
                        "account": item.account_id.id,
                        "tax": tax.id or False,
                        "analytics": analytics,
                        "amount": share,
                        "description": item.name or item.move_id.ref or item.move_id.name,
                    }
                )
        if self.finance_export_mode != "summary":
            return [line for line in lines if line["amount"]]
        Account, Tax = self.env["account.account"], self.env["account.tax"]

        def description(line):
            account = Account.browse(line["account"])
            tax = Tax.browse(line["tax"]) if line["tax"] else Tax
            return " / ".join(filter(None, [f"{account.code} {account.name}", tax.name]))

        return summarise(lines, description)

    # --- the sender ------------------------------------------------------------------

    def _finance_send_journals(self, items):
        """One manual journal per batch; ``{item id: reason}`` for the batches
        held (the reason shown in the outgoing changes' exceptions)."""
        refused = {}
        client = None
        for item in items:
            batch = self.env["finance.export"].browse(item.payload.get("export_id")).exists()
            if not batch or batch.state in ("exported", "cancelled"):
                item.remote_result = batch.remote_id or self.env._("Nothing to send.")
                continue
            reason, blocker = batch._waiting_for()
            if reason:
                batch._wait(reason, blocker)
                item.remote_result = reason
                continue
            body = batch.sent_body
            if not body:
                body, reason = self._finance_journal_of(batch)
                if reason:
                    refused[item.id] = reason
                    continue
            client = client or self._finance_client(correlation_id=item.correlation_id)
            try:
                saved = client.save_journal(body, batch.idempotency_key)
            except Refusal as refusal:
                refused[item.id] = self._finance_refused(batch, refusal)
                continue
            except RemoteRetryableError:
                # The journal may be made and its answer lost: the next send
                # must be this very body under this key, whatever changes
                # meanwhile (a mapping), to be answered with that journal.
                if not batch.sent_body:
                    self._finance_freeze_body(batch, body)
                raise
            batch.write(
                {
                    "state": "exported",
                    "remote_id": saved["ManualJournalID"],
                    "exported_at": fields.Datetime.now(),
                    "hold_kind": False,
                    "reason": False,
                    "locked_until": False,
                }
            )
            item.remote_result = saved["ManualJournalID"]
            batch._release_followers()
        return refused

    def _finance_freeze_body(self, batch, body):
        """Keep the journal sent when its answer did not come, in a transaction
        of its own (the send's is rolled back to be retried)."""
        with self._new_transaction() as env:
            env["finance.export"].browse(batch.id).write({"sent_body": body})

    def _finance_journal_of(self, batch):
        """``(body, None)``: the batch as the accounting system's manual
        journal, its lines given their remote account, tax type and tracking;
        or ``(None, reason)`` when it is held: its lines do not balance, or an
        account or tax is not mapped."""
        digits = self.company_id.currency_id.decimal_places
        amounts = [to_amount(line.amount, digits) for line in batch.line_ids]
        debits, credits = totals(amounts)
        if debits + credits:
            return None, batch._hold(
                "unbalanced",
                self.env._(
                    "%(batch)s does not balance: debits %(debits)s, credits %(credits)s. "
                    "Nothing was sent; check its entries in Odoo, then cancel the batch so that "
                    "they go out again.",
                    batch=batch.name,
                    debits=debits,
                    credits=-credits,
                ),
            )
        codes = self.env["finance.account.map"]._codes(self)
        tax_types = self.env["finance.tax.map"]._tax_types(self)
        options = self.env["finance.tracking.map"]._options(self)
        unmapped = [
            f"{line.account_id.code} {line.account_id.name}"
            for line in batch.line_ids
            if line.account_id.id not in codes
        ]
        unmapped_taxes = [
            line.tax_id.name
            for line in batch.line_ids
            if line.tax_id and line.tax_id.id not in tax_types
        ]
        if unmapped or unmapped_taxes:
            problems = []
            if unmapped:
                problems.append(
                    self.env._("accounts %(names)s", names=", ".join(sorted(set(unmapped))))
                )
            if unmapped_taxes:
                problems.append(
                    self.env._("taxes %(names)s", names=", ".join(sorted(set(unmapped_taxes))))
                )
            return None, batch._hold(
                "unmapped",
                self.env._(
                    "%(batch)s is held: the %(problems)s are not mapped to the accounting "
                    "system. Map them on the backend, then send the batch again.",
                    batch=batch.name,
                    problems=self.env._(" and the ").join(problems),
                ),
            )
        resolved = []
        for line, amount in zip(batch.line_ids, amounts, strict=True):
            tracking = sorted({options[a.id] for a in line.analytic_account_ids if a.id in options})
            values = {
                "code": codes[line.account_id.id],
                "tax_type": tax_types.get(line.tax_id.id) if line.tax_id else None,
                "tracking": tracking,
                "amount": amount,
                "description": line.description,
            }
            line.write(
                {
                    "account_code": values["code"],
                    "tax_type": values["tax_type"],
                    "tracking": "; ".join(f"{c}: {o}" for c, o in tracking) or False,
                }
            )
            resolved.append(values)
        if batch.mode == "summary":
            narration = self.env._(
                "%(batch)s: %(journal)s of %(date)s (%(count)d entries)",
                batch=batch.name,
                journal=batch.journal_id.name,
                date=batch.entry_date,
                count=batch.move_count,
            )
        else:
            move = batch.move_ids[:1]
            narration = " ".join(filter(None, [batch.name + ":", move.name, move.ref or None]))
        return journal_body(narration, batch.date, resolved), None

    def _finance_refused(self, batch, refusal):
        """Hold a batch the accounting system refused, in its words; the next
        send is a new revision (the refusal made nothing)."""
        locked_until = refusal.locked_until
        reason = "; ".join(refusal.messages)
        batch.write({"revision": batch.revision + 1, "sent_body": False})
        if locked_until:
            return batch._hold(
                "locked",
                self.env._(
                    "%(batch)s dated %(date)s is held: %(reason)s. It goes by itself once the "
                    "period reopens, or a manager moves it to the first open date.",
                    batch=batch.name,
                    date=batch.date,
                    reason=reason,
                ),
                locked_until=locked_until,
            )
        return batch._hold(
            "refused",
            self.env._(
                "The accounting system refused %(batch)s: %(reason)s. Correct the cause (the "
                "mapping, the remote's chart), then send the batch again.",
                batch=batch.name,
                reason=reason,
            ),
        )

    def action_finance_view_exports(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "connector_finance.action_finance_export"
        )
        action["domain"] = [("backend_id", "=", self.id)]
        if self.env.context.get("finance_held"):
            action["domain"] += [("state", "in", ("held", "waiting"))]
        action["context"] = {}
        return action

    # --- health -------------------------------------------------------------------

    def _connector_health_checks(self):
        checks = super()._connector_health_checks()
        for backend in self.filtered(lambda b: b.backend_type == "finance" and b.id in checks):
            held = self.env["finance.export"].search_count(
                [("backend_id", "=", backend.id), ("state", "=", "held")]
            )
            if held:
                checks[backend.id].append(
                    (
                        "finance_held",
                        self.env._(
                            "%(count)d journal batches of %(backend)s are held (unmapped "
                            "accounts, a locked period, a refusal): open them from the "
                            "backend's Held button and release them.",
                            count=held,
                            backend=backend.display_name,
                        ),
                    )
                )
        return checks

    def _health_check_labels(self):
        return {
            **super()._health_check_labels(),
            "finance_held": self.env._("Journal batches held"),
        }
