from . import test_intake, test_tickets
