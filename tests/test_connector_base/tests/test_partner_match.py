from odoo.tests import TransactionCase


class TestPartnerMatch(TransactionCase):
    """One partner per person, whichever connector brings the customer: by
    external id, normalized email or phone; a contact Odoo has is reused."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.uk = cls.env.ref("base.uk")
        cls.env.company.country_id = cls.uk
        cls.backend = cls.env["connector.backend"].create(
            {"name": "Web shop", "backend_type": "test"}
        )
        cls.tills = cls.env["connector.backend"].create({"name": "Tills", "backend_type": "test"})
        cls.Partner = cls.env["res.partner"]
        cls.Identity = cls.env["connector.identity"]

    def people(self, **domain):
        return self.Partner.search([(field, "=", value) for field, value in domain.items()])

    def identities(self, backend):
        return self.Identity.search([("backend_id", "=", backend.id)]).mapped("key")

    def test_new_person_is_made_once_and_found_by_loyalty_id_email_or_phone(self):
        ada = self.tills._match_partner(
            external_id=("pos_loyalty", "L-00912"),
            email=" Ada@Example.com ",
            phone="+44 7700 900123",
            name="Ada Lovelace",
        )
        self.assertEqual(
            (ada.name, ada.email, ada.phone),
            ("Ada Lovelace", "ada@example.com", "+44 7700 900123"),
        )
        self.assertEqual(ada.connector_phone_normalized, "+447700900123")
        self.assertEqual(
            sorted(self.identities(self.tills)),
            ["email:ada@example.com", "pos_loyalty:L-00912"],
            "a phone is no key beside an email",
        )
        for found_by in (
            {"external_id": ("pos_loyalty", "L-00912")},
            {"email": "ADA@example.COM"},
            {"phone": "07700 900123"},
            {"phone": "0044 7700-900-123"},
        ):
            self.assertEqual(self.tills._match_partner(**found_by, name="?"), ada, found_by)
        self.assertEqual(len(self.people(email_normalized="ada@example.com")), 1)

    def test_contact_made_by_hand_is_reused_and_only_its_blanks_filled(self):
        known = self.Partner.create({"name": "Ada L.", "email": "ADA@example.com", "ref": "VIP-7"})
        values = {"name": "Ada from the till", "ref": False, "lang": "fr_FR"}
        found = self.tills._match_partner(
            email="ada@example.com", phone="07700 900123", name="A. Lovelace", values=values
        )
        self.assertEqual(found, known)
        self.assertEqual(
            (known.name, known.email, known.ref, known.lang),
            ("Ada L.", "ADA@example.com", "VIP-7", "en_US"),
            "its data kept",
        )
        self.assertEqual(known.phone, "07700 900123", "an empty phone is filled in")
        # A phone it has is never replaced, not even by a valid one.
        self.tills._match_partner(email="ada@example.com", phone="+33 6 12 34 56 78")
        self.assertEqual(known.phone, "07700 900123")

    def test_two_backends_give_one_partner(self):
        ada = self.backend._match_partner(email="ada@example.com", name="Ada Lovelace")
        bob = self.backend._match_partner(phone="07700 900456", name="Bob")
        self.assertEqual(self.tills._match_partner(email=" ADA@Example.com", name="Ada"), ada)
        self.assertEqual(self.tills._match_partner(phone="+44 7700 900456", name="B."), bob)
        self.assertEqual(
            sorted(self.identities(self.tills)),
            ["email:ada@example.com", "phone:+447700900456"],
            "the second backend knows them too",
        )
        self.assertEqual(self.backend._match_partner(email="ada@example.com"), ada)

    def test_guest_and_loyalty_member_with_one_email_are_one_partner(self):
        guest = self.tills._match_partner(email="ada@example.com", name="Ada")
        member = self.tills._match_partner(
            external_id=("pos_loyalty", "L-1"), email="ada@example.com", name="Ada Lovelace"
        )
        self.assertEqual(member, guest)
        self.assertEqual(self.tills._match_partner(email="Ada@Example.com", name="?"), guest)
        self.assertEqual(self.tills._match_partner(external_id=("pos_loyalty", "L-1")), guest)
        self.assertEqual(guest.name, "Ada", "a name it has is kept")

    def test_loyalty_id_wins_over_email_and_is_per_backend(self):
        ada = self.tills._match_partner(external_id=("pos_loyalty", "L-1"), name="Ada")
        self.assertEqual(ada.name, "Ada")
        self.assertEqual(
            self.tills._match_partner(
                external_id=("pos_loyalty", "L-1"), email="new.address@example.com"
            ),
            ada,
        )
        self.assertEqual(ada.email, "new.address@example.com")
        # Another fleet's card L-1 is another person's.
        other = self.backend._match_partner(external_id=("pos_loyalty", "L-1"))
        self.assertNotEqual(other, ada)
        self.assertEqual(other.name, "L-1", "named after the card without a name")

    def test_a_shared_phone_with_another_email_is_another_person(self):
        ada = self.tills._match_partner(email="ada@example.com", phone="07700 900123", name="Ada")
        byron = self.tills._match_partner(
            email="byron@example.com", phone="07700 900123", name="Byron"
        )
        self.assertNotEqual(byron, ada)
        self.assertEqual(self.tills._match_partner(phone="07700 900123", name="?"), ada)

    def test_national_phones_are_dialled_from_the_company_country(self):
        # Typed by staff without a country: the company's (the UK) dials it.
        known = self.Partner.create({"name": "Ada", "phone": "07700 900123"})
        self.assertEqual(known.connector_phone_normalized, "+447700900123")
        self.assertEqual(self.tills._match_partner(phone="+44 7700 900123"), known)
        # A contact in Italy keeps its 0 after the country code.
        rome = self.Partner.create(
            {"name": "Roma", "phone": "06 1234 5678", "country_id": self.env.ref("base.it").id}
        )
        self.assertEqual(rome.connector_phone_normalized, "+390612345678")
        self.assertEqual(self.tills._match_partner(phone="+39 06 1234 5678"), rome)
        self.assertEqual(
            self.tills._match_partner(phone="06 1234 5678", country=self.env.ref("base.it")), rome
        )

    def test_addresses_archived_and_other_companies_contacts_are_not_people(self):
        company = self.Partner.create({"name": "Lovelace Ltd"})
        self.Partner.create(
            {"name": "Ada's delivery", "email": "ada@example.com", "parent_id": company.id}
        )
        elsewhere = self.env["res.company"].create({"name": "Other shop"})
        self.Partner.create(
            {"name": "Ada there", "email": "ada@example.com", "company_id": elsewhere.id}
        )
        self.Partner.create({"name": "Ada gone", "email": "ada@example.com", "active": False})
        ada = self.tills._match_partner(email="ada@example.com", name="Ada")
        self.assertEqual(ada.name, "Ada", "made: none of those is her")
        self.assertFalse(ada.parent_id)

    def test_values_are_read_only_when_a_partner_is_made(self):
        asked = []

        def values():
            asked.append(True)
            return {"city": "London", "phone": False, "name": "From the address"}

        ada = self.tills._match_partner(
            email="ada@example.com", phone="07700 900123", name="Ada", values=values
        )
        self.assertEqual((ada.name, ada.city, ada.phone), ("Ada", "London", "07700 900123"))
        self.tills._match_partner(email="ada@example.com", values=values)
        self.assertEqual(asked, [True])

    def test_bad_emails_and_phones_match_nobody_and_do_not_land_on_the_contact(self):
        self.Partner.create({"name": "No phone, no email"})
        first = self.tills._match_partner(email="n/a", phone="", name="Walk-in")
        second = self.tills._match_partner(email="n/a", phone="  ", name="Walk-in")
        self.assertNotEqual(first, second, "a bad value is nobody's identity")
        self.assertEqual((first.email, first.phone), (False, False))
        third = self.tills._match_partner(email="@example.com", phone="call me", name="Walk-in")
        self.assertNotIn(third, first | second)
        self.assertFalse(self.identities(self.tills))
        for email, phone in ((42, None), ("ada@gmail", "-"), (None, 447700900123), ("", "123")):
            self.assertFalse(
                self.tills._match_partner(email=email, phone=phone),
                "nothing identifies the person and no name: no partner",
            )
        # An empty loyalty id is no id.
        anonymous = self.tills._match_partner(external_id=("pos_loyalty", " "), name="Walk-in")
        self.assertNotIn(anonymous, first | second | third)
        self.assertFalse(self.identities(self.tills))

    def test_a_malformed_external_id_is_refused_naming_the_expected_shape(self):
        for external_id in (
            "L-00912",
            ("pos_loyalty",),
            ("email", "ada@example.com"),
            ("pos:loyalty", "L-1"),
            ("", "L-1"),
            ("pos_loyalty", {"id": "L-1"}),
            ("pos_loyalty", True),
        ):
            with self.assertRaises(ValueError, msg=repr(external_id)) as error:
                self.tills._match_partner(external_id=external_id, name="Ada")
            self.assertIn("external_id must be a (kind, id) pair", str(error.exception))
