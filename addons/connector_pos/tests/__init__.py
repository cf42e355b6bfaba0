from . import test_intake, test_security, test_tickets
