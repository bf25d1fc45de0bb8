"""Rebuild touchpoints, conversions and credits from the raw data in the store.

Everything downstream of the pull is derived, so a mapping or model change needs no new pull:
the rebuild reads raw rows, applies the pure mapping and attribution functions, and writes only
the rows that differ.  Raw tables are streamed; what is held in memory is per contact and small
(channel, time, id per touch).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from closedloop.config.models import Config
from closedloop.mapping.channels import ChannelMapper
from closedloop.mapping.conversions import (
    DealFacts,
    contact_conversion,
    deal_conversions,
    won_date,
)
from closedloop.mapping.identity import IdentityGraph, IdentityKey
from closedloop.mapping.milestones import MilestoneMapper, lifecycle_dates, milestone_dates
from closedloop.mapping.touchpoints import (
    OfflineSource,
    SessionRow,
    contact_touchpoints,
)
from closedloop.store import models as m
from closedloop.store.diff import DiffCounts, replace_scope
from closedloop.store.engine import session_scope
from closedloop.store.models import table
from closedloop.store.upsert import shallow_dict
from closedloop.sync.credits import CreditTouch, write_credits

CHUNK = 2000
_NO_CLICK_IDS: dict[str, str] = {}
Progress = Callable[[str], None]


@dataclass(slots=True)
class RebuildStats:
    contacts: int = 0
    sessions_matched: int = 0
    sessions_anonymous: int = 0
    ambiguous_identities: int = 0
    # A sample of keys several contacts claim; reported, never guessed (their sessions stay anonymous).
    ambiguous_examples: list[str] = field(default_factory=list)
    touchpoints: DiffCounts = field(default_factory=DiffCounts)
    conversions: DiffCounts = field(default_factory=DiffCounts)
    credits: DiffCounts = field(default_factory=DiffCounts)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("touchpoints", "conversions", "credits"):
            out[name]["changed"] = getattr(self, name).changed
        return out


@dataclass(slots=True)
class _ContactInfo:
    created_at: datetime
    offline: OfflineSource
    lead_at: datetime  # the lead milestone: from lifecycle history where mapped, else creation
    sessions: list[SessionRow] = field(default_factory=list)
    touches: list[CreditTouch] = field(default_factory=list)


def _stream(session: Session, stmt: Any) -> Iterable[Any]:
    return session.execute(stmt.execution_options(yield_per=10_000))


def rebuild(engine: Engine, config: Config, *, progress: Progress | None = None) -> RebuildStats:
    say = progress or (lambda _msg: None)
    mapper = ChannelMapper.from_config(config.mapping)
    milestones = MilestoneMapper.from_config(config.mapping)
    stats = RebuildStats()
    with Session(engine) as session:
        graph, contacts, all_contact_ids = _load_contacts(session, milestones)
        stats.contacts = len(contacts)
        stats.ambiguous_identities = len(graph.ambiguities)
        stats.ambiguous_examples = [
            f"{a.key.kind} {a.key.value[:12]}… claimed by contacts {', '.join(a.contact_ids[:5])}"
            for a in graph.ambiguities[:10]
        ]
        say(f"mapping sessions of {len(contacts):,} contacts")
        anonymous = _assign_sessions(session, graph, contacts, mapper, stats)
        deals = _load_deals(session, graph, milestones)
    with session_scope(engine) as session:
        say("writing touchpoints")
        for start in range(0, len(all_contact_ids), CHUNK):
            scope = all_contact_ids[start : start + CHUNK]
            rows: list[dict[str, Any]] = []
            for cid in scope:
                info = contacts.get(cid)
                if info is None:
                    continue
                built = contact_touchpoints(cid, info.created_at, info.sessions, info.offline, mapper)
                rows.extend(shallow_dict(t) for t in built)
                # Crediting needs four fields of a touch: keep those, let the rows and sessions go.
                info.touches = [CreditTouch(t.id, t.occurred_at, t.channel, t.campaign) for t in built]
                info.sessions = []
            stats.touchpoints.add(
                replace_scope(
                    session,
                    table(m.Touchpoint),
                    scope_column="contact_id",
                    scope_values=scope,
                    rows=rows,
                    key=("id",),
                )
            )
    conversions = [contact_conversion(cid, info.created_at) for cid, info in contacts.items()]
    for deal, won_at in deals:
        conversions.extend(deal_conversions(deal, won_at))
    with session_scope(engine) as session:
        stats.conversions.add(
            replace_scope(
                session,
                table(m.Conversion),
                scope_column="kind",
                scope_values=["contact_created", "deal_created", "deal_won"],
                rows=[shallow_dict(c) for c in conversions],
                key=("id",),
            )
        )
    say("attributing conversions")
    stats.credits.add(write_credits(engine, config, contacts, deals, conversions, anonymous))
    return stats


def _load_contacts(
    session: Session, milestones: MilestoneMapper
) -> tuple[IdentityGraph, dict[str, _ContactInfo], list[str]]:
    keys = [
        (cid, IdentityKey(kind, value))
        for kind, value, cid in _stream(
            session,
            select(col(m.ContactIdentity.kind), col(m.ContactIdentity.value), col(m.ContactIdentity.contact_id)),
        )
    ]
    contacts: dict[str, _ContactInfo] = {}
    merges: list[tuple[str, str]] = []
    all_ids: list[str] = []
    stmt = select(
        col(m.Contact.id),
        col(m.Contact.created_at),
        col(m.Contact.merged_into),
        col(m.Contact.original_source),
        col(m.Contact.original_source_detail_1),
        col(m.Contact.original_source_detail_2),
        col(m.Contact.properties),
    ).order_by(col(m.Contact.id))
    for cid, created_at, merged_into, source, d1, d2, properties in _stream(session, stmt):
        all_ids.append(cid)
        if merged_into:
            merges.append((cid, merged_into))
            continue
        stages = (properties or {}).get("lifecycle_dates") or {}
        reached = lifecycle_dates([(s, datetime.fromisoformat(at)) for s, at in stages.items()], milestones)
        contacts[cid] = _ContactInfo(created_at, OfflineSource(source, d1, d2), reached.get("lead", created_at))
    return IdentityGraph.build(keys, merges), contacts, all_ids


def _assign_sessions(
    session: Session,
    graph: IdentityGraph,
    contacts: dict[str, _ContactInfo],
    mapper: ChannelMapper,
    stats: RebuildStats,
) -> dict[str, list[tuple[datetime, str]]]:
    """Matched sessions go to their contact; the rest become anonymous visitors' channel paths."""
    anonymous: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    stmt = select(
        col(m.WebSession.key),
        col(m.WebSession.client_id),
        col(m.WebSession.started_at),
        col(m.WebSession.source),
        col(m.WebSession.medium),
        col(m.WebSession.campaign),
        col(m.WebSession.landing_page),
        col(m.WebSession.click_ids),
    )
    shared: dict[str, str] = {}  # one copy of each repeated source, medium, campaign, landing page
    for key, client_id, started_at, source, medium, campaign, landing_page, click_ids in _stream(session, stmt):
        session_row = SessionRow(
            key,
            client_id,
            started_at,
            shared.setdefault(source, source),
            shared.setdefault(medium, medium),
            shared.setdefault(campaign, campaign),
            shared.setdefault(landing_page, landing_page),
            click_ids=dict(click_ids) if click_ids else _NO_CLICK_IDS,
        )
        # The client id first; click ids on the landing URL (gclid, fbclid, msclkid) as well, so
        # a session on a device whose client id never reached a form still finds its contact.
        keys = [IdentityKey("ga_client_id", session_row.client_id)]
        keys += [IdentityKey(kind, value) for kind, value in session_row.click_ids.items()]
        contact_id = graph.resolve_any(keys)
        info = contacts.get(contact_id) if contact_id else None
        if info is None:
            stats.sessions_anonymous += 1
            channel = mapper.assign(session_row.raw_touch()).channel
            anonymous[session_row.client_id].append((session_row.started_at, channel))
        else:
            stats.sessions_matched += 1
            info.sessions.append(session_row)
    return anonymous


def _load_deals(
    session: Session,
    graph: IdentityGraph,
    milestones: MilestoneMapper,
) -> list[tuple[DealFacts, datetime | None]]:
    links: dict[str, list[str]] = defaultdict(list)
    for deal_id, contact_id in _stream(session, select(col(m.DealContact.deal_id), col(m.DealContact.contact_id))):
        canonical = graph.canonical(contact_id)
        if canonical not in links[deal_id]:
            links[deal_id].append(canonical)
    stage_events: dict[str, list[tuple[str | None, str, datetime]]] = defaultdict(list)
    events = select(
        col(m.DealStageEvent.deal_id),
        col(m.DealStageEvent.pipeline),
        col(m.DealStageEvent.stage),
        col(m.DealStageEvent.entered_at),
    )
    for deal_id, pipeline, stage, entered_at in _stream(session, events):
        stage_events[deal_id].append((pipeline, stage, entered_at))
    deals = []
    deal_rows = select(
        col(m.Deal.id), col(m.Deal.created_at), col(m.Deal.amount), col(m.Deal.is_won), col(m.Deal.closed_at)
    ).order_by(col(m.Deal.id))
    for deal_id, created_at, amount, is_won, closed_at in _stream(session, deal_rows):
        reached = milestone_dates(stage_events.get(deal_id, []), milestones)
        facts = DealFacts(
            deal_id,
            created_at,
            float(amount or 0.0),
            bool(is_won),
            closed_at,
            tuple(sorted(links.get(deal_id, []))),
            opportunity_at=reached.get("opportunity"),
        )
        won_at = won_date(facts, [reached["closed_won"]] if "closed_won" in reached else [])
        deals.append((facts, won_at))
    return deals
