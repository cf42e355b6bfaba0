from . import test_product_family
