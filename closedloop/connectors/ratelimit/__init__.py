"""Client-side pacing for HubSpot and GA4, so that 429s are the exception.

Every limiter implements the ``Limiter`` protocol of ``connectors.calls``: ``acquire`` blocks
until a call may go out, ``observe`` learns from the answer.  Clocks and sleeps are injected so
tests can cross windows without waiting.

    window.py   a rolling window counted exactly under latency jitter (the one generic part)
    headers.py  case-insensitive header lookup, shared by limiters that read rate-limit headers
    hubspot.py  HubSpot's burst window, search's per-second cap and the daily limit
    ga4.py      GA4's concurrency cap and hourly/daily token quotas

Budgets that refill over hours or a day (HubSpot's daily limit, GA4's daily tokens) are never
waited for: the limiter raises ``closedloop.errors.BudgetExhaustedError`` (fatal for the
stream) and the next scheduled run carries on from its cursors.
"""
