"""Conditions compiled once into predicates over a normalised touch, with a traceable form.

``test`` is the hot path (short-circuits, no allocation beyond the regex engine); ``trace``
evaluates every leaf and records why each passed or failed, for ``mapping explain``.  Operands
are normalised exactly like the data, so case, spacing and URL-encoding never decide a match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from closedloop.config.mapping import Condition
from closedloop.mapping.text import normalise_value, wildcard_regex
from closedloop.mapping.utm import DIRECT_SOURCE, NO_MEDIUM, NOT_SET, NormalisedUTM

SourceCategories = Mapping[str, frozenset[str]]
_PLACEHOLDERS = frozenset({"", DIRECT_SOURCE, NO_MEDIUM, NOT_SET})
_MAX_LISTED = 6


@dataclass(frozen=True, slots=True)
class Check:
    """One evaluated leaf or group, indented by ``depth`` when printed."""

    description: str
    passed: bool
    depth: int


class CompiledCondition:
    __slots__ = ()

    def test(self, utm: NormalisedUTM) -> bool:
        raise NotImplementedError

    def trace(self, utm: NormalisedUTM, depth: int, out: list[Check]) -> bool:
        raise NotImplementedError


class _Always(CompiledCondition):
    __slots__ = ()

    def test(self, utm: NormalisedUTM) -> bool:
        return True

    def trace(self, utm: NormalisedUTM, depth: int, out: list[Check]) -> bool:
        out.append(Check("no conditions: matches every touch", True, depth))
        return True


ALWAYS = _Always()


class _Leaf(CompiledCondition):
    __slots__ = ("describe", "field", "negate", "predicate", "present")

    def __init__(
        self, field: str, predicate: Callable[[str], bool], describe: str, negate: bool,
        present: bool | None = None,
    ):
        self.field = field
        self.predicate = predicate
        self.describe = describe
        self.negate = negate
        self.present = present

    def _raw_result(self, utm: NormalisedUTM) -> bool:
        if self.field == "click_id":
            if self.present is not None:
                return bool(utm.click_ids) == self.present
            return any(self.predicate(kind) for kind in utm.click_ids)
        value = utm.value(self.field)
        if self.present is not None:
            return (value not in _PLACEHOLDERS) == self.present
        return self.predicate(value)

    def test(self, utm: NormalisedUTM) -> bool:
        return self._raw_result(utm) != self.negate

    def trace(self, utm: NormalisedUTM, depth: int, out: list[Check]) -> bool:
        result = self.test(utm)
        if self.field == "click_id":
            shown = ", ".join(sorted(utm.click_ids)) or "none"
            subject = f"click ids [{shown}]"
        else:
            subject = f"{self.field} {utm.value(self.field)!r}"
        prefix = "NOT " if self.negate else ""
        out.append(Check(f"{prefix}{subject} {self.describe}", result, depth))
        return result


class _Group(CompiledCondition):
    __slots__ = ("children", "kind", "negate")

    def __init__(self, kind: str, children: tuple[CompiledCondition, ...], negate: bool):
        self.kind = kind
        self.children = children
        self.negate = negate

    def test(self, utm: NormalisedUTM) -> bool:
        if self.kind == "all":
            result = all(child.test(utm) for child in self.children)
        else:
            result = any(child.test(utm) for child in self.children)
        return result != self.negate

    def trace(self, utm: NormalisedUTM, depth: int, out: list[Check]) -> bool:
        header = len(out)
        out.append(Check("", False, depth))
        results = [child.trace(utm, depth + 1, out) for child in self.children]
        combined = all(results) if self.kind == "all" else any(results)
        result = combined != self.negate
        wording = "all of" if self.kind == "all" else "any of"
        prefix = "NOT " if self.negate else ""
        out[header] = Check(f"{prefix}{wording}:", result, depth)
        return result


def _listed(values: list[str]) -> str:
    shown = ", ".join(values[:_MAX_LISTED])
    more = f", … {len(values) - _MAX_LISTED} more" if len(values) > _MAX_LISTED else ""
    return f"[{shown}{more}]"


def compile_condition(
    condition: Condition | None, categories: SourceCategories,
) -> CompiledCondition:
    if condition is None:
        return ALWAYS
    negate = condition.not_
    if condition.all is not None or condition.any is not None:
        kind = "all" if condition.all is not None else "any"
        members = condition.all if condition.all is not None else condition.any
        assert members is not None
        children = tuple(compile_condition(c, categories) for c in members)
        return _Group(kind, children, negate)
    field = condition.field
    assert field is not None  # the model validator guarantees a field on a leaf
    if condition.equals is not None:
        target = normalise_value(condition.equals)
        return _Leaf(field, target.__eq__, f"equals {target!r}", negate)
    if condition.in_ is not None:
        options = frozenset(normalise_value(v) for v in condition.in_)
        return _Leaf(field, options.__contains__, f"is one of {_listed(sorted(options))}", negate)
    if condition.like is not None:
        pattern = wildcard_regex(normalise_value(condition.like))
        return _Leaf(
            field, lambda v: pattern.fullmatch(v) is not None,
            f"is like {normalise_value(condition.like)!r}", negate,
        )
    if condition.contains is not None:
        needle = normalise_value(condition.contains)
        return _Leaf(field, lambda v: needle in v, f"contains {needle!r}", negate)
    if condition.regex is not None:
        regex = re.compile(condition.regex, re.IGNORECASE)
        return _Leaf(
            field, lambda v: regex.search(v) is not None,
            f"matches regex {condition.regex!r}", negate,
        )
    if condition.in_category is not None:
        sites = categories.get(condition.in_category, frozenset())
        return _Leaf(
            field, sites.__contains__,
            f"is on GA4's list of {condition.in_category} sites ({len(sites)} sites)", negate,
        )
    if condition.present is not None:
        wording = "is present" if condition.present else "is empty"
        return _Leaf(field, bool, wording, negate, present=condition.present)
    raise ValueError(f"condition has no operator: {condition!r}")  # unreachable after validation
