"""Rebuild touchpoints, conversions and credits from the raw data in the store.

Everything downstream of the pull is derived, so a mapping or model change needs no new pull:
the rebuild reads raw rows, applies the pure mapping and attribution functions, and writes only
the rows that differ.  Raw tables are streamed; what is held in memory is per contact and small
(channel, time, id per touch).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import Engine, String, delete, select, type_coerce
from sqlmodel import Session, col

from closedloop.attribution.types import ConversionKind, Touch
from closedloop.attribution.windows import window_channels
from closedloop.config.fingerprint import derivation_fingerprint
from closedloop.config.models import Config
from closedloop.connectors.ga4.rows import is_person
from closedloop.mapping.channels import ChannelMapper
from closedloop.mapping.conversions import (
    ConversionRow,
    DealFacts,
    contact_conversion,
    deal_conversions,
    lost_date,
    won_date,
)
from closedloop.mapping.currency import Rates, deal_amount
from closedloop.mapping.identity import IdentityGraph, IdentityKey
from closedloop.mapping.milestones import MilestoneMapper, lifecycle_dates, milestone_dates, with_closed_stages
from closedloop.mapping.primary import order_deal_contacts
from closedloop.mapping.touchpoints import OfflineSource, contact_touchpoints, session_raw_touch
from closedloop.records import OfflineTouchRecord, WebSessionRecord
from closedloop.store import models as m
from closedloop.store.diff import DiffCounts, replace_scope
from closedloop.store.engine import plain_rows, session_scope
from closedloop.store.models import table
from closedloop.store.rebuilt import record_rebuild
from closedloop.store.upsert import shallow_dict
from closedloop.sync.credits import batched, write_credits
from closedloop.sync.interrupt import Interrupted, ShouldStop, never
from closedloop.sync.memory import long_lived_heap, release_free_memory
from closedloop.sync.money import DealMoneyStats, load_rates
from closedloop.sync.session_links import SessionLinks
from closedloop.sync.touch_table import TouchTable

CHUNK = 2000
Progress = Callable[[str], None]


@dataclass(slots=True)
class RebuildStats:
    contacts: int = 0
    sessions_matched: int = 0
    sessions_anonymous: int = 0
    ambiguous_identities: int = 0
    # A sample of keys several contacts claim; reported, never guessed (their sessions stay anonymous).
    ambiguous_examples: list[str] = field(default_factory=list)
    # GA4 rows of no one ("(not set)", "(other)", empty client id) no click id tied to a
    # contact: kept out of every journey and of the data-driven fits' non-converting paths.
    sessions_not_a_person: int = 0
    touchpoints: DiffCounts = field(default_factory=DiffCounts)
    conversions: DiffCounts = field(default_factory=DiffCounts)
    credits: DiffCounts = field(default_factory=DiffCounts)
    # Revenue is credited in this currency; what could not be brought into it is named, not zeroed silently.
    money: DealMoneyStats = field(default_factory=DealMoneyStats)
    # Which config (mapping, attribution, currency) these credits were rebuilt with.
    config_fingerprint: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("touchpoints", "conversions", "credits"):
            out[name]["changed"] = getattr(self, name).changed
        out["money"] = self.money.as_dict()
        return out


@dataclass(slots=True)
class _ContactInfo:
    created_at: datetime
    offline: OfflineSource
    lead_at: datetime  # the lead milestone: from lifecycle history where mapped, else creation
    position: int  # in the id order of every contact: where its touches are in the TouchTable


def _click_ids(raw: Any) -> dict[str, str]:
    """The click-id column read as text (PostgreSQL's driver hands it over parsed): most
    sessions carry none, and ``{}`` needs no JSON decoder."""
    if isinstance(raw, dict):
        return raw
    if not raw or raw == "{}":
        return {}
    parsed = json.loads(raw)
    return parsed if isinstance(parsed, dict) else {}


def rebuild(
    engine: Engine,
    config: Config,
    *,
    rates: Rates | None = None,
    progress: Progress | None = None,
    on_touchpoints: Callable[[list[str]], None] | None = None,
    on_deal_credits: Callable[[], None] | None = None,
    should_stop: ShouldStop = never,
) -> RebuildStats:
    """``on_touchpoints`` hears each chunk of contact ids once its touchpoints are committed;
    ``on_deal_credits``, once every deal's conversions and credits are (contacts' credits follow).

    Each chunk commits on its own: everything here is derived and rebuilt whole by every run,
    so a run stopped half-way (``should_stop`` is checked between chunks) leaves nothing that
    the next run does not replace.
    """
    rates = rates if rates is not None else load_rates(config)
    with long_lived_heap() as settle:
        stats = _rebuild(engine, config, rates, say=progress or (lambda _msg: None), settle=settle,
                         on_touchpoints=on_touchpoints, on_deal_credits=on_deal_credits, should_stop=should_stop)
    stats.config_fingerprint = derivation_fingerprint(config)
    with session_scope(engine) as session:
        record_rebuild(session, stats.config_fingerprint)
    return stats


def _rebuild(
    engine: Engine,
    config: Config,
    rates: Rates,
    *,
    say: Progress,
    settle: Callable[[], None],
    on_touchpoints: Callable[[list[str]], None] | None,
    on_deal_credits: Callable[[], None] | None,
    should_stop: ShouldStop,
) -> RebuildStats:
    mapper = ChannelMapper.from_config(config.mapping)
    milestones = _milestones(engine, config)
    stats = RebuildStats(money=DealMoneyStats(rates.reporting))
    direct = frozenset(c.lower() for c in config.attribution.direct_channels)
    touch_table = TouchTable()
    with engine.connect() as links_conn, SessionLinks(links_conn) as links:
        with Session(engine) as session:
            graph, contacts, all_contact_ids = _load_contacts(session, milestones)
            stats.contacts = len(contacts)
            stats.ambiguous_identities = len(graph.ambiguities)
            stats.ambiguous_examples = [
                f"{a.key.kind} {a.key.value[:12]}… claimed by contacts {', '.join(a.contact_ids[:5])}"
                for a in graph.ambiguities[:10]
            ]
            say(f"mapping sessions of {len(contacts):,} contacts")
            _link_sessions(session, graph, contacts, stats, links)
            crm_touches = _load_crm_touches(session, graph)
            graph.forget_keys()  # sessions are linked; only merges are asked about from here on
        settle()  # contacts and the graph stay to the end
        say("writing touchpoints")
        grouped = links.grouped()
        waiting = next(grouped, None)
        for start in range(0, len(all_contact_ids), CHUNK):
            if should_stop():
                raise Interrupted(f"stopped while writing touchpoints, after {start:,} contacts")
            scope = all_contact_ids[start : start + CHUNK]
            rows: list[dict[str, Any]] = []
            for position in range(start, start + len(scope)):
                sessions: list[WebSessionRecord] = []
                if waiting is not None and waiting[0] == position:
                    sessions = waiting[1]
                    waiting = next(grouped, None)
                info = contacts.get(all_contact_ids[position])
                if info is None:
                    continue
                cid = all_contact_ids[position]
                built = contact_touchpoints(
                    cid, info.created_at, sessions, info.offline, mapper, crm_touches.pop(cid, ())
                )
                rows.extend(shallow_dict(t) for t in built)
                # Crediting needs five fields of a touch: keep those, let the rows and sessions go.
                touch_table.add(
                    position,
                    (Touch(t.channel, t.occurred_at, t.id, t.channel.lower() in direct, t.campaign) for t in built),
                )
            with session_scope(engine) as session:
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
            if on_touchpoints is not None:
                on_touchpoints(scope)
            settle()
        # Off the write-back's critical path: what crediting needs beyond touchpoints.
        release_free_memory()  # sessions and touchpoint rows are gone; touches stay
        say("reading anonymous sessions and deals")
        anonymous = _anonymous_paths(links, mapper, config.attribution.lookback("contact_created"))
    with Session(engine) as session:
        deals = _load_deals(session, graph, milestones, contacts, rates, config.home_currency, stats.money)
    conversions = Conversions(contacts, deals)
    stats.conversions.add(_write_conversions(engine, conversions))
    settle()  # touches, deals, anonymous paths and conversions: what crediting reads throughout
    say("attributing conversions")
    stats.credits.add(
        write_credits(
            engine,
            config,
            contacts,
            touch_table,
            deals,
            conversions.of_kind,
            anonymous,
            should_stop=should_stop,
            on_deal_credits=on_deal_credits,
            settle=settle,
        )
    )
    return stats


def _milestones(engine: Engine, config: Config) -> MilestoneMapper:
    """The configured milestones, plus closed stages the CRM's pipeline metadata names."""
    stmt = select(
        col(m.PipelineStage.pipeline_id),
        col(m.PipelineStage.stage_id),
        col(m.PipelineStage.is_closed),
        col(m.PipelineStage.is_won),
    )
    with Session(engine) as session:
        stages = [(p, s, bool(closed), bool(won)) for p, s, closed, won in plain_rows(session, stmt)]
    tables = with_closed_stages(config.mapping.milestones.pipelines, stages)
    return MilestoneMapper(config.mapping.milestones.lifecycle_stages, tables)


class Conversions:
    """Every conversion of the rebuild, by kind.  Contacts' are made again on each pass instead
    of held: 100,000 rows and their ids were 15 MB that stayed through crediting."""

    def __init__(self, contacts: Mapping[str, _ContactInfo], deals: Sequence[tuple[DealFacts, datetime | None]]):
        self._contacts = contacts
        self._deals = [row for deal, won_at in deals for row in deal_conversions(deal, won_at)]

    def of_kind(self, kind: ConversionKind) -> Iterator[ConversionRow]:
        if kind == "contact_created":
            for cid, info in self._contacts.items():
                yield contact_conversion(cid, info.created_at)
        else:
            yield from (row for row in self._deals if row.kind == kind)

    def __iter__(self) -> Iterator[ConversionRow]:
        yield from self.of_kind("contact_created")
        yield from self._deals


def _write_conversions(engine: Engine, conversions: Iterable[ConversionRow]) -> DiffCounts:
    """Diff-written a chunk of ids at a time (a single scope held every stored row at once),
    then conversions that no longer exist are deleted."""
    counts = DiffCounts()
    wanted: set[str] = set()
    for chunk in batched(conversions, CHUNK):
        wanted.update(c.id for c in chunk)
        with session_scope(engine) as session:
            counts.add(
                replace_scope(
                    session,
                    table(m.Conversion),
                    scope_column="id",
                    scope_values=[c.id for c in chunk],
                    rows=[shallow_dict(c) for c in chunk],
                    key=("id",),
                )
            )
    with session_scope(engine) as session:
        stale = [cid for (cid,) in plain_rows(session, select(col(m.Conversion.id)), stream=True) if cid not in wanted]
        for start in range(0, len(stale), CHUNK):
            session.execute(delete(m.Conversion).where(col(m.Conversion.id).in_(stale[start : start + CHUNK])))
    counts.deleted += len(stale)
    return counts


def _load_contacts(
    session: Session, milestones: MilestoneMapper
) -> tuple[IdentityGraph, dict[str, _ContactInfo], list[str]]:
    """Contacts first (their merges), then their identity keys streamed into the graph.

    Repeated strings (source values, contact ids named again by identity rows) are shared, not
    copied: at 100,000 contacts the copies were more memory than the contacts themselves.
    """
    contacts: dict[str, _ContactInfo] = {}
    merges: list[tuple[str, str]] = []
    merged_rows: list[tuple[str, datetime, OfflineSource]] = []
    all_ids: list[str] = []
    shared: dict[str | None, str | None] = {}
    sources: dict[OfflineSource, OfflineSource] = {}
    stmt = select(
        col(m.Contact.id),
        col(m.Contact.created_at),
        col(m.Contact.merged_into),
        col(m.Contact.original_source),
        col(m.Contact.original_source_detail_1),
        col(m.Contact.original_source_detail_2),
        col(m.Contact.properties)["lifecycle_dates"],
    ).order_by(col(m.Contact.id))
    for cid, created_at, merged_into, source, d1, d2, stages in plain_rows(session, stmt, stream=True):
        all_ids.append(cid)
        if merged_into:
            merges.append((cid, merged_into))
            merged_rows.append((cid, created_at, OfflineSource(source, d1, d2)))
            continue
        reached = lifecycle_dates([(s, datetime.fromisoformat(at)) for s, at in (stages or {}).items()], milestones)
        offline = OfflineSource(shared.setdefault(source, source), shared.setdefault(d1, d1), shared.setdefault(d2, d2))
        offline = sources.setdefault(offline, offline)  # most contacts share a few sources
        contacts[cid] = _ContactInfo(created_at, offline, reached.get("lead", created_at), len(all_ids) - 1)
    same_id = {cid: cid for cid in all_ids}
    keys = (
        (same_id.get(cid, cid), IdentityKey(kind, value))
        for kind, value, cid in plain_rows(
            session,
            select(col(m.ContactIdentity.kind), col(m.ContactIdentity.value), col(m.ContactIdentity.contact_id)),
            stream=True,
        )
    )
    graph = IdentityGraph.build(keys, merges)
    _fold_merged(graph, contacts, merged_rows)
    return graph, contacts, all_ids


def _fold_merged(
    graph: IdentityGraph, contacts: dict[str, _ContactInfo], merged_rows: list[tuple[str, datetime, OfflineSource]]
) -> None:
    """A person's creation is the earliest of the records merged into them: a Salesforce Contact
    is created when its Lead converts, but the person arrived when the Lead was created.  Where
    the survivor has no CRM source of its own, the earliest merged record's is used."""
    for cid, created_at, offline in sorted(merged_rows, key=lambda row: row[1]):
        info = contacts.get(graph.canonical(cid))
        if info is None:
            continue
        if created_at < info.created_at:
            if info.lead_at == info.created_at:  # the lead milestone was the creation, not a stage date
                info.lead_at = created_at
            info.created_at = created_at
        if not info.offline.source and offline.source:
            info.offline = offline


def _load_crm_touches(session: Session, graph: IdentityGraph) -> dict[str, list[OfflineTouchRecord]]:
    """Campaign responses per surviving contact (a Lead's response belongs to the Contact it became)."""
    out: dict[str, list[OfflineTouchRecord]] = defaultdict(list)
    stmt = select(
        col(m.OfflineTouch.key),
        col(m.OfflineTouch.contact_id),
        col(m.OfflineTouch.occurred_at),
        col(m.OfflineTouch.source),
        col(m.OfflineTouch.medium),
        col(m.OfflineTouch.campaign),
    )
    for key, contact_id, occurred_at, source, medium, campaign in plain_rows(session, stmt, stream=True):
        canonical = graph.canonical(contact_id)
        out[canonical].append(OfflineTouchRecord(key, canonical, occurred_at, source, medium, campaign))
    return out


def _link_sessions(
    session: Session,
    graph: IdentityGraph,
    contacts: dict[str, _ContactInfo],
    stats: RebuildStats,
    links: SessionLinks,
) -> None:
    """Link each session a contact claims to that contact; only ids are read, the rest later."""
    stmt = select(col(m.WebSession.key), col(m.WebSession.client_id), type_coerce(col(m.WebSession.click_ids), String))
    for key, client_id, raw_click_ids in plain_rows(session, stmt, stream=True):
        click_ids = _click_ids(raw_click_ids)
        # The client id first; click ids on the landing URL (gclid, fbclid, msclkid) as well, so
        # a session on a device whose client id never reached a form still finds its contact.
        person = is_person(client_id)
        keys = [IdentityKey("ga_client_id", client_id)] if person else []
        if click_ids:
            keys += [IdentityKey(kind, value) for kind, value in click_ids.items()]
        contact_id = graph.resolve_any(keys) if keys else None
        info = contacts.get(contact_id) if contact_id is not None else None
        if info is not None:
            stats.sessions_matched += 1
            links.add(key, info.position)
        elif person:
            stats.sessions_anonymous += 1
        else:
            stats.sessions_not_a_person += 1


def _anonymous_paths(links: SessionLinks, mapper: ChannelMapper, lookback: timedelta) -> list[list[str]]:
    """Anonymous visitors' channel paths, in time order: what data-driven models learn "no
    conversion" from.  Only the channels are kept (shared strings): a pointer per session.

    Each path is cut to the lookback window a converting journey of the kind gets, ending at
    the visitor's last session: a visitor seen over two years would otherwise weigh in with a
    path no conversion could ever have.  Rows of no one (``(not set)``...) are not read at all.
    """
    paths: list[list[str]] = []
    for _client_id, visits in groupby(links.unlinked(), key=lambda row: row.client_id):
        touches = sorted((row.started_at, mapper.assign(session_raw_touch(row)).channel) for row in visits)
        paths.append(window_channels(touches, end=touches[-1][0], lookback=lookback))
    return paths


def _load_deals(
    session: Session,
    graph: IdentityGraph,
    milestones: MilestoneMapper,
    contacts: dict[str, _ContactInfo],
    rates: Rates,
    home_currency: str | None,
    money: DealMoneyStats,
) -> list[tuple[DealFacts, datetime | None]]:
    """Deals with their contacts primary first (``mapping.primary``) and their amount in the
    reporting currency on the day they were won; a won deal without amount or rate is counted
    in ``money`` and carries no revenue."""
    links: dict[str, list[tuple[str, datetime | None, bool]]] = defaultdict(list)
    for deal_id, contact_id, is_primary in plain_rows(
        session,
        select(col(m.DealContact.deal_id), col(m.DealContact.contact_id), col(m.DealContact.is_primary)),
        stream=True,
    ):
        canonical = graph.canonical(contact_id)
        info = contacts.get(canonical)
        links[deal_id].append((canonical, info.created_at if info else None, bool(is_primary)))
    stage_events: dict[str, list[tuple[str | None, str, datetime]]] = defaultdict(list)
    events = select(
        col(m.DealStageEvent.deal_id),
        col(m.DealStageEvent.pipeline),
        col(m.DealStageEvent.stage),
        col(m.DealStageEvent.entered_at),
    )
    for deal_id, pipeline, stage, entered_at in plain_rows(session, events, stream=True):
        stage_events[deal_id].append((pipeline, stage, entered_at))
    deals = []
    deal_rows = select(
        col(m.Deal.id),
        col(m.Deal.created_at),
        col(m.Deal.amount),
        col(m.Deal.is_won),
        col(m.Deal.closed_at),
        col(m.Deal.currency),
        col(m.Deal.amount_home),
    ).order_by(col(m.Deal.id))
    for deal_id, created_at, amount, is_won, closed_at, currency, amount_home in plain_rows(
        session, deal_rows, stream=True
    ):
        reached = milestone_dates(stage_events.get(deal_id, []), milestones)
        facts = DealFacts(
            deal_id,
            created_at,
            0.0,
            bool(is_won),
            closed_at,
            order_deal_contacts(links.get(deal_id, [])),
            opportunity_at=reached.get("opportunity"),
        )
        won_at = won_date(facts, [reached["closed_won"]] if "closed_won" in reached else [])
        if won_at is None:  # a lost deal closes when its stage history says, as a won one does
            lost_at = lost_date(facts, [reached["closed_lost"]] if "closed_lost" in reached else [])
            facts = replace(facts, closed_at=lost_at)
        day = (won_at or closed_at or created_at).date()
        value = deal_amount(amount, currency, amount_home, day, rates=rates, home_currency=home_currency)
        if won_at is not None:
            money.count(deal_id, value, currency=currency or home_currency or rates.reporting, day=day.isoformat())
        if value.value:
            facts = replace(facts, amount=value.value)
        deals.append((facts, won_at))
    return deals
