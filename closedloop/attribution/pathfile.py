"""Read path-level data in channelattribution's format into an aggregated batch.

Columns ``path, total_conversions, total_conversion_value, total_null``; channels joined by
``" > "``.  Both aggregated files and one-row-per-journey files work: rows are summed per unique
path at once, which is what keeps a million-journey file fast and small.

The separator is matched without its surrounding spaces and each channel name is stripped, as
channelattribution does (``a>b`` and ``a > b`` are the same path).  The value and null columns
are optional unless named explicitly; missing means 0.  Errors name the file and the line.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np

from closedloop.attribution.batch import TouchBatch, batch_from_codes

DEFAULT_PATH_COLUMN = "path"
DEFAULT_CONVERSIONS_COLUMN = "total_conversions"
DEFAULT_VALUE_COLUMN = "total_conversion_value"
DEFAULT_NULL_COLUMN = "total_null"
DEFAULT_SEPARATOR = " > "


class PathFileError(ValueError):
    """A path file that cannot be read as asked; the message names file and line."""


@dataclass(frozen=True, slots=True)
class PathColumns:
    path: str = DEFAULT_PATH_COLUMN
    conversions: str = DEFAULT_CONVERSIONS_COLUMN
    value: str | None = None
    nulls: str | None = None


def read_path_file(
    file: Path,
    *,
    columns: PathColumns = PathColumns(),
    separator: str = DEFAULT_SEPARATOR,
    direct_channels: Collection[str] = ("direct",),
    step_days: float = 1.0,
) -> TouchBatch:
    """Aggregate a path file by unique path into a batch.

    Fast path: a UTF-8 file without quote characters is split into lines, identical lines are
    counted (one-row-per-journey files repeat most lines) and only distinct lines are parsed,
    as bytes.  Any problem there, or a quoted file, goes through the careful ``csv`` reader,
    which reports the exact file:line of the problem.
    """
    if not separator:
        raise PathFileError("the path separator must not be empty")
    try:
        data = file.read_bytes()
    except OSError as error:
        raise PathFileError(f"{file}: cannot open: {error.strerror}") from None
    fast = _read_unquoted(data, columns) if b'"' not in data else None
    del data
    if fast is not None:
        unique_paths, conversions, value, nulls = fast
        try:
            return _encode(
                file,
                unique_paths,
                None,
                separator,
                conversions=conversions,
                value=value,
                nulls=nulls,
                direct_channels=direct_channels,
                step_days=step_days,
            )
        except (PathFileError, UnicodeDecodeError):
            pass  # the careful reader finds the line to report
    return _read_with_csv(
        file,
        columns=columns,
        separator=separator,
        direct_channels=direct_channels,
        step_days=step_days,
    )


def _read_unquoted(
    data: bytes, columns: PathColumns
) -> tuple[list[bytes], np.ndarray, np.ndarray, np.ndarray] | None:
    """Sums per unique path of a quote-free file, or ``None`` to let the careful reader explain."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    header_end = data.find(b"\n")
    newline = b"\r\n" if header_end > 0 and data[header_end - 1 : header_end] == b"\r" else b"\n"
    lines = data.split(newline)
    try:
        names = [name.strip() for name in lines[0].decode("utf-8").split(",")]
    except UnicodeDecodeError:
        return None
    wanted = [
        columns.path,
        columns.conversions,
        columns.value or DEFAULT_VALUE_COLUMN,
        columns.nulls or DEFAULT_NULL_COLUMN,
    ]
    if wanted[0] not in names or wanted[1] not in names:
        return None
    if (columns.value and wanted[2] not in names) or (columns.nulls and wanted[3] not in names):
        return None
    counted = Counter(lines[1:])
    del lines
    counted.pop(b"", None)
    width = len(names)
    distinct = len(counted)
    if distinct == 0:
        empty = np.zeros(0)
        return [], empty, empty, empty
    commas = np.fromiter(map(bytes.count, counted, repeat(b",")), dtype=np.int64, count=distinct)
    if (commas != width - 1).any():
        return None
    fields = b",".join(counted).split(b",")
    multiplicity = np.fromiter(counted.values(), dtype=np.float64, count=distinct)
    path_field = fields[names.index(wanted[0]) :: width]
    path_id = dict.fromkeys(path_field)
    for number, key in enumerate(path_id):
        path_id[key] = number
    ids = np.fromiter(map(path_id.__getitem__, path_field), dtype=np.int64, count=distinct)
    sums: list[np.ndarray] = []
    for name in wanted[1:]:
        if name not in names:
            sums.append(np.zeros(len(path_id)))
            continue
        try:
            numbers = np.fromiter(
                map(float, fields[names.index(name) :: width]), dtype=np.float64, count=distinct
            )
        except ValueError:
            return None
        if not np.isfinite(numbers).all() or (numbers < 0).any():
            return None
        sums.append(np.bincount(ids, weights=numbers * multiplicity, minlength=len(path_id)))
    return list(path_id), sums[0], sums[1], sums[2]


def _read_with_csv(
    file: Path,
    *,
    columns: PathColumns = PathColumns(),
    separator: str = DEFAULT_SEPARATOR,
    direct_channels: Collection[str] = ("direct",),
    step_days: float = 1.0,
) -> TouchBatch:
    try:
        handle = open(file, newline="", encoding="utf-8-sig")  # noqa: SIM115
    except OSError as error:
        raise PathFileError(f"{file}: cannot open: {error.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise PathFileError(f"{file}: empty file, expected a header row")
        names = [name.strip() for name in header]
        path_at = _required_column(file, names, columns.path)
        conversions_at = _required_column(file, names, columns.conversions)
        value_at = _column(
            file, names, columns.value or DEFAULT_VALUE_COLUMN, required=columns.value is not None
        )
        nulls_at = _column(
            file, names, columns.nulls or DEFAULT_NULL_COLUMN, required=columns.nulls is not None
        )
        width = len(names)
        path_id: dict[str, int] = {}
        ids: list[int] = []
        conversions_text: list[str] = []
        value_text: list[str] = []
        nulls_text: list[str] = []
        lines: list[int] = []
        for row in reader:
            if len(row) != width:
                if not row:
                    continue
                raise PathFileError(
                    f"{file}:{reader.line_num}: expected {width} fields, found {len(row)}"
                )
            key = row[path_at]
            found = path_id.get(key)
            if found is None:
                found = path_id[key] = len(path_id)
            ids.append(found)
            conversions_text.append(row[conversions_at])
            if value_at is not None:
                value_text.append(row[value_at])
            if nulls_at is not None:
                nulls_text.append(row[nulls_at])
            lines.append(reader.line_num)
    path_count = len(path_id)
    id_array = np.asarray(ids, dtype=np.int64)
    conversions = _summed(file, columns.conversions, conversions_text, lines, id_array, path_count)
    value = (
        _summed(
            file, columns.value or DEFAULT_VALUE_COLUMN, value_text, lines, id_array, path_count
        )
        if value_at is not None
        else np.zeros(path_count)
    )
    nulls = (
        _summed(
            file, columns.nulls or DEFAULT_NULL_COLUMN, nulls_text, lines, id_array, path_count
        )
        if nulls_at is not None
        else np.zeros(path_count)
    )
    first_line = _first_line_of_each(id_array, lines, path_count)
    return _encode(
        file,
        [path.encode("utf-8") for path in path_id],
        first_line,
        separator,
        conversions=conversions,
        value=value,
        nulls=nulls,
        direct_channels=direct_channels,
        step_days=step_days,
    )


def _required_column(file: Path, names: Sequence[str], wanted: str) -> int:
    found = _column(file, names, wanted, required=True)
    assert found is not None
    return found


def _column(file: Path, names: Sequence[str], wanted: str, *, required: bool) -> int | None:
    if wanted in names:
        return names.index(wanted)
    if required:
        raise PathFileError(
            f"{file}: missing column {wanted!r}; the header has {', '.join(map(repr, names))}"
        )
    return None


def _summed(
    file: Path,
    column: str,
    texts: list[str],
    lines: list[int],
    ids: np.ndarray,
    path_count: int,
) -> np.ndarray:
    try:
        numbers = np.fromiter(map(float, texts), dtype=np.float64, count=len(texts))
        bad = ~np.isfinite(numbers) | (numbers < 0)
    except ValueError:
        numbers = None
        bad = None
    if numbers is None or bad is None or bad.any():
        for text, line in zip(texts, lines, strict=True):
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not math.isfinite(number) or number < 0:
                raise PathFileError(
                    f"{file}:{line}: column {column!r}: {text!r} is not a non-negative number"
                ) from None
        raise AssertionError("unreachable: a bad number was found but not located")
    return np.bincount(ids, weights=numbers, minlength=path_count)


def _first_line_of_each(ids: np.ndarray, lines: list[int], path_count: int) -> np.ndarray:
    first = np.full(path_count, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, ids, np.asarray(lines, dtype=np.int64))
    return first


def _encode(
    file: Path,
    unique_paths: list[bytes],
    first_line: np.ndarray | None,
    separator: str,
    *,
    conversions: np.ndarray,
    value: np.ndarray,
    nulls: np.ndarray,
    direct_channels: Collection[str],
    step_days: float,
) -> TouchBatch:
    """Channel codes of the unique paths: one join and one split, names decoded once each."""
    split_on = (separator.strip() or separator).encode("utf-8")
    tokens = split_on.join(unique_paths).split(split_on)
    lengths = np.fromiter(
        map(bytes.count, unique_paths, repeat(split_on)), dtype=np.int64, count=len(unique_paths)
    )
    lengths += 1
    code_of: dict[str, int] = {}
    code_of_token: dict[bytes, int] = {}
    for token in dict.fromkeys(tokens):
        name = token.strip().decode("utf-8")
        if not name:
            index = _first_path_with_empty_channel(unique_paths, split_on)
            where = f"{file}" if first_line is None else f"{file}:{int(first_line[index])}"
            path = unique_paths[index].decode("utf-8", errors="replace")
            raise PathFileError(f"{where}: path {path!r} has an empty channel name")
        code_of_token[token] = code_of.setdefault(name, len(code_of))
    codes = np.fromiter(map(code_of_token.__getitem__, tokens), dtype=np.int64, count=len(tokens))
    return batch_from_codes(
        tuple(code_of),
        codes,
        lengths,
        conversions=conversions,
        value=value,
        nulls=nulls,
        direct_channels=direct_channels,
        step_days=step_days,
    )


def _first_path_with_empty_channel(unique_paths: list[bytes], split_on: bytes) -> int:
    for index, path in enumerate(unique_paths):
        if not all(channel.strip() for channel in path.split(split_on)):
            return index
    raise AssertionError("no path with an empty channel")
