"""R3, the webhook endpoint: hypothesis posts bad webhooks to the running
server (``fuzz_webhook.run``): signed bodies mutated field by field, drawn
from the topics' schemas or arbitrary JSON, under declared and unknown
topics; headers missing, empty or junk; unsigned and wrongly signed bodies;
bodies that are not JSON, too deep or over the size limit.

Their ids and SKUs are the fuzzer's own (far above the store's), so no
fuzzed webhook touches what another scenario counts.

Expected: every answer 200, 400, 401 or 413 as the request deserves, never
a 5xx; each delivery answered 200 stored and no refused one; once
processed, none left pending, a failed one failed with a clear message of
kind validation, business or configuration; no queue job failed.
"""

from . import fuzz_webhook
from .harness import ScenarioFailed

# Processing them is bounded: stored events settle well within this.
WAIT_SECONDS = 120
# Bad webhooks are refused or recorded on their event, logged at INFO.
ALLOWED_LOG = ()
# A finding's minimal example can be kilobytes long: lines are cut there.
MESSAGE_WIDTH = 400


def run(stack):
    try:
        figures = fuzz_webhook.run(
            stack.server.url,
            stack.shop.shop_domain,
            stack.shop.webhooks.secret,
            stack.sql,
            wait_seconds=WAIT_SECONDS,
            verbose=False,
        )
    except AssertionError as exc:
        raise ScenarioFailed(_short(exc)) from exc
    statuses = ", ".join(f"{status}x{count}" for status, count in figures["statuses"].items())
    events = ", ".join(f"{state} {count}" for state, count in figures["events"].items())
    return (
        f"{figures['requests']} requests in {figures['seconds_sending']:.0f} s "
        f"({', '.join(f'{name} {count}' for name, count in figures['by_family'].items())}): "
        f"HTTP {statuses}; events {events}; {figures['findings']} findings "
        f"[{figures['seconds']:.0f} s in all]"
    )


def _short(exc, width=MESSAGE_WIDTH):
    """The fuzzer's report, each line cut to ``width``: findings and their
    minimal examples stay readable in the suite's output."""
    return "\n".join(
        line if len(line) <= width else f"{line[:width]}... ({len(line)} chars)"
        for line in str(exc).splitlines()
    )
