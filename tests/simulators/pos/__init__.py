"""The POS fleet simulator: stores that push signed ticket batches to Odoo, or are polled."""

from .fleet import Fleet, ticket_totals
from .push import PushClient, PushFaults, sign
from .simulator import PosSimulator

__all__ = ["Fleet", "PosSimulator", "PushClient", "PushFaults", "sign", "ticket_totals"]
