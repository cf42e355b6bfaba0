from . import (
    test_finance_month,
    test_finance_pos,
    test_finance_pos_export,
    test_finance_shopify,
    test_module_descriptions,
    test_product_family,
    test_shopify_3pl,
    test_simulator_base,
    test_simulator_pos,
    test_simulator_shopify,
)
