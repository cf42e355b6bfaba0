"""What a connector declares about each comparison of Odoo with its remote.

A connector's backend returns, from ``_connector_reconciliations()``, one
declaration per kind, as it declares its topics. The framework does the rest:
runs on schedule and on demand as queue jobs, records the run and its counts,
keeps one mismatch per business key, closes the ones that no longer differ,
and applies the fix a person asks for with an audit trail; the connector
writes the method that compares and the method that fixes.
"""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta


@dataclass(frozen=True)
class Reconciliation:
    """A comparison of Odoo with the remote system, and how to fix what differs.

    :param kind: code of the reconciliation, unique for the backend's type
        (``stock``, ``orders``).
    :param label: what it compares, in the retailer's words.
    :param compare: name of a backend method called as
        ``backend._compare(run)`` (``run.window_start`` / ``window_end`` say
        which period, for a daily one); it reads both sides and returns a
        :class:`Comparison`. Transient remote faults raise
        ``RemoteRetryableError`` and the run is retried.
    :param fix: name of a backend method called as ``backend._fix(mismatches)``
        with open mismatches of this kind (one or many); it makes Odoo's value
        win (or the remote's) through the connector's usual paths and returns
        ``{mismatch_id: reason}`` for those it could not fix. None: no
        automatic fix, people fix by hand and accept.
    :param fix_label: the fix, as the button and the audit trail say it.
    :param period: ``None``: a snapshot of now (stock); ``"day"``: a run
        compares one day, the day before on schedule.
    :param flow: code of the flow it checks (a sync policy line); while that
        flow is turned off the schedule leaves it out (on demand it runs).
    """

    kind: str
    label: str
    compare: str
    fix: str | None = None
    fix_label: str = "Fix"
    period: str | None = None
    flow: str | None = None
    description: str = ""

    def window(self, day):
        """``(start, end)`` of the run of ``day`` (a date), naive UTC
        datetimes; ``(None, None)`` for a snapshot."""
        if self.period is None:
            return None, None
        start = datetime.combine(day, time.min)
        return start, start + timedelta(days=1)


@dataclass(frozen=True)
class Difference:
    """One business key whose two sides differ.

    :param key: the business key support staff search by (``SKU @ location``,
        an order number); one open mismatch per backend, kind and key.
    :param what: what differs, in plain words.
    :param odoo_value: Odoo's value, as shown (``None``: Odoo has none).
    :param remote_value: the remote's value, as shown (``None``: it has none).
    :param fix_data: what the fix method needs (ids), JSON-serialisable.
    """

    key: str
    what: str
    odoo_value: str | None = None
    remote_value: str | None = None
    fix_data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """What a compare method found: how many keys it compared, which differ."""

    compared: int
    differences: list = field(default_factory=list)
