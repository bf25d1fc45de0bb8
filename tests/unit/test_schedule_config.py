"""The schedule: section, and the tick arithmetic replicas must agree on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from closedloop.config.schedule import JobSchedule, ScheduleConfig
from closedloop.sync.scheduler import current_tick, make_trigger


def _error_locs(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[object, ...]]:
    return [tuple(e["loc"]) for e in exc.value.errors()]


def test_defaults_run_the_loop_hourly_with_health_on_8080() -> None:
    schedule = ScheduleConfig()
    assert set(schedule.enabled_jobs()) == {"run"}
    assert schedule.jobs["run"].period_seconds == 3600
    assert schedule.health_port == 8080
    assert schedule.heartbeat_seconds < schedule.lease_seconds


def test_yaml_shaped_input_with_cron_and_interval() -> None:
    schedule = ScheduleConfig.model_validate(
        {"jobs": {"run": {"cron": "*/30 * * * *"}}, "lease_seconds": 30, "health_port": 0}
    )
    assert schedule.jobs["run"].cron == "*/30 * * * *"
    assert schedule.jobs["run"].grace_seconds == 30  # half the one-minute crontab floor
    assert JobSchedule(interval_minutes=5).period_seconds == 300


def test_a_bad_cron_is_reported_on_its_field() -> None:
    with pytest.raises(ValidationError) as exc:
        ScheduleConfig.model_validate({"jobs": {"run": {"cron": "*/30 * * *"}}})
    assert ("jobs", "run", "cron") in _error_locs(exc)
    assert "crontab" in str(exc.value)


@pytest.mark.parametrize("job", [{}, {"interval_minutes": 5, "cron": "* * * * *"},
                                 {"interval_seconds": 5, "interval_minutes": 1}])
def test_exactly_one_trigger(job: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        JobSchedule.model_validate(job)


def test_grace_must_be_shorter_than_the_period() -> None:
    with pytest.raises(ValidationError, match="shorter than the period"):
        JobSchedule(interval_seconds=10, misfire_grace_seconds=10)
    assert JobSchedule(interval_seconds=10, misfire_grace_seconds=9).grace_seconds == 9


def test_unknown_jobs_zones_and_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown job"):
        ScheduleConfig.model_validate({"jobs": {"rnu": {"interval_minutes": 5}}})
    with pytest.raises(ValidationError, match="unknown time zone"):
        ScheduleConfig(timezone="Mars/Olympus")
    with pytest.raises(ValidationError) as exc:
        ScheduleConfig.model_validate({"lease_secs": 5})
    assert ("lease_secs",) in _error_locs(exc)
    with pytest.raises(ValidationError):
        ScheduleConfig(health_port=70_000)


def test_disabled_jobs_are_not_scheduled() -> None:
    schedule = ScheduleConfig.model_validate({"jobs": {"run": {"interval_minutes": 5, "enabled": False}}})
    assert schedule.enabled_jobs() == {}


instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


@settings(max_examples=200, deadline=None)
@given(now=instants, period=st.sampled_from([1.0, 7.0, 60.0, 900.0, 3600.0]),
       grace_fraction=st.floats(0.05, 0.95))
def test_interval_ticks_do_not_depend_on_when_a_replica_started(
    now: datetime, period: float, grace_fraction: float,
) -> None:
    job = JobSchedule(interval_seconds=period, misfire_grace_seconds=period * grace_fraction)
    one, other = make_trigger(job), make_trigger(job)
    tick = current_tick(one, now, job.grace_seconds)
    assert tick == current_tick(other, now, job.grace_seconds)
    if tick is None:
        return
    assert now - timedelta(seconds=job.grace_seconds) <= tick <= now
    # A later instant within the same grace window names the same tick: no second run of it.
    later = now + (tick + timedelta(seconds=job.grace_seconds) - now) / 2
    assert current_tick(one, later, job.grace_seconds) == tick


@settings(max_examples=100, deadline=None)
@given(now=instants)
def test_cron_ticks_fall_on_the_expression(now: datetime) -> None:
    job = JobSchedule(cron="*/15 * * * *")
    tick = current_tick(make_trigger(job), now, job.grace_seconds)
    on_boundary = now.minute % 15 == 0 and now.second < job.grace_seconds
    assert (tick is not None) == on_boundary
    if tick is not None:
        assert tick.minute % 15 == 0 and tick.second == 0 and tick <= now
