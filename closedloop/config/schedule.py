"""The `schedule:` section: when `closedloop serve` runs each job, and how replicas share them.

Interval jobs are aligned to a fixed epoch rather than to the moment a process started, so every
replica computes the same ticks; that is what lets the lease turn "one replica at a time" into
"one execution per tick".
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator

from closedloop.config.base import Strict

JOB_KINDS: tuple[str, ...] = ("run",)
"""Job names `serve` knows how to run; `run` is the whole loop (pull, rebuild, write back)."""

TICK_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""Interval ticks are counted from here, so all replicas agree on them."""

_CRON_MIN_PERIOD_S = 60.0  # a five-field crontab never fires more often than once a minute


class JobSchedule(Strict):
    """Exactly one of interval_seconds, interval_minutes or cron."""

    interval_seconds: float | None = Field(None, gt=0, description="Run every N seconds")
    interval_minutes: float | None = Field(None, gt=0, description="Run every N minutes")
    cron: str | None = Field(None, description='Five-field crontab, e.g. "*/30 * * * *"')
    enabled: bool = True
    misfire_grace_seconds: float | None = Field(
        None, gt=0,
        description="A tick may still start this late (default: half the period, at most 60 s); "
        "later it is dropped. Must be shorter than the period.",
    )

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone=UTC)
        except ValueError as exc:
            raise ValueError(f"not a valid crontab expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _exactly_one_trigger(self) -> JobSchedule:
        given = [n for n in ("interval_seconds", "interval_minutes", "cron") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of interval_seconds, interval_minutes or cron"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.misfire_grace_seconds is not None and self.misfire_grace_seconds >= self.period_seconds:
            raise ValueError(f"misfire_grace_seconds must be shorter than the period ({self.period_seconds:g} s)")
        return self

    @property
    def period_seconds(self) -> float:
        """The shortest gap between two ticks (for cron, the one-minute floor of crontab)."""
        if self.interval_seconds is not None:
            return self.interval_seconds
        if self.interval_minutes is not None:
            return self.interval_minutes * 60.0
        return _CRON_MIN_PERIOD_S

    @property
    def grace_seconds(self) -> float:
        if self.misfire_grace_seconds is not None:
            return self.misfire_grace_seconds
        return min(60.0, self.period_seconds / 2)


def _default_jobs() -> dict[str, JobSchedule]:
    return {"run": JobSchedule(interval_minutes=60)}


class ScheduleConfig(Strict):
    """Root of `schedule:` in closedloop.yaml."""

    jobs: dict[str, JobSchedule] = Field(default_factory=_default_jobs)
    timezone: str = Field("UTC", description="Zone in which cron expressions are read")
    lease_seconds: float = Field(
        120.0, ge=1, le=86_400,
        description="A replica that dies holding a job frees it after this long; renewed while alive",
    )
    health_host: str = Field(
        "127.0.0.1",
        description="Address of /healthz, /readyz, /metrics; this machine only unless set (a container "
        "sets 0.0.0.0: `serve --host` or $CLOSEDLOOP_HOST)",
    )
    health_port: int = Field(8080, ge=0, le=65_535, description="0 picks a free port; `serve --port`, $CLOSEDLOOP_PORT")
    health_enabled: bool = True
    metrics_token: SecretStr | None = Field(
        None, description="Bearer token /metrics requires (401 without it); write ${METRICS_TOKEN}"
    )
    metrics_token_file: str | None = Field(None, description="Path of a file holding the /metrics bearer token")
    run_at_start: bool = Field(
        True, description="`serve` runs every job once at start, then on its ticks (else: first tick only)"
    )

    @field_validator("jobs")
    @classmethod
    def _known_jobs(cls, value: dict[str, JobSchedule]) -> dict[str, JobSchedule]:
        unknown = sorted(set(value) - set(JOB_KINDS))
        if unknown:
            raise ValueError(f"unknown job(s) {', '.join(unknown)}; known: {', '.join(JOB_KINDS)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin") from None
        return value

    @property
    def heartbeat_seconds(self) -> float:
        """Renew three times per lease so one slow renewal never lets the lease lapse."""
        return self.lease_seconds / 3

    def enabled_jobs(self) -> dict[str, JobSchedule]:
        return {name: job for name, job in self.jobs.items() if job.enabled}

