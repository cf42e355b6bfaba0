"""Test helpers every connector's tests share."""

import contextlib
from unittest import mock

from odoo.addons.queue_job.tests.common import trap_jobs as queue_job_trap_jobs


def perform_trapped_jobs(env, trap):
    """Perform the jobs ``trap`` holds, in the test's transaction.

    The framework queues jobs from short transactions of its own (a send's,
    a check after commit), whose cursors are closed by the time the test runs
    the jobs; the job runner would load each in a new transaction: here, the
    test's.
    """
    for job in trap.enqueued_jobs:
        if job.env.cr is not env.cr:
            job.recordset = job.recordset.with_env(job.env(cr=env.cr))
    trap.perform_enqueued_jobs()


def run_trapped_jobs(env, trap, rounds=50):
    """Perform trapped jobs, and the jobs they queue, until none is left."""
    for _ in range(rounds):
        if not trap.enqueued_jobs:
            return
        perform_trapped_jobs(env, trap)
    raise AssertionError(f"jobs still queued after {rounds} rounds")


@contextlib.contextmanager
def trap_jobs():
    """queue_job's ``trap_jobs``, except that a job it leaves out because one
    with the same identity key is already trapped is not stored in the
    database either (queue_job's trap stores it, and the real job then hides
    from the identity checks of what follows, as a job waiting forever)."""
    with queue_job_trap_jobs() as trap:
        add_job = trap._add_job

        def add_job_or_drop_it(*args, **kwargs):
            job = add_job(*args, **kwargs)
            if job not in trap.enqueued_jobs:
                patcher = mock.patch.object(job, "store")
                trap._store_patchers.append(patcher)
                patcher.start()
            return job

        trap.job_mock.side_effect = add_job_or_drop_it
        yield trap
