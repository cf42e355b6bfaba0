from . import (
    finance_backend,
    finance_chart,
    finance_mapping,
    finance_settlement,
    finance_settlement_backend,
)
