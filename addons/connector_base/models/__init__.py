from . import connector_backend
from . import connector_sync_policy
from . import connector_binding_mixin
from . import connector_event
from . import connector_outbound
