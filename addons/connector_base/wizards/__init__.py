from . import connector_event_ignore
from . import connector_event_edit
from . import connector_event_replay
