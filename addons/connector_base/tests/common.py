"""Test helpers every connector's tests share."""


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
