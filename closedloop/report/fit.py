"""Tables that fit the terminal they are printed on, never a cell cut to '…'.

A ``FitTable`` measures itself at render time against the console's width (80 when output is
piped, as in ``docker exec`` or a log file).  Text columns marked ``wrap`` fold onto several
lines; when the figures still do not fit, the table is split into parts that each repeat the
key columns (the channel, the campaign), stacked one under the other.  Short headers with a
legend keep the parts few.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType
from rich.table import Table
from rich.text import Text

Justify = Literal["left", "right"]
WRAP_WORD = 24


@dataclass(frozen=True, slots=True)
class Col:
    """A column: ``key`` columns repeat in every part; ``wrap`` text may fold onto lines."""

    name: str
    justify: Justify = "right"
    key: bool = False
    wrap: bool = False


@dataclass(slots=True)
class FitTable:
    title: str
    columns: Sequence[Col]
    rows: list[list[str]] = field(default_factory=list)
    footer: list[list[str]] = field(default_factory=list)  # after a rule, in bold (totals)
    legend: dict[str, str] = field(default_factory=dict)  # abbreviation -> meaning, printed under the table
    note: str = ""  # one line under the table (e.g. what fractional counts mean)

    def add_row(self, *cells: str) -> None:
        self.rows.append(list(cells))

    def _table(self, indexes: Sequence[int], title: str) -> Table:
        table = Table(title=title or None, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                      show_edge=False, pad_edge=False, padding=(0, 1))
        for i in indexes:
            c = self.columns[i]
            table.add_column(c.name, justify=c.justify, no_wrap=not c.wrap,
                             overflow="fold")
        for row in self.rows:
            table.add_row(*(row[i] for i in indexes))
        if self.footer:
            table.add_section()
            for row in self.footer:
                table.add_row(*(row[i] for i in indexes), style="bold")
        return table

    def parts(self, width: int) -> list[Table]:
        """Column groups, each as wide as fits ``width`` (a group of one column fits regardless)."""
        keys = [i for i, c in enumerate(self.columns) if c.key]
        rest = [i for i, c in enumerate(self.columns) if not c.key]
        groups: list[list[int]] = []
        current: list[int] = []
        for i in rest:
            trial = sorted([*keys, *current, i])
            if not current or self._min_width(trial) <= width:
                current.append(i)
                continue
            groups.append(current)
            current = [i]
        groups.append(current)
        tables = []
        for n, group in enumerate(groups):
            suffix = "" if len(groups) == 1 else f" ({n + 1}/{len(groups)})"
            tables.append(self._table(sorted([*keys, *group]), self.title + suffix if self.title else ""))
        return tables

    def _min_width(self, indexes: Sequence[int]) -> int:
        """Narrowest the columns can be without cutting: figures whole, wrapped text at its longest
        word (a word past ``WRAP_WORD`` characters folds), plus 3 characters between columns."""
        total = 3 * (len(indexes) - 1)
        for i in indexes:
            cells = [self.columns[i].name, *(row[i] for row in (*self.rows, *self.footer))]
            if self.columns[i].wrap:
                words = [w for cell in cells for line in cell.splitlines() for w in line.split()]
                total += max((min(cell_len(w), WRAP_WORD) for w in words), default=1)
            else:
                total += max((cell_len(line) for cell in cells for line in cell.splitlines()), default=1)
        return total

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[RenderableType]:
        yield from self.parts(options.max_width)
        if self.legend:
            yield Text("  ".join(f"{k} = {v}" for k, v in self.legend.items()), style="dim")
        if self.note:
            yield Text(self.note, style="dim")


def render_text(renderable: RenderableType, *, width: int = 80) -> str:
    """What ``renderable`` prints on a ``width``-column pipe (no colour): for tests and logs."""
    import io

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue()
