"""Help screens drawn by hand, for the two that must appear at once.

``closedloop --help`` and ``closedloop attribute --help`` are what people type first and most;
typer's help needs typer, click and rich (a tenth of a second or more before the first line).
These screens keep typer's look (the same boxed sections) with nothing but the standard library.
Every other help screen is typer's own.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence

Row = tuple[str, str]


def width() -> int:
    """Columns to draw in: ``COLUMNS`` or the terminal's, 80 when piped, at most 100."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return min(int(columns), 100)
    try:
        return max(min(os.get_terminal_size(1).columns, 100), 40)
    except OSError:  # not a terminal (shutil's answer too, without shutil's imports)
        return 80


def panel(title: str, rows: Sequence[Row], columns: int) -> list[str]:
    """A box titled ``title`` with one ``name  text`` row per entry, the text wrapped."""
    inner = columns - 4
    name_width = max((len(name) for name, _ in rows), default=0)
    text_width = max(inner - name_width - 2, 20)
    lines = ["╭─ " + title + " " + "─" * max(columns - len(title) - 5, 0) + "╮"]
    for name, text in rows:
        wrapped = textwrap.wrap(text, text_width) or [""]
        for index, piece in enumerate(wrapped):
            left = name if index == 0 else ""
            body = f"{left:<{name_width}}  {piece}"
            lines.append("│ " + f"{body:<{inner}}"[: max(inner, len(body))] + " │")
    lines.append("╰" + "─" * (columns - 2) + "╯")
    return lines


def screen(usage: str, about: str, sections: Sequence[tuple[str, Sequence[Row]]]) -> str:
    """A whole help screen: usage line, the paragraph about the command, then the boxes."""
    columns = width()
    lines = ["", f" Usage: {usage}", ""]
    lines += [" " + line for line in textwrap.wrap(about, columns - 2)]
    lines.append("")
    for title, rows in sections:
        lines += panel(title, rows, columns)
    return "\n".join(lines) + "\n"
