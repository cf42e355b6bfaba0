"""A card acquirer's settlement batches, no HTTP: what the settlement detail report says.

Written from Adyen's settlement detail report: one CSV per settlement batch,
one row per booking (``Settled``, ``Refunded``, ``Chargeback``, ``Fee``,
``Balancetransfer``, ``MerchantPayout``), gross amounts in the currency the
shopper paid and net amounts in the settlement currency, with the fees of
Interchange++ pricing (``Interchange (NC)``, ``Scheme Fees (NC)``,
``Markup (NC)``, their sum in ``Commission (NC)``) withheld from each payment.

A test registers what the stores' card terminals did (:meth:`Acquirer.capture`,
:meth:`refund`, :meth:`chargeback`) and closes a batch; the fees are drawn
from the seed and the payment's reference, so the same seed gives the same
report to the cent.
"""

import csv
import io
import threading
from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from ..base import seeded_random, utcnow
from ..retail_data import CURRENCY_RATES, SHOP_CURRENCY
from .ledger import money

COLUMNS = (
    "Company Account",
    "Merchant Account",
    "Psp Reference",
    "Merchant Reference",
    "Payment Method",
    "Creation Date",
    "TimeZone",
    "Type",
    "Modification Reference",
    "Gross Currency",
    "Gross Debit (GC)",
    "Gross Credit (GC)",
    "Exchange Rate",
    "Net Currency",
    "Net Debit (NC)",
    "Net Credit (NC)",
    "Commission (NC)",
    "Markup (NC)",
    "Scheme Fees (NC)",
    "Interchange (NC)",
    "Payment Method Variant",
    "Modification Merchant Reference",
    "Batch Number",
)
# Card variants and their interchange (EU caps: 0.2 % debit, 0.3 % credit;
# Amex has no interchange++ and takes a blended rate, booked as interchange).
VARIANTS = (
    ("visa", "visadebit", Decimal("0.0020")),
    ("visa", "visacredit", Decimal("0.0030")),
    ("mc", "mcdebit", Decimal("0.0020")),
    ("mc", "mccredit", Decimal("0.0030")),
    ("maestro", "maestro", Decimal("0.0020")),
    ("amex", "amex", Decimal("0.0160")),
)
MARKUP_FIXED = Decimal("0.11")  # the acquirer's processing fee per transaction
MARKUP_RATE = Decimal("0.0060")


class Acquirer:
    """One merchant account's card payments and the settlement batches that pay them out."""

    def __init__(
        self,
        seed,
        *,
        company_account="RetailSyncCOM",
        merchant_account="RetailSyncPOS",
        currency=SHOP_CURRENCY,
        timezone_name="Europe/Paris",
        chargeback_fee=Decimal("15.00"),
    ):
        self.seed = seed
        self.company_account = company_account
        self.merchant_account = merchant_account
        self.currency = currency
        self.zone = ZoneInfo(timezone_name)
        self.chargeback_fee = money(chargeback_fee)
        self.payments = {}  # psp reference -> payment
        self.pending = []  # bookings not in a batch yet
        self.batches = {}  # number -> batch
        self.carried = Decimal("0.00")  # a negative balance moved to the next batch
        self.listeners = []  # called with each closed batch
        self._psp_numbers = 0
        self._lock = threading.RLock()

    # --- what happened at the terminals --------------------------------------------
    def capture(self, reference, amount, currency=None, at=None, payment_method=None):
        """A captured card payment; returns its PSP reference."""
        with self._lock:
            currency = currency or self.currency
            if currency not in CURRENCY_RATES:
                raise ValueError(f"the acquirer settles no {currency!r} payments")
            amount = money(amount)
            if amount <= 0:
                raise ValueError("a capture is of a positive amount")
            if any(p["reference"] == reference for p in self.payments.values()):
                raise ValueError(f"a payment with the merchant reference {reference!r} exists")
            rng = seeded_random(self.seed, "acquirer", "card", reference)
            variants = [v for v in VARIANTS if payment_method in (None, v[0], v[1])]
            if not variants:
                raise ValueError(f"unknown payment method {payment_method!r}")
            method, variant, interchange = rng.choice(variants)
            psp = self._psp()
            payment = {
                "psp": psp,
                "reference": reference,
                "amount": amount,
                "currency": currency,
                "method": method,
                "variant": variant,
                "interchange": interchange,
                "scheme_rate": Decimal(rng.randint(4, 12)) / 10000,
                "refunded": Decimal("0.00"),
                "charged_back": False,
            }
            self.payments[psp] = payment
            self._book(payment, "Settled", amount, at)
            return psp

    def refund(self, reference, amount=None, at=None):
        """A refund of a captured payment (whole when ``amount`` is None); its PSP reference."""
        with self._lock:
            payment = self._payment(reference)
            left = payment["amount"] - payment["refunded"]
            amount = left if amount is None else money(amount)
            if amount <= 0 or amount > left:
                raise ValueError(f"{payment['reference']}: {amount} exceeds the {left} left")
            payment["refunded"] += amount
            return self._book(payment, "Refunded", amount, at)

    def chargeback(self, reference, amount=None, at=None):
        """The shopper's bank takes the payment back; the acquirer charges its fee."""
        with self._lock:
            payment = self._payment(reference)
            if payment["charged_back"]:
                raise ValueError(f"{payment['reference']} is already charged back")
            payment["charged_back"] = True
            amount = payment["amount"] if amount is None else money(amount)
            psp = self._book(payment, "Chargeback", amount, at)
            self._book(payment, "Fee", self.chargeback_fee, at, modification=psp)
            return psp

    def close_batch(self, at=None):
        """Close the open batch: its report, and the payout of its net (None when negative)."""
        with self._lock:
            number = len(self.batches) + 1
            at = self._moment(at)
            rows = [self._row(booking, number) for booking in self.pending]
            net = sum(
                (_amount(r["Net Credit (NC)"]) - _amount(r["Net Debit (NC)"]) for r in rows),
                Decimal("0.00"),
            )
            if self.carried:
                rows.append(self._transfer(number, at, number - 1, debit=self.carried))
                net -= self.carried
                self.carried = Decimal("0.00")
            payout = None
            if net > 0:
                payout = net
                rows.append(self._payout_row(number, at, net))
            elif net < 0:
                self.carried = -net
                rows.append(self._transfer(number, at, number + 1, credit=-net))
            batch = {
                "number": number,
                "file": f"settlement_detail_report_batch_{number}.csv",
                "closed_at": at,
                "currency": self.currency,
                "payout": payout,
                "rows": rows,
            }
            self.batches[number] = batch
            self.pending = []
            for listener in self.listeners:
                listener(batch)
            return batch

    # --- the report ----------------------------------------------------------------------
    def report_csv(self, number):
        """The batch's settlement detail report, as Adyen's CSV (header line, then rows)."""
        with self._lock:
            batch = self.batches[number]
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(batch["rows"])
            return out.getvalue()

    def summary(self, batch):
        return {
            "batch_number": batch["number"],
            "file": batch["file"],
            "closed_at": batch["closed_at"].isoformat(),
            "currency": batch["currency"],
            "payout": str(batch["payout"]) if batch["payout"] is not None else None,
            "rows": len(batch["rows"]),
        }

    def snapshot(self):
        with self._lock:
            return {
                "merchant_account": self.merchant_account,
                "open": len(self.pending),
                "carried": str(self.carried),
                "batches": [self.summary(b) for b in self.batches.values()],
            }

    # --- inside ----------------------------------------------------------------------------
    def _psp(self):
        self._psp_numbers += 1
        rng = seeded_random(self.seed, "acquirer", "psp", self._psp_numbers)
        return "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(16))

    def _payment(self, reference):
        payment = self.payments.get(reference) or next(
            (p for p in self.payments.values() if p["reference"] == reference), None
        )
        if payment is None:
            raise KeyError(f"no captured payment {reference!r}")
        return payment

    def _moment(self, at):
        if at is None:
            return utcnow()
        if isinstance(at, str):
            at = datetime.fromisoformat(at.replace("Z", "+00:00"))
        return at if at.tzinfo else at.replace(tzinfo=timezone.utc)

    def _book(self, payment, kind, amount, at, modification=None):
        psp = modification if kind == "Fee" else self._psp()
        self.pending.append(
            {
                "payment": payment,
                "type": kind,
                "amount": amount,
                "at": self._moment(at),
                "modification": psp if kind != "Settled" else payment["psp"],
            }
        )
        return psp

    def _fees(self, payment, kind, net_amount):
        """``(interchange, scheme fees, markup)`` in the settlement currency."""
        if kind == "Settled":
            return (
                money(net_amount * payment["interchange"]),
                money(net_amount * payment["scheme_rate"]),
                money(net_amount * MARKUP_RATE + MARKUP_FIXED),
            )
        if kind == "Refunded":
            return Decimal("0.00"), Decimal("0.00"), MARKUP_FIXED
        return Decimal("0.00"), Decimal("0.00"), Decimal("0.00")

    def _row(self, booking, number):
        payment = booking["payment"]
        kind = booking["type"]
        rate = CURRENCY_RATES[payment["currency"]] / CURRENCY_RATES[self.currency]
        gross = booking["amount"]
        net_amount = money(gross / rate)
        row = self._blank(number, booking["at"])
        row.update(
            {
                "Psp Reference": payment["psp"],
                "Merchant Reference": payment["reference"],
                "Payment Method": payment["method"],
                "Payment Method Variant": payment["variant"],
                "Type": kind,
                "Modification Reference": booking["modification"],
            }
        )
        if kind == "Fee":
            row["Net Debit (NC)"] = str(gross)
            return row
        interchange, scheme, markup = self._fees(payment, kind, net_amount)
        commission = interchange + scheme + markup
        row.update(
            {
                "Gross Currency": payment["currency"],
                "Exchange Rate": f"{1 / rate:.6f}".rstrip("0").rstrip("."),
                "Commission (NC)": str(commission),
                "Markup (NC)": str(markup),
                "Scheme Fees (NC)": str(scheme),
                "Interchange (NC)": str(interchange),
            }
        )
        if kind == "Settled":
            row["Gross Credit (GC)"] = str(gross)
            row["Net Credit (NC)"] = str(net_amount - commission)
        else:  # Refunded, Chargeback: the money goes back, the fees on top
            row["Gross Debit (GC)"] = str(gross)
            row["Net Debit (NC)"] = str(net_amount + commission)
        return row

    def _blank(self, number, at):
        local = at.astimezone(self.zone)
        row = dict.fromkeys(COLUMNS, "")
        row.update(
            {
                "Company Account": self.company_account,
                "Merchant Account": self.merchant_account,
                "Creation Date": local.strftime("%Y-%m-%d %H:%M:%S"),
                "TimeZone": local.tzname(),
                "Net Currency": self.currency,
                "Batch Number": str(number),
            }
        )
        return row

    def _payout_row(self, number, at, amount):
        row = self._blank(number, at)
        row.update(
            {
                "Type": "MerchantPayout",
                "Modification Reference": self._psp(),
                "Net Debit (NC)": str(amount),
            }
        )
        return row

    def _transfer(self, number, at, other, debit=None, credit=None):
        """A balance transfer row as Adyen writes it: no PSP reference, the
        modification reference ``Balancetransfer``, and the batch it goes to
        (a credit: the negative balance leaves this batch) or comes from (a
        debit: the next batch takes it off its payout) named in the
        modification merchant reference. A batch both carrying a balance in
        and negative again has one row of each, told apart only by that
        reference."""
        row = self._blank(number, at)
        row.update(
            {
                "Type": "Balancetransfer",
                "Modification Reference": "Balancetransfer",
                "Modification Merchant Reference": (
                    f"Balancetransfer from batch {other}"
                    if debit
                    else f"Balancetransfer to batch {other}"
                ),
                "Net Debit (NC)": str(debit) if debit else "",
                "Net Credit (NC)": str(credit) if credit else "",
            }
        )
        return row


def _amount(text):
    return Decimal(text) if text else Decimal("0.00")
