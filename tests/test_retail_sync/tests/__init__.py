from . import (
    test_module_descriptions,
    test_product_family,
    test_simulator_base,
    test_simulator_pos,
    test_simulator_shopify,
)
