"""Read the analyst's spend files (CSV or YAML) into plain per-day entries, every problem at once.

CSV: a header row with ``date,channel,cost`` and optionally ``campaign`` (any order, any case)::

    date,channel,campaign,cost
    2026-05-01,Paid Search,brand,120.50
    2026-05-01,Paid Social,,80

YAML: a list of entries, each for one day (``date``) or a whole month (``month``)::

    - {date: 2026-05-01, channel: Paid Search, campaign: brand, cost: 120.50}
    - {month: 2026-05, channel: Events, cost: 3100}   # 100.00 on each of May's 31 days

A month's cost is spread evenly over its days, so an invoice that covers a month lines up with
the daily GA4 cost and with any ``--since`` cut.  Rows repeating a day, channel and campaign
are added up (two invoices for one day are two rows).  Costs are plain numbers >= 0 in the
config's ``attribution.currency``; dates are ISO ``YYYY-MM-DD``.

Problems name ``file:line`` and the field with its column, and all of them are reported
together, through ``closedloop.errors``' ``Problem``/``ConfigError``, so the CLI prints them alike.
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import yaml

from closedloop.errors import ConfigError, Problem

CSV_REQUIRED = ("date", "channel", "cost")
CSV_OPTIONAL = ("campaign",)
YAML_FIELDS = ("date", "month", "channel", "campaign", "cost")
MAX_ORIGIN = 32  # spend.origin column width
MAX_CHANNEL = 128
MAX_CAMPAIGN = 512
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_MONTH = re.compile(r"^\d{4}-\d{2}$")


@dataclass(frozen=True, slots=True)
class SpendEntry:
    day: date
    channel: str
    campaign: str
    cost: float


@dataclass(frozen=True, slots=True)
class SpendFile:
    path: Path
    origin: str  # "file:<basename>", the key the store replaces this file's rows under
    entries: list[SpendEntry]

    @property
    def total(self) -> float:
        return sum(e.cost for e in self.entries)


def spend_origin(path: Path) -> str:
    """``file:<basename>``; a name too long for the column keeps a prefix and a short hash."""
    origin = f"file:{path.name}"
    if len(origin) <= MAX_ORIGIN:
        return origin
    digest = hashlib.sha1(path.name.encode("utf-8")).hexdigest()[:6]
    return f"file:{path.name[: MAX_ORIGIN - len('file:') - 7]}~{digest}"


def load_spend_files(paths: Sequence[str | Path], *, base_dir: Path | None = None) -> list[SpendFile]:
    """Every file parsed, or ``ConfigError`` listing every problem of every file."""
    problems: list[Problem] = []
    files: list[SpendFile] = []
    origins: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        origin = spend_origin(path)
        if origin in origins:
            problems.append(Problem(str(path), None, "", f"same file name as {origins[origin]}; rename one"))
            continue
        origins[origin] = path
        try:
            text = path.read_text(encoding="utf-8-sig")  # Excel's CSV export starts with a BOM
        except FileNotFoundError:
            problems.append(Problem(str(path), None, "", "spend file not found"))
            continue
        except UnicodeDecodeError:
            problems.append(Problem(str(path), None, "", "not UTF-8 text; save it as UTF-8"))
            continue
        except OSError as exc:
            problems.append(Problem(str(path), None, "", f"cannot read: {exc.strerror}"))
            continue
        if path.suffix.lower() == ".csv":
            entries, found = parse_spend_csv(text, file=str(path))
        elif path.suffix.lower() in (".yaml", ".yml"):
            entries, found = parse_spend_yaml(text, file=str(path))
        else:
            found = [Problem(str(path), None, "", "spend files must be .csv, .yaml or .yml")]
            entries = []
        problems.extend(found)
        files.append(SpendFile(path, origin, entries))
    if problems:
        raise ConfigError(problems)
    return files


class _Row:
    """Collects one row's fields and problems so a bad row reports everything wrong with it."""

    def __init__(self, file: str, line: int) -> None:
        self.file = file
        self.line = line
        self.problems: list[Problem] = []

    def problem(self, field: str, message: str, line: int | None = None) -> None:
        self.problems.append(Problem(self.file, line or self.line, field, message))

    def day(self, text: str, field: str, line: int | None = None) -> date | None:
        text = text.strip()
        if not _ISO_DAY.match(text):
            self.problem(field, f"not a date {text!r}; write YYYY-MM-DD", line)
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            self.problem(field, f"no such day {text!r}", line)
            return None

    def month(self, text: str, field: str, line: int | None = None) -> list[date] | None:
        text = text.strip()
        if not _ISO_MONTH.match(text) or not 1 <= int(text[5:]) <= 12:
            self.problem(field, f"not a month {text!r}; write YYYY-MM", line)
            return None
        year, month = int(text[:4]), int(text[5:])
        first = date(year, month, 1)
        days = calendar.monthrange(year, month)[1]
        return [first + timedelta(days=i) for i in range(days)]

    def cost(self, text: str, field: str, line: int | None = None) -> float | None:
        text = text.strip()
        try:
            value = float(text)
        except ValueError:
            self.problem(field, f"not a number {text!r}; write e.g. 1234.50 (no separators)", line)
            return None
        if not math.isfinite(value) or value < 0:
            self.problem(field, f"cost must be a finite number >= 0, got {text!r}", line)
            return None
        return value

    def text(self, value: str, field: str, limit: int, *, required: bool, line: int | None = None) -> str:
        value = value.strip()
        if required and not value:
            self.problem(field, "must not be empty", line)
        elif len(value) > limit:
            self.problem(field, f"longer than {limit} characters", line)
        return value


def parse_spend_csv(text: str, *, file: str) -> tuple[list[SpendEntry], list[Problem]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return [], [Problem(file, 1, "", "empty file; the first row must be date,channel,campaign,cost")]
    except csv.Error as exc:
        return [], [Problem(file, 1, "", f"not valid CSV: {exc}")]
    names = [h.strip().lower() for h in header]
    problems = [
        Problem(
            file,
            1,
            f"{name or '(empty)'} (column {i + 1})",
            f"unknown column; expected {', '.join(CSV_REQUIRED + CSV_OPTIONAL)}",
        )
        for i, name in enumerate(names)
        if name not in CSV_REQUIRED + CSV_OPTIONAL
    ]
    problems += [Problem(file, 1, name, "required column is missing") for name in CSV_REQUIRED if name not in names]
    problems += [
        Problem(file, 1, f"{name} (column {i + 1})", "column appears twice")
        for i, name in enumerate(names)
        if name in names[:i]
    ]
    if problems:
        return [], problems
    column = {name: names.index(name) for name in names}
    sums: dict[tuple[date, str, str], float] = {}
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(file, reader.line_num, "", f"not valid CSV: {exc}"))
            break
        if not any(c.strip() for c in cells):
            continue
        row = _Row(file, reader.line_num)
        if len(cells) != len(names):
            row.problem("", f"{len(cells)} fields, but the header has {len(names)}")
            problems.extend(row.problems)
            continue

        def where(name: str) -> str:
            return f"{name} (column {column[name] + 1})"

        day = row.day(cells[column["date"]], where("date"))
        channel = row.text(cells[column["channel"]], where("channel"), MAX_CHANNEL, required=True)
        campaign = (
            row.text(cells[column["campaign"]], where("campaign"), MAX_CAMPAIGN, required=False)
            if "campaign" in column
            else ""
        )
        cost = row.cost(cells[column["cost"]], where("cost"))
        if row.problems or day is None or cost is None:
            problems.extend(row.problems)
            continue
        key = (day, channel, campaign)
        sums[key] = sums.get(key, 0.0) + cost
    return [SpendEntry(d, ch, ca, cost) for (d, ch, ca), cost in sums.items()], problems


def parse_spend_yaml(text: str, *, file: str) -> tuple[list[SpendEntry], list[Problem]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [], [Problem(file, mark.line + 1 if mark else None, "", f"not valid YAML: {exc}")]
    if root is None:
        return [], []
    if not isinstance(root, yaml.SequenceNode):
        return [], [Problem(file, root.start_mark.line + 1, "", "must be a list of spend entries")]
    problems: list[Problem] = []
    sums: dict[tuple[date, str, str], float] = {}
    for index, item in enumerate(root.value):
        row = _Row(file, item.start_mark.line + 1)
        parsed = _yaml_entry(item, f"[{index}]", row)
        if parsed is None:
            problems.extend(row.problems)
            continue
        days, channel, campaign, cost = parsed
        share = cost / len(days)
        for day in days:
            key = (day, channel, campaign)
            sums[key] = sums.get(key, 0.0) + share
    return [SpendEntry(d, ch, ca, cost) for (d, ch, ca), cost in sums.items()], problems


def _yaml_entry(item: yaml.Node, prefix: str, row: _Row) -> tuple[list[date], str, str, float] | None:
    """One YAML entry as (days, channel, campaign, cost), or None with ``row.problems`` filled."""
    if not isinstance(item, yaml.MappingNode):
        row.problem(prefix, "must be a mapping like {date: ..., channel: ..., cost: ...}")
        return None
    values: dict[str, tuple[str, int]] = {}
    for key_node, value_node in item.value:
        key = str(key_node.value)
        line = key_node.start_mark.line + 1
        label = f"{prefix}.{key} (column {value_node.start_mark.column + 1})"
        if key not in YAML_FIELDS:
            row.problem(f"{prefix}.{key}", f"unknown field; expected {', '.join(YAML_FIELDS)}", line)
        elif key in values:
            row.problem(label, "duplicate key", line)
        elif not isinstance(value_node, yaml.ScalarNode):
            row.problem(label, "must be a single value", line)
        else:
            values[key] = (str(value_node.value), line)

    def field(name: str) -> str:
        return f"{prefix}.{name}"

    days: list[date] | None = None
    if ("date" in values) == ("month" in values):
        row.problem(prefix, "give either date: YYYY-MM-DD or month: YYYY-MM")
    elif "date" in values:
        day = row.day(values["date"][0], field("date"), values["date"][1])
        days = [day] if day else None
    else:
        days = row.month(values["month"][0], field("month"), values["month"][1])
    channel = campaign = ""
    if "channel" in values:
        channel = row.text(
            values["channel"][0], field("channel"), MAX_CHANNEL, required=True, line=values["channel"][1]
        )
    else:
        row.problem(field("channel"), "required field is missing")
    if "campaign" in values:
        campaign = row.text(
            values["campaign"][0], field("campaign"), MAX_CAMPAIGN, required=False, line=values["campaign"][1]
        )
    cost: float | None = None
    if "cost" in values:
        cost = row.cost(values["cost"][0], field("cost"), values["cost"][1])
    else:
        row.problem(field("cost"), "required field is missing")
    if row.problems or not days or cost is None:
        return None
    return days, channel, campaign, cost
