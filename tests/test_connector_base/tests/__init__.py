from . import (
    test_access_actions,
    test_backend,
    test_connector_user,
    test_health,
    test_housekeeping,
    test_http_client,
    test_inbox,
    test_metrics,
    test_outbox,
    test_security,
    test_webhook,
    test_webhook_cost,
)
