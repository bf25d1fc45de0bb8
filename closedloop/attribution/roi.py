"""Return on spend per channel (or channel and campaign): pure arithmetic over plain rows.

Every count is a *credited* count under one attribution model: a lead whose credit is split
40/20/40 over three channels adds 0.4, 0.2 and 0.4 leads to them.  So the columns of one
channel add up across channels to the real totals, and cost per lead is what the model says
the channel paid for each lead it earned.

Definitions (``None`` wherever the denominator is zero or the cost is unknown; never ``inf``):

- cost per lead = cost / credited leads (``contact_created`` conversions)
- cost per opportunity = cost / credited opportunities (``deal_created``)
- CAC = cost / credited customers (``deal_won``)
- ROAS = credited won revenue / cost
- ROI = (credited won revenue - cost) / cost
- lead -> opportunity = credited opportunities / credited leads; opportunity -> won = credited
  customers / credited opportunities.  Ratios of credited counts: under a model that credits
  later touches more (last touch, J-shaped) a channel that closes can exceed 100%.
- median days lead -> won: the weighted median of (won at - lead created) over won deals, each
  deal weighted by the share of its ``deal_won`` credit the channel holds.  A deal split
  50/50 counts half for each channel; with equal weights this is the ordinary median.

A channel without any spend row has *unknown* cost (``None``), not zero: organic channels have
no spend file, and "cost per lead 0" would be a claim nobody made.  Spend rows of 0 are a
known cost of zero.

Overlap: a spend file is the analyst's statement of what a channel cost on a day, so for every
(day, channel) a file covers, GA4's imported ``advertiserAdCost`` for that channel and day is
ignored; GA4 cost fills the channel-days no file mentions.  Otherwise Google Ads cost listed in
a file and imported into GA4 would be counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from closedloop.attribution.types import ConversionKind

GroupBy = Literal["channel", "campaign"]
GA4_ORIGIN = "ga4"
NO_CAMPAIGN = ""
_HALF_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class SpendLine:
    """One day's cost of a channel (and campaign), channel already resolved."""

    day: date
    channel: str
    campaign: str
    cost: float
    origin: str  # "ga4" or "file:<name>"


@dataclass(frozen=True, slots=True)
class CreditLine:
    """Credit one channel/campaign holds in one conversion, summed over its touches."""

    conversion_id: str
    kind: ConversionKind
    channel: str
    campaign: str
    weight: float
    revenue: float


@dataclass(slots=True)
class RoiRow:
    channel: str
    campaign: str | None  # None when grouped by channel only
    cost: float | None = None
    leads: float = 0.0
    opportunities: float = 0.0
    customers: float = 0.0
    revenue: float = 0.0
    median_days_lead_to_won: float | None = None
    _days: list[tuple[float, float]] = field(default_factory=list, repr=False)

    @property
    def cost_per_lead(self) -> float | None:
        return ratio(self.cost, self.leads)

    @property
    def cost_per_opportunity(self) -> float | None:
        return ratio(self.cost, self.opportunities)

    @property
    def cac(self) -> float | None:
        return ratio(self.cost, self.customers)

    @property
    def roas(self) -> float | None:
        return ratio(self.revenue, self.cost)

    @property
    def roi(self) -> float | None:
        if self.cost is None:
            return None
        return ratio(self.revenue - self.cost, self.cost)

    @property
    def lead_to_opportunity(self) -> float | None:
        return ratio(self.opportunities, self.leads)

    @property
    def opportunity_to_won(self) -> float | None:
        return ratio(self.customers, self.opportunities)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": self.channel}
        if self.campaign is not None:
            out["campaign"] = self.campaign
        out.update(
            cost=self.cost,
            leads=self.leads,
            opportunities=self.opportunities,
            customers=self.customers,
            revenue=self.revenue,
            cost_per_lead=self.cost_per_lead,
            cost_per_opportunity=self.cost_per_opportunity,
            cac=self.cac,
            roas=self.roas,
            roi=self.roi,
            lead_to_opportunity=self.lead_to_opportunity,
            opportunity_to_won=self.opportunity_to_won,
            median_days_lead_to_won=self.median_days_lead_to_won,
        )
        return out


@dataclass(frozen=True, slots=True)
class RoiReport:
    group_by: GroupBy
    rows: list[RoiRow]
    total: RoiRow
    spend_without_credit: list[str]  # spend channels no conversion credits (typo or no results)
    ga4_cost_overridden: float  # GA4 cost dropped because a spend file covers that channel-day


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or abs(denominator) < 1e-12:
        return None
    return numerator / denominator


def weighted_median(points: Iterable[tuple[float, float]]) -> float | None:
    """Median of ``(value, weight)`` pairs; equal weights give the ordinary median.

    Zero and negative weights are ignored.  Where the cumulative weight lands exactly on half
    the total, the two neighbouring values are averaged, as the ordinary median does.
    """
    kept = sorted((v, w) for v, w in points if w > 0)
    if not kept:
        return None
    half = sum(w for _, w in kept) / 2
    cumulative = 0.0
    for index, (value, weight) in enumerate(kept):
        cumulative += weight
        if abs(cumulative - half) <= _HALF_TOLERANCE * half and index + 1 < len(kept):
            return (value + kept[index + 1][0]) / 2
        if cumulative >= half:
            return value
    return kept[-1][0]  # pragma: no cover - the loop always reaches half


def campaign_key(campaign: str) -> str:
    """Spend files and UTMs spell one campaign differently in case and padding."""
    return campaign.strip().lower()


def channel_key(channel: str) -> str:
    return channel.strip().lower()


def without_overlap(spend: Sequence[SpendLine]) -> tuple[list[SpendLine], float]:
    """Drop GA4 cost of every (day, channel) a spend file covers; also return what was dropped."""
    covered = {(s.day, channel_key(s.channel)) for s in spend if s.origin != GA4_ORIGIN}
    kept: list[SpendLine] = []
    dropped = 0.0
    for line in spend:
        if line.origin == GA4_ORIGIN and (line.day, channel_key(line.channel)) in covered:
            dropped += line.cost
        else:
            kept.append(line)
    return kept, dropped


def roi_report(
    spend: Sequence[SpendLine],
    credits: Iterable[CreditLine],
    days_lead_to_won: dict[str, float],
    *,
    group_by: GroupBy = "channel",
) -> RoiReport:
    """The ROI table: one row per channel (or channel and campaign) seen in spend or credits.

    ``days_lead_to_won`` maps a ``deal_won`` conversion id to the days from its lead's creation
    to the win; won deals missing from it count for revenue and customers but not the median.
    Rows are ordered by credited revenue, then cost, highest first.
    """
    rows: dict[tuple[str, str], RoiRow] = {}
    by_campaign = group_by == "campaign"

    def row(channel: str, campaign: str) -> RoiRow:
        key = (channel_key(channel), campaign_key(campaign) if by_campaign else NO_CAMPAIGN)
        found = rows.get(key)
        if found is None:
            found = rows[key] = RoiRow(channel.strip(), campaign.strip() if by_campaign else None)
        return found

    credited_channels: set[str] = set()
    for credit in credits:
        target = row(credit.channel, credit.campaign)
        credited_channels.add(channel_key(credit.channel))
        if credit.kind == "contact_created":
            target.leads += credit.weight
        elif credit.kind == "deal_created":
            target.opportunities += credit.weight
        elif credit.kind == "deal_won":
            target.customers += credit.weight
            target.revenue += credit.revenue
            days = days_lead_to_won.get(credit.conversion_id)
            if days is not None:
                target._days.append((days, credit.weight))
    kept, dropped = without_overlap(spend)
    no_credit: dict[str, str] = {}
    for line in kept:
        target = row(line.channel, line.campaign)
        target.cost = (target.cost or 0.0) + line.cost
        if channel_key(line.channel) not in credited_channels:
            no_credit.setdefault(channel_key(line.channel), line.channel.strip())
    total = RoiRow("Total", "" if by_campaign else None)
    all_days: list[tuple[float, float]] = []
    for item in rows.values():
        item.median_days_lead_to_won = weighted_median(item._days)
        all_days.extend(item._days)
        if item.cost is not None:
            total.cost = (total.cost or 0.0) + item.cost
        total.leads += item.leads
        total.opportunities += item.opportunities
        total.customers += item.customers
        total.revenue += item.revenue
    total.median_days_lead_to_won = weighted_median(all_days)
    ordered = sorted(
        rows.values(),
        key=lambda r: (-r.revenue, -(r.cost or 0.0), r.channel.lower(), (r.campaign or "").lower()),
    )
    return RoiReport(group_by, ordered, total, sorted(no_credit.values()), dropped)

