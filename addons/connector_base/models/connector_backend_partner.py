from odoo import models

from ..components.contact import normalize_email, normalize_phone

# Identity keys the matcher makes itself; an external id's kind may not be one.
PERSON_KEY_KINDS = ("email", "phone")


# connector.backend is split by concern: the customers every connector brings
# are matched here, once for all of them.
class ConnectorBackend(models.Model):
    """One partner per person, whichever connector brings the customer."""

    _inherit = "connector.backend"  # pylint: disable=consider-merging-classes-inherited

    def _match_partner(
        self, *, external_id=None, email=None, phone=None, name=None, values=None, country=None
    ):
        """The one partner of the person a remote sends (a web shop's customer,
        a loyalty member at a till): found, else made. The interface every
        connector calls::

            partner = backend._match_partner(
                external_id=("pos_loyalty", "L-00912"),  # or None
                email="Ada@Example.com ",
                phone="07700 900123",
                name="Ada Lovelace",
                values=None,  # or a dict, or a callable returning one
            )

        :param external_id: ``(kind, id)``, what the remote numbers the person
            by on this backend (a loyalty card); ``kind`` is the connector's
            (``"pos_loyalty"``), never ``"email"`` or ``"phone"``. An empty id
            is no id.
        :param email: as the remote sent it; compared normalized (stripped,
            lower-cased). Not an address (``"n/a"``) is no email.
        :param phone: as the remote sent it; compared as ``+`` and digits, a
            national number dialled from ``country``. Not a number is no phone.
        :param name: the name of a partner made here (default: its email,
            else phone, else external id).
        :param values: more values of a partner made here (an address, a
            language): a dict, or a callable returning one, called only when
            a partner is made. ``name``, ``email`` and ``phone`` given as
            arguments win over those in ``values``.
        :param country: ``res.country`` a national phone is dialled from;
            default: the backend's company's.
        :return: a ``res.partner``; empty only when nothing identifies the
            person and no name is given.

        Found, first that answers:

        1. this backend's identities (``connector.identity``): the external
           id, then the email, else (no email) the phone;
        2. a contact of the backend's company (or of none) without a parent,
           made by hand or by another connector: by normalized email, then by
           normalized phone (a phone with another email is another person: a
           family shares a phone, not an address);
        3. else a new partner.

        So a person is one partner across backends: the second connector
        finds the contact the first made, by email or phone. The identities
        make creation safe between concurrent jobs of one backend: two
        tickets of one new customer applied at once give one partner (the
        second job clashes on the identity's unique key and, retried, finds
        the first's). A found partner keeps its data and consent flags: only
        an empty email or phone is filled in, never a value replaced.
        """
        self.ensure_one()
        Partner = self.env["res.partner"]
        country = country or self.company_id.country_id
        email_key = normalize_email(email)
        phone_key = normalize_phone(phone, country.phone_code, country.code)
        external_key = self._partner_external_key(external_id)
        keys = [external_key]
        # A phone is a key only without an email, as in step 2.
        keys.append(f"email:{email_key}" if email_key else phone_key and f"phone:{phone_key}")
        # What lands on the contact: a valid email normalized, a valid phone as written.
        contact = {"email": email_key or False, "phone": phone_key and phone.strip()}
        made = []

        def find_or_make():
            partner = self._existing_partner(email_key, phone_key)
            if partner:
                return partner
            new = dict((values() if callable(values) else values) or {})
            new.update({field: value for field, value in contact.items() if value})
            new["name"] = (
                (name.strip() if isinstance(name, str) else "")
                or new.get("name")
                or contact["email"]
                or contact["phone"]
                or (external_key and external_key.partition(":")[2])
            )
            if not new["name"]:
                return Partner
            made.append(True)
            return Partner.create(new)

        partner = self.env["connector.identity"]._record_for(
            self, [key for key in keys if key], "res.partner", find_or_make
        )
        if partner and not made:
            blanks = {
                field: value for field, value in contact.items() if value and not partner[field]
            }
            if blanks:
                partner.write(blanks)
        return partner

    def _existing_partner(self, email_key, phone_key):
        """A contact Odoo already has for this person (made before the remote
        was connected, by hand, or by another connector): by normalized email,
        then by normalized phone; the oldest when several."""
        Partner = self.env["res.partner"]
        # Addresses (children) are not people; another company's contacts are not ours.
        domain = [("parent_id", "=", False), ("company_id", "in", [False, self.company_id.id])]
        # Both fields are indexed: one probe per customer, no scan of every contact.
        if email_key:
            partner = Partner.search(
                [*domain, ("email_normalized", "=", email_key)], order="id", limit=1
            )
            if partner:
                return partner
        if not phone_key:
            return Partner
        if email_key:
            domain.append(("email_normalized", "=", False))
        return Partner.search(
            [*domain, ("connector_phone_normalized", "=", phone_key)], order="id", limit=1
        )

    def _partner_external_key(self, external_id):
        """``("pos_loyalty", "L-00912")`` -> ``"pos_loyalty:L-00912"``; None
        when the id is empty. A malformed pair is the calling connector's bug."""
        if external_id is None:
            return None
        kind, ident = external_id if _is_pair(external_id) else (None, None)
        if (
            not isinstance(kind, str)
            or not kind.strip()
            or ":" in kind
            or kind in PERSON_KEY_KINDS
            or not isinstance(ident, (str, int, type(None)))
            or isinstance(ident, bool)
        ):
            raise ValueError(
                f"external_id must be a (kind, id) pair such as ('pos_loyalty', 'L-00912'), "
                f"with a kind other than email or phone; got {external_id!r}"
            )
        ident = str(ident).strip() if ident is not None else ""
        return f"{kind}:{ident}" if ident else None


def _is_pair(value):
    return isinstance(value, (tuple, list)) and len(value) == 2
