"""The plain-Python components, without a database: what connectors build on."""

import base64
import hashlib
import hmac

from odoo.tests import BaseCase

from odoo.addons.connector_base.components.contact import normalize_email, normalize_phone
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


class TestContactNormalization(BaseCase):
    """One person's email and phone, however typed, compare equal; what is
    not an email or a phone is None, so that it matches nobody."""

    def test_email_is_stripped_and_lower_cased(self):
        for typed in (" Ada@Example.COM ", "ada@example.com", "Ada Lovelace <ADA@example.com>"):
            self.assertEqual(normalize_email(typed), "ada@example.com", typed)

    def test_what_is_not_one_email_address_is_none(self):
        for typed in (
            None,
            42,
            "",
            "   ",
            "n/a",
            "ada@",
            "@example.com",
            "ada@gmail",
            "ada@example..com",
            "ada@example.com, bob@example.com",
        ):
            self.assertIsNone(normalize_email(typed), repr(typed))

    def test_international_numbers_however_written(self):
        for typed in (
            "+44 20 7946 0958",
            "+44 (0)20 7946 0958",
            "0044 20-7946-0958",
            "+44.20.7946.0958",
            "+44 20 7946 0958 ext. 12",
        ):
            self.assertEqual(normalize_phone(typed), "+442079460958", typed)
            self.assertEqual(normalize_phone(typed, 33, "FR"), "+442079460958", "the + wins")

    def test_national_numbers_are_dialled_from_the_country_given(self):
        cases = [
            ("020 7946 0958", 44, "GB", "+442079460958"),
            ("06 12 34 56 78", 33, "FR", "+33612345678"),
            # Italy keeps its leading 0 after the country code.
            ("06 1234 5678", 39, "IT", "+390612345678"),
            ("(613) 555-0111", 1, "US", "+16135550111"),
            ("1-613-555-0111", 1, "CA", "+16135550111"),
            ("613 555 0111 x204", 1, "US", "+16135550111"),
        ]
        for typed, calling_code, country_code, expected in cases:
            self.assertEqual(normalize_phone(typed, calling_code, country_code), expected, typed)

    def test_national_number_without_a_country_is_its_digits(self):
        self.assertEqual(normalize_phone("020 7946 0958"), "02079460958")
        self.assertNotEqual(normalize_phone("020 7946 0958"), normalize_phone("+44 20 7946 0958"))

    def test_what_is_not_a_phone_number_is_none(self):
        for typed in (
            None,
            447700900123,
            "",
            "   ",
            "-",
            "+",
            "call me",
            "0800-FLOWERS",
            "12345",
            "+0 20 7946 0958",
            "+1234 5678 9012 3456",
        ):
            self.assertIsNone(normalize_phone(typed, 44, "GB"), repr(typed))
