"""Run simulators from the command line until Ctrl-C.

    python3 -m simulators shopify --port 0 --seed 42 \\
        --webhook-url http://127.0.0.1:8069/connector_shopify/webhook
    python3 -m simulators all           # the four, each on its own port

Prints each simulator's URL (and, for Shopify, its GraphQL endpoint, access
token and webhook secret), then serves.
"""

import argparse
import contextlib
import signal
import sys
import threading

from . import SIMULATORS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m simulators", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("simulator", choices=[*SIMULATORS, "all"])
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="port on 127.0.0.1 (0: any free one; with 'all', the first)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--webhook-url", help="where webhooks go (none when unset)")
    parser.add_argument("--webhook-secret", help="key of the webhook signatures")
    parser.add_argument("--access-token", help="Shopify: the token clients must send")
    parser.add_argument("--orders", type=int, help="Shopify: orders to seed")
    parser.add_argument("--products", type=int, help="Shopify: products to seed")
    parser.add_argument("--push-url", help="POS: Odoo's base URL the stores push their tickets to")
    parser.add_argument(
        "--clock-rate",
        type=float,
        help="3PL: warehouse hours that pass each real second (none: only on request)",
    )
    return parser.parse_args(argv)


def build(name, args, port):
    options = {"seed": args.seed, "port": port}
    if args.webhook_url:
        options["webhook_url"] = args.webhook_url
    if args.webhook_secret:
        options["webhook_secret"] = args.webhook_secret
    if name == "shopify":
        for key in ("access_token", "orders", "products"):
            if getattr(args, key) is not None:
                options[key] = getattr(args, key)
    if name == "3pl" and args.clock_rate:
        options["clock_rate"] = args.clock_rate
    if name == "pos" and args.push_url:
        options["push_url"] = args.push_url
    return SIMULATORS[name](**options)


def describe(simulator):
    lines = [f"{simulator.name:8} {simulator.url}   (control: {simulator.url}/_sim/state)"]
    if simulator.name == "shopify":
        lines.append(f"{'':8} GraphQL {simulator.graphql_url}")
        lines.append(
            f"{'':8} access token {simulator.access_token}   webhook secret "
            f"{simulator.webhooks.secret}"
        )
    if simulator.name == "pos":
        stores = ", ".join(simulator.fleet.stores)
        lines.append(
            f"{'':8} fleet {simulator.fleet.code} ({stores}), pushes to "
            f"{simulator.push_url or '(no push URL: set it with the push.url event)'}"
        )
        lines.append(f"{'':8} legacy API {simulator.legacy_url}   token {simulator.access_token}")
        # Where Odoo sends a push-mode fleet's products and quantities.
        lines.append(f"{'':8} vendor API {simulator.api_url}   token {simulator.api_token}")
    if simulator.name == "3pl":
        lines.append(
            f"{'':8} API {simulator.api_url}   token {simulator.access_token}   "
            f"webhook secret {simulator.webhooks.secret}"
        )
    if simulator.name == "finance":
        lines.append(
            f"{'':8} API {simulator.api_url}   token {simulator.access_token}   "
            f"tenant {simulator.tenant_id}"
        )
        lines.append(
            f"{'':8} settlement reports {simulator.report_url}/   API key "
            f"{simulator.report_api_key}"
        )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    names = list(SIMULATORS) if args.simulator == "all" else [args.simulator]
    simulators = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        for index, name in enumerate(names):
            port = args.port + index if args.port else 0
            simulators.append(build(name, args, port).start())
        lines = [describe(simulator) for simulator in simulators]
        sys.stdout.write("\n".join([*lines, "Ctrl-C stops.", ""]))
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    finally:
        for simulator in simulators:
            simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
