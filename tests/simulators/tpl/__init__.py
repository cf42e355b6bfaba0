"""The 3PL simulator: a ShipBob-like fulfillment API over a simulated warehouse."""

from .simulator import SlidingWindowLimiter, ThirdPartyLogisticsSimulator
from .warehouse import CONDITIONS, RETURN_ACTIONS, Warehouse, WarehouseError

__all__ = [
    "CONDITIONS",
    "RETURN_ACTIONS",
    "SlidingWindowLimiter",
    "ThirdPartyLogisticsSimulator",
    "Warehouse",
    "WarehouseError",
]
