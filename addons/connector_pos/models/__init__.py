from . import (
    connector_pos_batch,
    connector_pos_store,
    connector_pos_tax,
    connector_pos_tender,
    pos_backend,
    pos_order,
    pos_session,
    pos_ticket_import,
)
