"""Simulators of the remote systems Retail Sync integrates, for tests, benchmarks and the demo.

Each is an HTTP server on 127.0.0.1 with its own state, started from Python
(a context manager) or from the command line (``python3 -m simulators``).
See README.md in this folder.
"""

from .base import FaultRule, RequestLog, Simulator, WebhookFaults, hmac_sha256_base64
from .finance import FinanceSimulator
from .pos import PosSimulator
from .shopify import ShopifySimulator
from .tpl import ThirdPartyLogisticsSimulator

SIMULATORS = {
    "shopify": ShopifySimulator,
    "pos": PosSimulator,
    "3pl": ThirdPartyLogisticsSimulator,
    "finance": FinanceSimulator,
}

__all__ = [
    "SIMULATORS",
    "FaultRule",
    "FinanceSimulator",
    "PosSimulator",
    "RequestLog",
    "ShopifySimulator",
    "Simulator",
    "ThirdPartyLogisticsSimulator",
    "WebhookFaults",
    "hmac_sha256_base64",
]
