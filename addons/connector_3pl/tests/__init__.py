from . import test_backend, test_release, test_shipment, test_stock_snapshot
