"""R3, the mappers: property-based fuzzing of every inbound Shopify topic and
of the GraphQL node mappers, in a plain Python process (no server, no database).

For each inbound topic the backend declares (``_connector_topics``) and for each
mapper of remote data (GraphQL order, refund, payout and balance transaction
nodes, catalog ``userErrors``), hypothesis draws inputs of these kinds:

- realistic bodies built by the Shopify simulator, mutated field by field
  (keys dropped, nulls, wrong types, numbers as strings and strings as numbers,
  huge, negative and non-finite numbers, unicode, empty or deep junk);
- documents drawn from the topic's cerberus schema itself: every value of the
  declared type, the regex and bounds respected, so they reach the mapper;
- arbitrary JSON, and objects of the keys the mappers read with arbitrary
  values in them.

The property is the processing job's: ``validate_payload`` either raises
``PayloadError`` or returns a document, and the mapper then either returns
values or raises ``PayloadError`` / ``UserError`` with a message. Anything
else (``KeyError``, ``TypeError``, decimal errors...) is a finding, and so is
a mapped value that is not a finite number where Odoo expects one, a refund
split that does not add up, or a real body from the simulator that the
schema refuses.

:func:`run` returns the figures and raises ``AssertionError`` naming the
minimal falsifying example of each finding. Deterministic: every target has
its own fixed hypothesis seed and no example database.
"""

import ast
import copy
import datetime
import decimal
import json
import math
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from hypothesis import HealthCheck, Verbosity, given, seed, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
ADDONS_DIR = REPO / "addons"
TESTS_DIR = REPO / "tests"

# Inputs each target draws; the whole run stays well under two minutes.
DEFAULT_EXAMPLES = 400
SIMULATOR_SEED = 11
SIMULATOR_EPOCH = datetime.datetime(2026, 11, 2, 10, 0, 0)


def import_addons():
    """Make ``odoo.addons.connector_shopify`` importable outside an Odoo server.

    ``odoo.addons`` is a namespace package whose path Odoo extends from its
    ``addons_path`` option when a server or a shell starts; a plain process
    does the same here with the repository's ``addons/``. ``tests/`` goes on
    ``sys.path`` for the simulators.
    """
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    import odoo.addons  # noqa: PLC0415

    if str(ADDONS_DIR) not in list(odoo.addons.__path__):
        from odoo.modules import module  # noqa: PLC0415
        from odoo.tools import config  # noqa: PLC0415

        paths = list(config["addons_path"] or [])
        if str(ADDONS_DIR) not in paths:
            config["addons_path"] = [*paths, str(ADDONS_DIR)]
        module.initialize_sys_path()
    import odoo.addons.connector_shopify  # noqa: PLC0415


# --- what is fuzzed ---------------------------------------------------------------


class Finding(Exception):
    """A mapper or schema broke the property; carries what to report."""

    def __init__(self, what, case):
        self.what = what
        self.case = case
        super().__init__(what)


@dataclass
class Case:
    """One drawn input and how it was made (for the report)."""

    body: object
    how: list = field(default_factory=list)

    def __repr__(self):
        return f"Case(how={self.how!r}, body={_compact(self.body)})"


@dataclass
class Target:
    """One thing to fuzz: a schema (or None) and the mapper applied after it."""

    name: str
    schema: dict | None
    mapper: object
    samples: list
    sequence_key: object = None
    # Drawn from when there is no schema to validate with: the node's own schema.
    shape: dict | None = None
    figures: dict = field(
        default_factory=lambda: {
            "examples": 0,
            "refused_by_schema": 0,
            "mapped": 0,
            "refused_by_mapper": 0,
            "findings": 0,
        }
    )


def _compact(value, limit=4000):
    text = json.dumps(value, default=repr, ensure_ascii=True, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


# --- realistic bodies from the simulator --------------------------------------------


def realistic_samples():
    """Webhook bodies per topic and GraphQL nodes per query, from a seeded store.

    The simulator builds them as Shopify would (its ``webhooks`` module for
    the REST-shaped bodies, its GraphQL executor for the nodes); nothing is
    served over HTTP.
    """
    from simulators import ShopifySimulator  # noqa: PLC0415
    from simulators.shopify.webhooks import PAYLOADS  # noqa: PLC0415

    from odoo.addons.connector_shopify.components import (  # noqa: PLC0415
        mapper_order,
        mapper_payout,
        mapper_refund,
    )

    sim = ShopifySimulator(
        seed=SIMULATOR_SEED, epoch=SIMULATOR_EPOCH, products=8, customers=6, orders=10
    )
    store = sim.store
    orders = list(store.orders.values())
    # More refunds than the seed makes: partial, with shipping, without restock.
    paid = [o for o in orders if o["displayFinancialStatus"] == "PAID"]
    for index, order in enumerate(paid[:4]):
        line = order["_line_items"][0]
        store.create_refund(
            order["id"],
            {line["id"]: 1},
            restock=bool(index % 2),
            shipping=index == 0,
            note=None if index % 2 else "Trop petit — échange",
            emit=False,
        )
    store.cancel_order(paid[-1]["id"], emit=False)

    def plain(value):
        return json.loads(json.dumps(value, default=str))

    def query(text, variables):
        prepared = sim.executor.prepare(text, variables)
        data, errors, _cost = sim.executor.execute(prepared, store)
        if errors:
            raise RuntimeError(f"simulator query failed: {errors}")
        return plain(data)

    webhooks = {
        "orders/create": [plain(PAYLOADS["orders/create"](store, o)) for o in orders],
        "orders/updated": [plain(PAYLOADS["orders/updated"](store, o)) for o in orders[:4]],
        "orders/cancelled": [
            plain(PAYLOADS["orders/cancelled"](store, o)) for o in orders if o["cancelledAt"]
        ],
        "refunds/create": [
            plain(PAYLOADS["refunds/create"](store, r)) for r in store.refunds.values()
        ],
    }
    since = "updated_at:>='2000-01-01T00:00:00Z'"
    order_nodes = []
    after = None
    while True:
        page = query(mapper_order.ORDERS_QUERY, {"after": after, "query": since})["orders"]
        order_nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    refund_nodes = [
        query(mapper_refund.REFUND_QUERY, {"id": refund_id})["refund"]
        for refund_id in store.refunds
    ]
    payouts = query(
        mapper_payout.PAYOUTS_QUERY,
        {"first": 50, "after": None, "query": mapper_payout.payouts_search("2000-01-01")},
    )["shopifyPaymentsAccount"]["payouts"]
    payout_nodes = [edge["node"] for edge in payouts["edges"]]
    transaction_nodes = []
    for payout in payout_nodes[:4]:
        transactions = query(
            mapper_payout.TRANSACTIONS_QUERY,
            {
                "first": 100,
                "after": None,
                "query": mapper_payout.transactions_search(payout["legacyResourceId"]),
            },
        )["shopifyPaymentsAccount"]["balanceTransactions"]
        transaction_nodes += [edge["node"] for edge in transactions["edges"]]
    graphql = {
        "order": order_nodes,
        "refund": refund_nodes,
        "payout": payout_nodes,
        "balance_transaction": transaction_nodes,
        # What productVariantsBulkCreate/Update answer in userErrors.
        "user_error": [
            {"field": ["variants", "0", "price"], "message": "Price must be >= 0", "code": "X"},
            {"field": ["productId"], "message": "Product does not exist", "code": "NOT_FOUND"},
            {"field": None, "message": "Throttled"},
        ],
    }
    return webhooks, graphql


# --- strategies -----------------------------------------------------------------------

NASTY_STRINGS = [
    "",
    " ",
    "0",
    "-0",
    "00.00",
    "12.5",
    "-12.50",
    "1e309",
    "1E+2",
    "NaN",
    "-Infinity",
    "0x1F",
    "1_000",
    "١٢٣.٤٥",  # Arabic-Indic digits: \d matches them
    "²",  # a digit to str.isdigit, not to int()
    "12.50\n",
    "9" * 40,
    "-" + "9" * 60 + ".999",
    "0." + "0" * 40 + "1",
    "null",
    "true",
    "gid://shopify/Order/",
    "gid://shopify/Order/abc",
    "gid://shopify/Order/-1",
    "gid://shopify/Order/12/34",
    "\u202eRTL\u202c",
    "\x00",
    "\ud800",
    "😀" * 50,
    "Ω" * 500,
]
NASTY_NUMBERS = [
    0,
    -1,
    1,
    2**31,
    2**63,
    -(2**63),
    10**30,
    -(10**40),
    0.1,
    -0.0,
    1e308,
    5e-324,
    math.inf,
    -math.inf,
    math.nan,
]


def _scalars():
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=20),
        st.sampled_from(NASTY_STRINGS),
        st.sampled_from(NASTY_NUMBERS),
    )


def json_values(keys=()):
    """Arbitrary JSON as Python's ``json`` reads it (NaN and Infinity included)."""
    key = st.text(max_size=10)
    if keys:
        key = st.one_of(key, st.sampled_from(sorted(keys)))
    return st.recursive(
        _scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(key, children, max_size=5),
        ),
        max_leaves=25,
    )


@st.composite
def deep_junk(draw):
    depth = draw(st.integers(20, 300))
    value = draw(_scalars())
    wrap_in_list = draw(st.booleans())
    for _ in range(depth):
        value = [value] if wrap_in_list else {"a": value}
    return value


def _paths(value, prefix=()):
    """Every path (keys and indexes) into a JSON value, the root left out."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        path = (*prefix, key)
        yield path
        yield from _paths(child, path)


def _retyped(value):
    """The same value in the type Shopify did not send: numbers as strings and back."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
        try:
            return float(value)
        except ValueError:
            return len(value)
    if isinstance(value, list):
        return dict(enumerate(value))
    if isinstance(value, dict):
        return list(value.values())
    return "null"


def _huge(value):
    if isinstance(value, str):
        return "9" * 400 + ".99" if value[:1].isdigit() else value * 200 + "9" * 30
    if isinstance(value, list):
        return (value * 60)[:300] or [None] * 300
    return 10**400 if not isinstance(value, float) else 1e308


def _negative(value):
    if isinstance(value, str):
        return value[1:] if value.startswith("-") else "-" + value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return -value if value else -1
    return -1


MUTATIONS = ("drop", "null", "junk", "retype", "empty", "huge", "negative", "unicode", "deep")


@st.composite
def mutated(draw, samples, keys):
    """A realistic body with one to four fields broken."""
    index = draw(st.integers(0, len(samples) - 1))
    body = copy.deepcopy(samples[index])
    how = [f"sample {index}"]
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(body))
        if not paths:
            break
        # Mostly the fields the schema or the mapper read, sometimes any.
        read = [path for path in paths if path[-1] in keys]
        pool = read if read and draw(st.integers(0, 3)) else paths
        path = pool[draw(st.integers(0, len(pool) - 1))]
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        old = parent[last]
        kind = draw(st.sampled_from(MUTATIONS))
        if kind == "drop":
            del parent[last]
        elif kind == "null":
            parent[last] = None
        elif kind == "junk":
            parent[last] = draw(json_values(keys))
        elif kind == "retype":
            parent[last] = _retyped(old)
        elif kind == "empty":
            parent[last] = draw(st.sampled_from(["", [], {}, 0]))
        elif kind == "huge":
            parent[last] = _huge(old)
        elif kind == "negative":
            parent[last] = _negative(old)
        elif kind == "unicode":
            parent[last] = draw(st.text(st.characters(codec="utf-8"), min_size=1, max_size=30))
        else:
            parent[last] = draw(deep_junk())
        how.append(f"{kind} {'.'.join(map(str, path))}")
    return Case(body, how)


def from_schema(schema, keys):
    """Documents valid for a cerberus mapping schema, drawn to its edges."""
    required = {
        name: from_rule(rule, keys) for name, rule in schema.items() if rule.get("required")
    }
    optional = {
        name: from_rule(rule, keys) for name, rule in schema.items() if not rule.get("required")
    }
    return st.fixed_dictionaries(required, optional=optional)


def from_rule(rule, keys):
    kind = rule.get("type")
    if "allowed" in rule:
        strategy = st.sampled_from(list(rule["allowed"]))
    elif kind == "string":
        strategy = st.from_regex(rule["regex"], fullmatch=True) if "regex" in rule else st.text()
    elif kind == "integer":
        strategy = st.integers(min_value=rule.get("min"), max_value=rule.get("max"))
    elif kind == "number":
        strategy = st.one_of(
            st.integers(min_value=rule.get("min"), max_value=rule.get("max")),
            st.floats(min_value=rule.get("min"), max_value=rule.get("max")),
        )
    elif kind == "boolean":
        strategy = st.booleans()
    elif kind == "dict":
        strategy = (
            from_schema(rule["schema"], keys)
            if "schema" in rule
            # An open dict: the keys the mapper reads, with anything in them.
            else st.dictionaries(st.sampled_from(sorted(keys)), json_values(keys), max_size=8)
        )
    elif kind == "list":
        strategy = st.lists(
            from_rule(rule["schema"], keys) if "schema" in rule else json_values(keys),
            min_size=rule.get("minlength", 0),
            max_size=max(rule.get("minlength", 0), 4),
        )
    else:
        strategy = json_values(keys)
    if rule.get("nullable"):
        strategy = st.one_of(st.none(), strategy)
    return strategy


def cases(target, keys):
    """What a target is fed: mutated samples, schema-valid documents, arbitrary JSON."""
    strategies = []
    if target.samples:
        strategies.append(mutated(target.samples, keys))
    shape = target.schema or target.shape
    if shape:
        strategies.append(from_schema(shape, keys).map(lambda d: Case(d, ["schema"])))
    strategies.append(json_values(keys).map(lambda v: Case(v, ["arbitrary JSON"])))
    strategies.append(
        st.dictionaries(st.sampled_from(sorted(keys)), json_values(keys), max_size=10).map(
            lambda d: Case(d, ["known keys, arbitrary values"])
        )
    )
    return st.one_of(strategies)


def keys_read(*modules):
    """The names the mappers read: string subscripts and ``.get("...")`` arguments,
    and every key of the schemas they declare."""
    names = set()
    for module in modules:
        tree = ast.parse(Path(module.__file__).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                value = node.slice.value
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                value = node.args[0].value
            elif isinstance(node, ast.Dict):
                # Schema declarations: {"field": {"type": ...}}
                for key, rule in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and isinstance(rule, ast.Dict | ast.Name):
                        names.add(key.value)
                continue
            else:
                continue
            if isinstance(value, str):
                names.add(value)
    return {name for name in names if isinstance(name, str)}


# --- properties ------------------------------------------------------------------------


def _non_finite(value, path="values"):
    """The path of the first number in ``value`` that is not finite, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path} = {value!r}"
    if isinstance(value, decimal.Decimal) and not value.is_finite():
        return f"{path} = {value!r}"
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)  # what a Float field of Odoo does with it
        except OverflowError:
            return f"{path} = an integer of {len(str(value))} digits"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, child in items:
        found = _non_finite(child, f"{path}.{key}")
        if found:
            return found
    return None


def _check_sequence_key(target, case, document=None):
    """The intake computes the sequence key of the raw payload and catches
    KeyError, TypeError and ValueError (anything else would be an HTTP 500);
    the key of a valid payload is a string."""
    if document is None:
        try:
            target.sequence_key(case.body)
        except (KeyError, TypeError, ValueError):
            pass
        except Exception as exc:
            raise Finding(f"sequence key of the raw payload raised {exc!r}", case) from exc
        return
    try:
        key = target.sequence_key(document)
    except Exception as exc:
        raise Finding(f"sequence key of a valid payload raised {exc!r}", case) from exc
    if not isinstance(key, str):
        raise Finding(f"sequence key of a valid payload is {key!r}", case)


def _validate(target, case):
    """The document the schema returns, or None when it refuses the body clearly."""
    from odoo.addons.connector_base.components.validation import (  # noqa: PLC0415
        PayloadError,
        validate_payload,
    )

    try:
        return validate_payload(target.schema, case.body)
    except PayloadError as exc:
        if not exc.problems or not all(isinstance(p, str) and p for p in exc.problems):
            raise Finding(f"PayloadError without a clear message: {exc!r}", case) from exc
        return None
    except Exception as exc:
        raise Finding(f"schema validation raised {exc!r}", case) from exc


def check(target, case, allowed, figures):
    """Apply the target to one input; count the outcome in ``figures`` or raise
    :class:`Finding`."""
    figures["examples"] += 1
    if target.sequence_key and isinstance(case.body, dict):
        _check_sequence_key(target, case)
    document = case.body
    if target.schema is not None:
        document = _validate(target, case)
        if document is None:
            figures["refused_by_schema"] += 1
            return
        if target.sequence_key:
            _check_sequence_key(target, case, document)
    try:
        values = target.mapper(document)
    except allowed as exc:
        message = str(exc.args[0] if exc.args else "")
        if not message.strip():
            raise Finding(f"{type(exc).__name__} without a message", case) from exc
        figures["refused_by_mapper"] += 1
        return
    except Finding as exc:
        raise Finding(exc.what, case) from exc
    except Exception as exc:
        raise Finding(f"mapper raised {type(exc).__name__}: {exc}", case) from exc
    bad = _non_finite(values)
    if bad:
        raise Finding(f"mapper returned a number Odoo cannot store: {bad}", case)
    figures["mapped"] += 1


# --- the mappers as the handlers apply them ----------------------------------------------


def mapper_modules():
    """The Shopify connector's mappers of remote data."""
    from odoo.addons.connector_shopify.components import (  # noqa: PLC0415
        mapper_order,
        mapper_payout,
        mapper_product,
        mapper_refund,
    )

    return mapper_order, mapper_refund, mapper_payout, mapper_product


def inbound_topics():
    """The inbound topics a Shopify backend declares, by name: the declarations
    themselves (``_connector_topics``), not a copy that could drift."""
    from odoo.addons.connector_base.components.topics import InboundTopic  # noqa: PLC0415
    from odoo.addons.connector_shopify.models.shopify_backend import (  # noqa: PLC0415
        ConnectorBackend,
    )

    topics = ConnectorBackend._connector_topics(SimpleNamespace(backend_type="shopify"))
    return {name: topic for name, topic in topics.items() if isinstance(topic, InboundTopic)}


def topic_schemas():
    """The cerberus schema of each inbound Shopify topic."""
    return {name: topic.schema for name, topic in inbound_topics().items()}


def _targets(webhooks, graphql):
    from odoo.addons.connector_base.components.validation import (  # noqa: PLC0415
        PayloadError,
        validate_payload,
    )
    from odoo.addons.connector_shopify.components import (  # noqa: PLC0415
        mapper_order,
        mapper_payout,
        mapper_product,
        mapper_refund,
    )

    def refund(payload):
        values = mapper_refund.refund_values(payload)
        # The importer splits each refunded subtotal over the refunded units, in
        # the decimals of the order's currency (JPY 0, EUR 2, KWD 3).
        for line in values["lines"]:
            for digits in (0, 2, 3):
                parts = mapper_refund.split_amount(line["subtotal"], line["quantity"], digits)
                step = decimal.Decimal(1).scaleb(-digits)
                expected = decimal.Decimal(line["subtotal"]).quantize(step)
                if (
                    any(quantity <= 0 for quantity, _price in parts)
                    or sum(quantity for quantity, _price in parts) != line["quantity"]
                    or sum(quantity * price for quantity, price in parts) != expected
                ):
                    raise Finding(
                        f"split_amount({line['subtotal']!r}, {line['quantity']!r}, {digits}) "
                        f"gives {parts!r}",
                        Case(payload, ["refund split"]),
                    )
        return values

    def cancel(payload):
        # ``_shopify_cancel_order``: the order by id, the reason in its chatter.
        return {"external_id": str(payload["id"]), "reason": payload.get("cancel_reason")}

    handlers = {
        "_shopify_import_order": mapper_order.order_values,
        "_shopify_import_refund": refund,
        "_shopify_cancel_order": cancel,
    }
    targets, unmapped = [], []
    for name, topic in sorted(inbound_topics().items()):
        mapper = handlers.get(topic.handler)
        if mapper is None:
            unmapped.append(name)

            def mapper(payload):
                return payload

        targets.append(
            Target(
                name,
                topic.schema,
                mapper,
                webhooks.get(name, []),
                sequence_key=topic.sequence_key,
            )
        )

    def chained(from_graphql, schema, then):
        """A node mapped to the webhook shape must then pass the topic as a webhook does."""

        def apply(node):
            body = from_graphql(node)
            try:
                document = validate_payload(schema, body)
            except PayloadError:
                raise
            except Exception as exc:
                raise Finding(f"schema of the mapped node raised {exc!r}", Case(body)) from exc
            return then(document)

        return apply

    def user_error(error):
        return {"index": mapper_product.blamed_index(error)}

    targets += [
        Target(
            "graphql order",
            None,
            chained(
                mapper_order.order_from_graphql,
                mapper_order.ORDER_SCHEMA,
                handlers["_shopify_import_order"],
            ),
            graphql["order"],
            shape=mapper_order.ORDER_NODE_SCHEMA,
        ),
        Target(
            "graphql refund",
            None,
            chained(mapper_refund.refund_from_graphql, mapper_refund.REFUND_SCHEMA, refund),
            graphql["refund"],
            shape=mapper_refund.REFUND_NODE_SCHEMA,
        ),
        Target(
            "graphql payout",
            None,
            mapper_payout.payout_values,
            graphql["payout"],
            shape=mapper_payout.PAYOUT_NODE_SCHEMA,
        ),
        Target(
            "graphql balance transaction",
            None,
            mapper_payout.transaction_values,
            graphql["balance_transaction"],
            shape=mapper_payout.TRANSACTION_NODE_SCHEMA,
        ),
        Target("graphql catalog userError", None, user_error, graphql["user_error"]),
    ]
    keys = keys_read(*mapper_modules())
    return targets, unmapped, keys


def _samples_accepted(targets):
    """Every unmutated body of the simulator passes its schema and maps."""
    from odoo.addons.connector_base.components.validation import (  # noqa: PLC0415
        PayloadError,
        validate_payload,
    )

    problems = []
    for target in targets:
        for index, sample in enumerate(target.samples):
            try:
                document = validate_payload(target.schema, sample) if target.schema else sample
                target.mapper(document)
            except (PayloadError, Finding) as exc:
                problems.append(f"{target.name}: real sample {index} refused: {exc}")
            except Exception as exc:
                problems.append(f"{target.name}: real sample {index} raised {exc!r}")
    return problems


def _fuzz(target, keys, examples, allowed):
    """Run hypothesis on one target; the minimal falsifying Finding, or None."""
    counting = {"on": True}

    @seed(zlib.crc32(target.name.encode()))
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,  # the seed above fixes the run
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )
    @given(cases(target, keys))
    def property_holds(case):
        # Once a finding is made, hypothesis replays smaller inputs to shrink
        # it: those are not counted as examples.
        figures = target.figures if counting["on"] else dict.fromkeys(target.figures, 0)
        try:
            check(target, case, allowed, figures)
        except Finding:
            counting["on"] = False
            raise

    try:
        property_holds()
    except Finding as finding:
        target.figures["findings"] += 1
        return finding
    return None


def run(examples=DEFAULT_EXAMPLES, verbose=True):
    """Fuzz every inbound topic and GraphQL mapper; return the figures.

    Raises AssertionError listing each finding with its minimal example.
    """
    started = time.monotonic()
    import_addons()
    from odoo.exceptions import UserError  # noqa: PLC0415

    from odoo.addons.connector_base.components.validation import (  # noqa: PLC0415
        PayloadError,
    )

    allowed = (PayloadError, UserError)
    webhooks, graphql = realistic_samples()
    targets, unmapped, keys = _targets(webhooks, graphql)
    findings = [f"real bodies: {problem}" for problem in _samples_accepted(targets)]
    for target in targets:
        target_started = time.monotonic()
        finding = _fuzz(target, keys, examples, allowed)
        target.figures["seconds"] = round(time.monotonic() - target_started, 1)
        if finding:
            findings.append(f"{target.name}: {finding.what}\n    minimal example: {finding.case!r}")
        if verbose:
            print(f"  {target.name:32} {_figures_line(target.figures)}", flush=True)
    totals = {
        key: sum(target.figures[key] for target in targets)
        for key in ("examples", "refused_by_schema", "mapped", "refused_by_mapper", "findings")
    }
    totals["findings"] = len(findings)
    figures = {
        **totals,
        "seconds": round(time.monotonic() - started, 1),
        "targets": {target.name: target.figures for target in targets},
        "topics_without_pure_mapper": unmapped,
    }
    if verbose:
        print(f"  {'total':32} {_figures_line(figures)}", flush=True)
        if unmapped:
            print(f"  topics fuzzed through their schema only: {', '.join(unmapped)}")
    if findings:
        raise AssertionError(
            f"{len(findings)} mapper finding(s):\n" + "\n".join(f"- {f}" for f in findings)
        )
    return figures


def _figures_line(figures):
    return (
        f"{figures['examples']:6} examples  {figures['refused_by_schema']:6} refused by schema  "
        f"{figures['mapped']:6} mapped  {figures['refused_by_mapper']:5} refused by mapper  "
        f"{figures['findings']} findings  {figures.get('seconds', 0):5}s"
    )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_EXAMPLES
    print(f"R3 mapper fuzzing, {count} examples per target")
    run(count)
