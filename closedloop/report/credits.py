"""Channel credits of ``closedloop attribute`` as a table, CSV or JSON text.

Rendered to a string (not printed) so the standalone fast path and typer print the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

FORMATS = ("table", "csv", "json")


def render_credits(results: list[dict[str, Any]], output_format: str, *, many: bool) -> str:
    """``results`` as ``path_file_credits`` returns them; ``many`` keeps a one-model JSON a list."""
    if output_format == "json":
        return json.dumps(results if many else results[0], indent=2)
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["model", "channel", "conversions", "value"])
        for result in results:
            for channel, figures in result["channels"].items():
                writer.writerow([result["model"], channel, repr(figures["conversions"]), repr(figures["value"])])
        return buffer.getvalue().rstrip("\n")
    return _render_table(results)


def _render_table(results: list[dict[str, Any]]) -> str:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=io.StringIO(), width=120, color_system=None, force_terminal=False)
    for result in results:
        table = Table(title=f"model: {result['model']}")
        table.add_column("channel")
        table.add_column("conversions", justify="right")
        table.add_column("value", justify="right")
        for channel, figures in result["channels"].items():
            table.add_row(channel, f"{figures['conversions']:,.2f}", f"{figures['value']:,.2f}")
        console.print(table)
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue().rstrip("\n")
