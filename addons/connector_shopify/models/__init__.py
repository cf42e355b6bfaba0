from . import (
    sale_order,
    shopify_backend,
    shopify_bindings,
    shopify_catalog,
    shopify_fulfillment,
    shopify_location,
    shopify_order_import,
    shopify_payment_method,
    shopify_payout,
    shopify_refund_import,
    shopify_stock,
    shopify_webhook,
)
