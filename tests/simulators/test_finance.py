"""The finance simulator held to what it promises: the Xero-like accounting API (chart,
manual journals and their rules, lock dates, idempotency, limits, faults) and the
acquirer's settlement detail reports.

Plain unittest, no Odoo: ``cd tests && python3 -m unittest simulators.test_finance``.
Everything goes over HTTP with urllib as a connector would; sums of the
settlement report are recomputed here from its CSV.
"""

import base64
import csv
import io
import json
import threading
import unittest
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

from simulators import FinanceSimulator
from simulators.finance import SETTLEMENT_COLUMNS
from simulators.testing import WebhookReceiver, json_call

LOCK = "2026-10-31"


def lines(*pairs, **extra):
    """Journal lines from ``(amount, account code)`` pairs."""
    return [{"LineAmount": amount, "AccountCode": code, **extra} for amount, code in pairs]


def journal(narration="POS day 2026-11-15 Paris", date="2026-11-15", status="POSTED", **extra):
    body = {
        "Narration": narration,
        "Date": date,
        "Status": status,
        "JournalLines": lines((120.0, "093"), (-100.0, "200"), (-20.0, "820")),
    }
    body.update(extra)
    return body


class FinanceCase(unittest.TestCase):
    """A started simulator with the period locked up to the end of October."""

    options = {}

    def setUp(self):
        super().setUp()
        self.finance = FinanceSimulator(seed=42, period_lock_date=LOCK, **self.options).start()
        self.addCleanup(self.finance.stop)

    def call(self, method, path, body=None, *, headers=None, auth=True, query=None, raw=None):
        """``(status, JSON answer, headers)`` of one request to the accounting API."""
        sent = dict(self.finance.headers) if auth else {"Content-Type": "application/json"}
        sent.update(headers or {})
        return json_call(
            f"{self.finance.api_url}{path}", method, body, headers=sent, query=query, raw=raw
        )

    def put_journal(self, body=None, key=None, **kwargs):
        headers = {"Idempotency-Key": key} if key else None
        return self.call("PUT", "/ManualJournals", body or journal(**kwargs), headers=headers)

    def control(self, event, **params):
        request = urllib.request.Request(
            f"{self.finance.url}/_sim/events/trigger",
            data=json.dumps({"event": event, **params}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["result"]

    def messages(self, body):
        self.assertEqual((body["ErrorNumber"], body["Type"]), (10, "ValidationException"))
        return [m["Message"] for e in body["Elements"] for m in e["ValidationErrors"]]


class TestAuthentication(FinanceCase):
    def test_no_token_is_401_and_a_wrong_tenant_403_in_xeros_shape(self):
        status, body, headers = self.call("GET", "/Accounts", auth=False)
        self.assertEqual(status, 401)
        self.assertEqual(
            (body["Title"], body["Detail"]), ("Unauthorized", "AuthenticationUnsuccessful")
        )
        self.assertIn("Bearer", headers["WWW-Authenticate"])
        status, body, _ = self.call("GET", "/Accounts", headers={"Authorization": "Bearer nope"})
        self.assertEqual(status, 401)
        status, body, _ = self.call(
            "GET", "/Accounts", headers={"Xero-tenant-id": "00000000-0000-4000-8000-000000000000"}
        )
        self.assertEqual((status, body["Detail"]), (403, "AuthorizationUnsuccessful"))
        # Refused calls are not counted against the tenant's limits.
        self.assertEqual(self.finance.limits.status()["used"]["minute"], 0)


class TestReferenceData(FinanceCase):
    def test_chart_tax_rates_tracking_and_organisation(self):
        status, body, headers = self.call("GET", "/Accounts")
        self.assertEqual((status, body["Status"]), (200, "OK"))
        accounts = {a["Code"]: a for a in body["Accounts"]}
        self.assertEqual(accounts["200"]["Type"], "REVENUE")
        self.assertEqual(accounts["200"]["TaxType"], "OUTPUT")
        self.assertEqual(accounts["090"]["Type"], "BANK")
        self.assertEqual(accounts["499"]["Status"], "ARCHIVED")
        self.assertEqual(accounts["610"]["SystemAccount"], "DEBTORS")
        self.assertRegex(accounts["200"]["AccountID"], r"^[0-9a-f-]{36}$")
        self.assertIn("X-MinLimit-Remaining", headers)
        _, active, _ = self.call("GET", "/Accounts", query={"where": 'Status=="ACTIVE"'})
        self.assertNotIn("499", [a["Code"] for a in active["Accounts"]])
        status, body, _ = self.call("GET", "/Accounts", query={"where": "Nonsense"})
        self.assertEqual((status, body["Type"]), (400, "QueryParseException"))
        _, body, _ = self.call("GET", "/TaxRates")
        rates = {r["TaxType"]: r for r in body["TaxRates"]}
        self.assertEqual(rates["NONE"]["EffectiveRate"], 0)
        self.assertEqual(rates["OUTPUT"]["EffectiveRate"], 20)
        self.assertIn("DE MwSt", [r["Name"] for r in rates.values()])
        _, body, _ = self.call("GET", "/TrackingCategories")
        channel = next(c for c in body["TrackingCategories"] if c["Name"] == "Channel")
        self.assertIn("Paris Flagship Store", [o["Name"] for o in channel["Options"]])
        _, body, _ = self.call("GET", "/Organisation")
        org = body["Organisations"][0]
        self.assertEqual(org["BaseCurrency"], "EUR")
        self.assertEqual(org["PeriodLockDate"], "/Date(1793404800000+0000)/")  # 2026-10-31
        self.assertNotIn("EndOfYearLockDate", org)


class TestManualJournals(FinanceCase):
    def test_a_balanced_journal_is_posted_and_read_back(self):
        body = journal(
            JournalLines=[
                {"LineAmount": 120, "AccountCode": "093", "Description": "Cash and cards"},
                {
                    "LineAmount": -100,
                    "AccountCode": "200",
                    "TaxType": "TAX002",
                    "Tracking": [{"Name": "Channel", "Option": "Paris Flagship Store"}],
                },
                {"LineAmount": -20, "AccountCode": "820"},
            ]
        )
        status, answer, _ = self.put_journal(body)
        self.assertEqual(status, 200, answer)
        created = answer["ManualJournals"][0]
        self.assertEqual(created["StatusAttributeString"], "OK")
        self.assertEqual(created["Status"], "POSTED")
        self.assertEqual(created["Date"], "/Date(1794700800000+0000)/")  # 2026-11-15
        self.assertEqual([line["LineAmount"] for line in created["JournalLines"]], [120, -100, -20])
        self.assertEqual(
            created["JournalLines"][1]["Tracking"][0]["Option"], "Paris Flagship Store"
        )
        _, read, _ = self.call("GET", f"/ManualJournals/{created['ManualJournalID']}")
        self.assertEqual(read["ManualJournals"][0]["Narration"], "POS day 2026-11-15 Paris")
        self.assertEqual(len(self.finance.journals("POSTED")), 1)
        self.put_journal(status="DRAFT", narration="draft one")
        _, listed, _ = self.call("GET", "/ManualJournals", query={"where": 'Status=="DRAFT"'})
        self.assertEqual([j["Narration"] for j in listed["ManualJournals"]], ["draft one"])
        _, listed, _ = self.call(
            "GET", "/ManualJournals", query={"where": "Date>=DateTime(2026,11,15)", "page": 1}
        )
        self.assertEqual(len(listed["ManualJournals"]), 2)
        status, _, _ = self.call("GET", "/ManualJournals/6c1e0b9a-0000-4000-8000-000000000000")
        self.assertEqual(status, 404)

    def test_an_unbalanced_journal_is_refused_naming_both_totals(self):
        status, body, _ = self.put_journal(
            journal(JournalLines=lines((120, "093"), (-100, "200"), (-15.5, "820")))
        )
        self.assertEqual(status, 400)
        self.assertEqual(
            self.messages(body), ["The total debits (120.00) must equal total credits (-115.50)"]
        )
        self.assertEqual(body["Elements"][0]["Narration"], "POS day 2026-11-15 Paris")
        self.assertEqual(self.finance.journals(), [])

    def test_unknown_archived_and_system_accounts_bad_tax_and_tracking_are_refused(self):
        cases = {
            "9999": "Account code '9999' is not a valid code for this document.",
            "499": "Account code '499' has been archived, or has been deleted. Each line item "
            "must reference a valid account.",
            "610": "Account code '610' is a system account and cannot be used in a manual journal.",
        }
        for code, message in cases.items():
            with self.subTest(code=code):
                status, body, _ = self.put_journal(
                    journal(JournalLines=lines((10, "093"), (-10, code)))
                )
                self.assertEqual((status, self.messages(body)), (400, [message]))
        status, body, _ = self.put_journal(
            journal(JournalLines=[*lines((10, "093")), *lines((-10, "200"), TaxType="VAT20")])
        )
        self.assertIn(
            "The TaxType code VAT20 does not exist or cannot be used for this type of transaction.",
            self.messages(body),
        )
        bad_option = [{"Name": "Region", "Option": "EU-OLD"}]
        status, body, _ = self.put_journal(
            journal(JournalLines=[*lines((10, "093")), *lines((-10, "200"), Tracking=bad_option)])
        )
        self.assertIn("EU-OLD", self.messages(body)[0])
        status, body, _ = self.put_journal(journal(JournalLines=lines((0, "093"))))
        self.assertIn("at least two", self.messages(body)[0])
        status, body, _ = self.put_journal(journal(Narration=" "))
        self.assertEqual(self.messages(body), ["Narration cannot be empty."])
        # An account archived while the connector runs is refused from then on.
        self.control("account.archive", code="405")
        status, body, _ = self.put_journal(journal(JournalLines=lines((3, "405"), (-3, "091"))))
        self.assertIn("'405' has been archived", self.messages(body)[0])
        self.assertEqual(self.finance.journals(), [])

    def test_a_locked_period_refuses_until_the_lock_moves(self):
        for day in ("2026-10-31", "2026-10-02"):  # on the lock date, and before it
            status, body, _ = self.put_journal(date=day)
            self.assertEqual(status, 400)
            self.assertEqual(
                self.messages(body),
                [
                    "The document date cannot be before the period lock date, currently set at "
                    "31-Oct-2026"
                ],
            )
        self.assertEqual(self.control("lock.set", period="2026-09-30")["period"], "2026-09-30")
        status, body, _ = self.put_journal(date="2026-10-02")
        self.assertEqual(status, 200, body)
        self.finance.set_lock_dates(end_of_year="2025-12-31")
        status, body, _ = self.put_journal(date="2025-12-15")
        self.assertEqual(
            self.messages(body),
            [
                "The document date cannot be before the end of year lock date, currently set at "
                "31-Dec-2025"
            ],
        )
        _, body, _ = self.call("GET", "/Organisation")
        self.assertEqual(body["Organisations"][0]["PeriodLockDate"], "/Date(1790726400000+0000)/")
        # A journal of a period locked since it was posted can no longer be voided.
        _, answer, _ = self.put_journal(date="2026-11-15")
        journal_id = answer["ManualJournals"][0]["ManualJournalID"]
        self.finance.set_lock_dates(period="2026-11-30")
        status, body, _ = self.call("POST", f"/ManualJournals/{journal_id}", {"Status": "VOIDED"})
        self.assertEqual(status, 400)
        self.assertIn("currently set at 30-Nov-2026", self.messages(body)[0])

    def test_draft_posted_then_voided_through_post_updates(self):
        _, answer, _ = self.put_journal(status="DRAFT")
        journal_id = answer["ManualJournals"][0]["ManualJournalID"]
        status, body, _ = self.call(
            "POST", f"/ManualJournals/{journal_id}", {"Status": "POSTED", "Narration": "final"}
        )
        self.assertEqual(status, 200, body)
        self.assertEqual(body["ManualJournals"][0]["Narration"], "final")
        status, body, _ = self.call("POST", f"/ManualJournals/{journal_id}", {"Status": "DELETED"})
        self.assertEqual(
            self.messages(body), ["A posted manual journal cannot be deleted; void it instead."]
        )
        status, body, _ = self.call("POST", f"/ManualJournals/{journal_id}", {"Status": "VOIDED"})
        self.assertEqual(body["ManualJournals"][0]["Status"], "VOIDED")
        status, body, _ = self.call(
            "PUT", "/ManualJournals", {**journal(), "ManualJournalID": journal_id}
        )
        self.assertEqual(status, 400)
        self.assertEqual(
            [h[0] for h in self.finance.snapshot(["history"])["history"]],
            ["created", "updated", "updated"],
        )

    def test_several_journals_are_all_or_nothing_unless_summarize_errors_is_false(self):
        both = {"ManualJournals": [journal(), journal(JournalLines=lines((5, "093"), (-4, "200")))]}
        status, body, _ = self.call("PUT", "/ManualJournals", both)
        self.assertEqual(status, 400)
        self.assertEqual([len(e["ValidationErrors"]) for e in body["Elements"]], [0, 1])
        self.assertEqual(self.finance.journals(), [])
        status, body, _ = self.call(
            "PUT", "/ManualJournals", both, query={"summarizeErrors": "false"}
        )
        self.assertEqual(status, 200)
        self.assertEqual(
            [j["StatusAttributeString"] for j in body["ManualJournals"]], ["OK", "ERROR"]
        )
        self.assertEqual(len(self.finance.journals()), 1)


class TestIdempotency(FinanceCase):
    def test_a_retry_with_the_same_key_and_body_creates_nothing_twice(self):
        first = self.put_journal(key="batch-2026-11-15-POS-1")
        again = self.put_journal(key="batch-2026-11-15-POS-1")
        self.assertEqual((first[0], again[0]), (200, 200))
        self.assertEqual(first[1], again[1], "the original answer, unchanged")
        self.assertEqual(len(self.finance.journals()), 1)
        self.assertEqual(
            self.finance.requests.entries()[-1]["idempotent_replay"], "batch-2026-11-15-POS-1"
        )

    def test_the_same_key_with_another_body_is_refused(self):
        self.put_journal(key="batch-7")
        status, body, _ = self.put_journal(key="batch-7", narration="something else")
        self.assertEqual(status, 400)
        self.assertEqual(
            self.messages(body),
            ["The Idempotency-Key 'batch-7' has already been used with a different request."],
        )
        status, body, _ = self.put_journal(key="k" * 129)
        self.assertEqual(status, 400)
        self.assertIn("1 to 128 characters", self.messages(body)[0])
        self.assertEqual(len(self.finance.journals()), 1)

    def test_a_refusal_is_not_kept_so_the_same_key_goes_once_the_period_reopens(self):
        status, _, _ = self.put_journal(key="batch-oct", date="2026-10-20")
        self.assertEqual(status, 400)
        self.finance.set_lock_dates(period="2026-09-30")
        status, _, _ = self.put_journal(key="batch-oct", date="2026-10-20")
        self.assertEqual(status, 200)

    def test_answers_lost_after_applying_are_recovered_by_the_key(self):
        self.finance.faults.add("drop", endpoint="journal_save", apply=True, limit=1)
        with self.assertRaises((urllib.error.URLError, ConnectionError, OSError)):
            self.put_journal(key="batch-lost")
        self.assertEqual(len(self.finance.journals()), 1, "applied before the cut")
        self.finance.faults.add("timeout", endpoint="journal_save", apply=True, hold=0.2, limit=1)
        status, _, _ = self.put_journal(key="batch-lost")
        self.assertEqual(status, 504)
        status, body, _ = self.put_journal(key="batch-lost")
        self.assertEqual(status, 200)
        self.assertEqual(len(self.finance.journals()), 1)
        self.assertEqual(
            body["ManualJournals"][0]["ManualJournalID"],
            self.finance.journals()[0]["ManualJournalID"],
        )


class TestLimits(FinanceCase):
    options = {"minute_limit": 3, "day_limit": 5}

    def test_the_minute_limit_answers_429_with_xeros_headers(self):
        remaining = [self.call("GET", "/Accounts")[2]["X-MinLimit-Remaining"] for _ in range(3)]
        self.assertEqual(remaining, ["2", "1", "0"])
        status, body, headers = self.call("GET", "/Accounts")
        self.assertEqual(status, 429)
        self.assertEqual(headers["X-Rate-Limit-Problem"], "minute")
        self.assertGreaterEqual(int(headers["Retry-After"]), 59)
        self.assertEqual(headers["X-MinLimit-Remaining"], "0")
        self.assertEqual(headers["X-DayLimit-Remaining"], "2")
        self.assertEqual(body["Status"], 429)

    def test_the_day_limit(self):
        self.finance.limits.limits["minute"] = 100
        for _ in range(5):
            self.assertEqual(self.call("GET", "/TaxRates")[0], 200)
        status, _, headers = self.call("GET", "/TaxRates")
        self.assertEqual((status, headers["X-Rate-Limit-Problem"]), (429, "day"))
        self.assertEqual(headers["X-DayLimit-Remaining"], "0")

    def test_calls_in_progress_past_the_concurrent_limit(self):
        self.finance.limits.concurrent = 1
        self.finance.faults.add("latency", endpoint="organisation", latency=0.6, limit=1)
        slow = threading.Thread(target=self.call, args=("GET", "/Organisation"))
        slow.start()
        self.addCleanup(slow.join)
        for _ in range(50):  # the slow call is in progress once the log sees it drawn
            if self.finance.limits.status()["inflight"]:
                break
            threading.Event().wait(0.01)
        status, _, headers = self.call("GET", "/Accounts")
        self.assertEqual((status, headers["X-Rate-Limit-Problem"]), (429, "concurrent"))


class TestFaults(FinanceCase):
    def test_throttle_error_and_latency_faults(self):
        self.finance.faults.add("throttle", endpoint="accounts", retry_after=2, limit=1)
        status, _, headers = self.call("GET", "/Accounts")
        self.assertEqual(
            (status, headers["Retry-After"], headers["X-Rate-Limit-Problem"]), (429, "2", "minute")
        )
        self.finance.faults.add("error", endpoint="journal_save", status=503, limit=1)
        self.assertEqual(self.put_journal(key="k-503")[0], 503)
        self.assertEqual(self.finance.journals(), [], "a 5xx processes nothing")
        self.assertEqual(self.put_journal(key="k-503")[0], 200)
        self.finance.faults.add("latency", endpoint="tax_rates", latency=0.3, limit=1)
        self.assertEqual(self.call("GET", "/TaxRates")[0], 200)
        self.assertGreaterEqual(self.finance.requests.entries()[-1]["duration_ms"], 300)

    def test_reset_forgets_journals_keys_locks_and_faults(self):
        self.put_journal(key="k")
        self.finance.set_lock_dates(period=None)
        self.finance.faults.add("error", endpoint="accounts")
        self.finance.reset(42)
        self.assertEqual(self.finance.journals(), [])
        self.assertEqual(self.finance.snapshot(["lock_dates"])["lock_dates"]["period"], LOCK)
        self.assertEqual(self.call("GET", "/Accounts")[0], 200)


class TestSettlementReports(FinanceCase):
    def download(self, number, *, auth="basic", merchant=None):
        merchant = merchant or self.finance.acquirer.merchant_account
        url = (
            f"{self.finance.url}/reports/download/MerchantAccount/{merchant}/"
            f"settlement_detail_report_batch_{number}.csv"
        )
        headers = {}
        if auth == "basic":
            token = f"{self.finance.report_username}:{self.finance.report_password}"
            headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        elif auth == "key":
            headers["X-API-Key"] = self.finance.report_api_key
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode(), response.headers
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read()), error.headers

    def day_of_cards(self):
        acquirer = self.finance.acquirer
        acquirer.capture("PARIS/0001", "42.00", "EUR", "2026-11-15T10:00:00Z")
        acquirer.capture("PARIS/0002", "120.00", "EUR", "2026-11-15T11:00:00Z", "visa")
        acquirer.capture("PARIS/0003", "30.00", "USD", "2026-11-15T12:00:00Z")
        acquirer.refund("PARIS/0002", "20.00", "2026-11-15T15:00:00Z")
        acquirer.chargeback("PARIS/0001", at="2026-11-15T16:00:00Z")

    def test_the_report_columns_and_sums(self):
        self.day_of_cards()
        batch = self.control("acquirer.close_batch", at="2026-11-16T03:00:00Z")
        self.assertEqual(batch["batch_number"], 1)
        status, text, headers = self.download(1)
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/csv"))
        reader = csv.DictReader(io.StringIO(text))
        self.assertEqual(tuple(reader.fieldnames), SETTLEMENT_COLUMNS)
        rows = list(reader)
        self.assertEqual(
            [r["Type"] for r in rows],
            ["Settled", "Settled", "Settled", "Refunded", "Chargeback", "Fee", "MerchantPayout"],
        )

        def d(text):
            return Decimal(text) if text else Decimal("0")

        for row in rows:
            self.assertEqual(row["Batch Number"], "1")
            self.assertEqual(row["Net Currency"], "EUR")
            if row["Type"] in ("Settled", "Refunded", "Chargeback"):
                fees = (
                    d(row["Markup (NC)"]) + d(row["Scheme Fees (NC)"]) + d(row["Interchange (NC)"])
                )
                self.assertEqual(d(row["Commission (NC)"]), fees)
                gross = d(row["Gross Credit (GC)"]) - d(row["Gross Debit (GC)"])
                net = d(row["Net Credit (NC)"]) - d(row["Net Debit (NC)"])
                in_net_currency = (gross * d(row["Exchange Rate"])).quantize(Decimal("0.01"))
                self.assertLessEqual(abs(in_net_currency - fees - net), Decimal("0.01"), row)
        settled = rows[1]
        self.assertEqual(
            (settled["Merchant Reference"], settled["Payment Method"]), ("PARIS/0002", "visa")
        )
        self.assertEqual(settled["Creation Date"], "2026-11-15 12:00:00")  # Paris time
        self.assertEqual(settled["TimeZone"], "CET")
        self.assertEqual(rows[2]["Gross Currency"], "USD")
        self.assertEqual(rows[5]["Net Debit (NC)"], "15.00")
        self.assertEqual(rows[5]["Modification Reference"], rows[4]["Modification Reference"])
        bookings = sum(d(r["Net Credit (NC)"]) - d(r["Net Debit (NC)"]) for r in rows[:-1])
        self.assertEqual(d(rows[-1]["Net Debit (NC)"]), bookings)
        self.assertEqual(Decimal(batch["payout"]), bookings)
        # Fees come from the seed: another simulator with the same seed says the same.
        with FinanceSimulator(seed=42) as twin:
            acquirer, self.finance.acquirer = self.finance.acquirer, twin.acquirer
            try:
                self.day_of_cards()
                twin.acquirer.close_batch("2026-11-16T03:00:00Z")
            finally:
                self.finance.acquirer = acquirer
            self.assertEqual(twin.acquirer.report_csv(1), text)

    def test_a_negative_batch_pays_nothing_and_carries_its_balance(self):
        acquirer = self.finance.acquirer
        acquirer.capture("STORE/1", "10.00", at="2026-11-14T10:00:00Z")
        acquirer.close_batch("2026-11-15T03:00:00Z")
        acquirer.chargeback("STORE/1", at="2026-11-15T10:00:00Z")
        second = acquirer.summary(acquirer.close_batch("2026-11-16T03:00:00Z"))
        self.assertIsNone(second["payout"])
        _, text, _ = self.download(2, auth="key")
        last = list(csv.DictReader(io.StringIO(text)))[-1]
        self.assertEqual(last["Type"], "Balancetransfer")
        self.assertEqual(last["Net Credit (NC)"], "25.00")  # 10.00 back and the 15.00 fee
        # As Adyen writes it: no PSP reference, the batch it goes to named.
        self.assertEqual(last["Psp Reference"], "")
        self.assertEqual(last["Modification Reference"], "Balancetransfer")
        self.assertEqual(last["Modification Merchant Reference"], "Balancetransfer to batch 3")
        acquirer.capture("STORE/2", "100.00", at="2026-11-16T10:00:00Z")
        third = acquirer.summary(acquirer.close_batch("2026-11-17T03:00:00Z"))
        rows = list(csv.DictReader(io.StringIO(self.download(3)[1])))
        self.assertEqual(rows[-2]["Type"], "Balancetransfer")
        self.assertEqual(rows[-2]["Net Debit (NC)"], "25.00")
        self.assertEqual(
            rows[-2]["Modification Merchant Reference"], "Balancetransfer from batch 2"
        )
        self.assertEqual(Decimal(third["payout"]), Decimal(rows[0]["Net Credit (NC)"]) - 25)

    def test_authentication_merchant_and_unknown_batches(self):
        self.finance.acquirer.close_batch()
        status, body, headers = self.download(1, auth=None)
        self.assertEqual((status, body["errorType"]), (401, "security"))
        self.assertIn("Basic", headers["WWW-Authenticate"])
        self.assertEqual(self.download(1, merchant="SomeoneElse")[0], 403)
        self.assertEqual(self.download(2)[0], 404)
        self.assertEqual(self.download(1, auth="key")[0], 200)

    def test_report_available_notification(self):
        with WebhookReceiver() as receiver:
            self.finance.webhook_url = receiver.url
            self.finance.acquirer.capture("WEB/1", "5.00")
            self.finance.acquirer.close_batch()
            received = receiver.wait_for(1)
        item = json.loads(received[0]["body"])["notificationItems"][0]["NotificationRequestItem"]
        self.assertEqual(item["eventCode"], "REPORT_AVAILABLE")
        self.assertEqual(item["pspReference"], "settlement_detail_report_batch_1.csv")
        self.assertTrue(
            item["reason"].endswith("/RetailSyncPOS/settlement_detail_report_batch_1.csv")
        )

    def test_refunds_and_chargebacks_need_their_payment(self):
        acquirer = self.finance.acquirer
        acquirer.capture("P/1", "10.00")
        with self.assertRaises(ValueError):
            acquirer.refund("P/1", "10.01")
        with self.assertRaises(KeyError):
            acquirer.chargeback("P/404")
        self.assertEqual(len(self.control("acquirer.refund", reference="P/1", amount="4.00")), 16)


if __name__ == "__main__":
    unittest.main()
