"""Read path-level data in channelattribution's format into an aggregated batch.

Columns ``path, total_conversions, total_conversion_value, total_null``; channels joined by
``" > "``.  Both aggregated files and one-row-per-journey files work: rows are summed per unique
path at once, which is what keeps a million-journey file fast and small.

The separator is matched without its surrounding spaces and each channel name is stripped, as
channelattribution does (``a>b`` and ``a > b`` are the same path).  The value and null columns
are optional unless named explicitly; missing means 0.  Errors name the file and the line.

Two readers give the same batch.  The fast one takes plain files (no quotes, one kind of line
ending, UTF-8): one-row-per-journey files repeat most lines, so identical raw lines are counted
first and only distinct lines are parsed.  Large files are cut at line boundaries into one chunk
per core; forked workers aggregate their chunks and the parent merges them in file order, so
path and channel order match a single pass.  Whenever the fast reader meets anything it does not
expect, it gives up and the careful ``csv`` reader reads the file again; being row by row, that
one knows the line of every problem, so error messages never depend on the aggregation.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from closedloop.attribution.batch import FloatArray, IntArray, TouchBatch, batch_from_codes
from closedloop.errors import PathFileError
from closedloop.files.pathfile_fast import (
    DEFAULT_NULL_COLUMN,
    DEFAULT_SEPARATOR,
    DEFAULT_VALUE_COLUMN,
    PathColumns,
    aggregate,
    encode_paths,
    plain_layout,
)
from closedloop.files.pathfile_vector import read_plain

if TYPE_CHECKING:
    from closedloop.config.attribution import AttributionConfig


def path_file_credits(
    paths_file: Path,
    model: str,
    *,
    config: AttributionConfig | None,
    columns: PathColumns | None = None,
    separator: str = DEFAULT_SEPARATOR,
) -> list[dict[str, Any]]:
    """``attribution.path_credits.path_credits`` over ``paths_file``: what ``closedloop attribute`` prints.

    Raises ``UsageError`` for an unknown model (before the file is read) and ``PathFileError``
    for a file that cannot be read.
    """
    from closedloop.attribution.path_credits import path_credits

    def read(direct_channels: Collection[str], step_days: float) -> TouchBatch:
        return read_path_file(paths_file, columns=columns or PathColumns(), separator=separator,
                              direct_channels=direct_channels, step_days=step_days)  # fmt: skip

    return path_credits(read, model, config=config)


def read_path_file(
    file: Path,
    *,
    columns: PathColumns = PathColumns(),
    separator: str = DEFAULT_SEPARATOR,
    direct_channels: Collection[str] = ("direct",),
    step_days: float = 1.0,
    workers: int | None = None,
) -> TouchBatch:
    """Aggregate a path file by unique path into a batch.

    ``workers`` None tries the vectorised reader (one process, ``pathfile_vector``) first; the
    forked reader then uses the cores idle at the moment for files of ``PARALLEL_MIN_BYTES``
    and more where ``os.fork`` exists.  A number asks for the forked reader with that many.
    """
    if not separator:
        raise PathFileError("the path separator must not be empty")
    try:
        data = file.read_bytes()
    except OSError as error:
        raise PathFileError(f"{file}: cannot open: {error.strerror}") from None
    layout = plain_layout(data, columns, separator)
    encoded = None
    if layout is not None and workers is None:
        encoded = read_plain(data, layout)
    if layout is not None and encoded is None:
        aggregated = aggregate(data, layout, workers)
        if aggregated is not None:
            encoded = aggregated.channel_names, aggregated.codes, aggregated.lengths, aggregated.sums
    del data
    if encoded is None:
        return _read_with_csv(file, columns=columns, separator=separator, direct_channels=direct_channels,
                              step_days=step_days)  # fmt: skip
    channel_names, codes, lengths, sums = encoded
    return batch_from_codes(
        channel_names,
        codes,
        lengths,
        conversions=sums[0],
        value=sums[1],
        nulls=sums[2],
        direct_channels=direct_channels,
        step_days=step_days,
    )


def _read_with_csv(
    file: Path,
    *,
    columns: PathColumns,
    separator: str,
    direct_channels: Collection[str],
    step_days: float,
) -> TouchBatch:
    try:
        handle = open(file, newline="", encoding="utf-8-sig")  # noqa: SIM115
    except OSError as error:
        raise PathFileError(f"{file}: cannot open: {error.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise PathFileError(f"{file}: empty file, expected a header row")
            names = [name.strip() for name in header]
            at = (
                _column(file, names, columns.path, required=True),
                _column(file, names, columns.conversions, required=True),
                _column(file, names, columns.value or DEFAULT_VALUE_COLUMN, required=columns.value is not None),
                _column(file, names, columns.nulls or DEFAULT_NULL_COLUMN, required=columns.nulls is not None),
            )
            path_at = at[0]
            assert path_at is not None
            path_id: dict[str, int] = {}
            ids: list[int] = []
            texts: tuple[list[str], list[str], list[str]] = ([], [], [])
            lines: list[int] = []
            for row in reader:
                if len(row) != len(names):
                    if not row:
                        continue
                    raise PathFileError(f"{file}:{reader.line_num}: expected {len(names)} fields, found {len(row)}")
                ids.append(path_id.setdefault(row[path_at], len(path_id)))
                for text, column in zip(texts, at[1:], strict=True):
                    if column is not None:
                        text.append(row[column])
                lines.append(reader.line_num)
        except UnicodeDecodeError:
            raise PathFileError(f"{file}:{_first_line_not_utf8(file)}: not UTF-8 text") from None
        except csv.Error as error:
            raise PathFileError(f"{file}:{reader.line_num}: {error}") from None
    id_array = np.asarray(ids, dtype=np.int64)
    labels = (columns.conversions, columns.value or DEFAULT_VALUE_COLUMN, columns.nulls or DEFAULT_NULL_COLUMN)
    sums = np.zeros((3, len(path_id)))
    for row_index, (label, text, column) in enumerate(zip(labels, texts, at[1:], strict=True)):
        if column is not None:
            sums[row_index] = _summed(file, label, text, lines, id_array, len(path_id))
    paths = [path.encode("utf-8") for path in path_id]
    split_on = (separator.strip() or separator).encode("utf-8")
    encoded = encode_paths(paths, split_on)
    if encoded is None:
        bad = next(index for index, path in enumerate(paths) if not all(map(bytes.strip, path.split(split_on))))
        raise PathFileError(f"{file}:{lines[ids.index(bad)]}: path {paths[bad].decode()!r} has an empty channel name")
    channel_names, codes, lengths = encoded
    return batch_from_codes(
        channel_names,
        codes,
        lengths,
        conversions=sums[0],
        value=sums[1],
        nulls=sums[2],
        direct_channels=direct_channels,
        step_days=step_days,
    )


def _first_line_not_utf8(file: Path) -> int:
    """Text decoding runs ahead of the csv reader by a buffer, so find the line in the bytes."""
    with open(file, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def _column(file: Path, names: Sequence[str], wanted: str, *, required: bool) -> int | None:
    if wanted in names:
        return names.index(wanted)
    if required:
        raise PathFileError(f"{file}: missing column {wanted!r}; the header has {', '.join(map(repr, names))}")
    return None


def _summed(file: Path, column: str, texts: list[str], lines: list[int], ids: IntArray, path_count: int) -> FloatArray:
    try:
        numbers = np.fromiter(map(float, texts), dtype=np.float64, count=len(texts))
        all_good = bool(np.isfinite(numbers).all() and (numbers >= 0).all())
    except ValueError:
        all_good = False
    if not all_good:
        _raise_first_bad_number(file, column, texts, lines)
    return np.bincount(ids, weights=numbers, minlength=path_count).astype(np.float64)


def _raise_first_bad_number(file: Path, column: str, texts: list[str], lines: list[int]) -> NoReturn:
    for text, line in zip(texts, lines, strict=True):
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0:
            raise PathFileError(f"{file}:{line}: column {column!r}: {text!r} is not a non-negative number")
    raise AssertionError("unreachable: a bad number was found but not located")
