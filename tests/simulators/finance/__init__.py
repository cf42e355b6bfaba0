"""The finance simulator: a Xero-like accounting API and an acquirer's settlement reports."""

from .acquirer import COLUMNS as SETTLEMENT_COLUMNS
from .acquirer import Acquirer
from .ledger import Ledger, LedgerError
from .simulator import FinanceSimulator, XeroLimits

__all__ = [
    "SETTLEMENT_COLUMNS",
    "Acquirer",
    "FinanceSimulator",
    "Ledger",
    "LedgerError",
    "XeroLimits",
]
