from . import test_backend, test_release, test_returns, test_shipment, test_stock_snapshot, test_ui
