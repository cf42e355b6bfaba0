"""The finance simulator: a Xero-like accounting API and an acquirer's settlement reports.

    with FinanceSimulator(seed=42) as finance:
        finance.api_url        # http://127.0.0.1:<port>/api.xro/2.0
        finance.headers        # Authorization: Bearer <token>, Xero-tenant-id
        finance.set_lock_dates(period="2026-10-31")
        ...                    # the connector PUTs ManualJournals
        finance.journals()     # what the book of record holds: the ground truth
        psp = finance.acquirer.capture("POS/0001", "42.00", "EUR", at)
        finance.acquirer.close_batch()   # settlement_detail_report_batch_1.csv

Written from Xero's Accounting API documentation (the endpoints, JSON shapes,
``ValidationException``, ``Idempotency-Key``, lock dates, the 60/min,
5,000/day, 5 concurrent limits and their headers) and Adyen's settlement
detail report (columns, row types, download with basic auth or an API key).
See ``tests/simulators/README.md`` for the whole API.
"""

import base64
import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from datetime import date, datetime, timezone
from decimal import Decimal

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from ..base import Simulator, hmac_sha256_base64, iso, json_response, seeded_random, utcnow
from .acquirer import Acquirer
from .ledger import Ledger, LedgerError

API_PREFIX = "/api.xro/2.0"
PAGE_SIZE = 100
MAX_IDEMPOTENCY_KEY = 128


class ApiError(Exception):
    def __init__(self, status, body, headers=None):
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


def ms_date(value):
    """Xero's JSON date: ``/Date(1764460800000+0000)/``."""
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return f"/Date({int(value.timestamp() * 1000)}+0000)/"


def problem(status, title, detail):
    """The problem body Xero answers authentication, authorisation and limit refusals with."""
    return {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }


def plain(value):
    """Records to JSON: money as numbers with two decimals, dates the Xero way."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return ms_date(value)
    return value


class XeroLimits:
    """Xero's limits per tenant: calls in progress, per minute, per day (and the app's minute).

    Windows slide; a refused call counts against nothing. ``problem`` names
    the limit hit the way ``X-Rate-Limit-Problem`` does.
    """

    def __init__(self, minute=60, day=5000, concurrent=5, app_minute=10000, clock=time.monotonic):
        self.limits = {"minute": minute, "day": day, "appminute": app_minute}
        self.windows = {"minute": 60.0, "day": 86400.0, "appminute": 60.0}
        self.concurrent = concurrent
        self.clock = clock
        self.inflight = 0
        self._calls = {name: deque() for name in self.limits}
        self._lock = threading.Lock()

    def begin(self):
        with self._lock:
            self.inflight += 1

    def end(self):
        with self._lock:
            self.inflight -= 1

    def take(self):
        """``(problem, retry_after)``, both None when the call may go on (and is counted)."""
        with self._lock:
            now = self.clock()
            for name, calls in self._calls.items():
                while calls and calls[0] <= now - self.windows[name]:
                    calls.popleft()
            if self.inflight > self.concurrent:
                return "concurrent", 1
            for name in ("minute", "day", "appminute"):
                calls = self._calls[name]
                if len(calls) >= self.limits[name]:
                    return name, max(1, math.ceil(calls[0] + self.windows[name] - now))
            for calls in self._calls.values():
                calls.append(now)
            return None, None

    def headers(self):
        with self._lock:
            return {
                "X-MinLimit-Remaining": str(self.limits["minute"] - len(self._calls["minute"])),
                "X-DayLimit-Remaining": str(self.limits["day"] - len(self._calls["day"])),
                "X-AppMinLimit-Remaining": str(
                    self.limits["appminute"] - len(self._calls["appminute"])
                ),
            }

    def reset(self):
        with self._lock:
            for calls in self._calls.values():
                calls.clear()

    def status(self):
        with self._lock:
            return {
                **self.limits,
                "concurrent": self.concurrent,
                "inflight": self.inflight,
                "used": {name: len(calls) for name, calls in self._calls.items()},
            }


class FinanceSimulator(Simulator):
    """One Xero organisation (the book of record) and one card acquirer's merchant account."""

    name = "finance"
    signature_header = "X-Finance-Signature"

    def __init__(
        self,
        *,
        seed=0,
        access_token="xero-simulator-access-token",
        tenant_id=None,
        minute_limit=60,
        day_limit=5000,
        concurrent_limit=5,
        app_minute_limit=10000,
        report_username="report_123456@Company.RetailSyncCOM",
        report_password="report-password",
        report_api_key="adyen-report-api-key",
        period_lock_date=None,
        end_of_year_lock_date=None,
        **options,
    ):
        self.access_token = access_token
        self.tenant_id = tenant_id or str(
            uuid.UUID(int=seeded_random(seed, "finance", "tenant").getrandbits(128), version=4)
        )
        self.limits = XeroLimits(minute_limit, day_limit, concurrent_limit, app_minute_limit)
        self.report_username = report_username
        self.report_password = report_password
        self.report_api_key = report_api_key
        self.initial_locks = (period_lock_date, end_of_year_lock_date)
        self.ledger = None
        self.acquirer = None
        self.idempotency = {}
        super().__init__(seed=seed, **options)

    # --- state -------------------------------------------------------------------------
    def seed_state(self, rng):
        self.ledger = Ledger(self.seed)
        self.ledger.set_lock_dates(*self.initial_locks)
        self.acquirer = Acquirer(self.seed)
        self.acquirer.listeners.append(self._report_available)
        self.idempotency = {}
        self.limits.reset()

    @property
    def api_url(self):
        """Base URL of the accounting API: ``<url>/api.xro/2.0``."""
        return f"{self.url}{API_PREFIX}"

    @property
    def headers(self):
        """What an authenticated client sends: the bearer token and the tenant."""
        return {
            "Authorization": f"Bearer {self.access_token}",
            "Xero-tenant-id": self.tenant_id,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    @property
    def report_url(self):
        """Where the settlement reports download from."""
        return f"{self.url}/reports/download/MerchantAccount/{self.acquirer.merchant_account}"

    # --- routes --------------------------------------------------------------------------
    def api_rules(self):
        p = API_PREFIX
        return [
            Rule("/api/health", endpoint="health", methods=["GET"]),
            Rule(f"{p}/Organisation", endpoint="organisation", methods=["GET"]),
            Rule(f"{p}/Accounts", endpoint="accounts", methods=["GET"]),
            Rule(f"{p}/Accounts/<account_id>", endpoint="account_get", methods=["GET"]),
            Rule(f"{p}/TaxRates", endpoint="tax_rates", methods=["GET"]),
            Rule(f"{p}/TrackingCategories", endpoint="tracking_categories", methods=["GET"]),
            Rule(f"{p}/ManualJournals", endpoint="journal_list", methods=["GET"]),
            Rule(f"{p}/ManualJournals", endpoint="journal_save", methods=["PUT", "POST"]),
            Rule(f"{p}/ManualJournals/<journal_id>", endpoint="journal_get", methods=["GET"]),
            Rule(f"{p}/ManualJournals/<journal_id>", endpoint="journal_update", methods=["POST"]),
            Rule(
                "/reports/download/MerchantAccount/<merchant>/<file_name>",
                endpoint="report_download",
                methods=["GET"],
            ),
            Rule("/reports/<file_name>", endpoint="report_download_short", methods=["GET"]),
        ]

    def health(self, request):
        return json_response({"status": "ok", "system": self.name, "time": iso(utcnow())})

    def _serve_api(self, request, start_response, endpoint, args):
        # Calls in progress count from arrival to answer, latency faults included.
        counted = request.path.startswith(API_PREFIX)
        if counted:
            self.limits.begin()
        try:
            return super()._serve_api(request, start_response, endpoint, args)
        finally:
            if counted:
                self.limits.end()

    def _faulty_response(self, fault, response, environ):
        # A throttle fault on the accounting API answers as Xero's minute limit does.
        if fault.kind == "throttle" and environ.get("PATH_INFO", "").startswith(API_PREFIX):
            return self._too_many("minute", max(1, math.ceil(fault.retry_after)))
        return super()._faulty_response(fault, response, environ)

    def _too_many(self, which, wait):
        return json_response(
            problem(429, "Too Many Requests", f"Rate limit exceeded: {which} limit"),
            status=429,
            headers={
                "Retry-After": str(wait),
                "X-Rate-Limit-Problem": which,
                **self.limits.headers(),
            },
        )

    # --- the call wrapper ----------------------------------------------------------------
    def _call(self, request, apply):
        """Authenticate, check the tenant, count against the limits, apply."""
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.access_token}":
            request.sim_note = {"error": "unauthorized"}
            return json_response(
                problem(401, "Unauthorized", "AuthenticationUnsuccessful"),
                status=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if request.headers.get("Xero-tenant-id", "").lower() != self.tenant_id:
            request.sim_note = {"error": "forbidden"}
            return json_response(problem(403, "Forbidden", "AuthorizationUnsuccessful"), 403)
        which, wait = self.limits.take()
        if which is not None:
            request.sim_note = {"rate_limited": which}
            return self._too_many(which, wait)
        try:
            with self.lock:
                status, body = apply()
        except ApiError as exc:
            request.sim_note = {"error": exc.body.get("Type") or exc.body.get("Title")}
            return json_response(
                exc.body, status=exc.status, headers={**exc.headers, **self.limits.headers()}
            )
        return json_response(body, status=status, headers=self.limits.headers())

    @staticmethod
    def _envelope(key, records):
        return {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": "Retail Sync",
            "DateTimeUTC": ms_date(utcnow()),
            key: records,
        }

    # --- reference data ------------------------------------------------------------------
    def organisation(self, request):
        def apply():
            ledger = self.ledger
            org = {
                "OrganisationID": ledger.organisation_id,
                "Name": ledger.name,
                "LegalName": ledger.name,
                "BaseCurrency": ledger.currency,
                "CountryCode": "FR",
                "OrganisationType": "COMPANY",
                "OrganisationStatus": "ACTIVE",
                "IsDemoCompany": False,
                "FinancialYearEndDay": 31,
                "FinancialYearEndMonth": 12,
                "PeriodLockDate": ledger.period_lock_date,
                "EndOfYearLockDate": ledger.end_of_year_lock_date,
                "Timezone": "ROMANCESTANDARDTIME",
            }
            return 200, self._envelope("Organisations", [plain(org)])

        return self._call(request, apply)

    def accounts(self, request):
        def apply():
            records = sorted(self.ledger.accounts.values(), key=lambda a: a["Code"])
            records = self._where(request, records, ("Code", "Status", "Type", "Class"))
            return 200, self._envelope("Accounts", plain(records))

        return self._call(request, apply)

    def account_get(self, request, account_id):
        def apply():
            found = [a for a in self.ledger.accounts.values() if a["AccountID"] == account_id]
            if not found:
                raise self._not_found()
            return 200, self._envelope("Accounts", plain(found))

        return self._call(request, apply)

    def tax_rates(self, request):
        def apply():
            records = self._where(
                request, list(self.ledger.tax_rates.values()), ("TaxType", "Status", "Name")
            )
            return 200, self._envelope("TaxRates", plain(records))

        return self._call(request, apply)

    def tracking_categories(self, request):
        def apply():
            records = self._where(request, list(self.ledger.tracking.values()), ("Name", "Status"))
            return 200, self._envelope("TrackingCategories", plain(records))

        return self._call(request, apply)

    # --- manual journals -------------------------------------------------------------------
    def journal_list(self, request):
        def apply():
            records = self._where(
                request,
                list(self.ledger.journals.values()),
                ("Status", "Narration", "ManualJournalID", "Date"),
            )
            page = request.args.get("page")
            if page is not None:
                if not page.isdigit() or int(page) < 1:
                    raise ApiError(400, self._validation([f"page '{page}' is not valid"], []))
                start = (int(page) - 1) * PAGE_SIZE
                records = records[start : start + PAGE_SIZE]
            return 200, self._envelope("ManualJournals", [self._journal_json(r) for r in records])

        return self._call(request, apply)

    def journal_get(self, request, journal_id):
        def apply():
            record = self.ledger.journals.get(journal_id)
            if record is None:
                raise self._not_found()
            return 200, self._envelope("ManualJournals", [self._journal_json(record)])

        return self._call(request, apply)

    def journal_save(self, request):
        return self._call(request, lambda: self._idempotent(request, self._save))

    def journal_update(self, request, journal_id):
        return self._call(request, lambda: self._idempotent(request, self._save, journal_id))

    def _save(self, request, elements, journal_id=None):
        """Create (PUT) or create-or-update (POST) every element; all or nothing by default.

        With ``summarizeErrors=false`` the valid elements are saved and the
        others come back with their ``ValidationErrors``, in a 200.
        """
        if request.args.get("summarizeErrors", "true").lower() != "false":
            trial = self.ledger.trial()
            refusals = [self._apply(trial, request, e, journal_id)[1] for e in elements]
            if any(refusals):
                raise ApiError(
                    400,
                    self._validation(
                        None,
                        [
                            self._element(e, m or [])
                            for e, m in zip(elements, refusals, strict=True)
                        ],
                    ),
                )
        saved = []
        for element in elements:
            record, refusal = self._apply(self.ledger, request, element, journal_id)
            if refusal:
                saved.append({**self._element(element, refusal), "StatusAttributeString": "ERROR"})
            else:
                saved.append({**self._journal_json(record), "StatusAttributeString": "OK"})
        return 200, self._envelope("ManualJournals", saved)

    @staticmethod
    def _apply(ledger, request, element, journal_id):
        """``(record, None)`` once saved in ``ledger``, or ``(None, messages)``."""
        target = journal_id or (
            element.get("ManualJournalID") if isinstance(element, dict) else None
        )
        try:
            if target and request.method == "PUT":
                raise LedgerError(["Use POST to update an existing manual journal."])
            if target and target not in ledger.journals:
                raise LedgerError([f"Manual journal '{target}' could not be found."])
            if target:
                return ledger.update_journal(target, element), None
            return ledger.create_journal(element), None
        except LedgerError as exc:
            return None, exc.messages

    def _idempotent(self, request, save, journal_id=None):
        """Parse the body; with an ``Idempotency-Key``, a retry gets the first answer again."""
        raw = request.get_data()
        key = request.headers.get("Idempotency-Key")
        if key is not None and (not key or len(key) > MAX_IDEMPOTENCY_KEY):
            raise ApiError(
                400,
                self._validation(
                    [f"The Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} characters."],
                    [],
                ),
            )
        elements = self._elements(raw)
        digest = hashlib.sha256(
            json.dumps([request.method, request.path, elements], sort_keys=True).encode()
        ).hexdigest()
        if key is not None and key in self.idempotency:
            stored = self.idempotency[key]
            if stored["digest"] != digest:
                raise ApiError(
                    400,
                    self._validation(
                        [
                            f"The Idempotency-Key '{key}' has already been used with a different "
                            "request."
                        ],
                        [],
                    ),
                )
            request.sim_note = {"idempotent_replay": key}
            stored["replays"] += 1
            return stored["status"], stored["body"]
        status, body = save(request, elements, journal_id)
        if key is not None:
            # Only an answer that did something is kept: a refusal may be retried later.
            self.idempotency[key] = {"digest": digest, "status": status, "body": body, "replays": 0}
        return status, body

    def _elements(self, raw):
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise ApiError(
                400,
                {
                    "ErrorNumber": 14,
                    "Type": "PostDataInvalidException",
                    "Message": f"Invalid JSON: {exc}",
                },
            ) from exc
        if isinstance(body, dict) and "ManualJournals" in body:
            body = body["ManualJournals"]
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list) or not body:
            raise ApiError(
                400,
                {
                    "ErrorNumber": 14,
                    "Type": "PostDataInvalidException",
                    "Message": "The request body must hold one or more ManualJournals.",
                },
            )
        return body

    def _journal_json(self, record):
        lines = [dict(line) for line in record["JournalLines"]]
        return plain(
            {
                "ManualJournalID": record["ManualJournalID"],
                "Date": record["Date"],
                "Status": record["Status"],
                "LineAmountTypes": record["LineAmountTypes"],
                "Narration": record["Narration"],
                "Url": record.get("Url"),
                "ShowOnCashBasisReports": record["ShowOnCashBasisReports"],
                "HasAttachments": False,
                "UpdatedDateUTC": record["UpdatedDateUTC"],
                "JournalLines": lines,
            }
        )

    @staticmethod
    def _element(element, messages):
        echoed = dict(element) if isinstance(element, dict) else {}
        return {**echoed, "ValidationErrors": [{"Message": m} for m in messages]}

    @staticmethod
    def _validation(messages, elements):
        """Xero's 400 body: a ``ValidationException`` with its messages per element."""
        if messages:
            elements = [{"ValidationErrors": [{"Message": m} for m in messages]}]
        return {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": elements,
        }

    @staticmethod
    def _not_found():
        return ApiError(
            404,
            {
                "Title": "Not Found",
                "Status": 404,
                "Detail": "The resource you're looking for cannot be found",
            },
        )

    _WHERE = re.compile(
        r'\s*(\w+)\s*(==|!=|>=|<=|>|<)\s*(?:"([^"]*)"|DateTime\((\d{4}),\s*(\d{1,2}),\s*(\d{1,2})\))\s*'
    )

    def _where(self, request, records, fields):
        """Xero's ``where`` filter, the part a connector uses: ``Field=="value"`` joined by AND."""
        where = request.args.get("where")
        if not where:
            return records
        tests = []
        for clause in re.split(r"\s+(?:AND|&&)\s+", where.strip()):
            match = self._WHERE.fullmatch(clause)
            if match is None or match[1] not in fields:
                raise ApiError(
                    400,
                    {
                        "ErrorNumber": 16,
                        "Type": "QueryParseException",
                        "Message": f"No property or field '{clause.strip()}' exists or it cannot "
                        "be parsed",
                    },
                )
            field, op, text = match[1], match[2], match[3]
            value = text if text is not None else date(int(match[4]), int(match[5]), int(match[6]))
            tests.append((field, op, value))
        ops = {
            "==": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            ">=": lambda a, b: a >= b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            "<": lambda a, b: a < b,
        }

        def keep(record):
            for field, op, value in tests:
                have = record.get(field)
                if type(have) is not type(value) or not ops[op](have, value):
                    return False
            return True

        return [r for r in records if keep(r)]

    # --- settlement reports --------------------------------------------------------------
    def report_download(self, request, merchant, file_name):
        refusal = self._report_auth(request)
        if refusal is not None:
            return refusal
        if merchant != self.acquirer.merchant_account:
            return json_response(
                {
                    "status": 403,
                    "errorCode": "010",
                    "message": "Not allowed",
                    "errorType": "security",
                },
                status=403,
            )
        return self._report(file_name)

    def report_download_short(self, request, file_name):
        refusal = self._report_auth(request)
        return refusal if refusal is not None else self._report(file_name)

    def _report_auth(self, request):
        if request.headers.get("X-API-Key") == self.report_api_key:
            return None
        expected = base64.b64encode(
            f"{self.report_username}:{self.report_password}".encode()
        ).decode()
        if request.headers.get("Authorization") == f"Basic {expected}":
            return None
        request.sim_note = {"error": "unauthorized"}
        return json_response(
            {
                "status": 401,
                "errorCode": "000",
                "message": "HTTP Status Response - Unauthorized",
                "errorType": "security",
            },
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="Adyen"'},
        )

    def _report(self, file_name):
        match = re.fullmatch(r"settlement_detail_report_batch_(\d+)\.csv", file_name)
        number = int(match[1]) if match else None
        if number not in self.acquirer.batches:
            return json_response(
                {
                    "status": 404,
                    "errorCode": "000",
                    "message": "Not found",
                    "errorType": "validation",
                },
                status=404,
            )
        return Response(
            self.acquirer.report_csv(number),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
        )

    def _report_available(self, batch):
        """Adyen's REPORT_AVAILABLE notification for a closed batch (when a webhook URL is set)."""
        if not self.webhook_url:
            return
        item = {
            "amount": {"currency": batch["currency"], "value": 0},
            "eventCode": "REPORT_AVAILABLE",
            "eventDate": iso(batch["closed_at"]),
            "merchantAccountCode": self.acquirer.merchant_account,
            "merchantReference": "",
            "pspReference": batch["file"],
            "reason": f"{self.report_url}/{batch['file']}",
            "success": "true",
        }
        body = json.dumps(
            {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
        ).encode()
        headers = {
            "Content-Type": "application/json",
            self.signature_header: hmac_sha256_base64(self.webhooks.secret, body),
        }
        self.emit_webhook("REPORT_AVAILABLE", body, headers, batch["file"])

    # --- control (Python) ------------------------------------------------------------------
    def set_lock_dates(self, period=..., end_of_year=...):
        """Move the period / end of year lock dates (``None`` clears one)."""
        with self.lock:
            locks = self.ledger.set_lock_dates(period, end_of_year)
            return {k: v.isoformat() if v else None for k, v in locks.items()}

    def archive_account(self, code, archived=True):
        with self.lock:
            return self.ledger.archive_account(code, archived)["Status"]

    def journals(self, status=None):
        """The manual journals held, as the API shows them (``status`` filters)."""
        with self.lock:
            return [
                self._journal_json(j)
                for j in self.ledger.journals.values()
                if status is None or j["Status"] == status
            ]

    def snapshot(self, parts=None):
        state = {
            "system": self.name,
            "tenant_id": self.tenant_id,
            "lock_dates": {
                "period": _iso(self.ledger.period_lock_date),
                "end_of_year": _iso(self.ledger.end_of_year_lock_date),
            },
            "accounts": {c: a["Status"] for c, a in self.ledger.accounts.items()},
            "journals": self.journals(),
            "history": [list(h) for h in self.ledger.history],
            "idempotency": {k: v["replays"] for k, v in self.idempotency.items()},
            "rate_limit": self.limits.status(),
            "acquirer": self.acquirer.snapshot(),
        }
        return {k: v for k, v in state.items() if parts is None or k in parts}

    def trigger(self, event, params):
        p = dict(params)
        acquirer = self.acquirer
        events = {
            "lock.set": lambda: self.set_lock_dates(
                **{k: p[k] for k in ("period", "end_of_year") if k in p}
            ),
            "account.archive": lambda: self.archive_account(p["code"], p.get("archived", True)),
            "acquirer.capture": lambda: acquirer.capture(
                p["reference"], p["amount"], p.get("currency"), p.get("at"), p.get("payment_method")
            ),
            "acquirer.refund": lambda: acquirer.refund(
                p["reference"], p.get("amount"), p.get("at")
            ),
            "acquirer.chargeback": lambda: acquirer.chargeback(
                p["reference"], p.get("amount"), p.get("at")
            ),
            "acquirer.close_batch": lambda: acquirer.summary(acquirer.close_batch(p.get("at"))),
        }
        if event not in events:
            raise ValueError(
                f"finance simulator knows no event {event!r}; one of {', '.join(events)}"
            )
        return events[event]()


def _iso(day):
    return day.isoformat() if day else None
