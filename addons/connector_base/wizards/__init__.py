from . import (
    connector_correlation,
    connector_correlation_line,
    connector_event_edit,
    connector_event_ignore,
    connector_event_replay,
    connector_reconciliation_wizard,
)
