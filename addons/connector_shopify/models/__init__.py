from . import shopify_backend
from . import shopify_location
from . import shopify_bindings
from . import shopify_order_import
from . import sale_order
