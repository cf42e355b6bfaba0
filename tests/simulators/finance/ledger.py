"""The book of record behind the finance simulator: one organisation, no HTTP.

Plain records (``Decimal`` money, ``date`` dates) for the organisation, its
chart of accounts, tax rates, tracking categories and manual journals, and the
rules a manual journal must pass, written from Xero's Accounting API
documentation: lines with positive amounts for debits and negative for
credits that must add up to zero, active account codes, known tax types, at
most two tracking categories, nothing dated on or before a lock date. The
simulator module turns these records into Xero's JSON and its errors into a
``ValidationException``.

Messages quote Xero's where its documentation or its developers' threads show
them (the lock dates, account codes, tax types); the others follow their
style. ``tests/simulators/README.md`` says which is which.
"""

import re
import uuid
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ..base import seeded_random, utcnow
from ..retail_data import LOCATIONS, SHOP_CURRENCY, TAX_REGIONS

CENT = Decimal("0.01")
STATUSES = ("DRAFT", "POSTED", "DELETED", "VOIDED")
LINE_AMOUNT_TYPES = ("NoTax", "Exclusive", "Inclusive")
# Control accounts Xero keeps for its own documents: not for manual journals.
JOURNAL_SYSTEM_ACCOUNTS = ("DEBTORS", "CREDITORS")

# code, name, type, tax type, system account (Xero's default chart, trimmed
# to what a retailer exports, plus the clearing accounts a connector posts to)
CHART = (
    ("090", "Business Bank Account", "BANK", "NONE", None),
    ("091", "Card Acquirer Clearing", "CURRENT", "NONE", None),
    ("092", "Shopify Payments Clearing", "CURRENT", "NONE", None),
    ("093", "Store Cash Clearing", "CURRENT", "NONE", None),
    ("200", "Sales", "REVENUE", "OUTPUT", None),
    ("210", "Shipping Income", "REVENUE", "OUTPUT", None),
    ("220", "Sales Refunds", "REVENUE", "OUTPUT", None),
    ("260", "Other Revenue", "OTHERINCOME", "OUTPUT", None),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", "INPUT", None),
    ("404", "Bank Fees", "EXPENSE", "NONE", None),
    ("405", "Card Processing Fees", "EXPENSE", "NONE", None),
    ("406", "Chargeback Losses", "EXPENSE", "NONE", None),
    ("610", "Accounts Receivable", "CURRENT", "NONE", "DEBTORS"),
    ("630", "Inventory", "INVENTORY", "NONE", None),
    ("800", "Accounts Payable", "CURRLIAB", "NONE", "CREDITORS"),
    ("820", "VAT", "CURRLIAB", "NONE", "GST"),
    ("840", "Historical Adjustment", "CURRLIAB", "NONE", "HISTORICAL"),
    ("960", "Retained Earnings", "EQUITY", "NONE", "RETAINEDEARNINGS"),
    ("499", "Old Sales (archived)", "REVENUE", "OUTPUT", None),
)
ARCHIVED_CODES = ("499",)
ACCOUNT_CLASSES = {
    "BANK": "ASSET",
    "CURRENT": "ASSET",
    "INVENTORY": "ASSET",
    "FIXED": "ASSET",
    "REVENUE": "REVENUE",
    "OTHERINCOME": "REVENUE",
    "SALES": "REVENUE",
    "DIRECTCOSTS": "EXPENSE",
    "EXPENSE": "EXPENSE",
    "OVERHEADS": "EXPENSE",
    "CURRLIAB": "LIABILITY",
    "LIABILITY": "LIABILITY",
    "EQUITY": "EQUITY",
}


class LedgerError(Exception):
    """Refusals of one element (a journal): Xero's ``ValidationErrors`` messages."""

    def __init__(self, messages):
        super().__init__("; ".join(messages))
        self.messages = list(messages)


def money(value):
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def lock_text(day):
    """A lock date the way Xero writes it in its messages: ``31-Oct-2026``."""
    return day.strftime("%d-%b-%Y")


def parse_date(value):
    """A Xero date: ``2026-11-30``, ``2026-11-30T00:00:00`` or ``/Date(1764460800000+0000)/``."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(value)
    text = value.strip()
    match = re.fullmatch(r"/Date\((\d+)([+-]\d{4})?\)/", text)
    if match:
        return datetime.fromtimestamp(int(match[1]) / 1000, tz=timezone.utc).date()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}(T00:00:00)?", text):
        return date.fromisoformat(text[:10])
    raise ValueError(value)


class Ledger:
    """One Xero organisation: chart, tax rates, tracking categories, journals, lock dates."""

    def __init__(self, seed, *, name="Retail Sync Demo SAS", currency=SHOP_CURRENCY):
        self.seed = seed
        self.name = name
        self.currency = currency
        self.organisation_id = self._uuid("organisation")
        self.period_lock_date = None
        self.end_of_year_lock_date = None
        self.accounts = {}
        self.tax_rates = {}
        self.tracking = {}
        self.journals = {}
        self.history = []
        self._seed_chart()

    def _uuid(self, *parts):
        return str(
            uuid.UUID(int=seeded_random(self.seed, "ledger", *parts).getrandbits(128), version=4)
        )

    def _seed_chart(self):
        now = utcnow()
        for code, name, kind, tax_type, system in CHART:
            self.accounts[code] = {
                "AccountID": self._uuid("account", code),
                "Code": code,
                "Name": name,
                "Type": kind,
                "Class": ACCOUNT_CLASSES[kind],
                "TaxType": tax_type,
                "Status": "ARCHIVED" if code in ARCHIVED_CODES else "ACTIVE",
                "SystemAccount": system,
                "CurrencyCode": self.currency if kind == "BANK" else None,
                "UpdatedDateUTC": now,
            }
        # Xero's reserved types for no tax, plus one rate per tax region the
        # shop sells into (user-created rates get TAX001, TAX002... in Xero).
        self.tax_rates["NONE"] = self._tax_rate("NONE", "No VAT", Decimal("0"))
        self.tax_rates["OUTPUT"] = self._tax_rate("OUTPUT", "VAT on Income 20%", Decimal("20"))
        self.tax_rates["INPUT"] = self._tax_rate("INPUT", "VAT on Expenses 20%", Decimal("20"))
        for number, (title, rate) in enumerate(
            sorted({(v[1], v[2]) for v in TAX_REGIONS.values()}), start=1
        ):
            tax_type = f"TAX{number:03d}"
            self.tax_rates[tax_type] = self._tax_rate(tax_type, title, rate * 100)
        # The reduced French rates the stores' tills charge besides 20 %.
        for title, percent in (("FR TVA 10%", Decimal("10")), ("FR TVA 5.5%", Decimal("5.5"))):
            number += 1
            tax_type = f"TAX{number:03d}"
            self.tax_rates[tax_type] = self._tax_rate(tax_type, title, percent)
        channel = [("Online", "ACTIVE")] + [
            (name, "ACTIVE") for name, kind, *_ in LOCATIONS if kind == "store"
        ]
        self.tracking = {
            "Channel": self._category("Channel", channel),
            "Region": self._category(
                "Region", [(c, "ACTIVE") for c in sorted(TAX_REGIONS)] + [("EU-OLD", "ARCHIVED")]
            ),
        }

    def _tax_rate(self, tax_type, name, percent):
        return {
            "TaxType": tax_type,
            "Name": name,
            "Status": "ACTIVE",
            "EffectiveRate": money(percent),
            "DisplayTaxRate": money(percent),
            "CanApplyToRevenue": True,
            "CanApplyToExpenses": True,
            "CanApplyToLiabilities": True,
            "CanApplyToAssets": True,
            "CanApplyToEquity": True,
        }

    def _category(self, name, options):
        return {
            "TrackingCategoryID": self._uuid("tracking", name),
            "Name": name,
            "Status": "ACTIVE",
            "Options": [
                {
                    "TrackingOptionID": self._uuid("tracking", name, option),
                    "Name": option,
                    "Status": status,
                }
                for option, status in options
            ],
        }

    def trial(self):
        """A copy whose journals can be changed without touching this ledger (a dry run)."""
        copy = Ledger.__new__(Ledger)
        copy.__dict__.update(self.__dict__)
        copy.journals = dict(self.journals)
        copy.history = []
        return copy

    # --- lock dates ------------------------------------------------------------------
    def set_lock_dates(self, period=..., end_of_year=...):
        """Move the lock dates (``None`` clears one; leave an argument out to keep it)."""
        if period is not ...:
            self.period_lock_date = parse_date(period) if period else None
        if end_of_year is not ...:
            self.end_of_year_lock_date = parse_date(end_of_year) if end_of_year else None
        return {"period": self.period_lock_date, "end_of_year": self.end_of_year_lock_date}

    def lock_refusal(self, day):
        """Xero's message when ``day`` is on or before a lock date, else None."""
        if self.end_of_year_lock_date and day <= self.end_of_year_lock_date:
            return (
                "The document date cannot be before the end of year lock date, currently set "
                f"at {lock_text(self.end_of_year_lock_date)}"
            )
        if self.period_lock_date and day <= self.period_lock_date:
            return (
                "The document date cannot be before the period lock date, currently set at "
                f"{lock_text(self.period_lock_date)}"
            )
        return None

    # --- accounts ---------------------------------------------------------------------
    def archive_account(self, code, archived=True):
        account = self.accounts[code]
        account["Status"] = "ARCHIVED" if archived else "ACTIVE"
        account["UpdatedDateUTC"] = utcnow()
        return account

    # --- manual journals -----------------------------------------------------------
    def create_journal(self, data):
        """Validate and store one journal; ``LedgerError`` with every refusal otherwise."""
        record = self._validated(data, status_default="DRAFT")
        if record["Status"] not in ("DRAFT", "POSTED"):
            raise LedgerError(
                [f"A manual journal cannot be created with the status {record['Status']}."]
            )
        record["ManualJournalID"] = self._uuid("journal", len(self.journals) + 1)
        self.journals[record["ManualJournalID"]] = record
        self.history.append(("created", record["ManualJournalID"], record["Status"]))
        return record

    def update_journal(self, journal_id, data):
        """Change a journal: a draft's content, or its status (post, delete, void)."""
        current = self.journals[journal_id]
        status = data.get("Status", current["Status"])
        if current["Status"] in ("DELETED", "VOIDED"):
            raise LedgerError(
                [f"This manual journal is {current['Status'].lower()} and cannot be modified."]
            )
        if current["Status"] == "POSTED" and status == "DELETED":
            raise LedgerError(["A posted manual journal cannot be deleted; void it instead."])
        if current["Status"] == "POSTED" and status == "DRAFT":
            raise LedgerError(["A posted manual journal cannot be returned to draft."])
        if status == "VOIDED" and current["Status"] != "POSTED":
            raise LedgerError(["Only a posted manual journal can be voided."])
        refusal = self.lock_refusal(current["Date"])
        if refusal:  # what is in a locked period stays as it is, voiding included
            raise LedgerError([refusal])
        merged = {**self.as_input(current), **data, "Status": status}
        record = self._validated(merged, status_default=current["Status"])
        record["ManualJournalID"] = journal_id
        self.journals[journal_id] = record
        self.history.append(("updated", journal_id, record["Status"]))
        return record

    @staticmethod
    def as_input(record):
        """A stored journal as the body that would create it (for merged updates)."""
        return {
            "Narration": record["Narration"],
            "Date": record["Date"].isoformat(),
            "Status": record["Status"],
            "LineAmountTypes": record["LineAmountTypes"],
            "ShowOnCashBasisReports": record["ShowOnCashBasisReports"],
            "Url": record.get("Url"),
            "JournalLines": [
                {
                    "LineAmount": str(line["LineAmount"]),
                    "AccountCode": line["AccountCode"],
                    "TaxType": line["TaxType"],
                    "Description": line["Description"],
                    "Tracking": [
                        {"Name": t["Name"], "Option": t["Option"]} for t in line["Tracking"]
                    ],
                }
                for line in record["JournalLines"]
            ],
        }

    def _validated(self, data, status_default):
        errors = []
        if not isinstance(data, dict):
            raise LedgerError(["A manual journal must be an object."])
        narration = data.get("Narration")
        if not isinstance(narration, str) or not narration.strip():
            errors.append("Narration cannot be empty.")
        status = data.get("Status") or status_default
        if status not in STATUSES:
            errors.append(f"Status '{status}' is not a valid status for a manual journal.")
        amount_types = data.get("LineAmountTypes") or "NoTax"
        if amount_types not in LINE_AMOUNT_TYPES:
            errors.append(
                f"LineAmountTypes '{amount_types}' is not valid; use one of "
                f"{', '.join(LINE_AMOUNT_TYPES)}."
            )
            amount_types = "NoTax"
        day = utcnow().date()
        if data.get("Date") not in (None, ""):
            try:
                day = parse_date(data["Date"])
            except (ValueError, TypeError):
                errors.append(f"The date '{data['Date']}' is not a valid date.")
        lines_in = data.get("JournalLines")
        if not isinstance(lines_in, list) or len(lines_in) < 2:
            errors.append(
                "The JournalLines element must contain at least two individual "
                "JournalLine sub-elements."
            )
            lines_in = lines_in if isinstance(lines_in, list) else []
        lines = [self._line(line, amount_types, errors) for line in lines_in]
        lines = [line for line in lines if line is not None]
        if len(lines) == len(lines_in) and len(lines) >= 2:
            debits = sum((line["gross"] for line in lines if line["gross"] > 0), Decimal("0"))
            credits = sum((line["gross"] for line in lines if line["gross"] < 0), Decimal("0"))
            if debits + credits != 0:
                errors.append(
                    f"The total debits ({money(debits)}) must equal total credits "
                    f"({money(credits)})"
                )
        refusal = self.lock_refusal(day)
        if refusal and status in ("DRAFT", "POSTED", "VOIDED"):
            errors.append(refusal)
        if errors:
            raise LedgerError(errors)
        for line in lines:
            del line["gross"]
        return {
            "Narration": narration.strip(),
            "Date": day,
            "Status": status,
            "LineAmountTypes": amount_types,
            "ShowOnCashBasisReports": data.get("ShowOnCashBasisReports", True) is not False,
            "Url": data.get("Url"),
            "JournalLines": lines,
            "UpdatedDateUTC": utcnow(),
        }

    def _line(self, line, amount_types, errors):
        if not isinstance(line, dict):
            errors.append("A JournalLine must be an object.")
            return None
        ok = True
        try:
            amount = money(str(line.get("LineAmount")))
            if line.get("LineAmount") is None or isinstance(line.get("LineAmount"), bool):
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            errors.append("Each JournalLine must have a LineAmount.")
            ok, amount = False, Decimal("0")
        account = self._account(line, errors)
        ok = ok and account is not None
        tax_type = line.get("TaxType") or (account and account["TaxType"]) or "NONE"
        rate = self.tax_rates.get(tax_type)
        if rate is None or rate["Status"] != "ACTIVE":
            errors.append(
                f"The TaxType code {tax_type} does not exist or cannot be used for this "
                "type of transaction."
            )
            ok = False
        tracking = self._tracking(line.get("Tracking") or [], errors)
        if tracking is None or not ok:
            return None
        percent = rate["EffectiveRate"] / 100
        if amount_types == "NoTax":
            tax, gross = Decimal("0.00"), amount
        elif amount_types == "Inclusive":
            tax = money(amount * percent / (1 + percent))
            gross = amount
        else:
            tax = money(amount * percent)
            gross = amount + tax
        description = line.get("Description")
        return {
            "LineAmount": amount,
            "AccountCode": account["Code"],
            "AccountID": account["AccountID"],
            "TaxType": tax_type,
            "TaxAmount": tax,
            "Description": description if isinstance(description, str) else None,
            "Tracking": tracking,
            "IsBlank": False,
            "gross": gross,
        }

    def _account(self, line, errors):
        code = line.get("AccountCode")
        account = None
        if code not in (None, ""):
            account = self.accounts.get(str(code))
        elif line.get("AccountID"):
            account = next(
                (a for a in self.accounts.values() if a["AccountID"] == line["AccountID"]), None
            )
            code = line["AccountID"]
        else:
            errors.append("Each JournalLine must have an AccountCode.")
            return None
        if account is None:
            errors.append(f"Account code '{code}' is not a valid code for this document.")
            return None
        if account["Status"] != "ACTIVE":
            errors.append(
                f"Account code '{account['Code']}' has been archived, or has been deleted. "
                "Each line item must reference a valid account."
            )
            return None
        if account["SystemAccount"] in JOURNAL_SYSTEM_ACCOUNTS:
            errors.append(
                f"Account code '{account['Code']}' is a system account and cannot be used in a "
                "manual journal."
            )
            return None
        return account

    def _tracking(self, tracking, errors):
        if not isinstance(tracking, list):
            errors.append("Tracking must be a list of tracking categories.")
            return None
        if len(tracking) > 2:
            errors.append("A line can have at most two tracking categories.")
            return None
        found = []
        for item in tracking:
            if not isinstance(item, dict):
                errors.append("Tracking must be a list of tracking categories.")
                return None
            category = self.tracking.get(item.get("Name")) or next(
                (
                    c
                    for c in self.tracking.values()
                    if c["TrackingCategoryID"] == item.get("TrackingCategoryID")
                ),
                None,
            )
            if category is None or category["Status"] != "ACTIVE":
                name = item.get("Name") or item.get("TrackingCategoryID")
                errors.append(f"The TrackingCategory '{name}' does not exist or is archived.")
                return None
            wanted = item.get("Option")
            option = next(
                (
                    o
                    for o in category["Options"]
                    if o["Name"] == wanted or o["TrackingOptionID"] == item.get("TrackingOptionID")
                ),
                None,
            )
            if option is None or option["Status"] != "ACTIVE":
                errors.append(
                    f"The TrackingOption '{wanted}' is not an active option of the "
                    f"TrackingCategory '{category['Name']}'."
                )
                return None
            found.append(
                {
                    "Name": category["Name"],
                    "Option": option["Name"],
                    "TrackingCategoryID": category["TrackingCategoryID"],
                    "TrackingOptionID": option["TrackingOptionID"],
                }
            )
        return found
