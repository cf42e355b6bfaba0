"""The settlements flow of the accounting system backend: the card
acquirer's batches read from its settlement reports, the Shopify Payments
payouts taken from connector_shopify's records (when it is installed: read
through the registry, never imported), both matched and reconciled, and what
stays unexplained listed through connector_base's reconciliation framework."""

from datetime import datetime
from decimal import Decimal

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.connector_base.components.reconciliation import (
    Comparison,
    Difference,
    Reconciliation,
)

from ..components.settlement_report import ReportError, parse_report

SETTLEMENT_FLOW = "settlements_in"
SETTLEMENT_KIND = "settlements"
REPORT_FILE = "settlement_detail_report_batch_{number}.csv"
# Batches read by one job; the next job goes on from there.
BATCHES_PER_JOB = 20


class ConnectorBackend(models.Model):
    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    finance_report_url = fields.Char(
        string="Settlement report URL",
        help="Where the card acquirer's settlement detail reports download from (up to "
        "/reports/download); the merchant account and the batch's file name follow.",
    )
    finance_merchant_account = fields.Char(
        string="Merchant account", help="The acquirer's merchant account of the stores' terminals."
    )
    finance_report_api_key = fields.Char(
        string="Report API key",
        groups="connector_base.group_connector_manager",
        copy=False,
        help="The key of the acquirer's report user, sent as X-API-Key.",
    )
    finance_fee_account_id = fields.Many2one(
        "account.account",
        string="Card fee account",
        check_company=True,
        help="The expense account the acquirer's fees (commission, chargeback fees) are booked to.",
    )
    finance_shopify_fee_account_id = fields.Many2one(
        "account.account",
        string="Shopify fee account",
        check_company=True,
        help="The expense account Shopify Payments' fees are booked to; empty: the card fee "
        "account.",
    )
    finance_chargeback_account_id = fields.Many2one(
        "account.account",
        string="Chargeback account",
        check_company=True,
        help="Where the payments customers' banks take back are booked; empty: a chargeback "
        "is listed for finance staff.",
    )
    finance_acquirer_balance_account_id = fields.Many2one(
        "account.account",
        string="Acquirer balance account",
        check_company=True,
        help="A reconcilable current account for what the card acquirer owes or is owed "
        "between batches: a batch that pays nothing (its refunds and fees more than its "
        "charges) credits it with the balance it carries to the next batch, which debits it "
        "back; the two are reconciled. Empty: such batches are listed for finance staff.",
    )
    finance_balance_journal_id = fields.Many2one(
        "account.journal",
        string="Journal of batches without payout",
        check_company=True,
        domain=[("type", "in", ("bank", "general"))],
        help="Where a batch that pays nothing is booked (it has no bank line); empty: the "
        "payouts bank journal, beside the payouts (and exported with them).",
    )
    finance_bank_journal_id = fields.Many2one(
        "account.journal",
        string="Payouts bank journal",
        check_company=True,
        domain=[("type", "=", "bank")],
        help="The bank journal the payouts land in: their bank lines are found there.",
    )
    finance_settle_from = fields.Date(
        string="Settle payouts from",
        default=fields.Date.context_today,
        help="Shopify Payments payouts issued before this day are not taken: they pay "
        "orders of before the connection, which Odoo never imported, and the books "
        "settled them by other means. The day the backend was made, by default; empty: "
        "every payout Shopify has.",
    )
    finance_settlement_count = fields.Integer(
        string="Settlements", compute="_compute_finance_settlement_count"
    )

    def _compute_finance_settlement_count(self):
        counts = dict(
            self.env["finance.settlement"]._read_group(
                [("backend_id", "in", self.ids)], ["backend_id"], ["__count"]
            )
        )
        for backend in self:
            backend.finance_settlement_count = counts.get(backend, 0)

    # --- declarations ---------------------------------------------------------

    def _connector_reconciliations(self):
        declarations = super()._connector_reconciliations()
        if self.backend_type != "finance":
            return declarations
        return {
            **declarations,
            SETTLEMENT_KIND: Reconciliation(
                kind=SETTLEMENT_KIND,
                label="Payouts against payments and the bank",
                compare="_finance_compare_settlements",
                flow=SETTLEMENT_FLOW,
                description="Each payout's charges and refunds that no Odoo payment matches, "
                "and payouts whose bank line is of another amount; fixed in Odoo (record "
                "the payment, correct the bank line), then matched again.",
            ),
        }

    # --- health ----------------------------------------------------------------------

    def _connector_health_checks(self):
        checks = super()._connector_health_checks()
        for backend in self.filtered(lambda b: b.backend_type == "finance" and b.id in checks):
            waiting = self.env["finance.settlement"].search_count(
                [("backend_id", "=", backend.id), ("state", "=", "mismatch")]
            )
            missing = [
                label
                for label, value in (
                    (self.env._("payouts bank journal"), backend.finance_bank_journal_id),
                    (self.env._("card fee account"), backend.finance_fee_account_id),
                )
                if not value
            ]
            if missing and (backend.finance_report_url or waiting):
                checks[backend.id].append(
                    (
                        "finance_settlement_setup",
                        self.env._(
                            "%(backend)s reads settlements but has no %(missing)s: complete its "
                            "Settlements tab, or no payout is reconciled.",
                            backend=backend.display_name,
                            missing=self.env._(" nor ").join(missing),
                        ),
                    )
                )
        return checks

    def _health_check_labels(self):
        return {
            **super()._health_check_labels(),
            "finance_settlement_setup": self.env._("Settlements not set up"),
        }

    # --- settings ------------------------------------------------------------------

    def _finance_fee_account(self, source):
        self.ensure_one()
        if source == "shopify" and self.finance_shopify_fee_account_id:
            return self.finance_shopify_fee_account_id
        return self.finance_fee_account_id

    def _finance_settlement_journal(self, source):
        self.ensure_one()
        return self.finance_bank_journal_id

    def _finance_balance_journal(self):
        """The journal a batch without payout is booked in: the payouts bank
        journal unless another is chosen, so that every booking of the
        acquirer's batches is in one journal and goes to the book of record
        with the payouts that clear it."""
        self.ensure_one()
        journal = self.finance_balance_journal_id or self._finance_settlement_journal("acquirer")
        if not journal:
            raise UserError(
                self.env._(
                    "A batch without payout is booked in the payouts bank journal: choose it "
                    "on %(backend)s.",
                    backend=self.display_name,
                )
            )
        return journal

    def _finance_report_client(self):
        self.ensure_one()
        key = self.sudo().finance_report_api_key
        if not (self.finance_report_url and self.finance_merchant_account and key):
            raise UserError(
                self.env._(
                    "Enter the acquirer's settlement report URL, the merchant account and the "
                    "report API key on %(backend)s first.",
                    backend=self.display_name,
                )
            )
        return self._http_client(
            base_url=self.finance_report_url.rstrip("/") + "/",
            headers={"X-API-Key": key, "Accept": "text/csv"},
            secrets=[key],
        )

    # --- the flow ---------------------------------------------------------------------

    def action_finance_read_settlements(self):
        """Read the acquirer's new batches and take the new payouts now, then match."""
        for backend in self:
            if backend.backend_type != "finance":
                raise UserError(self.env._("Only an accounting system backend reads settlements."))
            backend._finance_settlements_later()
        return self._notify(
            self.env._("Settlements"),
            self.env._("The new settlements are being read and matched."),
            kind="info",
        )

    def _finance_settlements_later(self):
        self.ensure_one()
        self.with_user(self._connector_user()).sudo()._connector_delay(
            channel=self._policy(SETTLEMENT_FLOW).channel,
            identity_key=f"finance.settlements-{self.id}",
            description=f"{self.name}: read and match settlements",
        )._finance_read_settlements()

    @api.model
    def _cron_finance_settlements(self):
        """Queue the settlements job of each running accounting system whose flow is due."""
        for backend in self.search([("backend_type", "=", "finance"), ("state", "=", "running")]):
            policy = backend._policy(SETTLEMENT_FLOW)
            if policy.enabled and policy._take_turn():
                backend._finance_settlements_later()

    def _finance_read_settlements(self):
        """Read the acquirer's closed batches not stored yet, take the paid
        Shopify payouts not taken yet, then match and reconcile every
        settlement not reconciled (the queue job). The mismatches are then
        listed by the reconciliation run it queues."""
        self.ensure_one()
        batches = 0
        if self.finance_report_url or self.finance_merchant_account:
            with self._retry_on_remote_fault():
                batches = self._finance_read_batches()
        payouts = self._finance_take_shopify_payouts()
        open_settlements = self.env["finance.settlement"].search(
            [("backend_id", "=", self.id), ("state", "!=", "reconciled")], order="date, id"
        )
        self._finance_settle(open_settlements)
        reconciled = open_settlements.filtered(lambda s: s.state == "reconciled")
        mismatched = open_settlements.filtered(lambda s: s.state == "mismatch")
        return (
            f"{batches} batches and {payouts} payouts read; {len(reconciled)} reconciled, "
            f"{len(mismatched)} with differences"
        )

    def _finance_settle(self, settlements):
        """Match and reconcile ``settlements`` as the connector does (its
        user, whoever asks), then list what differs: a reconciliation run is
        queued while a settlement is in mismatch or a mismatch is open."""
        self.ensure_one()
        backend = self.with_user(self._connector_user()).sudo()
        settlements.with_env(backend.env)._match_and_reconcile()
        mismatched = settlements.filtered(lambda s: s.state == "mismatch")
        known = backend.env["connector.reconciliation.mismatch"].search_count(
            [("backend_id", "=", self.id), ("kind", "=", SETTLEMENT_KIND), ("state", "=", "open")]
        )
        if (mismatched or known) and self.state in ("running", "circuit_open"):
            backend._reconcile_later(SETTLEMENT_KIND)

    def _finance_next_batch(self):
        last = self.env["finance.settlement"].search(
            [("backend_id", "=", self.id), ("source", "=", "acquirer")],
            order="batch_number desc",
            limit=1,
        )
        return (last.batch_number or 0) + 1

    def _finance_read_batches(self):
        """Download the batches after the last one stored, in order, until
        one is not closed yet (404: batch numbers are consecutive)."""
        client = self._finance_report_client()
        first = number = self._finance_next_batch()
        for _i in range(BATCHES_PER_JOB):
            path = f"MerchantAccount/{self.finance_merchant_account}/" + REPORT_FILE.format(
                number=number
            )
            response = client.request("GET", path, accept=(401, 403, 404))
            if response.status_code == 404:
                return number - first
            if response.status_code in (401, 403):
                raise UserError(
                    self.env._(
                        "The acquirer refused to give the settlement report of batch %(number)s "
                        "(HTTP %(status)s): check the report API key and the merchant account "
                        "%(merchant)s on %(backend)s.",
                        number=number,
                        status=response.status_code,
                        merchant=self.finance_merchant_account,
                        backend=self.display_name,
                    )
                )
            self._finance_store_batch(number, response.content.decode("utf-8-sig"))
            number += 1
        self._finance_settlements_later()  # more to read: the next job goes on
        return BATCHES_PER_JOB

    def _finance_store_batch(self, number, text):
        """One batch's report stored as a settlement with its lines, or a
        UserError naming the row that cannot be read (nothing stored)."""
        try:
            report = parse_report(text, self.finance_merchant_account, number)
        except ReportError as exc:
            raise UserError(
                self.env._(
                    "The settlement report of batch %(number)s of %(merchant)s cannot be read: "
                    "%(reason)s. Nothing of it is stored; ask the acquirer for a corrected "
                    "report, the batch is read again on the next run.",
                    number=number,
                    merchant=self.finance_merchant_account,
                    reason=exc,
                )
            ) from exc
        currency = self._finance_currency(report["currency"])
        dates = [_report_date(row["date"]) for row in report["rows"] if row["date"]]
        lines = [
            {
                "sequence": index,
                "row_key": row["key"],
                "kind": row["kind"],
                "reference": row["reference"],
                "psp_reference": row["psp_reference"],
                "modification_reference": row["modification_reference"],
                "payment_method": row["payment_method"],
                "booked_at": row["date"],
                "gross": _float(row["gross"]),
                "fee": _float(row["fee"]),
                "net": _float(row["net"]),
                "gross_currency": row["gross_currency"],
                "gross_original": _float(row["gross_original"]),
                "transfer_batch": row["transfer_batch"] or 0,
            }
            for index, row in enumerate(report["rows"])
        ]
        return self.env["finance.settlement"].create(
            {
                "name": self.env._(
                    "%(merchant)s batch %(number)s",
                    merchant=self.finance_merchant_account,
                    number=number,
                ),
                "backend_id": self.id,
                "source": "acquirer",
                "external_key": str(number),
                "batch_number": number,
                "bank_reference": f"batch {number}",
                "date": max(dates) if dates else fields.Date.context_today(self),
                "currency_id": currency.id,
                "net_amount": _float(report["payout"] or Decimal(0)),
                "line_ids": [fields.Command.create(values) for values in lines],
            }
        )

    def _finance_currency(self, code):
        currency = (
            self.env["res.currency"]
            .with_context(active_test=False)
            .search([("name", "=", code or self.company_id.currency_id.name)], limit=1)
        )
        if not currency:
            raise UserError(
                self.env._(
                    "The acquirer settles in %(code)s, a currency unknown to Odoo: add it, then "
                    "read the settlements again.",
                    code=code,
                )
            )
        return currency

    # --- Shopify Payments payouts (read from connector_shopify's records) -------------

    def _finance_take_shopify_payouts(self):
        """The paid Shopify payouts of the company whose transactions are all
        read, issued from the day settlements start, stored as settlements
        once each."""
        self.ensure_one()
        if "shopify.payout" not in self.env:
            return 0
        Payout = self.env["shopify.payout"]
        taken = self.env["finance.settlement"].search(
            [("backend_id", "=", self.id), ("source", "=", "shopify")]
        )
        domain = [
            ("backend_id.company_id", "=", self.company_id.id),
            ("status", "=", "paid"),
            ("transactions_complete", "=", True),
            ("finance_state", "=", "to_export"),
            ("id", "not in", taken.mapped("payout_res_id")),
        ]
        if self.finance_settle_from:
            domain.append(("date", ">=", self.finance_settle_from))
        payouts = Payout.search(domain, order="date, id")
        for payout in payouts:
            self._finance_store_payout(payout)
        return len(payouts)

    def _finance_store_payout(self, payout):
        sign = -1 if payout.transaction_type == "withdrawal" else 1
        lines = []
        for index, transaction in enumerate(payout.transaction_ids):
            kind = {
                "charge": "charge",
                "refund": "refund",
                "dispute": "chargeback",
            }.get(transaction.category, "adjustment")
            if transaction.category == "other" and (transaction.shopify_type or "") == "PAYOUT":
                continue  # the payout itself
            lines.append(
                {
                    "sequence": index,
                    "row_key": transaction.external_id,
                    "kind": kind,
                    "reference": transaction.shopify_order_name or False,
                    "psp_reference": transaction.external_id,
                    "source_model": transaction._name,
                    "source_res_id": transaction.id,
                    "sale_order_name": transaction.sale_order_id.name or False,
                    "payment_method": transaction.shopify_type,
                    "booked_at": fields.Datetime.to_string(transaction.processed_at),
                    "gross": transaction.amount,
                    "fee": transaction.fee,
                    "net": transaction.net_amount,
                    "gross_currency": payout.currency_id.name,
                    "gross_original": transaction.amount,
                }
            )
        return self.env["finance.settlement"].create(
            {
                "name": payout.name,
                "backend_id": self.id,
                "source": "shopify",
                "external_key": payout.external_id,
                "payout_model": payout._name,
                "payout_res_id": payout.id,
                "bank_reference": payout.shopify_payout_id,
                "date": payout.date.date() if payout.date else False,
                "currency_id": payout.currency_id.id,
                "net_amount": sign * payout.net_amount,
                "line_ids": [fields.Command.create(values) for values in lines],
            }
        )

    # --- what stays unexplained ------------------------------------------------------

    def _finance_compare_settlements(self, run):
        """Every settlement in mismatch: each line no Odoo record matches,
        and the payout against its bank line, with both figures."""
        self.ensure_one()
        settlements = self.env["finance.settlement"].search(
            [("backend_id", "=", self.id), ("state", "in", ("to_match", "matched", "mismatch"))]
        )
        differences = []
        for settlement in settlements.filtered(lambda s: s.state == "mismatch"):
            currency = settlement.currency_id
            found = len(differences)
            for line in settlement.line_ids.filtered(lambda ln: ln.state == "unmatched"):
                differences.append(
                    Difference(
                        key=f"{settlement.name}: {line._kind_label()} "
                        f"{line.reference or line.psp_reference or line.row_key}",
                        what=line.reason,
                        odoo_value=None,
                        remote_value=currency.format(line.gross or line.net),
                        fix_data={"settlement_id": settlement.id, "line_id": line.id},
                    )
                )
            if currency.compare_amounts(settlement.line_net_total, settlement.net_amount):
                differences.append(
                    Difference(
                        key=f"{settlement.name}: lines",
                        what=self.env._("The lines do not add up to the payout"),
                        odoo_value=currency.format(settlement.line_net_total),
                        remote_value=currency.format(settlement.net_amount),
                        fix_data={"settlement_id": settlement.id},
                    )
                )
            if settlement.bank_line_id and currency.compare_amounts(
                settlement.bank_amount, settlement.net_amount
            ):
                differences.append(
                    Difference(
                        key=f"{settlement.name}: bank",
                        what=self.env._(
                            "The bank line %(line)s is of another amount than the payout",
                            line=settlement.bank_line_id.display_name,
                        ),
                        odoo_value=currency.format(settlement.bank_amount),
                        remote_value=currency.format(settlement.net_amount),
                        fix_data={"settlement_id": settlement.id},
                    )
                )
            if len(differences) == found:
                # Nothing of the above, yet not reconciled (a bank line booked
                # by hand, Odoo's refusal): listed with the settlement's reason.
                differences.append(
                    Difference(
                        key=f"{settlement.name}: reconciliation",
                        what=(settlement.state_message or "")[:250],
                        odoo_value=None,
                        remote_value=currency.format(settlement.net_amount),
                        fix_data={"settlement_id": settlement.id},
                    )
                )
        return Comparison(compared=len(settlements), differences=differences)


def _float(value):
    return float(value)


def _report_date(text):
    return datetime.strptime(text[:10], "%Y-%m-%d").date()
