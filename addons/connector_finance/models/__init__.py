from . import (
    finance_backend,
    finance_chart,
    finance_mapping,
)
