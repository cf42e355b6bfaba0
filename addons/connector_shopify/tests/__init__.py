from . import (
    test_backfill,
    test_catalog_out,
    test_end_to_end,
    test_fulfillment,
    test_mapper_order,
    test_mapper_refund,
    test_order_import,
    test_payouts,
    test_refund,
    test_stock_out,
    test_webhook,
    test_webhook_registration,
)
