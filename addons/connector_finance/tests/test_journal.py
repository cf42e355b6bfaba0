from datetime import date
from decimal import Decimal

from odoo.tests import BaseCase, tagged

from ..components.journal import (
    idempotency_key,
    journal_body,
    split_by_distribution,
    summarise,
    totals,
)


def line(account, amount, tax=None, analytics=()):
    return {
        "account": account,
        "tax": tax,
        "analytics": analytics,
        "amount": Decimal(amount),
        "description": "item",
    }


@tagged("post_install", "-at_install")
class TestJournalLines(BaseCase):
    """Journal items as the remote's lines, without a database."""

    def test_a_three_way_split_adds_up(self):
        shares = split_by_distribution(Decimal("100.00"), {"1": 33.33, "2": 33.33, "3": 33.34}, 2)
        self.assertEqual(
            shares, [((1,), Decimal("33.33")), ((2,), Decimal("33.33")), ((3,), Decimal("33.34"))]
        )
        uneven = split_by_distribution(Decimal("10.00"), {"1": 50, "2": 50.0}, 2)
        self.assertEqual(sum(amount for _ids, amount in uneven), Decimal("10.00"))

    def test_the_share_outside_the_distribution_is_untracked(self):
        self.assertEqual(
            split_by_distribution(Decimal("-80.00"), {"4,7": 25}, 2),
            [((4, 7), Decimal("-20.00")), ((), Decimal("-60.00"))],
        )
        self.assertEqual(split_by_distribution(Decimal("5.00"), None, 2), [((), Decimal("5.00"))])

    def test_summed_per_account_tax_and_tracking(self):
        lines = [
            line(1, "-100.00", tax=9, analytics=(3,)),
            line(1, "-40.00", tax=9, analytics=(3,)),
            line(1, "-50.00", tax=9),
            line(2, "190.00"),
            line(5, "10.00"),
            line(5, "-10.00"),
        ]
        summed = summarise(lines, lambda item: f"account {item['account']}")
        self.assertEqual(
            [(s["account"], s["analytics"], s["amount"], s["description"]) for s in summed],
            [
                (1, (3,), Decimal("-140.00"), "account 1"),
                (1, (), Decimal("-50.00"), "account 1"),
                (2, (), Decimal("190.00"), "account 2"),
            ],
        )
        self.assertEqual(
            totals(s["amount"] for s in summed), (Decimal("190.00"), Decimal("-190.00"))
        )

    def test_the_remote_journal(self):
        body = journal_body(
            "FIN/2026/00001: INV/2026/00001",
            date(2026, 11, 2),
            [
                {
                    "amount": Decimal("-100.00"),
                    "code": "200",
                    "tax_type": "OUTPUT",
                    "description": "Linen shirt",
                    "tracking": [("Channel", "Online")],
                },
                {
                    "amount": Decimal("100.00"),
                    "code": "092",
                    "tax_type": None,
                    "description": None,
                    "tracking": [],
                },
            ],
        )
        self.assertEqual(body["Date"], "2026-11-02")
        self.assertEqual(body["Status"], "POSTED")
        second = body["JournalLines"][1]
        self.assertEqual((second["TaxType"], second["Description"]), ("NONE", body["Narration"]))
        self.assertEqual(
            body["JournalLines"][0]["Tracking"], [{"Name": "Channel", "Option": "Online"}]
        )

    def test_the_key_follows_the_revision(self):
        first = idempotency_key("0a1b2c3d", 42, 1)
        self.assertEqual(first, idempotency_key("0a1b2c3d", 42, 1))
        self.assertNotEqual(first, idempotency_key("0a1b2c3d", 42, 2))
        self.assertLessEqual(len(first), 128)
