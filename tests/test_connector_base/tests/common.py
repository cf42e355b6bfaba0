from odoo.tests import TransactionCase

from odoo.addons.connector_base.components.http_client import RemoteRetryableError
from odoo.addons.connector_base.tests.common import run_trapped_jobs, trap_jobs
from odoo.addons.queue_job.exception import RetryableJobError

from .fake_remote import FakeRemote

API_TOKEN = "tok-0123456789-secret"
WEBHOOK_SECRET = "whsec-abcdef-secret"


def start_remote_and_backend(test_class, **values):
    """A fake remote on 127.0.0.1, stopped with the class, and a running
    test backend talking to it."""
    remote = FakeRemote().start()
    test_class.addClassCleanup(remote.stop)
    backend = test_class.env["connector.backend"].create(
        {
            "name": "Test remote",
            "backend_type": "test",
            "base_url": remote.url,
            "api_token": API_TOKEN,
            "webhook_secret": WEBHOOK_SECRET,
            "state": "running",
            "circuit_threshold": 3,
            "circuit_cooldown": 60,
            **values,
        }
    )
    return remote, backend


class ConnectorCase(TransactionCase):
    """A running test backend talking to a fake remote on 127.0.0.1."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Retry and health bookkeeping use their own cursors; in test mode
        # those share this test's transaction.
        cls.registry_enter_test_mode_cls()
        cls.remote, cls.backend = start_remote_and_backend(cls)
        cls.Event = cls.env["connector.event"]
        cls.Binding = cls.env["test.partner.binding"]

    def setUp(self):
        super().setUp()
        self.remote.requests.clear()
        self.remote.scripts.clear()
        self.remote.down = False
        self.remote.refuse = set()
        self.remote.scores = {}

    def receive(self, topic, payload, key, occurred_at=None, backend=None):
        return self.Event._receive(
            backend or self.backend, topic, payload, key, occurred_at=occurred_at
        )

    def dispatch(self):
        """What the backend's dispatcher job does: received events get their jobs."""
        return self.Event._dispatch_received(self.backend.id)

    def run_jobs(self, trap):
        """Perform trapped jobs, and the jobs they enqueue, until none is left."""
        run_trapped_jobs(self.env, trap)

    def expect_error(self, run, error_class):
        """Run ``run`` that must raise ``error_class``; return the error.

        Not ``assertRaises``: Odoo wraps it in a savepoint that it rolls back,
        which would also undo the health bookkeeping under test (in production
        it is committed on its own cursor).
        """
        try:
            run()
        except error_class as error:
            return error
        self.fail(f"{error_class.__name__} was not raised")

    def expect_retry(self, run):
        """Run a job that must ask queue_job for a retry; return the retry.

        Not ``assertRaises``: Odoo wraps it in a savepoint that it rolls back,
        which would also undo the retry bookkeeping under test.
        """
        try:
            run()
        except RetryableJobError as retry:
            return retry
        self.fail("the job did not ask for a retry")

    def ping(self):
        return self.backend._test_client().get("/ping")

    def open_circuit(self, count=3):
        """The remote is down: ``count`` calls fail (3 open the circuit here).

        Direct calls, outside any job: under test, a job's rollback also
        undoes the breaker's own transaction (in production it is separate).
        """
        self.remote.down = True
        for _ in range(count):
            self.expect_error(self.ping, RemoteRetryableError)

    def partners(self, remote_id):
        return self.Binding._find(self.backend, remote_id).odoo_id


__all__ = ["API_TOKEN", "WEBHOOK_SECRET", "ConnectorCase", "start_remote_and_backend", "trap_jobs"]
