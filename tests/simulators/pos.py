"""Store POS fleet simulator: base and health endpoint; its API comes with connector_pos."""

from .skeleton import SkeletonSimulator


class PosSimulator(SkeletonSimulator):
    """The stores' point-of-sale back office (tickets, store close) — skeleton for now."""

    name = "pos"
    signature_header = "X-Pos-Signature"
