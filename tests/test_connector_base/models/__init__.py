from . import test_backend, test_partner_binding, test_ticket
