"""The card acquirer's settlement detail report (Adyen-like), read into rows.

One CSV per settlement batch, one row per booking: ``Settled`` (a captured
payment, its commission withheld), ``Refunded``, ``Chargeback``, ``Fee`` (a
chargeback's fee), ``Balancetransfer`` (a negative balance carried between
batches: a net credit in the batch that pays nothing, "Balancetransfer to
batch N" in its modification merchant reference, and a net debit in the
next one, "Balancetransfer from batch N") and ``MerchantPayout`` (what
the batch pays to the bank). Gross amounts are in the currency the shopper
paid, net amounts and fees in the settlement currency.

Read with Python's ``csv`` module, never by splitting lines: the acquirer
quotes fields that hold commas, quotes or line breaks (merchant references
are free text typed at the till), and the module reads them as the report
means them. A row that cannot be read raises :class:`ReportError` naming
the row (its line in the file and its key) and why (OCA/bank-statement-import#195:
"a duplicate row" alone leaves finance staff nothing to look for).
"""

import csv
import io
import re
from decimal import Decimal, InvalidOperation

REQUIRED_COLUMNS = (
    "Merchant Account",
    "Psp Reference",
    "Merchant Reference",
    "Creation Date",
    "Type",
    "Modification Reference",
    "Gross Currency",
    "Gross Debit (GC)",
    "Gross Credit (GC)",
    "Net Currency",
    "Net Debit (NC)",
    "Net Credit (NC)",
    "Commission (NC)",
    "Batch Number",
)
# Row type -> settlement line kind; the payout row is the batch's total.
KINDS = {
    "Settled": "charge",
    "Refunded": "refund",
    "Chargeback": "chargeback",
    "Fee": "fee",
    "Balancetransfer": "adjustment",
}
PAYOUT_TYPE = "MerchantPayout"
TRANSFER_TYPE = "Balancetransfer"
# A balance carried between two batches of the merchant account; any other
# balance transfer (between merchant accounts) is an adjustment.
TRANSFER_BETWEEN_BATCHES = re.compile(r"^\s*Balancetransfer (to|from) batch (\d+)\s*$", re.I)


class ReportError(ValueError):
    """The report cannot be read as a settlement: what and where, in words."""


def _amount(row, column, line):
    text = (row.get(column) or "").strip()
    if not text:
        return Decimal("0.00")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ReportError(
            f"row {line} ({row.get('Type')} {row.get('Psp Reference') or ''}): "
            f"{column} {text!r} is not an amount"
        ) from None
    if not value.is_finite():
        raise ReportError(f"row {line}: {column} {text!r} is not an amount")
    return value


def _check_row(row, line, merchant_account, batch_number, currency):
    """A row of another merchant account, batch or settlement currency is refused."""
    if row.get("Merchant Account") != merchant_account:
        raise ReportError(
            f"row {line} is of the merchant account {row.get('Merchant Account')!r}, "
            f"not {merchant_account!r}"
        )
    if (row.get("Batch Number") or "").strip() != str(batch_number):
        raise ReportError(f"row {line} is of batch {row.get('Batch Number')!r}, not {batch_number}")
    if row.get("Net Currency") and row.get("Net Currency") != currency:
        raise ReportError(
            f"row {line} settles in {row.get('Net Currency')}, the batch in {currency}"
        )


def row_key(row):
    """What tells a booking apart from the others of its payment.

    The PSP reference alone is the payment's: its capture, each refund and a
    chargeback with its fee all carry it (the mistake of
    OCA/bank-statement-import#475, which keyed rows by it and dropped the
    refund of a payment settled in the same file). The booking's type and its
    modification reference (the refund's or chargeback's own PSP reference;
    a fee's is its chargeback's, so the type keeps them apart) make the key.
    A balance transfer has no PSP reference and ``Balancetransfer`` as its
    modification reference: the batch it goes to or comes from (its
    modification merchant reference) tells the two of a batch apart.
    """
    parts = [
        row.get("Type") or "",
        row.get("Psp Reference") or "",
        row.get("Modification Reference") or "",
    ]
    if (row.get("Type") or "").strip() == TRANSFER_TYPE:
        parts.append((row.get("Modification Merchant Reference") or "").strip())
    return "/".join(parts)


def transfer_batch(row):
    """The batch a balance transfer row carries the balance to or from, or None."""
    found = TRANSFER_BETWEEN_BATCHES.match(row.get("Modification Merchant Reference") or "")
    return int(found.group(2)) if found else None


def parse_report(text, merchant_account, batch_number):
    """``{"payout": Decimal or None, "currency": code, "rows": [...]}`` of one
    batch's report; each row a dict with ``key``, ``line``, ``kind``,
    ``reference``, ``psp_reference``, ``modification_reference``, ``date``
    (the text as the report gives it), ``payment_method``, ``gross``
    (settlement currency, signed: a refund's is negative), ``fee`` (what
    the acquirer withheld), ``net`` (gross - fee: what the booking adds to
    the payout), ``gross_currency``, ``gross_original``, ``transfer_batch``
    (the other batch of a balance carried between batches, else None)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ReportError(
            "it is not a settlement detail report: the columns "
            + ", ".join(missing)
            + " are missing"
        )
    rows, seen = [], {}
    payout, currency = None, None
    for row in reader:
        line = reader.line_num
        if None in row:
            raise ReportError(f"row {line} has more fields than the header names")
        kind_name = (row.get("Type") or "").strip()
        currency = currency or row.get("Net Currency")
        _check_row(row, line, merchant_account, batch_number, currency)
        if kind_name == PAYOUT_TYPE:
            payout = _amount(row, "Net Debit (NC)", line)
            continue
        kind = KINDS.get(kind_name)
        other_batch = transfer_batch(row) if kind_name == TRANSFER_TYPE else None
        if other_batch is not None:
            kind = "transfer"
        if kind is None:
            raise ReportError(f"row {line} has the type {kind_name!r}, which is not a booking")
        key = row_key(row)
        if key in seen:
            raise ReportError(
                f"row {line} repeats row {seen[key]} ({kind_name} of "
                f"{row.get('Merchant Reference') or row.get('Psp Reference')}, "
                f"modification {row.get('Modification Reference')})"
            )
        seen[key] = line
        net = _amount(row, "Net Credit (NC)", line) - _amount(row, "Net Debit (NC)", line)
        fee = _amount(row, "Commission (NC)", line)
        if kind == "fee":
            # The fee row is all fee: nothing of the payment moves.
            gross, fee = Decimal("0.00"), -net
        else:
            # Signed as the payout sees it: a charge adds, a refund or a
            # chargeback takes back; the fees withheld come on top.
            gross = net + fee
        rows.append(
            {
                "key": key,
                "line": line,
                "kind": kind,
                "reference": (row.get("Merchant Reference") or "").strip(),
                "psp_reference": row.get("Psp Reference") or "",
                "modification_reference": row.get("Modification Reference") or "",
                "date": row.get("Creation Date") or "",
                "payment_method": row.get("Payment Method Variant") or row.get("Payment Method"),
                "gross": gross,
                "fee": fee,
                "net": net,
                "gross_currency": row.get("Gross Currency") or currency,
                "gross_original": _amount(row, "Gross Credit (GC)", line)
                - _amount(row, "Gross Debit (GC)", line),
                "transfer_batch": other_batch,
            }
        )
    if not rows and payout is None:
        raise ReportError("the report has no rows")
    return {"payout": payout, "currency": currency, "rows": rows}
