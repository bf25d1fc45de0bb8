"""Client-side limiters on a fake clock: windows never overfilled, headers adopted, budgets kept."""

from __future__ import annotations

import threading
from bisect import bisect_right

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.config.models import HubSpotConfig
from closedloop.connectors.ratelimit.ga4 import GA4Limiter
from closedloop.connectors.ratelimit.headers import header, int_header
from closedloop.connectors.ratelimit.hubspot import HubSpotLimiter
from closedloop.connectors.ratelimit.window import RollingWindow
from closedloop.errors import BudgetExhaustedError
from closedloop.sandbox.hubspot.ratelimit import RateLimiter
from closedloop.sync.factory import hubspot_limiter

SEARCH = "POST /crm/v3/objects/contacts/search"
READ = "POST /crm/v3/objects/deals/batch/read"


class FakeClock:
    """Time moves only when someone sleeps (or a call takes time)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "a limiter must never busy-wait with a zero sleep"
        self.slept.append(seconds)
        self.now += seconds


def max_in_any_window(stamps: list[float], window: float) -> int:
    """Most stamps in any half-open window (t - window, t], as a server with this window counts."""
    ordered = sorted(stamps)
    best = 0
    for i, t in enumerate(ordered):
        first = bisect_right(ordered, t - window)
        best = max(best, i + 1 - first)
    return best


def drive(limiter: HubSpotLimiter, clock: FakeClock, endpoints: list[str], latencies: list[float]) -> list[float]:
    """Make calls one after another; each reaches the server somewhere inside its round trip."""
    admitted: list[float] = []
    for i, endpoint in enumerate(endpoints):
        limiter.acquire(endpoint)
        latency = latencies[i % len(latencies)]
        admitted.append(clock.now + latency * 0.5)  # the server's own stamp, unseen by us
        clock.now += latency
        limiter.observe(endpoint, None)
    return admitted


@settings(max_examples=40, deadline=None)
@given(
    calls=st.integers(min_value=1, max_value=400),
    limit=st.integers(min_value=1, max_value=120),
    latencies=st.lists(st.floats(min_value=0.0, max_value=0.4), min_size=1, max_size=7),
)
def test_burst_window_never_holds_more_than_the_limit(calls: int, limit: int, latencies: list[float]) -> None:
    clock = FakeClock()
    limiter = HubSpotLimiter(burst_limit=limit, margin=0.0, clock=clock, sleep=clock.sleep)
    admitted = drive(limiter, clock, [READ] * calls, latencies)
    assert max_in_any_window(admitted, 10.0) <= limit
    assert limiter.calls == calls


def test_margin_holds_back_a_share_and_pacing_stays_near_the_limit() -> None:
    clock = FakeClock()
    limiter = HubSpotLimiter(burst_limit=100, burst_margin=0.02, clock=clock, sleep=clock.sleep)
    start = clock.now
    admitted = drive(limiter, clock, [READ] * 1000, [0.05])
    assert max_in_any_window(admitted, 10.0) == 98
    # 1,000 calls at 98 per 10 s take a little over 10 windows, not much more.
    elapsed = clock.now - start
    assert 1000 / 9.8 - 10 <= elapsed <= 1000 / 9.8 + 1


def test_search_is_paced_per_second_and_counts_toward_the_burst() -> None:
    clock = FakeClock()
    limiter = HubSpotLimiter(burst_limit=100, search_per_second=5, margin=0.0, clock=clock, sleep=clock.sleep)
    endpoints = [SEARCH if i % 2 else READ for i in range(600)]
    admitted = drive(limiter, clock, endpoints, [0.01])
    searches = [t for t, e in zip(admitted, endpoints, strict=True) if e == SEARCH]
    assert max_in_any_window(searches, 1.0) <= 5
    assert max_in_any_window(admitted, 10.0) <= 100


def test_while_searches_run_other_calls_leave_them_their_share_of_the_burst_window() -> None:
    """A search stream (4 a second) beside a stream of reads, as two threads would run them:
    the reads get the window less search's share, so no search waits for a burst slot; once
    searches stop, the reads get the whole window again."""
    clock = FakeClock()
    start = clock.now
    searches: list[float] = []
    reads: list[float] = []
    waited: list[float] = []
    state = {"next_search": start, "in_search": False}

    def search() -> None:
        state["in_search"] = True
        asked = state["next_search"]
        state["next_search"] = asked + 0.25
        limiter.acquire(SEARCH)
        waited.append(clock.now - asked)
        searches.append(clock.now)
        clock.now += 0.01
        limiter.observe(SEARCH, None)
        state["in_search"] = False

    def sleep(seconds: float) -> None:
        """While the reads' thread sleeps, the search thread runs what falls due."""
        assert seconds > 0
        end = clock.now + seconds
        while not state["in_search"] and end < start + 30 and state["next_search"] <= end:
            clock.now = max(clock.now, state["next_search"])
            search()
        clock.now = max(clock.now, end)

    limiter = HubSpotLimiter(burst_limit=100, search_per_second=5, margin=0.0, clock=clock, sleep=sleep)
    while clock.now < start + 60:
        if clock.now < start + 30 and clock.now >= state["next_search"]:
            clock.now = state["next_search"]
            search()
            continue
        limiter.acquire(READ)
        reads.append(clock.now)
        clock.now += 0.01
        limiter.observe(READ, None)
    assert len(searches) >= 115  # 4 a second for 30 s
    assert max(waited) < 0.05, "a search waited for a burst slot"
    while_searching = [t for t in reads if t < start + 30]
    assert max_in_any_window(while_searching, 10.0) <= 50
    assert max_in_any_window(searches + reads, 10.0) <= 100
    assert max_in_any_window([t for t in reads if t >= start + 45], 10.0) == 100


def test_search_can_be_kept_out_of_the_burst_window() -> None:
    clock = FakeClock()
    limiter = HubSpotLimiter(
        burst_limit=10, search_per_second=5, margin=0.0, search_counts_toward_burst=False,
        clock=clock, sleep=clock.sleep,
    )
    admitted = drive(limiter, clock, [SEARCH] * 50, [0.0])
    # 50 searches at 5 per second: about 10 s, though the burst window alone would allow 10 per 10 s.
    assert max_in_any_window(admitted, 1.0) <= 5
    assert clock.now - 1000.0 < 12


def test_a_call_holds_its_slot_until_its_answer() -> None:
    clock = FakeClock()
    limiter = HubSpotLimiter(burst_limit=2, margin=0.0, clock=clock, sleep=clock.sleep)
    limiter.acquire(READ)
    clock.now += 3.0  # a slow call: the server may have counted it at any time in these 3 s
    limiter.observe(READ, None)
    limiter.acquire(READ)
    limiter.observe(READ, None)
    before = clock.now
    limiter.acquire(READ)
    # The first call's slot frees 10 s after its answer (t=1003), not after its start.
    assert clock.now == pytest.approx(max(before, 1003.0 + 10.0))


def test_threads_share_one_window() -> None:
    clock_lock = threading.Lock()
    stamps: list[float] = []
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        with clock_lock:
            clock.now += seconds / 4  # four threads sleeping together move time about once

    limiter = HubSpotLimiter(burst_limit=20, margin=0.0, clock=clock, sleep=sleep)

    def worker() -> None:
        for _ in range(50):
            limiter.acquire(READ)
            with clock_lock:
                stamps.append(clock.now)
            limiter.observe(READ, None)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert len(stamps) == 200
    assert max_in_any_window(stamps, 10.0) <= 20


def test_headers_resync_limit_window_and_usage_case_insensitively() -> None:
    clock = FakeClock()
    limiter = HubSpotLimiter(burst_limit=190, margin=0.0, clock=clock, sleep=clock.sleep)
    limiter.acquire(READ)
    limiter.observe(
        READ,
        {
            "x-hubspot-ratelimit-max": "100",
            "X-HUBSPOT-RATELIMIT-INTERVAL-MILLISECONDS": "5000",
            "X-HubSpot-RateLimit-Remaining": "10",  # another app used 89 of the window
            "X-HubSpot-RateLimit-Daily": "250000",
            "X-HubSpot-RateLimit-Daily-Remaining": "1234",
        },
    )
    assert limiter.burst.limit == 100
    assert limiter.burst.window_s == 5.0
    assert limiter.burst.used(clock.now) == 90
    assert limiter.daily_used == 250_000 - 1234
    start = clock.now
    for _ in range(10):
        limiter.acquire(READ)
        limiter.observe(READ, None)
    assert clock.now == start  # ten more fit
    limiter.acquire(READ)
    assert clock.now == pytest.approx(start + 5.0)  # the eleventh waits for the padded window


def test_an_answer_read_late_does_not_pad_the_window_with_calls_nobody_made() -> None:
    """The server counts its window when a call arrives; read half a second later, while our
    own older calls leave the window, its count is no sign of another app's usage."""
    clock = FakeClock()
    limiter = HubSpotLimiter(burst_limit=100, margin=0.0, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        limiter.acquire(READ)
        clock.now += 0.01
        limiter.observe(READ, None)
    clock.now += 9.5  # the first of those leaves the window 10 s after its answer
    limiter.acquire(READ)  # the server counts 51 when this one arrives
    clock.now += 0.5  # the answer is read late: about 45 of our calls have left by now
    limiter.observe(READ, {"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "49"})
    assert limiter.burst.used(clock.now) <= 10
    # A count above ours as the call left is another app's, and still adopted.
    limiter.acquire(READ)
    limiter.observe(READ, {"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "20"})
    assert limiter.burst.used(clock.now) == 80


def test_daily_budget_raises_instead_of_waiting_a_day() -> None:
    clock = FakeClock()
    limiter = HubSpotLimiter(burst_limit=100, daily_limit=1000, margin=0.1, clock=clock, sleep=clock.sleep)
    limiter.acquire(READ)
    limiter.observe(READ, {"X-HubSpot-RateLimit-Daily": "1000", "X-HubSpot-RateLimit-Daily-Remaining": "101"})
    limiter.acquire(READ)  # 899 used of a 900 budget: one more goes
    limiter.observe(READ, None)
    with pytest.raises(BudgetExhaustedError, match="daily budget") as caught:
        limiter.acquire(READ)
    assert "token" not in str(caught.value).lower()


def test_limiter_from_config_uses_the_tier_and_overrides() -> None:
    pro = HubSpotConfig(access_token="t", tier="professional")
    assert hubspot_limiter(pro).burst.limit == 190  # the app's own window, counted exactly: all of it
    shared = HubSpotConfig(access_token="t", tier="professional", burst_margin=0.05, rate_limit_margin=0.1)
    assert (hubspot_limiter(shared).burst.limit, hubspot_limiter(shared).daily_budget) == (180, 585_000)
    custom = HubSpotConfig(access_token="t", burst_limit=20, search_per_second=2, rate_limit_margin=0.0)
    limiter = hubspot_limiter(custom)
    assert (limiter.burst.limit, limiter.search.limit) == (20, 2)


def test_against_the_sandbox_rate_limiter_no_call_is_refused() -> None:
    """The sandbox's own limiter (the server side) on the same fake clock refuses nothing."""
    clock = FakeClock()
    server = RateLimiter(burst_limit=30, burst_window_s=10.0, daily_limit=10_000, search_per_second=5, clock=clock)
    limiter = HubSpotLimiter(burst_limit=30, margin=0.0, clock=clock, sleep=clock.sleep)
    refused = 0
    for i in range(300):
        endpoint = SEARCH if i % 3 == 0 else READ
        limiter.acquire(endpoint)
        clock.now += 0.02
        verdict = server.admit(search=endpoint == SEARCH)
        refused += not verdict.allowed
        clock.now += 0.02
        limiter.observe(endpoint, None if endpoint == SEARCH else verdict.headers)
    assert refused == 0


def test_rolling_window_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RollingWindow(0, 10)
    with pytest.raises(ValueError):
        HubSpotLimiter(margin=1.0)


def quota(hour_consumed: float, hour_remaining: float, day_remaining: float = 150_000) -> dict[str, object]:
    return {
        "tokensPerHour": {"consumed": hour_consumed, "remaining": hour_remaining},
        "tokens_per_day": {"consumed": hour_consumed, "remaining": day_remaining},  # snake_case too
    }


def test_ga4_waits_for_hourly_tokens_to_return() -> None:
    clock = FakeClock()
    limiter = GA4Limiter(tokens_per_hour=40_000, margin=0.0, clock=clock, sleep=clock.sleep)
    endpoint = "POST /v1beta/properties/1:runReport"
    remaining = 40_000.0
    for _ in range(3):
        limiter.acquire(endpoint)
        limiter.observe(endpoint, None)
        remaining -= 12_000
        limiter.observe_quota(quota(12_000, remaining))
        clock.now += 10
    assert clock.slept == []
    first_spent_at = 1000.0
    limiter.acquire(endpoint)  # 4,000 left, the next costs about 12,000: wait for the first to return
    assert clock.now == pytest.approx(first_spent_at + 3600.0)


def test_ga4_daily_tokens_end_the_stream_and_concurrency_is_capped() -> None:
    clock = FakeClock()
    limiter = GA4Limiter(max_concurrent=2, tokens_per_day=200_000, margin=0.05, clock=clock, sleep=clock.sleep)
    endpoint = "POST /v1beta/properties/1:runReport"
    limiter.acquire(endpoint)
    limiter.acquire(endpoint)
    blocked = threading.Event()
    released = threading.Event()

    def third() -> None:
        blocked.set()
        limiter.acquire(endpoint)
        released.set()

    # With both slots held, a third acquire polls; free one and it goes.
    thread = threading.Thread(target=third)
    thread.start()
    blocked.wait(2)
    assert not released.wait(0.05)
    limiter.observe(endpoint, None)
    assert released.wait(2)
    thread.join(2)
    limiter.observe(endpoint, None)
    limiter.observe(endpoint, None)
    limiter.observe_quota(quota(5_000, 30_000, day_remaining=12_000))
    with pytest.raises(BudgetExhaustedError, match="daily tokens"):
        limiter.acquire(endpoint)


def test_ga4_ignores_empty_or_odd_quota() -> None:
    limiter = GA4Limiter()
    limiter.observe_quota(None)
    limiter.observe_quota({"tokensPerHour": "nonsense"})
    assert limiter.hour_remaining is None and limiter.day_remaining is None


def test_header_lookup_is_case_insensitive() -> None:
    assert header({"X-HubSpot-RateLimit-Max": "x"}, "x-hubspot-ratelimit-MAX") == "x"
    assert header({"a": "1"}, "b") is None
    assert header(None, "a") is None
    assert int_header({"X-Remaining": "7"}, "x-remaining") == 7
    assert int_header({"X-Remaining": "seven"}, "x-remaining") is None


def test_a_freed_burst_slot_is_kept_for_the_search_call_waiting_for_it() -> None:
    """Search is the scarcer lane (its own 5-a-second cap): while a search call waits for the
    burst window alone, a slot that frees up is not taken by another kind of call."""
    now = [0.0]

    class SearchWentAway(Exception):
        pass

    def search_sleep(seconds: float) -> None:
        raise SearchWentAway  # stop the search call at its first wait, its place in line marked

    def advance(seconds: float) -> None:
        now[0] += seconds

    limiter = HubSpotLimiter(burst_limit=2, window_s=10, margin=0.0, clock=lambda: now[0], sleep=search_sleep)
    for at in (0.0, 1.0):  # the window is full until 10.0, then half full until 11.0
        now[0] = at
        limiter.acquire(READ)
        limiter.observe(READ, None)
    now[0] = 9.6
    with pytest.raises(SearchWentAway):
        limiter.acquire(SEARCH)  # only the burst window holds it back
    limiter.sleep = advance
    now[0] = 10.1  # one slot is free again: it stays free for the search call
    limiter.acquire(READ)
    assert now[0] >= 10.6  # the read went only once the search caller had been gone a second


