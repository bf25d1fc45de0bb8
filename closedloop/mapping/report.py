"""`mapping test` as a pure function: what the rules do to the UTMs actually in the store.

The admin changes a rule and wants to know, before anything reaches the CRM, how many sessions
and contacts each channel gets, which combinations nothing matches (by volume, so the biggest
gap is fixed first) and which rules never fire (usually a typo).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from closedloop.mapping.channels import ChannelMapper
from closedloop.mapping.utm import RawTouch

NO_RULE = "no rule matched"


@dataclass(frozen=True, slots=True)
class ChannelVolume:
    channel: str
    sessions: int
    contacts: int


@dataclass(frozen=True, slots=True)
class UnmappedCombination:
    source: str
    medium: str
    campaign: str
    sessions: int
    contacts: int


@dataclass(frozen=True, slots=True)
class MappingTestReport:
    channels: tuple[ChannelVolume, ...]
    unmapped: tuple[UnmappedCombination, ...]
    rule_hits: dict[str, int]
    unused_rules: tuple[str, ...]
    total_sessions: int

    @property
    def unmapped_sessions(self) -> int:
        return sum(u.sessions for u in self.unmapped)


def mapping_test_report(
    rows: Iterable[tuple[RawTouch, int, str | None]], mapper: ChannelMapper,
) -> MappingTestReport:
    """rows: (raw touch, sessions, contact id or None for anonymous visitors)."""
    sessions: Counter[str] = Counter()
    contacts: dict[str, set[str]] = defaultdict(set)
    hits: Counter[str] = Counter()
    gap_sessions: Counter[tuple[str, str, str]] = Counter()
    gap_contacts: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    total = 0
    for raw, count, contact_id in rows:
        if count < 0:
            raise ValueError(f"negative session count {count} for {raw!r}")
        match = mapper.assign(raw)
        total += count
        sessions[match.channel] += count
        hits[match.rule] += count
        if contact_id is not None:
            contacts[match.channel].add(contact_id)
        if match.rule == NO_RULE:
            utm = mapper.normalise(raw)
            combo = (utm.source, utm.medium, utm.campaign)
            gap_sessions[combo] += count
            if contact_id is not None:
                gap_contacts[combo].add(contact_id)
    channels = tuple(sorted(
        (ChannelVolume(ch, n, len(contacts.get(ch, ()))) for ch, n in sessions.items()),
        key=lambda v: (-v.sessions, v.channel),
    ))
    unmapped = tuple(sorted(
        (UnmappedCombination(*combo, n, len(gap_contacts.get(combo, ())))
         for combo, n in gap_sessions.items()),
        key=lambda u: (-u.sessions, u.source, u.medium, u.campaign),
    ))
    rule_hits = {name: hits.get(name, 0) for name in mapper.rule_names()}
    unused = tuple(name for name, n in rule_hits.items() if n == 0)
    return MappingTestReport(channels, unmapped, rule_hits, unused, total)


def render_report(report: MappingTestReport, *, top: int = 25) -> RenderableType:
    share = (lambda n: f"{100 * n / report.total_sessions:.1f}%") if report.total_sessions else (
        lambda n: "-")
    by_channel = Table(title=f"Channels ({report.total_sessions:,} sessions)", show_edge=False)
    for column in ("channel", "sessions", "share", "contacts"):
        by_channel.add_column(column, justify="left" if column == "channel" else "right")
    for v in report.channels:
        by_channel.add_row(v.channel, f"{v.sessions:,}", share(v.sessions), f"{v.contacts:,}")

    gaps = Table(
        title=f"Unmapped combinations ({len(report.unmapped):,}, "
        f"{report.unmapped_sessions:,} sessions), largest first",
        show_edge=False,
    )
    for column in ("source", "medium", "campaign", "sessions", "contacts"):
        gaps.add_column(column, justify="right" if column in ("sessions", "contacts") else "left")
    for u in report.unmapped[:top]:
        gaps.add_row(u.source, u.medium, u.campaign, f"{u.sessions:,}", f"{u.contacts:,}")
    if len(report.unmapped) > top:
        gaps.add_row(f"… {len(report.unmapped) - top:,} more", "", "", "", "")

    admin_unused = [name for name in report.unused_rules if name.startswith("channel_rules[")]
    builtin_unused = len(report.unused_rules) - len(admin_unused)
    lines: list[RenderableType] = [by_channel, gaps]
    if admin_unused:
        lines.append(Text("Your rules that never matched:", style="bold yellow"))
        lines.extend(Text(f"  {name}", style="yellow") for name in admin_unused)
    else:
        lines.append(Text("Every one of your rules matched at least one session.", style="green"))
    if builtin_unused:
        lines.append(Text(f"{builtin_unused} GA4 default rule(s) matched nothing (normal).",
                          style="dim"))
    return Group(*lines)
