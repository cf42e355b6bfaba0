"""R3, the mappers: property-based fuzzing of every inbound Shopify topic's
schema and mapper and of the GraphQL node mappers (``fuzz_mappers.run``).

It needs no server: it runs in the suite's own process, with the addons
imported from ``addons/`` (``fuzz_mappers.import_addons``) and realistic
bodies from a Shopify simulator of its own. Each target gets its fixed
hypothesis seed, so a run replays exactly.

Expected: every drawn input is refused by the schema or the mapper with a
message (``PayloadError`` / ``UserError``) or mapped to finite values; the
simulator's real bodies pass the schemas. A finding names its minimal
example.
"""

from . import fuzz_mappers
from .harness import ScenarioFailed

# Runs in this process: the server's log has nothing to do with it.
ALLOWED_LOG = ()
# A finding's minimal example can be kilobytes long: lines are cut there.
MESSAGE_WIDTH = 400


def run(stack):
    try:
        figures = fuzz_mappers.run(verbose=False)
    except AssertionError as exc:
        raise ScenarioFailed(_short(exc)) from exc
    return (
        f"{figures['examples']} examples on {len(figures['targets'])} targets in "
        f"{figures['seconds']:.0f} s: {figures['refused_by_schema']} refused by a schema, "
        f"{figures['refused_by_mapper']} by a mapper, {figures['mapped']} mapped; "
        f"{figures['findings']} findings"
        + (
            f" (through their schema only: {', '.join(figures['topics_without_pure_mapper'])})"
            if figures["topics_without_pure_mapper"]
            else ""
        )
    )


def _short(exc, width=MESSAGE_WIDTH):
    """The fuzzer's report, each line cut to ``width``: findings and their
    minimal examples stay readable in the suite's output."""
    return "\n".join(
        line if len(line) <= width else f"{line[:width]}... ({len(line)} chars)"
        for line in str(exc).splitlines()
    )
