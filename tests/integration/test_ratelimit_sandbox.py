"""The real HubSpot connector, paced by its limiter, against a sandbox with a tight burst limit.

Real time with a 10-calls-per-second burst window keeps the test short while the pull still
needs several windows; the same pull without a limiter gets 429s, so the test can fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from closedloop.config.models import HubSpotConfig
from closedloop.connectors.calls import ApiCallLog, Limiter
from closedloop.connectors.hubspot import HubSpotClient, HubSpotSource
from closedloop.connectors.ratelimit.hubspot import HubSpotLimiter
from closedloop.sandbox.generator import generate_company
from closedloop.sandbox.hubspot import HubSpotSandbox, HubSpotState

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
TOKEN = "limit-token"
BURST, WINDOW_S = 10, 1.0


@pytest.fixture(scope="module")
def sandbox() -> Iterator[HubSpotSandbox]:
    state = HubSpotState()
    state.load_company(generate_company(contacts=1500, seed=3, now=NOW, anonymous_per_contact=0))
    with HubSpotSandbox(
        state, access_token=TOKEN, burst_limit=BURST, burst_window_s=WINDOW_S, search_per_second=5
    ) as running:
        yield running


def pull_everything(
    sandbox: HubSpotSandbox, limiter: Limiter | None, *, retry_sleep: Callable[[float], None] = time.sleep
) -> tuple[dict[str, int], ApiCallLog]:
    sandbox.server.reset_calls()
    config = HubSpotConfig(base_url=sandbox.url, access_token=SecretStr(TOKEN), max_retries=20, search_page_size=50)
    log = ApiCallLog()
    client = HubSpotClient(
        base_url=sandbox.url, token_provider=lambda: TOKEN, log=log, limiter=limiter, max_retries=20, sleep=retry_sleep
    )
    source = HubSpotSource(client, config)
    counts: dict[str, int] = {}
    for stream in source.streams():
        for batch in source.pull(stream, None, now=NOW):
            for record in batch.records:
                name = type(record).__name__
                counts[name] = counts.get(name, 0) + 1
    return counts, log


def refused(sandbox: HubSpotSandbox) -> int:
    return sum(n for (_endpoint, status), n in sandbox.server.calls.items() if status == 429)


def test_a_full_pull_through_the_limiter_gets_no_429(sandbox: HubSpotSandbox) -> None:
    limiter = HubSpotLimiter(burst_limit=BURST, window_s=WINDOW_S, margin=0.0)
    counts, log = pull_everything(sandbox, limiter)
    assert refused(sandbox) == 0
    calls = log.total(service="hubspot")
    assert calls > 2 * BURST  # the pull spans several windows, so pacing was exercised
    assert limiter.waited_s > 0
    assert counts["ContactRecord"] == len(sandbox.state.all_objects("contacts"))
    statuses: set[str] = set()
    for per_status in log.by_endpoint().values():
        statuses.update(per_status)
    assert statuses == {"200"}


def test_the_same_pull_without_a_limiter_is_refused(sandbox: HubSpotSandbox) -> None:
    """The control: the sandbox really does enforce the window the limiter keeps under."""
    counts, _log = pull_everything(sandbox, None, retry_sleep=lambda s: time.sleep(min(s, 0.1)))
    assert refused(sandbox) > 0
    assert counts["ContactRecord"] == len(sandbox.state.all_objects("contacts"))  # retries recover
