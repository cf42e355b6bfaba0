from . import test_components, test_security
