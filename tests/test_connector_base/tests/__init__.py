from . import (
    test_backend,
    test_housekeeping,
    test_http_client,
    test_inbox,
    test_outbox,
    test_security,
    test_webhook,
)
