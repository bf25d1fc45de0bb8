"""GA4's default channel group, shipped as data so an admin can read exactly what it does.

The rules and the source-category lists are package data (``ga4_default_channels.yaml``,
``ga4_source_categories.yaml``) validated with the same model as the admin's own rules, so the
built-in set can never use a condition an admin could not write.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import TypeAdapter

from closedloop.config.mapping import ChannelRule
from closedloop.mapping.text import normalise_value

RULES_FILE = "ga4_default_channels.yaml"
CATEGORIES_FILE = "ga4_source_categories.yaml"
CATEGORY_NAMES = ("search", "social", "shopping", "video")

_RULES = TypeAdapter(list[ChannelRule])


def _read(name: str) -> Any:
    return yaml.safe_load(resources.files("closedloop.mapping").joinpath(name).read_text("utf-8"))


@lru_cache(maxsize=1)
def default_channel_rules() -> tuple[ChannelRule, ...]:
    return tuple(_RULES.validate_python(_read(RULES_FILE)["rules"]))


@lru_cache(maxsize=2)
def source_categories(*, include_additions: bool = True) -> dict[str, frozenset[str]]:
    """Category -> normalised site names; Google's list, plus closedloop's additions if asked."""
    data = _read(CATEGORIES_FILE)
    sections = [data["google"]]
    if include_additions:
        sections.append(data.get("closedloop_additions") or {})
    out: dict[str, frozenset[str]] = {}
    for name in CATEGORY_NAMES:
        sites: set[str] = set()
        for section in sections:
            sites.update(normalise_value(str(site)) for site in section.get(name) or [])
        out[name] = frozenset(sites)
    return out
