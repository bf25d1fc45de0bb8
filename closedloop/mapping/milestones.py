"""Milestones: what a CRM lifecycle stage or deal stage means for attribution positions.

Stage ids differ per CRM and per pipeline, so the meaning is config.  Stage history gives the
dates: a milestone is reached the first time any stage mapped to it is entered.  Skipped
milestones are back-filled with the later date (a deal created straight into 'closed won' was an
opportunity at that moment), as HubSpot does for skipped lifecycle stages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Literal, get_args

from closedloop.config.mapping import MappingConfig

Milestone = Literal["lead", "mql", "sql", "opportunity", "closed_won", "closed_lost"]
MILESTONES: tuple[Milestone, ...] = get_args(Milestone)
_LADDER: tuple[Milestone, ...] = ("lead", "mql", "sql", "opportunity")
WILDCARD_PIPELINE = "*"


def _key(value: str) -> str:
    return value.strip().casefold()


class MilestoneMapper:
    def __init__(
        self,
        lifecycle_stages: Mapping[str, Milestone],
        pipelines: Mapping[str, Mapping[str, Milestone]],
    ):
        self._lifecycle = {_key(k): v for k, v in lifecycle_stages.items()}
        self._pipelines = {
            pipeline.strip(): {_key(stage): m for stage, m in stages.items()}
            for pipeline, stages in pipelines.items()
        }

    @classmethod
    def from_config(cls, config: MappingConfig) -> MilestoneMapper:
        return cls(config.milestones.lifecycle_stages, config.milestones.pipelines)

    def lifecycle(self, stage: str | None) -> Milestone | None:
        return self._lifecycle.get(_key(stage)) if stage else None

    def deal_stage(self, pipeline: str | None, stage: str | None) -> Milestone | None:
        """The pipeline's own table first, then the '*' table shared by unlisted pipelines."""
        if not stage:
            return None
        key = _key(stage)
        if pipeline is not None:
            own = self._pipelines.get(pipeline.strip())
            if own is not None and key in own:
                return own[key]
        shared = self._pipelines.get(WILDCARD_PIPELINE)
        return shared.get(key) if shared is not None else None


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"stage entry time {moment.isoformat()} has no time zone; store UTC")


def _backfill(dates: dict[Milestone, datetime]) -> dict[Milestone, datetime]:
    closes = [dates[m] for m in ("closed_won", "closed_lost") if m in dates]
    later: datetime | None = min(closes) if closes else None
    for milestone in reversed(_LADDER):
        if milestone in dates:
            later = dates[milestone] if later is None else min(dates[milestone], later)
            dates[milestone] = later
        elif later is not None:
            dates[milestone] = later
    return dates


def milestone_dates(
    stage_events: Iterable[tuple[str | None, str, datetime]],
    mapper: MilestoneMapper,
    *,
    backfill: bool = True,
) -> dict[Milestone, datetime]:
    """(pipeline, stage, entered_at) of one deal -> first date each milestone was reached."""
    dates: dict[Milestone, datetime] = {}
    for pipeline, stage, entered_at in stage_events:
        _require_aware(entered_at)
        milestone = mapper.deal_stage(pipeline, stage)
        if milestone is not None and (milestone not in dates or entered_at < dates[milestone]):
            dates[milestone] = entered_at
    return _backfill(dates) if backfill else dates


def lifecycle_dates(
    stage_events: Iterable[tuple[str, datetime]],
    mapper: MilestoneMapper,
    *,
    backfill: bool = True,
) -> dict[Milestone, datetime]:
    """(lifecycle stage, entered_at) of one contact -> first date each milestone was reached."""
    dates: dict[Milestone, datetime] = {}
    for stage, entered_at in stage_events:
        _require_aware(entered_at)
        milestone = mapper.lifecycle(stage)
        if milestone is not None and (milestone not in dates or entered_at < dates[milestone]):
            dates[milestone] = entered_at
    return _backfill(dates) if backfill else dates


def with_closed_stages(
    pipelines: Mapping[str, Mapping[str, Milestone]],
    stages: Iterable[tuple[str, str, bool, bool]],
) -> dict[str, dict[str, Milestone]]:
    """The configured stage tables plus the CRM's own word on closed stages.

    ``stages`` are (pipeline id, stage id, is_closed, is_won) as the CRM describes its pipelines
    (HubSpot's pipeline API).  A stage the CRM marks closed that no table names (a custom
    pipeline's "partnerclosedwon") becomes closed_won or closed_lost, as a Salesforce org's
    shared "Closed Won" value already does, so a deal's close is the same milestone either way.
    """
    mapper = MilestoneMapper({}, pipelines)
    out = {pipeline: dict(table) for pipeline, table in pipelines.items()}
    for pipeline, stage, is_closed, is_won in stages:
        if is_closed and mapper.deal_stage(pipeline, stage) is None:
            out.setdefault(pipeline, {})[stage] = "closed_won" if is_won else "closed_lost"
    return out
