"""Credits: journeys per conversion, data-driven models fitted once, credited chunk by chunk.

Fitting Markov or Shapley needs every path; crediting a conversion needs only its own journey
and the fitted importances.  So per conversion kind the journeys are streamed into the fit,
then built again a chunk at a time, and the credit rows produced and diff-written per chunk,
which keeps memory flat however many conversions there are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import islice
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine, delete, select
from sqlmodel import col

from closedloop.attribution.engine import attribute_journeys, fit_data_driven
from closedloop.attribution.journeys import build_journey
from closedloop.attribution.types import ConversionKind, Journey, Touch
from closedloop.attribution.windows import window_channels
from closedloop.config.models import Config
from closedloop.mapping.conversions import ConversionRow, DealFacts
from closedloop.store import models as m
from closedloop.store.diff import DiffCounts, replace_scope
from closedloop.store.engine import session_scope
from closedloop.store.models import table
from closedloop.sync.interrupt import Interrupted, ShouldStop, never
from closedloop.sync.memory import release_free_memory
from closedloop.sync.touch_table import TouchTable

# Deals first: their write-back waits for their credits, contacts' does not.
CONVERSION_KINDS: tuple[ConversionKind, ...] = ("deal_won", "deal_created", "contact_created")
CHUNK = 1000  # conversions per write: ~25k credit rows with 7 models, a few MB


class ContactView(Protocol):
    """What crediting needs of a contact: when the lead was created, where its touches are."""

    created_at: datetime
    lead_at: datetime
    position: int


def write_credits(
    engine: Engine,
    config: Config,
    contacts: Mapping[str, ContactView],
    touch_table: TouchTable,
    deals: Sequence[tuple[DealFacts, datetime | None]],
    conversions_of: Callable[[ConversionKind], Iterable[ConversionRow]],
    anonymous: list[list[str]],
    *,
    should_stop: ShouldStop = never,
    on_deal_credits: Callable[[], None] | None = None,
    settle: Callable[[], None] = lambda: None,
) -> DiffCounts:
    """``on_deal_credits`` hears when every deal conversion's credits are committed (before the
    contacts' own, the largest kind), so deals can be written back while those are computed;
    ``settle`` is called between chunks (see ``closedloop.sync.memory.long_lived_heap``).

    Journeys are built twice per kind, once streamed into the fit and once a chunk at a time
    for crediting: held whole, a kind's journeys and their touches were the rebuild's peak.
    """
    deal_by_id = {d.id: d for d, _ in deals}

    def touches_of(contact_id: str) -> list[Touch]:
        info = contacts.get(contact_id)
        return touch_table.touches(info.position) if info is not None else []

    def deal_touches(deal: DealFacts) -> list[Touch]:
        merged = {t.touchpoint_id: t for cid in deal.contact_ids for t in touches_of(cid)}
        return sorted(merged.values(), key=lambda t: (t.at, t.touchpoint_id))

    def lead_at(deal: DealFacts) -> datetime | None:
        dates = [contacts[c].lead_at for c in deal.contact_ids if c in contacts]
        return min(dates) if dates else None

    def journeys_of(kind: ConversionKind) -> Iterator[Journey]:
        lookback = config.attribution.lookback(kind)
        for conv in conversions_of(kind):
            if kind == "contact_created":
                if conv.contact_id is None or conv.contact_id not in contacts:
                    continue
                yield build_journey(
                    touches_of(conv.contact_id),
                    converted_at=conv.occurred_at,
                    lookback=lookback,
                    lead_at=contacts[conv.contact_id].lead_at,
                    conversion_id=conv.id,
                    value=conv.value,
                )
            elif conv.deal_id in deal_by_id:
                deal = deal_by_id[conv.deal_id]
                yield build_journey(
                    deal_touches(deal),
                    converted_at=conv.occurred_at,
                    lookback=lookback,
                    lead_at=lead_at(deal),
                    opportunity_at=deal.opportunity_at or deal.created_at,
                    won_at=conv.occurred_at if kind == "deal_won" else None,
                    conversion_id=conv.id,
                    value=conv.value,
                )

    def non_converting_paths(kind: ConversionKind) -> list[list[str]]:
        """Paths that did not convert to ``kind``: what data-driven models learn 'null' from.

        Each is cut to the lookback window a converting journey of ``kind`` gets: ending at the
        lost deal's close, or at the contact's last touch where nothing ended it (anonymous
        visitors' paths were cut so when they were read).
        """
        if kind == "contact_created":
            return anonymous  # anonymous visitors' paths, in time order
        lookback = config.attribution.lookback(kind)
        if kind == "deal_created":
            with_deal = {cid for d, _ in deals for cid in d.contact_ids}
            timed = (
                [(t.at, t.channel) for t in touches_of(cid)] for cid in contacts if cid not in with_deal
            )
            paths = (window_channels(touches, end=None, lookback=lookback) for touches in timed)
            return [path for path in paths if path]
        lost = [d for d, won in deals if won is None and d.closed_at is not None]
        cut = (
            window_channels([(t.at, t.channel) for t in deal_touches(d)], end=d.closed_at, lookback=lookback)
            for d in lost
        )
        return [path for path in cut if path]

    counts = DiffCounts()
    models = config.attribution.models
    # One kind at a time: only its chunk of journeys and its non-converting paths are held.
    for kind in CONVERSION_KINDS:
        if kind == "contact_created" and on_deal_credits is not None:
            on_deal_credits()
        fitted = fit_data_driven(
            journeys_of(kind), models=models, config=config.attribution, non_converting_paths=non_converting_paths(kind)
        )
        settle()
        done = 0
        for chunk in batched(journeys_of(kind), CHUNK):
            if should_stop():
                raise Interrupted(f"stopped while crediting {kind}, after {done:,} conversions")
            by_id = {t.touchpoint_id: t for journey in chunk for t in journey.touches}
            rows = [
                _credit_row(credit, by_id)
                for credit in attribute_journeys(chunk, models=models, config=config.attribution, fitted=fitted)
            ]
            with session_scope(engine) as session:
                counts.add(
                    replace_scope(
                        session,
                        table(m.Credit),
                        scope_column="conversion_id",
                        scope_values=[j.conversion_id for j in chunk],
                        rows=rows,
                        key=("conversion_id", "touchpoint_id", "model"),
                    )
                )
            done += len(chunk)
            settle()
        del fitted
        release_free_memory()
    with session_scope(engine) as session:
        # Credits of conversions that no longer exist (a deal deleted, a contact merged away).
        gone = session.execute(delete(m.Credit).where(col(m.Credit.conversion_id).not_in(select(col(m.Conversion.id)))))
        counts.deleted += int(getattr(gone, "rowcount", 0) or 0)
    return counts


T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` (the last shorter); ``itertools.batched`` arrives in Python 3.12."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _credit_row(credit: Any, touches: dict[int, Touch]) -> dict[str, Any]:
    touch = touches.get(credit.touchpoint_id)
    return {
        "conversion_id": credit.conversion_id,
        "touchpoint_id": credit.touchpoint_id,
        "model": credit.model,
        "channel": touch.channel if touch else "Unassigned",
        "campaign": (touch.campaign if touch else "") or "",
        "weight": credit.weight,
        "revenue": credit.revenue,
    }
