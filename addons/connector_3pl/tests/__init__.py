from . import test_backend, test_release, test_shipment
