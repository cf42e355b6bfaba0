"""Odoo journal items as the lines of one remote manual journal, no Odoo import.

A line here is a dict: ``account`` (the Odoo account's id), ``tax`` (the
Odoo tax's id or None), ``analytics`` (a sorted tuple of analytic account
ids: the tracking it carries), ``amount`` (a :class:`Decimal`, debit
positive, credit negative, in the company's currency) and ``description``.
The functions split journal items along their analytic distribution, sum
them per account, tax and tracking (a summarised batch), check that they
balance, and write the remote's manual journal of them.
"""

from decimal import ROUND_HALF_UP, Decimal

# Every remote journal posts at once (no draft to approve twice) and carries
# amounts without tax computed by the remote: Odoo's tax lines are lines of
# their own, on the tax accounts.
JOURNAL_STATUS = "POSTED"
LINE_AMOUNT_TYPES = "NoTax"
# The remote's tax type of a line no Odoo tax applies to.
NO_TAX_TYPE = "NONE"


def quantum(digits):
    """The smallest amount of a currency of ``digits`` decimals."""
    return Decimal(1).scaleb(-digits)


def to_amount(value, digits):
    """``value`` (a float or a string) rounded half up to the currency's decimals."""
    return Decimal(str(value)).quantize(quantum(digits), rounding=ROUND_HALF_UP)


def split_by_distribution(amount, distribution, digits):
    """``[(analytics, amount)]``: ``amount`` spread over an Odoo analytic
    distribution (``{"3": 60.0, "4,7": 40.0}``, percentages per key of
    analytic account ids), the share left out of it untracked (``()``);
    the last share takes the rounding so that the shares add up."""
    shares = []
    spread = Decimal(0)
    percents = Decimal(0)
    for key, percent in sorted((distribution or {}).items()):
        ids = tuple(sorted(int(part) for part in str(key).split(",") if part.strip()))
        if not ids or not percent:
            continue
        percents += Decimal(str(percent))
        share = to_amount(amount * Decimal(str(percent)) / 100, digits)
        shares.append([ids, share])
        spread += share
    if shares and percents >= 100:
        shares[-1][1] += amount - spread
    else:
        shares.append([(), amount - spread])
    return [(ids, share) for ids, share in shares if share]


def summarise(lines, description=None):
    """The lines summed per account, tax and tracking, the zero sums left out;
    in the order their keys first came. ``description(line)`` names a sum."""
    sums = {}
    for line in lines:
        key = (line["account"], line["tax"], line["analytics"])
        if key not in sums:
            sums[key] = {**line, "amount": Decimal(0)}
            if description:
                sums[key]["description"] = description(line)
        sums[key]["amount"] += line["amount"]
    return [line for line in sums.values() if line["amount"]]


def totals(amounts):
    """``(debits, credits)`` of signed amounts (credits negative)."""
    amounts = list(amounts)
    return (
        sum((a for a in amounts if a > 0), Decimal(0)),
        sum((a for a in amounts if a < 0), Decimal(0)),
    )


def journal_body(narration, day, lines):
    """The remote's manual journal of resolved ``lines`` (dicts with
    ``amount``, ``code``, ``tax_type``, ``description`` and ``tracking``, a
    list of ``(category, option)``), dated ``day`` (a date)."""
    return {
        "Narration": narration,
        "Date": day.isoformat(),
        "Status": JOURNAL_STATUS,
        "LineAmountTypes": LINE_AMOUNT_TYPES,
        "JournalLines": [
            {
                "LineAmount": float(line["amount"]),
                "AccountCode": line["code"],
                "TaxType": line["tax_type"] or NO_TAX_TYPE,
                "Description": line["description"] or narration,
                "Tracking": [
                    {"Name": category, "Option": option} for category, option in line["tracking"]
                ],
            }
            for line in lines
        ],
    }


def idempotency_key(database, batch_id, revision):
    """The key a batch is sent with: the same for every send of one revision
    of the batch (a retry after a lost answer is answered with the journal
    made), another once the batch changed (a new date)."""
    return f"retail-sync-{database}-journal-{batch_id}-r{revision}"[:128]
