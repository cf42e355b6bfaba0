"""Database conflicts between concurrent transactions: which ones a retry
resolves, and keeping their expected occurrences out of the error log.

Odoo logs every failing statement as ``bad query`` at ERROR level. A
serialization failure or a unique-key clash between two jobs working on the
same customer is expected under concurrency and handled (the job is retried
with a fresh snapshot); inside :func:`expected_conflicts` such lines are logged
at INFO instead, for the current thread only, so that the error log keeps
meaning something.
"""

import contextlib
import logging
import threading

import psycopg2

# Resolved by running the transaction again, on a fresh snapshot.
PG_CONCURRENCY_ERRORS = (
    psycopg2.errors.SerializationFailure,
    psycopg2.errors.DeadlockDetected,
    psycopg2.errors.LockNotAvailable,
)
# Two transactions creating the same thing (a customer's binding): the
# retry finds what the other one created.
PG_RETRYABLE_ERRORS = (*PG_CONCURRENCY_ERRORS, psycopg2.errors.UniqueViolation)

_state = threading.local()


class _ExpectedConflictFilter(logging.Filter):
    """Logs ``bad query`` records of expected conflicts at INFO, in the
    threads that declared them expected."""

    def filter(self, record):
        if (
            getattr(_state, "depth", 0)
            and record.levelno >= logging.ERROR
            and isinstance(record.msg, str)
            and record.msg.startswith("bad query")
            and record.args
            and isinstance(record.args[-1], PG_RETRYABLE_ERRORS)
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_FILTER = _ExpectedConflictFilter()


@contextlib.contextmanager
def expected_conflicts():
    """Within this block, in this thread, the statements that fail with a
    conflict the caller retries are logged at INFO, not ERROR."""
    logger = logging.getLogger("odoo.sql_db")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
