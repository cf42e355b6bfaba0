"""What a connector declares about each message it exchanges.

A connector's backend returns, from ``_connector_topics()``, one declaration
per topic. The framework does the rest: stores, validates, orders, queues,
retries and records failures; the connector writes the schema and the method
that applies one valid payload.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class InboundTopic:
    """A message received from the remote system (webhook, polled page, upload).

    :param flow: code of the sync policy line governing it (mode, SLA, channel).
    :param schema: cerberus schema of the payload; unknown keys are allowed
        because remote systems add fields without notice.
    :param handler: name of a method of the backend model, called as
        ``backend._handler(event, payload)``; it applies the payload and returns
        the Odoo record it produced (or an empty recordset / None).
    :param sequence_key: callable ``payload -> str`` naming the aggregate the
        message is about (an order, a SKU); events of one key are applied in
        ``occurred_at`` order. None: no ordering constraint.
    :param prerequisite: name of a backend method ``(event, payload) -> str|None``
        returning why the event cannot be applied yet (the record it needs is
        missing), or None when it can. Such an event waits, it is never
        applied early.
    :param skip_stale: the payload is a full snapshot of the aggregate: when a
        newer event of the same sequence key was already applied, this one is
        ignored instead of overwriting newer data.
    :param max_attempts: how many transient remote failures are retried before
        the event is marked failed for support staff.
    :param failed_holds_key: whether a failed event holds back the later
        events of its sequence key until support handles it (the default:
        later messages about an aggregate build on the earlier ones). False
        for events of one key that are ordered but independent, like the
        tickets of one register: one wrong ticket fails alone.
    :param batch_size: 1: each event has a queue job of its own. More: one job
        applies up to this many queued events of one key space, oldest first,
        each in a savepoint of its own with the same outcomes as alone (a bad
        event fails alone, with its reason; the others are applied; one that
        meets a transient fault is retried later on its own). For high-volume
        topics (POS tickets), where a job per event would cost more than the
        event's own work.
    :param batch_key: callable ``payload -> str | None`` naming the key space
        whose events one job applies together (a POS store and register); the
        key spaces of a topic are applied side by side, each by one job at a
        time. None (or a payload it cannot read): one key space per backend
        and topic. Only with ``batch_size`` > 1.
    :param wakes: callable ``payload -> keys`` naming what else than its
        sequence key the event's application may unblock: the waiting keys
        of events that wait for it (a POS return waits on its sale's key).
        They are released when it is applied (a batch job: once, at its end,
        for all its events), so the handler need not wake them itself.
    """

    flow: str
    schema: dict
    handler: str
    sequence_key: object = None
    prerequisite: str | None = None
    skip_stale: bool = False
    max_attempts: int = 8
    failed_holds_key: bool = True
    description: str = ""
    batch_size: int = 1
    batch_key: object = None
    batch_with: str | None = None
    wakes: object = None

    def __post_init__(self):
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(
                f"Topic of flow {self.flow!r}: batch_size must be a whole number of at "
                f"least 1, not {self.batch_size!r}."
            )
        if self.batch_key is not None and not callable(self.batch_key):
            raise ValueError(
                f"Topic of flow {self.flow!r}: batch_key must be a function of the "
                f"payload, not {self.batch_key!r}."
            )
        if self.wakes is not None and not callable(self.wakes):
            raise ValueError(
                f"Topic of flow {self.flow!r}: wakes must be a function of the payload, "
                f"not {self.wakes!r}."
            )
        if self.batch_with is not None and self.batch_size == 1:
            raise ValueError(
                f"Topic of flow {self.flow!r}: batch_with needs a batch_size above 1 "
                "(with 1, each event has a job of its own)."
            )
        if self.batch_key is not None and self.batch_size == 1:
            raise ValueError(
                f"Topic of flow {self.flow!r}: a batch_key needs a batch_size above 1 "
                "(with 1, each event has a job of its own)."
            )

    @property
    def batched(self):
        """Whether one job applies several events of this topic."""
        return self.batch_size > 1

    def batch_topic(self, name):
        """The topic naming the key spaces the events of this one, declared as
        ``name``, are applied in (``batch_with``, else its own)."""
        return self.batch_with or name


@dataclass(frozen=True)
class OutboundTopic:
    """A change sent to the remote system, coalesced and batched.

    :param flow: code of the sync policy line governing it.
    :param sender: name of a backend method called as
        ``backend._sender(items)`` with up to ``batch_size`` outbound items; it
        returns ``{item_id: error message}`` for the items the remote refused
        (empty dict: all accepted). Transient failures raise
        ``RemoteRetryableError`` and the whole batch is retried.
    :param batch_size: most items in one remote call (the API's batch limit).
    :param window_seconds: how long changes are gathered before one send in
        real-time mode; changes to one key inside the window coalesce.
    One flush of a topic runs at a time per backend, batch after batch: a
    sender may look up what an earlier send made on the remote before
    creating (two sends side by side could both adopt one result).
    """

    flow: str
    sender: str
    batch_size: int = 100
    window_seconds: int = 2
    max_attempts: int = 8
    description: str = ""
