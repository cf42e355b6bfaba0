from . import (
    account_move,
    finance_backend,
    finance_chart,
    finance_export,
    finance_export_backend,
    finance_mapping,
    finance_settlement,
    finance_settlement_backend,
)
