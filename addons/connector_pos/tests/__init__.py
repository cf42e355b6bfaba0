from . import (
    test_catalog,
    test_closing,
    test_gaps,
    test_intake,
    test_pull,
    test_security,
    test_tickets,
)
