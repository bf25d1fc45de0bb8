"""18-character Salesforce ids with the real key prefixes, issued in order.

The connector tells a write-back target's object apart by the prefix (00Q Lead, 003 Contact,
006 Opportunity), so the sandbox issues ids exactly as an org does: 3-character prefix, 12
characters of instance and base-62 counter, and the 3-character case-safe suffix computed from the
capital letters of the first 15 characters.
"""

from __future__ import annotations

import itertools
import threading

PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "OpportunityHistory": "008",
    "Lead": "00Q",
    "OpportunityContactRole": "00K",
    "CampaignMember": "00v",
    "OpportunityFieldHistory": "017",
    "Campaign": "701",
    "FieldPermissions": "01k",
    "PermissionSet": "0PS",
    "PermissionSetAssignment": "0Pa",
    "CustomField": "00N",
    "Organization": "00D",
    "BulkJob": "750",
    "QueryLocator": "01g",
}
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def checksum(id15: str) -> str:
    """The case-safe suffix: one character per 5-character chunk, a bit per upper-case letter."""
    out = []
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        out.append(_SUFFIX[bits])
    return "".join(out)


def make_id(prefix: str, number: int) -> str:
    digits = []
    for _ in range(9):
        number, rest = divmod(number, 62)
        digits.append(_ALPHABET[rest])
    id15 = f"{prefix}8c0{''.join(reversed(digits))}"
    return id15 + checksum(id15)


def to_18(value: str) -> str:
    """Accept a 15- or 18-character id (as Salesforce does) and give the 18-character form."""
    if len(value) == 15:
        return value + checksum(value)
    return value


def is_id(value: str) -> bool:
    return len(value) in (15, 18) and value.isalnum() and (len(value) == 15 or checksum(value[:15]) == value[15:])


class IdIssuer:
    """One counter per prefix, so ids are dense, ordered and the same on every run."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def next(self, sobject: str) -> str:
        prefix = PREFIXES[sobject]
        with self._lock:
            counter = self._counters.setdefault(prefix, itertools.count(1))
            return make_id(prefix, next(counter))
