"""A register's close of day (Z report, upload contract v1), and the gaps of a
register's ticket numbers.

Pure functions over dicts: no database. The closing is small, so the intake
checks all of it and answers 400 naming each problem.
"""

from odoo.addons.connector_base.components.validation import PayloadError, validate_payload

from .ticket import CONTRACT_VERSION, DECIMAL, SEQUENCE, TENDER_TYPES, TEXT, TIME, _iso_date, amount

CLOSING_SCHEMA = {
    "contract": {"type": "integer", "required": True, "allowed": [CONTRACT_VERSION]},
    "closing_id": {**TEXT, "required": True, "empty": False},
    "store": {**TEXT, "required": True, "empty": False},
    "register": {**TEXT, "required": True, "empty": False},
    "business_day": {"type": "string", "required": True, "check_with": _iso_date},
    "closed_at": {**TIME, "required": True},
    "first_sequence": {**SEQUENCE, "required": True},
    "last_sequence": {**SEQUENCE, "required": True},
    "ticket_count": {**SEQUENCE, "required": True},
    "totals": {
        "type": "list",
        "required": True,
        "schema": {
            "type": "dict",
            "schema": {
                "tender": {"type": "string", "required": True, "allowed": list(TENDER_TYPES)},
                "amount": {**DECIMAL, "required": True},
            },
        },
    },
}


def check_closing(closing):
    """The validated closing, or PayloadError naming each problem."""
    closing = validate_payload(CLOSING_SCHEMA, closing)
    problems = []
    if closing["first_sequence"] > closing["last_sequence"]:
        problems.append("last_sequence: must not be below first_sequence")
    tenders = [total["tender"] for total in closing["totals"]]
    if len(tenders) != len(set(tenders)):
        problems.append("totals: one line per tender")
    if problems:
        raise PayloadError(problems)
    return closing


def closing_problems(document, store_header):
    """The problems of an uploaded closing, for the intake's 400 answer (empty: fine)."""
    try:
        closing = check_closing(document)
    except PayloadError as exc:
        return list(exc.problems)
    if closing["store"] != store_header:
        return [f"store: {closing['store']!r} differs from the X-Pos-Store header {store_header!r}"]
    return []


def closing_key(store, closing_ref):
    """The idempotency key of a store's closing: a re-sent one counts once."""
    return f"closing:{store}:{closing_ref}"


def totals_by_tender(closing):
    """``{tender: Decimal}`` of a closing's totals."""
    return {total["tender"]: amount(total["amount"]) for total in closing.get("totals") or []}


def sequence_ranges(numbers):
    """Runs of consecutive integers of ``numbers`` as ``[(first, last)]``, sorted."""
    ranges = []
    for number in sorted(set(numbers)):
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], number)
        else:
            ranges.append((number, number))
    return ranges


def ranges_text(ranges, limit=10):
    """``4051-4060, 4075`` (the first ``limit`` runs, then how many more)."""
    parts = [f"{first}" if first == last else f"{first}-{last}" for first, last in ranges[:limit]]
    if len(ranges) > limit:
        parts.append(f"… {len(ranges) - limit} more")
    return ", ".join(parts)


def missing_sequences(first, last, received):
    """The ranges of ticket numbers from ``first`` to ``last`` not in ``received``:
    read from the numbers received, never by listing the whole range."""
    ranges = []
    expected = first
    for number in sorted({number for number in received if first <= number <= last}):
        if number > expected:
            ranges.append((expected, number - 1))
        expected = number + 1
    if expected <= last:
        ranges.append((expected, last))
    return ranges
