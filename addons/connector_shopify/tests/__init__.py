from . import test_mapper_order
