"""Start the emulated org around one synthetic company (the same one the HubSpot portal gets)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from closedloop.sandbox.company import Company
from closedloop.sandbox.salesforce.app import SalesforceSandbox
from closedloop.sandbox.salesforce.state import SalesforceState


def start_salesforce(company: Company, *, now: datetime, port: int = 0, latency: float = 0.0,
                     multicurrency: bool = False, daily_limit: int = 100_000,
                     bulk_polls_in_progress: int = 1) -> SalesforceSandbox:
    """The org as of ``now``: writes made later are stamped ``now`` plus the time since start."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    started = time.monotonic()
    state = SalesforceState(multicurrency=multicurrency, daily_limit=daily_limit,
                            now=lambda: now + timedelta(seconds=time.monotonic() - started))
    state.load_company(company)
    return SalesforceSandbox(state, port=port, latency=latency, bulk_polls_in_progress=bulk_polls_in_progress).start()
