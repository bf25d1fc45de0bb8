"""Whose conversion a deal is: its primary contact, by one rule every part uses.

Pure.  The deal's contacts are ordered primary first: the one the CRM marks primary
(Salesforce ``OpportunityContactRole.IsPrimary``; in HubSpot the association label named by
``hubspot.primary_contact_label``), else the earliest-created; ties by id compared as numbers
where ids are numbers, so "9" comes before "10" (ids sorted as strings put "10" first).
The rebuild stores the first as the deal conversions' ``contact_id``; write-back (days to won)
and ROI (lead time) read it from there, so the three can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

_LATEST = datetime.max


def id_order(contact_id: str) -> tuple[int, int, str]:
    """Numeric ids by value, before any other id; others as text."""
    return (0, int(contact_id), "") if contact_id.isdigit() else (1, 0, contact_id)


def order_deal_contacts(contacts: Iterable[tuple[str, datetime | None, bool]]) -> tuple[str, ...]:
    """``(contact id, created at, marked primary)`` -> ids, the primary contact first.

    A contact whose creation is unknown (not in the store) comes after every known one.
    """
    best: dict[str, tuple[bool, datetime, tuple[int, int, str]]] = {}
    for contact_id, created_at, primary in contacts:
        at = created_at.replace(tzinfo=None) if created_at is not None else _LATEST
        key = (not primary, at, id_order(contact_id))
        if contact_id not in best or key < best[contact_id]:
            best[contact_id] = key
    return tuple(sorted(best, key=best.__getitem__))
