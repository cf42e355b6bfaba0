"""R3, the webhook endpoint: hypothesis posts bad webhooks to a running Odoo.

Against a real multi-worker server with its job runner, :func:`run` posts to
``/connector/shopify/webhook``:

- signed bodies: realistic Shopify webhooks from the simulator mutated field
  by field, documents drawn from the topics' schemas, arbitrary JSON (NaN,
  NUL characters, lone surrogates and deep nesting included), under valid and
  unknown topics;
- the headers Shopify sends, missing, empty or junk (topic, webhook id, shop
  domain, triggered-at, event id);
- unsigned, wrongly signed and foreign-signed bodies;
- bodies that are not JSON: random bytes, invalid UTF-8, truncated JSON,
  nesting deeper than any parser;
- bodies over the backend's limit (2 MB by default), with and without a
  Content-Length; a delivery sent twice.

Every answer must be 200, 400, 401 or 413 as the request deserves, never a
5xx, with a JSON body whose ``status`` says why. Afterwards, in the database:
every delivery answered 200 has its ``connector_event`` and no refused one
has; once the job runner has had its time (bounded), none of them is still
``received``, ``queued`` or ``processing``; a failed one failed with a clear
message of kind ``validation``, ``business`` or ``configuration``; and no
queue job created during the run is ``failed``.

The bodies are isolated from the store's real data: their ids are moved to
a range of their own and their SKUs renamed, so that no fuzzed webhook
touches an order, a product or a stock level another scenario counts
(``skus`` lets them name real products, to go through the whole import).
"""

import base64
import copy
import hashlib
import hmac
import http.client
import itertools
import json
import math
import secrets
import sys
import time
import urllib.parse
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Verbosity, given, seed, settings
from hypothesis import strategies as st

try:
    from . import fuzz_mappers
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fuzz_mappers

ROUTE = "/connector/shopify/webhook"
ANSWERS = (200, 400, 401, 413)
# Topics no Shopify backend declares: stored as failed (configuration).
OTHER_TOPICS = ("orders/delete", "products/update", "app/uninstalled", "ORDERS/CREATE")
# Where the fuzzed ids live: far above the store's own, within a signed 64-bit integer.
ID_BASE = 8_000_000_000_000_000_000
ID_KEYS = {"id", "order_id", "line_item_id", "variant_id", "product_id", "location_id"}
PENDING_STATES = ("received", "queued", "processing")
CLEAR_FAILURES = ("validation", "business", "configuration")
WAITING_KINDS = ("prerequisite", "sequence")
DEFAULT_EXAMPLES = 120
# The intake refuses, with a 400 saying so, a document nested deeper than its
# bound (connector_base's parse_body, MAX_DEPTH; run() checks they agree).
SHALLOW = 64


@dataclass
class Delivery:
    """One request: what is sent and which answers it deserves."""

    family: str
    body: bytes
    headers: dict
    expected: tuple
    note: str = ""
    chunked: bool = False

    @property
    def webhook_id(self):
        return self.headers.get("X-Shopify-Webhook-Id")

    def __repr__(self):
        body = self.body[:1500].decode("utf-8", "backslashreplace")
        more = f"... ({len(self.body)} bytes)" if len(self.body) > 1500 else ""
        headers = {k: (v[:200] if isinstance(v, str) else v) for k, v in self.headers.items()}
        return (
            f"Delivery({self.family}, {self.note}, expected {self.expected}, "
            f"headers={headers}, body={body}{more})"
        )


@dataclass
class Run:
    """What one run sent and saw."""

    base_url: str
    shop_domain: str
    secret: str
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    # Numbers webhook ids and the ids of bodies: a run's own, in a database
    # that earlier runs used too.
    numbers: object = field(
        default_factory=lambda: itertools.count(1 + secrets.randbelow(10**6) * 1000)
    )
    answered: dict = field(default_factory=dict)  # webhook id -> status
    statuses: Counter = field(default_factory=Counter)
    families: Counter = field(default_factory=Counter)
    findings: list = field(default_factory=list)
    bad: Counter = field(default_factory=Counter)  # (family, problem) -> answers
    bad_examples: dict = field(default_factory=dict)  # (family, problem) -> first one

    def webhook_id(self):
        return f"fuzz-{self.tag}-{next(self.numbers)}"

    def sign(self, body, secret=None):
        digest = hmac.new((secret or self.secret).encode(), body, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def headers(self, body, topic="orders/create", **overrides):
        """The headers Shopify sends with ``body``; ``None`` in overrides drops one."""
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": self.sign(body),
            "X-Shopify-Shop-Domain": self.shop_domain,
            "X-Shopify-Webhook-Id": self.webhook_id(),
            "X-Shopify-Event-Id": secrets.token_hex(8),
            "X-Shopify-Triggered-At": "2026-11-23T10:00:00.123Z",
            "X-Shopify-API-Version": "2026-10",
        }
        headers.update(overrides)
        return {key: value for key, value in headers.items() if value is not None}


# --- bodies --------------------------------------------------------------------------


def isolated(body, number, skus=None):
    """A copy of a realistic body whose ids are the fuzz run's own.

    Each body gets its own order id: events of one order are applied in
    order, and a failed one would hold back every later one of that order.
    """
    body = copy.deepcopy(body)
    offset = ID_BASE + number * 1000

    def walk(value):
        if isinstance(value, dict):
            for key, child in value.items():
                if key in ID_KEYS and isinstance(child, int) and not isinstance(child, bool):
                    value[key] = offset + child % 1000
                elif key == "sku" and isinstance(child, str):
                    value[key] = skus[number % len(skus)] if skus else f"FUZZ-{child}"
                else:
                    walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(body)
    if skus:
        # Found by SKU, not by a variant binding the fuzzed ids cannot have.
        for line in body.get("line_items") or []:
            line.pop("variant_id", None)
    return body


def _risky(value):
    """Whether a JSON value holds what a JSON store may refuse: NaN or Infinity,
    NUL characters, lone surrogates."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_risky(k) or _risky(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_risky(v) for v in value)
    return False


def _depth(value):
    """How deep the document nests, as the intake counts it: its deepest value
    (a key or a scalar counts as the level it is on)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, depth = todo.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            todo.extend((child, depth + 1) for pair in item.items() for child in pair)
        elif isinstance(item, list):
            todo.extend((child, depth + 1) for child in item)
    return deepest


def encode(value, ascii_only=True):
    """JSON bytes as a client writes them; lone surrogates pass as they are."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass")


def json_deliveries(run, samples, keys, skus):
    """Signed JSON bodies under Shopify's topics and others."""
    # Every inbound topic the backend declares, and some it does not.
    schemas = fuzz_mappers.topic_schemas()
    declared = sorted(schemas)

    @st.composite
    def delivery(draw):
        topics = declared if draw(st.integers(0, 9)) else OTHER_TOPICS
        topic = draw(st.sampled_from(topics))
        kind = draw(st.sampled_from(("realistic", "schema", "arbitrary")))
        if kind == "realistic" and samples.get(topic):
            index = draw(st.integers(0, len(samples[topic]) - 1))
            # Ids of its own (values only: what hypothesis draws stays the same).
            base = isolated(samples[topic][index], next(run.numbers), skus)
            case = draw(fuzz_mappers.mutated([base], keys))
            value, note = case.body, " / ".join(case.how[1:])
        elif kind == "schema" and topic in schemas:
            value = isolated(
                draw(fuzz_mappers.from_schema(schemas[topic], keys)), next(run.numbers)
            )
            note = "schema"
        else:
            value, note = draw(fuzz_mappers.json_values(keys)), "arbitrary JSON"
        ascii_only = draw(st.booleans())
        body = encode(value, ascii_only)
        if _depth(value) > SHALLOW:
            expected = (400,)
        elif _risky(value):
            expected = (200, 400)  # what the database cannot store, or invalid UTF-8
        else:
            expected = (200,)
        return Delivery("signed JSON", body, run.headers(body, topic), expected, f"{topic} {note}")

    return delivery()


def header_deliveries(run, samples):
    """A valid body, its headers missing, empty or junk."""
    body = encode(isolated(samples["orders/create"][0], next(run.numbers)))
    junk_times = [
        "",
        "yesterday",
        "2026-13-45T99:99:99Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2026-11-23T10:00:00.123456789Z",
        "1" * 300,
    ]
    # header -> (value, expected statuses)
    cases = st.one_of(
        st.tuples(st.just("X-Shopify-Topic"), st.sampled_from([None, ""]), st.just((400,))),
        st.tuples(st.just("X-Shopify-Webhook-Id"), st.sampled_from([None, ""]), st.just((400,))),
        st.tuples(
            st.just("X-Shopify-Topic"),
            # HTTP trims a header's value: a blank topic would be a missing one.
            st.text(st.characters(min_codepoint=32, max_codepoint=255), min_size=1, max_size=80)
            .map(str.strip)
            .filter(bool),
            st.just((200,)),
        ),
        st.tuples(
            st.just("X-Shopify-Webhook-Id"),
            st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=600),
            st.just((200,)),
        ),
        st.tuples(
            st.just("X-Shopify-Triggered-At"),
            st.one_of(
                st.sampled_from(junk_times),
                st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
            ),
            st.just((200,)),
        ),
        st.tuples(
            st.just("X-Shopify-Event-Id"),
            st.sampled_from([None, "", "x" * 2000, "ü-é"]),
            st.just((200,)),
        ),
        st.tuples(
            st.just("X-Shopify-Shop-Domain"),
            st.sampled_from(
                [
                    (None, (401,)),
                    ("", (401,)),
                    ("unknown-store.myshopify.com", (401,)),
                    (run.shop_domain.upper(), (200,)),
                    (run.shop_domain + ".", (401,)),
                ]
            ),
            st.just(None),
        ).map(lambda t: (t[0], t[1][0], t[1][1])),
        # Not a form type: Odoo would parse the body as a form (and log it).
        st.tuples(
            st.just("Content-Type"),
            st.sampled_from([None, "text/plain", "application/json; charset=utf-8"]),
            st.just((200,)),
        ),
    )

    @st.composite
    def delivery(draw):
        name, value, expected = draw(cases)
        headers = run.headers(body)
        if value is None:
            headers.pop(name, None)
        elif name == "X-Shopify-Webhook-Id" and value:
            headers[name] = f"{headers[name]}-{value}"  # junk, still the run's own
        else:
            headers[name] = value
        return Delivery("headers", body, headers, expected, f"{name}={value!r}")

    return delivery()


def signature_deliveries(run, samples):
    """Unsigned, wrongly signed and foreign-signed bodies: 401, nothing stored."""
    body = encode(isolated(samples["orders/create"][0], next(run.numbers)))
    good = run.sign(body)
    wrong = st.one_of(
        st.just(None),
        st.just(""),
        st.just(good[:-4] + "AAA="),
        st.just(good.lower()),
        st.just(hashlib.sha256(body).hexdigest()),
        st.just(run.sign(body + b" ")),
        st.just(run.sign(body, secret=run.secret + "x")),
        st.binary(min_size=1, max_size=48).map(lambda b: base64.b64encode(b).decode()),
        st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=60),
    )

    @st.composite
    def delivery(draw):
        signature = draw(wrong)
        if signature == good:
            signature = "x" + good
        headers = run.headers(body, **{"X-Shopify-Hmac-Sha256": signature})
        return Delivery("signature", body, headers, (401,), f"signature={signature!r}")

    return delivery()


def not_json_deliveries(run):
    """Signed bodies that are not JSON: 400 (nesting a parser can read: 200)."""

    @st.composite
    def delivery(draw):
        kind = draw(st.sampled_from(("bytes", "utf8", "truncated", "deep", "empty", "scalar")))
        expected = (400,)
        if kind == "bytes":
            body = draw(st.binary(min_size=1, max_size=200))
            expected = (200, 400)  # a few random bytes may be JSON ("1")
        elif kind == "utf8":
            broken = draw(st.sampled_from([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80"]))
            body = b'{"id": 1, "name": "' + broken + b'"}'
        elif kind == "truncated":
            full = encode({"id": 1, "line_items": [{"id": 2, "sku": "FUZZ"}], "name": "#1"})
            body = full[: draw(st.integers(1, len(full) - 1))]
        elif kind == "deep":
            depth = draw(st.sampled_from([50, SHALLOW, SHALLOW + 1, 1000, 5000, 100_000]))
            opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
            body = opener * depth + b"1" + closer * depth
            expected = (200,) if depth <= SHALLOW else (400,)
        elif kind == "empty":
            body = b""
        else:
            body = draw(st.sampled_from([b"null", b"5", b'"order"', b"[]", b"true"]))
            expected = (200,)  # JSON, stored; its validation says it is no object
        return Delivery("not JSON", body, run.headers(body), expected, kind)

    return delivery()


# --- sending -------------------------------------------------------------------------


def post(url, delivery, timeout=60):
    """POST one delivery; (status, body). A server that answers before reading a
    body it refuses may close the connection while it is sent: the answer is
    read anyway."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        try:
            if delivery.chunked:
                chunks = (delivery.body[i : i + 65536] for i in range(0, len(delivery.body), 65536))
                connection.request(
                    "POST", parts.path, body=chunks, headers=delivery.headers, encode_chunked=True
                )
            else:
                connection.request("POST", parts.path, body=delivery.body, headers=delivery.headers)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class Refused(Exception):
    """A bad answer: raised for hypothesis to shrink the delivery that got it."""

    def __init__(self, what, delivery):
        self.what = what
        self.delivery = delivery
        super().__init__(what)


def send(run, delivery):
    """Post and check the answer; raises :class:`Refused` on a bad one."""
    run.families[delivery.family] += 1
    try:
        status, raw = post(run.base_url + ROUTE, delivery)
    except OSError as exc:
        raise Refused(f"no answer: {exc!r}", delivery) from exc
    run.statuses[status] += 1
    if delivery.webhook_id:
        run.answered[delivery.webhook_id] = status
    try:
        answer = json.loads(raw)
        why = answer.get("status") if isinstance(answer, dict) else None
    except ValueError:
        why = None
    problem = None
    if status >= 500 or status not in ANSWERS:
        problem = f"HTTP {status}"
    elif not (isinstance(why, str) and why.strip()):
        problem = f"HTTP {status} without a JSON status saying why"
    elif status not in delivery.expected:
        problem = f"HTTP {status} ({why}), expected {delivery.expected}"
    if problem:
        # Every bad answer is counted, with its first example: hypothesis
        # reports one minimal example per family, others may hide behind it.
        kind = (delivery.family, problem)
        run.bad[kind] += 1
        run.bad_examples.setdefault(kind, (delivery, raw[:300]))
        raise Refused(f"{problem}: {raw[:300]!r}", delivery)
    return status, answer


def fuzz_family(run, name, strategy, examples):
    """Send ``examples`` deliveries drawn from ``strategy``; the minimal bad one, if any."""

    @seed(zlib.crc32(name.encode()))
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
    @given(strategy)
    def answers_well(delivery):
        send(run, delivery)

    try:
        answers_well()
    except Refused as refused:
        run.findings.append(f"{name}: {refused.what}\n    minimal example: {refused.delivery!r}")


def explicit_deliveries(run, samples, limit, skus):
    """Oversized bodies and a repeated delivery: a few, not drawn."""
    over = max(limit, 2 * 1024 * 1024) + 1024
    big = b'{"id": 1, "note": "' + b"x" * over + b'"}'
    known = run.headers(big)
    deliveries = [
        Delivery("oversized", big, known, (413,), "Content-Length over the limit"),
        Delivery("oversized", big, run.headers(big), (413,), "chunked, over the limit", True),
        Delivery(
            "oversized",
            big,
            run.headers(big, **{"X-Shopify-Hmac-Sha256": "bad"}),
            (413,),
            "unsigned, over the limit",
        ),
    ]
    body = encode(isolated(samples["orders/create"][1], next(run.numbers), skus))
    first = Delivery("duplicate", body, run.headers(body), (200,), "first delivery")
    deliveries += [first, Delivery("duplicate", body, dict(first.headers), (200,), "same again")]
    for delivery in deliveries:
        try:
            _status, answer = send(run, delivery)
        except Refused:
            continue  # counted among the bad answers
        if delivery.note == "same again" and answer.get("status") != "duplicate":
            run.findings.append(f"a delivery sent twice was answered {answer!r} the second time")


# --- the database afterwards ---------------------------------------------------------------


def check_database(run, sql, backend_id, since, wait_seconds):
    """Stored as answered, processed to an end state, no failed job."""
    keys = list(run.answered)
    accepted = [key for key, status in run.answered.items() if status == 200]
    refused = [key for key, status in run.answered.items() if status != 200]

    def rows():
        return sql(
            "SELECT idempotency_key, state, error_kind, error_message, topic, "
            "duplicate_of_id IS NOT NULL FROM connector_event "
            "WHERE backend_id = %s AND idempotency_key = ANY(%s)",
            (backend_id, keys),
        )

    stored = {row[0] for row in rows()}
    lost = [key for key in accepted if key not in stored]
    if lost:
        run.findings.append(f"{len(lost)} deliveries answered 200 have no event: {lost[:5]}")
    kept = [key for key in refused if key in stored]
    if kept:
        run.findings.append(f"{len(kept)} refused deliveries were stored anyway: {kept[:5]}")

    deadline = time.monotonic() + wait_seconds
    while True:
        current = rows()
        pending = [row for row in current if row[1] in PENDING_STATES]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1)
    if pending:
        states = Counter(row[1] for row in pending)
        run.findings.append(
            f"{len(pending)} events still {dict(states)} after {wait_seconds} s: "
            f"{[row[0] for row in pending[:5]]}"
        )
    for key, state, kind, message, topic, _duplicate in current:
        if state == "failed" and (kind not in CLEAR_FAILURES or not (message or "").strip()):
            run.findings.append(
                f"event {key} ({topic!r}) failed with {kind}: {(message or '')[:500]}"
            )
        elif state == "waiting" and (kind not in WAITING_KINDS or not (message or "").strip()):
            run.findings.append(f"event {key} ({topic!r}) waits without a reason: {kind}")
    jobs = sql(
        "SELECT uuid, name, exc_name, exc_message FROM queue_job "
        "WHERE state = 'failed' AND date_created >= %s ORDER BY date_created",
        (since,),
    )
    failed_jobs = {}
    for job_uuid, name, exc_name, exc_message in jobs:
        why = f"{exc_name}: {(exc_message or '').strip().splitlines()[:1]}"
        count, example = failed_jobs.get(why, (0, f"{job_uuid} ({name})"))
        failed_jobs[why] = (count + 1, example)
    for why, (count, example) in failed_jobs.items():
        run.findings.append(f"{count} queue job(s) failed with {why}, e.g. {example}")
    return Counter(
        (state, kind or "") if state in ("failed", "waiting") else (state, "")
        for _key, state, kind, _m, _t, _d in current
    )


def run(
    base_url,
    shop_domain,
    secret,
    sql,
    *,
    examples=DEFAULT_EXAMPLES,
    wait_seconds=180,
    skus=None,
    verbose=True,
):
    """Fuzz the Shopify webhook route of the server at ``base_url``; the figures.

    ``sql(query, params)`` returns rows of the server's database. ``examples``
    is the number of signed JSON bodies; the other families get a share of it.
    Raises AssertionError listing each finding with its minimal example.
    """
    started = time.monotonic()
    fuzz_mappers.import_addons()
    from odoo.addons.connector_base.components.payload import MAX_DEPTH  # noqa: PLC0415

    assert SHALLOW == MAX_DEPTH, f"the intake's depth bound is now {MAX_DEPTH}"
    backend = sql(
        "SELECT id, state, max_body_kb FROM connector_backend "
        "WHERE backend_type = 'shopify' AND shopify_shop_domain = %s",
        (shop_domain.lower(),),
    )
    if not backend:
        raise AssertionError(f"no Shopify backend for {shop_domain} in this database")
    backend_id, state, max_body_kb = backend[0]
    if state not in ("running", "circuit_open"):
        raise AssertionError(f"the Shopify backend of {shop_domain} is {state}, not running")
    since = sql("SELECT (now() AT TIME ZONE 'UTC') - interval '1 second'")[0][0]
    session = Run(base_url.rstrip("/"), shop_domain, secret)
    webhooks, _graphql = fuzz_mappers.realistic_samples()
    keys = fuzz_mappers.keys_read(*fuzz_mappers.mapper_modules())
    families = [
        ("signed JSON", json_deliveries(session, webhooks, keys, skus), examples),
        ("headers", header_deliveries(session, webhooks), max(examples // 4, 10)),
        ("signature", signature_deliveries(session, webhooks), max(examples // 8, 10)),
        ("not JSON", not_json_deliveries(session), max(examples // 4, 10)),
    ]
    for name, strategy, count in families:
        fuzz_family(session, name, strategy, count)
        if verbose:
            print(f"  {name:12} {session.families[name]:5} requests", flush=True)
    explicit_deliveries(session, webhooks, max(max_body_kb or 0, 1) * 1024, skus)
    for (family, problem), count in sorted(session.bad.items()):
        delivery, raw = session.bad_examples[family, problem]
        session.findings.append(
            f"{family}: {count} answer(s) {problem}, e.g. {raw!r} to {delivery!r}"
        )
    sent = time.monotonic() - started
    events = check_database(session, sql, backend_id, since, wait_seconds)
    figures = {
        "requests": sum(session.families.values()),
        "by_family": dict(session.families),
        "statuses": dict(sorted(session.statuses.items())),
        "events": {f"{state} {kind}".strip(): n for (state, kind), n in sorted(events.items())},
        "findings": len(session.findings),
        "seconds_sending": round(sent, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    if verbose:
        print(f"  statuses {figures['statuses']}  events {figures['events']}", flush=True)
    if session.findings:
        raise AssertionError(
            f"{len(session.findings)} webhook finding(s):\n"
            + "\n".join(f"- {finding}" for finding in session.findings)
            + f"\nfigures: {figures}"
        )
    return figures
