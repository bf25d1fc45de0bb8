"""A GA4 landing page split into the path reports group by and the ad click ids it carries.

The connector needs this before anything is stored (query strings may hold personal data and
are never stored), so it lives here, not in mapping/: connectors import no other part.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from closedloop.records import CLICK_ID_PARAMETERS


def split_landing_page(url: str) -> tuple[str, dict[str, str]]:
    """'/pricing?gclid=Cj0&utm_source=x' -> ('/pricing', {'gclid': 'Cj0'}).

    The path is what rules and reports group by; the click ids are identity keys.  Every other
    query parameter is dropped, so personal data in query strings is never stored.
    """
    path, _, query = url.partition("?")
    if not query:
        return url, {}
    lowered = query.lower()
    if "%" not in query and not any(kind in lowered for kind in CLICK_ID_PARAMETERS):
        return path, {}  # no click id can be in it (keys may be percent-encoded: those are parsed)
    ids: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        kind = key.lower()
        if kind in CLICK_ID_PARAMETERS and value.strip() and kind not in ids:
            ids[kind] = value.strip()
    return path, ids
