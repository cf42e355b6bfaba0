"""3PL simulator: base and health endpoint; its API comes with connector_3pl."""

from .skeleton import SkeletonSimulator


class ThirdPartyLogisticsSimulator(SkeletonSimulator):
    """The logistics provider's warehouse (releases, shipments, returns) — skeleton for now."""

    name = "3pl"
    signature_header = "X-3pl-Signature"
    locations = 1
