from . import (
    connector_backend,
    connector_binding_mixin,
    connector_event,
    connector_outbound,
    connector_sync_policy,
)
