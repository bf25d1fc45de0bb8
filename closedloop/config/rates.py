"""Read the rates file named by ``rates_file``: CSV ``date,currency,rate``, every problem at once.

The file is config (an admin's table, like the spend files), so a bad one is a ``ConfigError``
with file and line; the rows become ``closedloop.mapping.currency.Rates`` where they are used.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import date
from pathlib import Path

from closedloop.errors import ConfigError, Problem

HEADER = ("date", "currency", "rate")


def read_rates_file(path: str | Path | None, *, base_dir: Path | None = None) -> list[tuple[date, str, float]]:
    """``(day, currency, rate)`` rows; none when no file is configured."""
    if path is None:
        return []
    file = Path(path)
    if base_dir is not None and not file.is_absolute():
        file = base_dir / file
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        problem = Problem(str(file), None, "rates_file", f"cannot read the rates file: {exc.strerror}")
        raise ConfigError([problem]) from None
    return parse_rates_csv(text, file=str(file))


def parse_rates_csv(text: str, *, file: str) -> list[tuple[date, str, float]]:
    rows: list[tuple[date, str, float]] = []
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip().lower() for h in header) != HEADER:
        raise ConfigError([Problem(file, 1, "rates_file", "the first line must be: date,currency,rate")])
    for line, cells in enumerate(reader, start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != 3:
            problems.append(Problem(file, line, "rates_file", f"expected 3 cells, found {len(cells)}"))
            continue
        day_text, currency, rate_text = (c.strip() for c in cells)
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            problems.append(Problem(file, line, "rates_file", f"date {day_text!r} is not YYYY-MM-DD"))
            continue
        if len(currency) != 3 or not currency.isalpha():
            problems.append(Problem(file, line, "rates_file", f"currency {currency!r} is not an ISO 4217 code"))
            continue
        try:
            rate = float(rate_text)
        except ValueError:
            rate = math.nan
        if not math.isfinite(rate) or rate <= 0:
            problems.append(Problem(file, line, "rates_file", f"rate {rate_text!r} is not a positive number"))
            continue
        rows.append((day, currency.upper(), rate))
    if problems:
        raise ConfigError(problems)
    return rows
