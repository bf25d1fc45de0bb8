"""UTM hygiene: one spelling per value, with the raw values always kept beside it.

Sessions arrive as 'Facebook', 'fb', 'm.facebook.com' or 'facebook%2Ecom'; rules should be
written once, against one spelling.  Normalisation decodes, trims, lower-cases and applies the
admin's alias tables.  The raw touch travels with the result so reports and explanations can
show exactly what the source system sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from closedloop.mapping.aliases import NO_ALIASES, AliasTables
from closedloop.mapping.text import normalise_value
from closedloop.records import CLICK_ID_PARAMETERS

DIRECT_SOURCE = "(direct)"
NO_MEDIUM = "(none)"
NOT_SET = "(not set)"

TouchField = Literal[
    "source", "medium", "campaign", "content", "term", "landing_page", "referrer",
]


@dataclass(frozen=True, slots=True)
class RawTouch:
    """A session's or offline source's raw attribution fields, exactly as stored."""

    source: str = ""
    medium: str = ""
    campaign: str = ""
    content: str = ""
    term: str = ""
    landing_page: str = ""
    referrer: str = ""
    click_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class NormalisedUTM:
    source: str
    medium: str
    campaign: str
    content: str
    term: str
    landing_page: str
    referrer: str
    click_ids: frozenset[str]
    raw: RawTouch = field(compare=False)

    def value(self, name: str) -> str:
        return str(getattr(self, name))

    def as_raw(self) -> RawTouch:
        """The normalised values as a raw touch: normalising that again must change nothing."""
        return RawTouch(
            self.source, self.medium, self.campaign, self.content, self.term, self.landing_page,
            self.referrer, self.click_ids,
        )


def click_ids_in_url(url: str) -> frozenset[str]:
    """Kinds of click ids in a landing page's query string ('?gclid=...' -> {'gclid'})."""
    if "?" not in url:
        return frozenset()
    try:
        query = urlsplit(url.strip()).query
    except ValueError:
        return frozenset()
    return frozenset(
        key.lower() for key, value in parse_qsl(query, keep_blank_values=True)
        if key.lower() in CLICK_ID_PARAMETERS and value.strip()
    )


def normalise(raw: RawTouch, aliases: AliasTables = NO_ALIASES) -> NormalisedUTM:
    """Normalise every field; empty source/medium become GA4's '(direct)' / '(none)'.

    A touch with no source is direct traffic, as GA4 reports it; a source without a medium gets
    '(not set)', again GA4's spelling, so the default channel group treats both alike.
    """
    source = aliases.canonical("source", normalise_value(raw.source)) or DIRECT_SOURCE
    medium = aliases.canonical("medium", normalise_value(raw.medium))
    if not medium:
        medium = NO_MEDIUM if source == DIRECT_SOURCE else NOT_SET
    landing_page = normalise_value(raw.landing_page)
    # Read from the normalised URL so a second normalisation finds the same kinds.
    click_ids = frozenset(
        k for k in (normalise_value(kind) for kind in raw.click_ids) if k
    ) | click_ids_in_url(landing_page)
    return NormalisedUTM(
        source=source,
        medium=medium,
        campaign=aliases.canonical("campaign", normalise_value(raw.campaign)),
        content=aliases.canonical("content", normalise_value(raw.content)),
        term=aliases.canonical("term", normalise_value(raw.term)),
        landing_page=landing_page,
        referrer=normalise_value(raw.referrer),
        click_ids=click_ids,
        raw=raw,
    )
