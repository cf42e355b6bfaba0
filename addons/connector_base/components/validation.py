"""Payload validation with cerberus, with errors support staff can act on."""

import re
import threading

from cerberus import Validator

# A cerberus Validator prepares its schema when built (a few ms, per event),
# and holds the document it validates: one per schema and per thread.
_validators = threading.local()


class PayloadError(ValueError):
    """The payload does not have the shape the topic declares."""

    def __init__(self, problems):
        self.problems = problems
        super().__init__("Invalid payload: " + "; ".join(problems))


def _flatten(errors, prefix=""):
    """Cerberus error tree -> ["field.sub: message", ...], sorted."""
    lines = []
    for field, messages in errors.items():
        path = f"{prefix}{field}"
        for message in messages:
            if isinstance(message, dict):
                lines.extend(_flatten(message, f"{path}."))
            else:
                lines.append(f"{path}: {message}")
    return lines


# --- the fast path ------------------------------------------------------------------
#
# Cerberus walks its rules through layers of dispatch: about as long as the
# ORM takes to make a POS ticket's order lines. Most payloads are valid: each
# schema made only of the rules below is compiled once into plain checks, which
# accept a payload only when cerberus certainly would; anything else (a
# payload they do not accept, a schema with other rules) is left to cerberus,
# which gives the errors.

_TYPES = {
    "string": lambda value: isinstance(value, str),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "boolean": lambda value: isinstance(value, bool),
    "list": lambda value: isinstance(value, list),
    "dict": lambda value: isinstance(value, dict),
}


class _Unsupported(Exception):
    """A rule the fast path does not know: the schema is cerberus's alone."""


def _sized(test):
    return lambda value: not hasattr(value, "__len__") or test(len(value))


def _regex(pattern):
    # Anchored as cerberus anchors it.
    match = re.compile(pattern if pattern.endswith("$") else pattern + "$").match
    return lambda value: not isinstance(value, str) or bool(match(value))


def _allowed(allowed):
    if not isinstance(allowed, list | tuple | set):
        raise _Unsupported
    return lambda value: value in allowed


def _check_with(function):
    if not callable(function):
        raise _Unsupported
    return lambda value: _passes(function, value)


def _type(kind):
    kinds = kind if isinstance(kind, list) else [kind]
    if not all(isinstance(name, str) and name in _TYPES for name in kinds):
        raise _Unsupported
    tests = [_TYPES[name] for name in kinds]
    return lambda value: any(test(value) for test in tests)


# What each rule checks of a value, in cerberus's meaning ("schema": below).
_RULES = {
    "type": _type,
    "required": None,
    "nullable": None,
    "empty": lambda empty: None if empty else _sized(lambda length: length > 0),
    "maxlength": lambda limit: _sized(lambda length: length <= limit),
    "min": lambda low: lambda value: value >= low,
    "max": lambda high: lambda value: value <= high,
    "regex": _regex,
    "allowed": _allowed,
    "check_with": _check_with,
    "schema": None,
}


def _compile_rule(rule):
    """A check of one field's value (None, absent: handled by the caller):
    True when the value satisfies every rule."""
    if not isinstance(rule, dict) or set(rule) - set(_RULES):
        raise _Unsupported
    # The type first: the other checks may assume it.
    names = sorted(rule, key=lambda name: name != "type")
    checks = [_RULES[name](rule[name]) for name in names if _RULES[name]]
    checks = [check for check in checks if check]
    if "schema" in rule:
        checks.append(_compile_subschema(rule.get("type"), rule["schema"]))
    return lambda value: all(check(value) for check in checks)


def _compile_subschema(kind, schema):
    if kind == "dict":
        return _compile_mapping(schema, unknown=False)
    if kind == "list":
        item = _compile_field(schema)
        return lambda value: all(item(element) for element in value)
    raise _Unsupported


def _passes(function, value):
    failed = []
    function(None, value, lambda *args: failed.append(args))
    return not failed


def _compile_field(rule):
    """A check of a present value. None only when nullable, and then only its
    ``check_with`` applies (cerberus drops the other rules, not that one)."""
    check = _compile_rule(rule)
    if not rule.get("nullable", False):
        return lambda value: value is not None and check(value)
    function = rule.get("check_with")
    if function is None:
        return lambda value: value is None or check(value)
    return lambda value: _passes(function, value) if value is None else check(value)


def _compile_mapping(schema, unknown):
    """A check of a dict against ``schema`` (``unknown``: keys it does not
    declare are accepted, else left to cerberus)."""
    if not isinstance(schema, dict):
        raise _Unsupported
    fields = [(name, _compile_field(rule)) for name, rule in schema.items()]
    required = [name for name, rule in schema.items() if rule.get("required")]
    declared = set(schema)

    def check(document):
        if not isinstance(document, dict):
            return False
        if not unknown and not declared.issuperset(document):
            return False
        for name in required:
            if name not in document:
                return False
        return all(name not in document or field(document[name]) for name, field in fields)

    return check


def _copy(value):
    """A copy of JSON data, as cerberus gives back its normalised document."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _accepted(check, payload):
    try:
        return check(payload)
    except TypeError:
        # A value its rules cannot compare ("abc" >= 0, an unhashable in an
        # allowed set): not accepted here; cerberus then names what is wrong
        # on the event, once.
        return False


def _fast_check(schema):
    """The compiled check of ``schema`` (unknown keys accepted at its top),
    or None when it uses rules the fast path does not know."""
    try:
        return _compile_mapping(schema, unknown=True)
    except (_Unsupported, TypeError, AttributeError):  # e.g. a list of types
        return None


def validate_payload(schema, payload):
    """Return the payload normalised by ``schema`` or raise :class:`PayloadError`.

    Unknown keys are kept: remote systems add fields without notice and
    rejecting them would stop the sync for nothing.
    """
    if not isinstance(payload, dict):
        raise PayloadError([f"payload: must be a JSON object, not {type(payload).__name__}"])
    cache = _validators.__dict__.setdefault("by_schema", {})
    entry = cache.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = cache[id(schema)] = (
            schema,
            Validator(schema, allow_unknown=True),
            _fast_check(schema),
        )
    if entry[2] is not None and _accepted(entry[2], payload):
        return _copy(payload)
    validator = entry[1]
    if not validator.validate(payload):
        raise PayloadError(sorted(_flatten(validator.errors)))
    return validator.document
