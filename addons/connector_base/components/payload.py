"""Payload helpers shared by every connector."""

import hashlib
import json


def canonical_json(payload):
    """The same JSON text for equal payloads, whatever their key order."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def payload_hash(payload):
    """SHA-256 of the canonical JSON: equal payloads, equal hashes (no-op detection)."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()
