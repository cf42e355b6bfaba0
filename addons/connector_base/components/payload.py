"""Payload helpers shared by every connector."""

import hashlib
import json
import re


def canonical_json(payload):
    """The same JSON text for equal payloads, whatever their key order."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def payload_hash(payload):
    """SHA-256 of the canonical JSON: equal payloads, equal hashes (no-op detection)."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


class BodyError(ValueError):
    """A message body that cannot be stored as it is: says why, for a 400."""


# PostgreSQL's jsonb refuses the NUL character and unpaired UTF-16 surrogates.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Far deeper than any remote's document; a bound before recursion does harm.
MAX_DEPTH = 64


def parse_body(raw):
    """The JSON document of a message body, or :class:`BodyError` saying why not.

    Stricter than ``json.loads`` where the database is: UTF-8 only, no NaN or
    Infinity (not JSON), no NUL or unpaired surrogate in a string, no
    nesting deeper than :data:`MAX_DEPTH`: a body refused here would
    otherwise fail when stored, after it was acknowledged.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"body is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise BodyError(f"body nests deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:
        raise BodyError(f"body is not valid JSON ({exc})") from exc
    _check_storable(document, 0)
    return document


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _check_storable(value, depth):
    if depth > MAX_DEPTH:
        raise BodyError(f"body nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise BodyError("body has a NUL character or an unpaired surrogate in a string")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key, depth + 1)
            _check_storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_storable(item, depth + 1)
