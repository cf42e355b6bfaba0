"""queue_job's job runner stopped while webhooks arrive: the health check
turns the backend red and raises one activity, then closes it.

The store's webhooks are registered (Register webhooks, through RPC), so
the backend starts healthy; admin is its responsible. The runner's stall
threshold is shortened to STALL_SECONDS (system parameter
``connector_base.health_runner_stall_minutes``; 10 minutes by default) and
the health check is run every CHECK_EVERY seconds (the scheduled action's
own code, ``ir.cron.method_direct_trigger``; every 5 minutes in production):
the scenario is production's timing, compressed.

Then queue_job's runner is stopped (``OdooServer.freeze_job_runner``: SIGSTOP
to its worker process, see there why) and ORDERS orders are placed in the
store, one every ORDER_EVERY seconds, each sent by Shopify's webhook to Odoo.

Expected: every webhook is answered and kept (an event received per order,
none processed); the check runs before the oldest job has waited
STALL_SECONDS report nothing; the first one after reports the backend
*failing* (its tile red) with one To Do activity "Queue jobs are not running"
for admin, within one check interval of the threshold; the following runs
(CHECK_RUNS_AFTER) add no other activity. The runner let go again: the
orders are imported, no job is left to run, the next check finds the
backend *OK* and marks the activity done ("Resolved" in the chatter).
"""

import collections
import time

from .harness import RpcError, ScenarioFailed, wait_idle, wait_until

ORDERS = 8
ORDER_EVERY = 3.0
STALL_SECONDS = 30
CHECK_EVERY = 10.0
# Check runs made after the failing one: still one activity.
CHECK_RUNS_AFTER = 3
# The clock of the check and ours, the job's eta rounded to the second.
SLACK = 3.0
DRAIN_TIMEOUT = 120
STALL_PARAMETER = "connector_base.health_runner_stall_minutes"
ALLOWED_LOG = ()


class Checks:
    """The health check, run by hand as its scheduled action runs it, and
    what each run left: health state and the runner's open activities."""

    def __init__(self, stack):
        self.stack = stack
        self.cron_id = stack.sql.value(
            "SELECT res_id FROM ir_model_data "
            "WHERE module = 'connector_base' AND name = 'cron_health_checks'"
        )
        self.runs = []  # (seconds since the first order's webhook, state, activity ids)

    def run(self, since=None):
        stack = self.stack

        def ran():
            try:
                return stack.rpc("ir.cron", "method_direct_trigger", [self.cron_id]) or True
            except RpcError as exc:
                # The cron worker is running it at this moment: asked again
                # a second later, for a minute at most. Any other refusal
                # fails the scenario with Odoo's message.
                if "already executing" in str(exc):
                    return False
                raise

        result = wait_until(
            ran, 60, interval=1, what="the health check ran (the cron worker held it)"
        )
        if isinstance(result, dict) and result.get("type") == "ir.actions.client":
            raise ScenarioFailed(f"the health check failed: {result}")
        state = stack.sql.value(
            "SELECT health_state FROM connector_backend WHERE id = %s", (stack.backend_id,)
        )
        activities = self.open_activities()
        if since is not None:
            self.runs.append((round(time.monotonic() - since, 1), state, activities))
        return state, activities

    def open_activities(self, code="runner"):
        return [
            row[0]
            for row in self.stack.sql(
                "SELECT id FROM mail_activity WHERE res_model = 'connector.backend' "
                "AND res_id = %s AND connector_health_check = %s AND active ORDER BY id",
                (self.stack.backend_id, code),
            )
        ]

    def figures(self):
        return ", ".join(f"{at:g}s:{state}/{len(ids)}" for at, state, ids in self.runs)


def _health_message(stack):
    return stack.sql.value(
        "SELECT health_message FROM connector_backend WHERE id = %s", (stack.backend_id,)
    )


def _place_orders(stack, checks, skus):
    """ORDERS orders placed while the runner is stopped, the check run every
    CHECK_EVERY seconds meanwhile and after, until the failing run and
    CHECK_RUNS_AFTER more. Returns the order ids."""
    order_ids = []
    first = None
    next_order = next_check = time.monotonic()
    deadline = (
        next_check + ORDERS * ORDER_EVERY + STALL_SECONDS + (CHECK_RUNS_AFTER + 3) * CHECK_EVERY
    )
    while time.monotonic() < deadline:
        now = time.monotonic()
        if len(order_ids) < ORDERS and now >= next_order:
            sku = skus[len(order_ids) % len(skus)]
            order = stack.shop.create_order([(sku, 1)])  # its webhook goes to Odoo
            order_ids.append(str(order["id"]))
            first = first or now
            next_order += ORDER_EVERY
        if first and now >= next_check:
            checks.run(since=first)
            next_check += CHECK_EVERY
            failing = [run for run in checks.runs if run[1] == "failing"]
            if len(failing) > CHECK_RUNS_AFTER:
                return order_ids
        time.sleep(0.2)
    raise ScenarioFailed(f"the backend did not stay failing: {checks.figures()}")


def _set_up(stack, checks, saved):
    """As an administrator would: admin responsible, the store's webhooks
    registered (it then sends to its subscriptions only), the stall
    threshold shortened. The backend must then be healthy: the history the
    wiring's backfill read, hours old, is not lag."""
    with stack.shop.lock:
        stack.shop.webhook_url = None
    stack.rpc("connector.backend", "write", [stack.backend_id], {"responsible_id": stack.rpc.uid})
    stack.rpc("connector.backend", "action_shopify_register_webhooks", [stack.backend_id])
    stack.rpc("ir.config_parameter", "set_param", STALL_PARAMETER, str(STALL_SECONDS / 60))
    state, activities = checks.run()
    if state != "ok" or activities:
        raise ScenarioFailed(
            f"the backend is {state} before the runner stops: {_health_message(stack)}"
        )


def _assert_red_once(stack, checks, figures):
    """The check runs while the runner is stopped: OK before the threshold,
    failing from the first run after it, one and the same activity for
    admin. Returns the activity's id."""
    # The oldest job (the dispatcher the first webhook woke) is due a second
    # after it; the check blames the runner STALL_SECONDS later.
    threshold = 1 + STALL_SECONDS
    if any(r[0] < threshold - SLACK and r[1] != "ok" for r in checks.runs):
        raise ScenarioFailed(f"failing before the threshold -- {figures}")
    failing = [r for r in checks.runs if r[1] == "failing"]
    first_failing = failing[0][0]
    if first_failing > threshold + CHECK_EVERY + SLACK:
        raise ScenarioFailed(
            f"failing {first_failing:g} s after the first webhook, more than one check "
            f"interval ({CHECK_EVERY:g} s) past the threshold ({threshold} s) -- {figures}"
        )
    if any(r[1] == "ok" for r in checks.runs if r[0] > first_failing):
        raise ScenarioFailed(f"the backend turned OK with the runner stopped -- {figures}")
    if len({tuple(r[2]) for r in failing}) != 1 or len(failing[0][2]) != 1:
        raise ScenarioFailed(f"not one and the same activity over the runs -- {figures}")
    activity_id = failing[0][2][0]
    health_activities = stack.sql.value(
        "SELECT count(*) FROM mail_activity WHERE res_model = 'connector.backend' "
        "AND res_id = %s AND connector_health_check IS NOT NULL AND active",
        (stack.backend_id,),
    )
    if health_activities != 1:
        raise ScenarioFailed(f"{health_activities} health activities open -- {figures}")
    user_id, summary = stack.sql(
        "SELECT user_id, summary FROM mail_activity WHERE id = %s", (activity_id,)
    )[0]
    if user_id != stack.rpc.uid or summary != "Connector health: Queue jobs are not running":
        raise ScenarioFailed(f"activity for user {user_id}: {summary!r} -- {figures}")
    if "queue_job runner" not in (_health_message(stack) or ""):
        raise ScenarioFailed(f"health message: {_health_message(stack)!r} -- {figures}")
    return activity_id


def _assert_recovered(stack, checks, order_ids, activity_id, figures):
    """The runner back: the orders imported, nothing left to run, the next
    check OK and the activity done with its note. Returns the figures."""
    thawed = time.monotonic()

    def imported():
        return (
            stack.sql.value(
                "SELECT count(*) FROM shopify_order_binding WHERE backend_id = %s "
                "AND external_id IN %s",
                (stack.backend_id, tuple(order_ids)),
            )
            == ORDERS
        )

    wait_until(imported, DRAIN_TIMEOUT, interval=1, what=f"{ORDERS} orders imported")
    wait_idle(stack, timeout=DRAIN_TIMEOUT)
    drained = time.monotonic() - thawed
    state, activities = checks.run()
    resolved = stack.sql.value(
        "SELECT count(*) FROM mail_message WHERE model = 'connector.backend' "
        "AND res_id = %s AND body::text LIKE %s",
        (stack.backend_id, "%Resolved%"),
    )
    still_open = stack.sql.value("SELECT active FROM mail_activity WHERE id = %s", (activity_id,))
    figures += f"; drained in {drained:.0f} s; then {state}, activity open {still_open}"
    if state != "ok" or activities or still_open:
        raise ScenarioFailed(
            f"not healthy once the runner is back ({_health_message(stack)}) -- {figures}"
        )
    if not resolved:
        raise ScenarioFailed(f"no Resolved note in the backend's chatter -- {figures}")
    return figures


def run(stack):
    wait_idle(stack)
    checks = Checks(stack)
    saved = {"url": stack.shop.webhook_url}
    try:
        _set_up(stack, checks, saved)
        pids = stack.server.freeze_job_runner()
        # To the second, as Odoo stores the times compared with it.
        frozen_at = stack.sql.value("SELECT date_trunc('second', now() AT TIME ZONE 'utc')")
        delivered_before = len(stack.shop.webhooks.log())
        order_ids = _place_orders(stack, checks, stack.bound_skus())
        stack.shop.wait_webhooks(timeout=30)
        deliveries = collections.Counter(
            (entry["topic"], entry.get("status") or entry.get("error"))
            for entry in stack.shop.webhooks.log()[delivered_before:]
        )
        received = dict(
            stack.sql(
                "SELECT state, count(*) FROM connector_event WHERE backend_id = %s "
                "AND topic = 'orders/create' AND received_at >= %s GROUP BY state",
                (stack.backend_id, frozen_at),
            )
        )
        # Of the jobs the webhooks queued (one started just before the stop,
        # in the same second, is not the runner's doing while stopped).
        started = stack.sql.value(
            "SELECT count(*) FROM queue_job WHERE date_created >= %s AND date_started IS NOT NULL",
            (frozen_at,),
        )
        figures = (
            f"runner {pids} stopped; webhooks {dict(deliveries)}; "
            f"events meanwhile {received}; jobs started {started}; "
            f"checks (s after the first webhook: state/activities) {checks.figures()}"
        )
        if received != {"received": ORDERS}:
            raise ScenarioFailed(f"not every webhook kept unprocessed -- {figures}")
        if started:
            raise ScenarioFailed(f"jobs started with the runner stopped -- {figures}")
        activity_id = _assert_red_once(stack, checks, figures)
        stack.server.thaw_job_runner()
        return _assert_recovered(stack, checks, order_ids, activity_id, figures)
    finally:
        stack.server.thaw_job_runner()
        with stack.shop.lock:
            stack.shop.store.webhook_subscriptions.clear()
            stack.shop.webhook_url = saved["url"]
        stack.rpc("ir.config_parameter", "set_param", STALL_PARAMETER, False)
