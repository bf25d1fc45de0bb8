"""Alias tables: many spellings of one source or medium collapse to the admin's canonical value.

Tables are keyed by already-normalised values, so 'FB', ' fb ' and 'fb' all hit the same entry.
A canonical value maps to itself before any alias is tried, which keeps normalisation
idempotent even when a wildcard alias would also match the canonical spelling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from closedloop.config.mapping import AliasConfig, UTMField
from closedloop.mapping.text import normalise_value, wildcard_regex

_FIELDS: tuple[UTMField, ...] = ("source", "medium", "campaign", "content", "term")


@dataclass(frozen=True, slots=True)
class _Table:
    canonicals: frozenset[str]
    exact: Mapping[str, str]
    patterns: Sequence[tuple[re.Pattern[str], str]]

    def lookup(self, value: str) -> str:
        if value in self.canonicals:
            return value
        hit = self.exact.get(value)
        if hit is not None:
            return hit
        for pattern, canonical in self.patterns:
            if pattern.fullmatch(value):
                return canonical
        return value


@dataclass(frozen=True, slots=True)
class AliasTables:
    tables: Mapping[str, _Table] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: AliasConfig) -> AliasTables:
        tables: dict[str, _Table] = {}
        for name in _FIELDS:
            raw: dict[str, list[str]] = getattr(config, name)
            tables[name] = cls._table(raw)
        return cls(tables)

    @classmethod
    def from_mapping(cls, tables: Mapping[str, Mapping[str, Sequence[str]]]) -> AliasTables:
        """For tests and tools: the same shape as the YAML, without pydantic."""
        return cls({name: cls._table(table) for name, table in tables.items()})

    @staticmethod
    def _table(raw: Mapping[str, Sequence[str]]) -> _Table:
        canonicals = frozenset(normalise_value(c) for c in raw)
        exact: dict[str, str] = {}
        patterns: list[tuple[re.Pattern[str], str]] = []
        for canonical, aliases in raw.items():
            target = normalise_value(canonical)
            for alias in aliases:
                key = normalise_value(alias)
                if "*" in key or "?" in key:
                    patterns.append((wildcard_regex(key), target))
                else:
                    exact[key] = target
        return _Table(canonicals, exact, tuple(patterns))

    def canonical(self, field_name: str, value: str) -> str:
        table = self.tables.get(field_name)
        return table.lookup(value) if table is not None else value


NO_ALIASES = AliasTables()
