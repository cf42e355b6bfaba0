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

# isort: split
# They extend the models above (the store, the fleet's topics and ticket
# handler): loaded after them.
from . import (
    connector_pos_catalog,
    connector_pos_closing,
    connector_pos_closing_audit,
    connector_pos_gap,
    connector_pos_product,
    connector_pos_stock,
    pos_pull,
    product_pricelist_item,
)
