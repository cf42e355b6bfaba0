"""Webhook signatures: computed and compared in constant time."""

import base64
import hashlib
import hmac


def hmac_sha256_base64(secret, body):
    """Base64 of the HMAC-SHA256 of ``body`` (bytes) keyed with ``secret``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def hmac_sha256_hex(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(expected, received):
    """Constant-time comparison; a missing signature never matches."""
    if not expected or not received:
        return False
    return hmac.compare_digest(expected.encode(), received.encode())
