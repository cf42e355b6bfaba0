from . import test_mapper_order, test_order_import, test_stock_out, test_webhook
