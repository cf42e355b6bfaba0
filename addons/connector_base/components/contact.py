"""A person's email and phone as remotes send them -> one comparable form.

One form for every connector and for the contacts already in Odoo, so that
``Ada@Example.com`` from the web shop and ``ada@example.com`` typed at a till
are one person, and so are ``+44 7700 900123`` and ``07700 900123`` in the UK.
Anything that is not clearly an email or a phone gives ``None``: a bad value
must match nobody, never everybody who typed the same bad value.
"""

import re

from odoo.tools import email_normalize

# A real domain of a customer's address: labels separated by single dots.
_DOMAIN = re.compile(r"[^.\s@]+(\.[^.\s@]+)+")
# What people write between the digits of a phone number.
_PHONE_CHARS = re.compile(r"\+?[\d\s().\-/]+")
# An extension at the end ("x12", "ext. 12", "#12") is not part of the number.
_EXTENSION = re.compile(r"\s*(?:ext\.?|x|#)\s*\d+\s*$", re.IGNORECASE)
# E.164: at most 15 digits with the country code; fewer than 6 is no number.
PHONE_MIN_DIGITS, PHONE_MAX_DIGITS = 6, 15
# Countries whose national numbers keep their leading 0 after the country
# code (Italy's landlines and its enclaves); elsewhere the 0 is a trunk prefix.
_KEEP_LEADING_ZERO = {"IT", "SM", "VA"}


def normalize_email(value):
    """``value`` lower-cased and stripped as Odoo's ``email_normalized`` holds
    it (``' Ada@Example.COM '`` -> ``'ada@example.com'``); None when it is not
    one address with a name and a dotted domain (``'n/a'``, ``'@x.com'``,
    ``'ada@gmail'``, two addresses)."""
    if not isinstance(value, str):
        return None
    email = email_normalize(value.strip())
    if not email:
        return None
    local, _at, domain = email.rpartition("@")
    if not local or not _DOMAIN.fullmatch(domain):
        return None
    return email


def normalize_phone(value, calling_code=None, country_code=None):
    """``value`` as ``+`` and digits, E.164-like, for comparison; None when it
    is not a phone number.

    A number written with ``+`` or ``00`` is international already. Else it
    is national, dialled from the country of ``calling_code`` (``44``) and
    ``country_code`` (``'GB'``): its trunk ``0`` is dropped and the calling
    code put in front (``07700 900123`` -> ``+447700900123``). Without a
    country, a national number stays its digits (``07700900123``), equal only
    to itself. Separators, ``(0)`` after a country code and an extension are
    ignored; letters are not a phone.
    """
    if not isinstance(value, str):
        return None
    text = _EXTENSION.sub("", value.strip())
    if not _PHONE_CHARS.fullmatch(text):
        return None
    if text.startswith("+"):
        # "+44 (0)20 7946 0958": the (0) is the national trunk prefix.
        digits = re.sub(r"\D", "", text.replace("(0)", ""))
    else:
        digits = re.sub(r"\D", "", text)
        if digits.startswith("00"):
            digits = digits[2:]
        elif not PHONE_MIN_DIGITS <= len(digits) <= PHONE_MAX_DIGITS:
            return None
        elif calling_code:
            digits = _international(digits, str(calling_code), country_code)
        else:
            return digits
    if not PHONE_MIN_DIGITS <= len(digits) <= PHONE_MAX_DIGITS or digits.startswith("0"):
        return None
    return f"+{digits}"


def _international(digits, calling_code, country_code):
    """A national number's digits with its country's calling code in front."""
    if calling_code == "1":
        # North America: ten digits, or eleven with the leading 1 already.
        return digits if len(digits) == 11 and digits.startswith("1") else calling_code + digits
    if digits.startswith("0") and (country_code or "").upper() not in _KEEP_LEADING_ZERO:
        digits = digits[1:]
    return calling_code + digits
