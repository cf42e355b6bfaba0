from . import (
    connector_backend,
    connector_binding_mixin,
    connector_event,
    connector_event_processing,
    connector_event_support,
    connector_health,
    connector_housekeeping,
    connector_identity,
    connector_metrics,
    connector_outbound,
    connector_sync_policy,
    connector_webhook_rejection,
)
