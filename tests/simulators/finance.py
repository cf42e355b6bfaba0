"""Finance system simulator: base and health endpoint; its API comes with connector_finance."""

from .skeleton import SkeletonSimulator


class FinanceSimulator(SkeletonSimulator):
    """The external book of record (journals, settlements, periods) — skeleton for now."""

    name = "finance"
    signature_header = "X-Finance-Signature"
