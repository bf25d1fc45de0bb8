"""Conversions from CRM facts: a contact created, a deal created, a deal won (with revenue).

Pure.  The won date is the first time the deal entered a stage the config maps to
``closed_won`` (stage history), falling back to the CRM's close date; a lost deal's close is
likewise its first entry into a ``closed_lost`` stage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from closedloop.attribution.types import ConversionKind


@dataclass(frozen=True, slots=True)
class ConversionRow:
    id: str
    kind: ConversionKind
    contact_id: str | None
    deal_id: str | None
    occurred_at: datetime
    value: float


@dataclass(frozen=True, slots=True)
class DealFacts:
    id: str
    created_at: datetime
    amount: float
    is_won: bool
    closed_at: datetime | None
    contact_ids: tuple[str, ...]
    # First entry into a stage the config maps to "opportunity"; None: the deal's creation counts.
    opportunity_at: datetime | None = None


def contact_conversion(contact_id: str, created_at: datetime) -> ConversionRow:
    return ConversionRow(f"contact_created:{contact_id}", "contact_created", contact_id, None, created_at, 0.0)


def won_date(deal: DealFacts, won_stage_entries: Iterable[datetime]) -> datetime | None:
    if not deal.is_won:
        return None
    entries = sorted(won_stage_entries)
    return entries[0] if entries else deal.closed_at


def lost_date(deal: DealFacts, lost_stage_entries: Iterable[datetime]) -> datetime | None:
    """When a closed, lost deal closed (where its non-converting path ends); None otherwise.

    The stage history's entry is a moment in every CRM, the close date is not: Salesforce's
    ``CloseDate`` is a day (read as its midnight), so cutting at it dropped the close day's touches
    that HubSpot's ``closedate`` kept, and the same company fitted a different Markov model.
    """
    if deal.is_won or deal.closed_at is None:
        return None
    entries = sorted(lost_stage_entries)
    return entries[0] if entries else deal.closed_at


def deal_conversions(deal: DealFacts, won_at: datetime | None) -> list[ConversionRow]:
    lead_contact = deal.contact_ids[0] if deal.contact_ids else None
    out = [ConversionRow(f"deal_created:{deal.id}", "deal_created", lead_contact, deal.id, deal.created_at, 0.0)]
    if won_at is not None:
        out.append(ConversionRow(f"deal_won:{deal.id}", "deal_won", lead_contact, deal.id, won_at, deal.amount))
    return out
