"""The plain-Python components, without a database: what connectors build on."""

import base64
import hashlib
import hmac

from odoo.tests import BaseCase

from odoo.addons.connector_base.components.http_client import Redactor, parse_retry_after
from odoo.addons.connector_base.components.payload import payload_hash
from odoo.addons.connector_base.components.signature import (
    hmac_sha256_base64,
    hmac_sha256_hex,
    signature_matches,
)
from odoo.addons.connector_base.components.validation import PayloadError, validate_payload

SCHEMA = {
    "id": {"type": "integer", "required": True},
    "lines": {
        "type": "list",
        "schema": {"type": "dict", "schema": {"sku": {"type": "string", "required": True}}},
    },
}


class TestComponents(BaseCase):
    def test_signature_matches_an_independent_computation(self):
        body = b'{"id": 1, "total": "10.00"}'
        expected = base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha256).digest()).decode()
        self.assertEqual(hmac_sha256_base64("s3cret", body), expected)
        self.assertEqual(
            hmac_sha256_hex("s3cret", body), hmac.new(b"s3cret", body, "sha256").hexdigest()
        )
        self.assertTrue(signature_matches(expected, expected))
        self.assertFalse(signature_matches(expected, expected[:-2] + "AA"))
        self.assertFalse(signature_matches(expected, None))
        self.assertFalse(signature_matches(None, None))

    def test_validation_names_every_wrong_field_including_nested_ones(self):
        with self.assertRaises(PayloadError) as error:
            validate_payload(SCHEMA, {"id": "12", "lines": [{"qty": 1}, {"sku": 5}]})
        self.assertEqual(
            error.exception.problems,
            [
                "id: must be of integer type",
                "lines.0.sku: required field",
                "lines.1.sku: must be of string type",
            ],
        )

    def test_validation_keeps_unknown_fields_and_refuses_non_objects(self):
        payload = {"id": 1, "added_by_remote": True}
        self.assertEqual(validate_payload(SCHEMA, payload), payload)
        with self.assertRaises(PayloadError) as error:
            validate_payload(SCHEMA, [1, 2])
        self.assertIn("must be a JSON object", str(error.exception))

    def test_payload_hash_ignores_key_order(self):
        self.assertEqual(payload_hash({"a": 1, "b": [1, 2]}), payload_hash({"b": [1, 2], "a": 1}))
        self.assertNotEqual(payload_hash({"a": 1}), payload_hash({"a": 2}))

    def test_redactor_hides_known_secrets_and_credential_shapes(self):
        redact = Redactor(["tok-abcdef123"])
        line = redact(
            "GET /x?access_token=tok-abcdef123&page=2 Authorization: Bearer zzz "
            "{'X-Shopify-Access-Token': 'shpat_999'} password=hunter2"
        )
        for secret in ("tok-abcdef123", "zzz", "shpat_999", "hunter2"):
            self.assertNotIn(secret, line)
        self.assertIn("page=2", line)

    def test_retry_after_values(self):
        self.assertEqual(parse_retry_after("30"), 30)
        self.assertIsNone(parse_retry_after(None))
        self.assertIsNone(parse_retry_after("later"))
