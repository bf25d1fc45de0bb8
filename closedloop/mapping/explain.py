"""Why a touch got its channel: every rule tried, in order, and every check each one made.

The data here is plain; ``render_explanation`` turns it into rich renderables for the terminal
so the same explanation can also be asserted on in tests or returned as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from closedloop.mapping.rules import Check
from closedloop.mapping.utm import NormalisedUTM, RawTouch

if TYPE_CHECKING:
    from closedloop.mapping.channels import ChannelMatch

_FIELDS = ("source", "medium", "campaign", "content", "term", "landing_page", "referrer")


@dataclass(frozen=True, slots=True)
class RuleTrace:
    label: str
    channel: str
    matched: bool
    checks: tuple[Check, ...]

    def first_failure(self) -> Check | None:
        """The top-most failing check: the reason this rule did not apply."""
        return next((c for c in self.checks if not c.passed), None)


@dataclass(frozen=True, slots=True)
class Explanation:
    raw: RawTouch
    normalised: NormalisedUTM
    match: ChannelMatch
    tried: tuple[RuleTrace, ...]


def render_explanation(explanation: Explanation, *, verbose: bool = False) -> RenderableType:
    values = Table(title="Values", show_edge=False)
    values.add_column("field")
    values.add_column("raw")
    values.add_column("normalised")
    for name in _FIELDS:
        raw_value = getattr(explanation.raw, name)
        norm_value = explanation.normalised.value(name)
        if raw_value or norm_value:
            values.add_row(name, raw_value, norm_value)
    kinds = ", ".join(sorted(explanation.normalised.click_ids))
    if kinds:
        values.add_row("click_ids", ", ".join(sorted(explanation.raw.click_ids)), kinds)

    rules = Table(title="Rules tried (first match wins)", show_edge=False)
    rules.add_column("#", justify="right")
    rules.add_column("rule")
    rules.add_column("channel")
    rules.add_column("result")
    for index, trace in enumerate(explanation.tried, 1):
        if trace.matched:
            result = Text("MATCHED", style="bold green")
        else:
            failure = trace.first_failure()
            result = Text("no: " + (_deepest_reason(trace) if failure else ""), style="dim")
        rules.add_row(str(index), trace.label, trace.channel, result)

    parts: list[RenderableType] = [values, rules]
    matched = next((t for t in explanation.tried if t.matched), None)
    if matched is not None:
        parts.append(_checks_table(f"Why {matched.label} matched", matched.checks))
    if verbose:
        for trace in explanation.tried:
            if not trace.matched:
                parts.append(_checks_table(f"Why {trace.label} did not match", trace.checks))
    match = explanation.match
    sub = f" / {match.subchannel}" if match.subchannel else ""
    parts.append(Text.assemble(
        ("Channel: ", "bold"), (f"{match.channel}{sub}", "bold cyan"), f"   ({match.rule})",
    ))
    return Group(*parts)


def _deepest_reason(trace: RuleTrace) -> str:
    """The first failing leaf (the most specific reason), falling back to the top failure."""
    failing = [c for c in trace.checks if not c.passed]
    leaves = [c for c in failing if not c.description.endswith(":")]
    chosen = leaves[0] if leaves else failing[0]
    return chosen.description


def _checks_table(title: str, checks: tuple[Check, ...]) -> Table:
    table = Table(title=title, show_header=False, show_edge=False)
    table.add_column("ok")
    table.add_column("check")
    for check in checks:
        mark = Text("✓", style="green") if check.passed else Text("✗", style="red")
        table.add_row(mark, "  " * check.depth + check.description)
    return table
