from . import test_mapper_order, test_order_import, test_webhook
