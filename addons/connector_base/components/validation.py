"""Payload validation with cerberus, with errors support staff can act on."""

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
        entry = cache[id(schema)] = (schema, Validator(schema, allow_unknown=True))
    validator = entry[1]
    if not validator.validate(payload):
        raise PayloadError(sorted(_flatten(validator.errors)))
    return validator.document
