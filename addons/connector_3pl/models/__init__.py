from . import (
    stock_picking,
    tpl_backend,
    tpl_carrier,
    tpl_delivery_binding,
    tpl_parcel,
    tpl_release,
    tpl_shipment,
    tpl_stock_snapshot,
)

# isort: split
# After tpl_shipment: the returns' webhook keys are set over the shipments' own.
from . import tpl_return
