"""The fast path-file reader: plain files aggregated by distinct line, in forked workers.

One-row-per-journey files repeat most lines, so identical raw lines are counted first and only
distinct lines are parsed.  Large files are cut at line boundaries into one chunk per idle core;
forked workers aggregate their chunks and the parent merges them in file order, so path and
channel order match a single pass.  Anything unexpected returns None, and ``pathfile`` reads
the file again with the careful ``csv`` reader, which knows the line of every problem.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections import Counter
from dataclasses import dataclass
from functools import reduce
from itertools import chain, count, pairwise, repeat
from typing import NoReturn

import numpy as np

from closedloop.attribution.batch import FloatArray, IntArray

DEFAULT_PATH_COLUMN = "path"
DEFAULT_CONVERSIONS_COLUMN = "total_conversions"
DEFAULT_VALUE_COLUMN = "total_conversion_value"
DEFAULT_NULL_COLUMN = "total_null"
DEFAULT_SEPARATOR = " > "
# Below this size forking costs more than it saves.
PARALLEL_MIN_BYTES = 8_000_000
# Merging is serial, so more workers stop paying off quickly.
MAX_WORKERS = 4
_BOM = b"\xef\xbb\xbf"
_BLOCK_BYTES = 1 << 18


@dataclass(frozen=True, slots=True)
class PathColumns:
    path: str = DEFAULT_PATH_COLUMN
    conversions: str = DEFAULT_CONVERSIONS_COLUMN
    value: str | None = None
    nulls: str | None = None


@dataclass(frozen=True, slots=True)
class _Layout:
    """What the fast reader needs to know about a plain file, taken from its header."""

    body_start: int
    newline: bytes
    width: int
    path_at: int
    number_at: tuple[int | None, int | None, int | None]  # conversions, value, nulls
    split_on: bytes


@dataclass(frozen=True, slots=True, eq=False)
class _Paths:
    """Unique paths in order of first appearance, encoded, with per-path sums (3 x paths)."""

    paths: list[bytes]
    channel_names: tuple[str, ...]
    codes: IntArray
    lengths: IntArray
    sums: FloatArray


def plain_layout(data: bytes, columns: PathColumns, separator: str) -> _Layout | None:
    """The layout of a file the fast reader can take, or ``None`` for the careful reader.

    Plain means: no quotes, no NUL, valid UTF-8, and either only ``\\n`` or only ``\\r\\n``
    line endings (the csv module ends a row at a lone ``\\r`` too).
    """
    if b'"' in data or b"\x00" in data:
        return None
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    start = len(_BOM) if data.startswith(_BOM) else 0
    header_end = data.find(b"\n", start)
    if header_end < 0:
        header_end = len(data)
    newline = b"\n"
    if b"\r" in data:
        if data[header_end - 1 : header_end] != b"\r":
            return None
        newline = b"\r\n"  # stray \r or \n inside lines are caught per chunk
        header_end -= 1
    names = [name.strip() for name in data[start:header_end].decode("utf-8").split(",")]
    wanted = (
        columns.conversions,
        columns.value or DEFAULT_VALUE_COLUMN,
        columns.nulls or DEFAULT_NULL_COLUMN,
    )
    if columns.path not in names or columns.conversions not in names:
        return None
    if (columns.value and wanted[1] not in names) or (columns.nulls and wanted[2] not in names):
        return None
    at = tuple(names.index(name) if name in names else None for name in wanted)
    return _Layout(
        body_start=header_end + len(newline),
        newline=newline,
        width=len(names),
        path_at=names.index(columns.path),
        number_at=(at[0], at[1], at[2]),
        split_on=(separator.strip() or separator).encode("utf-8"),
    )


def aggregate(data: bytes, layout: _Layout, workers: int | None) -> _Paths | None:
    chunks = _chunk_bounds(data, layout, _worker_count(workers, len(data)))
    if len(chunks) == 1:
        start, end = chunks[0]
        return _aggregate_range(data, start, end, layout)
    return _aggregate_forked(data, layout, chunks)


def _worker_count(requested: int | None, size: int) -> int:
    if not hasattr(os, "fork"):
        return 1
    if requested is not None:
        return max(1, requested)
    if size < PARALLEL_MIN_BYTES or threading.active_count() > 1:
        return 1  # forking a process with other Python threads risks locks they hold
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS, int(_idle_cores(cores) + 0.5)))


def _idle_cores(cores: int) -> float:
    """Cores no other process is running on right now.

    Halves only pay when both run at once: on a busy machine a starved worker makes the parent
    wait longer than reading alone takes.  Linux's ``/proc/loadavg`` counts the runnable tasks
    this instant (us included); the one-minute load average elsewhere lags too much to tell.
    """
    try:
        with open("/proc/loadavg", "rb") as handle:
            runnable = int(handle.read().split()[3].split(b"/")[0])
        return cores - (runnable - 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return cores - os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores


def _chunk_bounds(data: bytes, layout: _Layout, parts: int) -> list[tuple[int, int]]:
    """About equal byte ranges of the body, each ending just after a line ending."""
    bounds = [layout.body_start]
    step = max(1, (len(data) - layout.body_start) // parts)
    for index in range(1, parts):
        cut = data.find(layout.newline, max(bounds[-1], layout.body_start + index * step))
        if cut < 0:
            break
        bounds.append(cut + len(layout.newline))
    bounds.append(max(len(data), layout.body_start))
    return [(start, end) for start, end in pairwise(bounds) if end > start] or [(bounds[0], bounds[0])]


def _aggregate_forked(data: bytes, layout: _Layout, chunks: list[tuple[int, int]]) -> _Paths | None:
    """The parent takes the first chunk and one forked child each other; merged in file order.

    A child that cannot be forked or dies without answering costs only time: the parent
    aggregates its chunk itself.
    """
    children: list[tuple[int, int] | None] = []  # pid and read end of its pipe
    try:
        for chunk in chunks[1:]:
            children.append(_fork_worker(data, chunk, layout, [child[1] for child in children if child]))
        first, last = chunks[0]
        parts = [_aggregate_range(data, first, last, layout)]
        for child, (start, end) in zip(children, chunks[1:], strict=True):
            answer = b""
            if child is not None:
                with os.fdopen(child[1], "rb", closefd=False) as pipe:
                    answer = pipe.read()
            parts.append(pickle.loads(answer) if answer else _aggregate_range(data, start, end, layout))
    finally:
        # Close every read end before waiting: a child blocked on a full pipe then gets EPIPE.
        for child in filter(None, children):
            os.close(child[1])
        for child in filter(None, children):
            os.waitpid(child[0], 0)
    if any(part is None for part in parts):
        return None
    return reduce(_merge, (part for part in parts if part is not None))


def _fork_worker(data: bytes, chunk: tuple[int, int], layout: _Layout, inherited: list[int]) -> tuple[int, int] | None:
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:
        _run_worker(data, chunk, layout, write_end, [read_end, *inherited])
    os.close(write_end)
    return pid, read_end


def _run_worker(data: bytes, chunk: tuple[int, int], layout: _Layout, write_end: int, inherited: list[int]) -> NoReturn:
    """Body of a forked child: answer on the pipe, then leave without running any cleanup.

    ``os._exit`` skips atexit handlers and, above all, flushing stdio buffers copied from the
    parent, which would print the parent's pending output twice.
    """
    status = 1
    try:
        for descriptor in inherited:
            os.close(descriptor)
        answer = pickle.dumps(_aggregate_range(data, *chunk, layout), pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(answer)
        status = 0
    finally:
        os._exit(status)


def _count_lines(data: bytes, start: int, end: int, newline: bytes) -> Counter[bytes]:
    """Identical lines of ``data[start:end]`` counted a block at a time.

    Splitting block by block lets each block's line objects reuse the memory of the last
    block's: a third less peak memory and fewer page faults than one split of everything.
    """
    counted: Counter[bytes] = Counter()
    while start < end:
        cut = data.find(newline, min(start + _BLOCK_BYTES, end), end)
        stop = end if cut < 0 else cut + len(newline)
        counted.update(data[start:stop].split(newline))
        start = stop
    counted.pop(b"", None)
    return counted


def _aggregate_range(data: bytes, start: int, end: int, layout: _Layout) -> _Paths | None:
    """Sums per unique path of ``data[start:end]``; ``None`` lets the careful reader explain."""
    counted = _count_lines(data, start, end, layout.newline)
    distinct = len(counted)
    if distinct == 0:
        return _Paths([], (), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((3, 0)))
    commas = np.fromiter(map(bytes.count, counted, repeat(b",")), dtype=np.int64, count=distinct)
    if (commas != layout.width - 1).any():
        return None
    joined = b",".join(counted)
    if b"\r" in joined or b"\n" in joined:
        return None
    fields = joined.split(b",")
    del joined
    multiplicity = np.fromiter(counted.values(), dtype=np.float64, count=distinct)
    del counted
    path_field = fields[layout.path_at :: layout.width]
    first_row_of: dict[bytes, int] = {}
    first_row = np.fromiter(map(first_row_of.setdefault, path_field, count()), dtype=np.int64, count=distinct)
    paths = list(first_row_of)
    ids = _dense(first_row, len(paths))
    sums = np.zeros((3, len(paths)))
    for row, column in enumerate(layout.number_at):
        if column is None:
            continue
        numbers = _non_negative_numbers(fields[column :: layout.width])
        if numbers is None:
            return None
        weighted = numbers * multiplicity
        sums[row] = np.bincount(ids, weights=weighted, minlength=len(paths))
    encoded = encode_paths(paths, layout.split_on)
    if encoded is None:
        return None
    names, codes, lengths = encoded
    return _Paths(paths, names, codes, lengths, sums)


def _dense(first_index: IntArray, unique_count: int) -> IntArray:
    """Ids 0, 1, ... in order of first appearance from each item's first index (one dict pass)."""
    if unique_count == first_index.shape[0]:
        return first_index
    is_first = first_index == np.arange(first_index.shape[0])
    return (np.cumsum(is_first) - 1)[first_index]


class _NotPlain(Exception):
    """Raised inside a one-pass lookup to hand the file to the careful reader."""


class _NumberOfText(dict[bytes, float]):
    """Each distinct text parsed once, on first sight, inside one C-level ``map`` pass."""

    def __missing__(self, text: bytes) -> float:
        try:
            number = self[text] = float(text)
        except ValueError:
            raise _NotPlain from None
        return number


class _CodeOfToken(dict[bytes, int]):
    """Raw token (separator spaces and all) -> channel code, names coded in order of appearance."""

    def __init__(self) -> None:
        super().__init__()
        self.code_of_name: dict[str, int] = {}

    def __missing__(self, token: bytes) -> int:
        try:
            name = token.strip().decode("utf-8")
        except UnicodeDecodeError:
            raise _NotPlain from None
        if not name:
            raise _NotPlain
        code = self[token] = self.code_of_name.setdefault(name, len(self.code_of_name))
        return code


def _non_negative_numbers(texts: list[bytes]) -> FloatArray | None:
    """Parsed as Python's ``float`` does, or ``None`` if one is not a finite number >= 0."""
    try:
        numbers = np.fromiter(map(_NumberOfText().__getitem__, texts), dtype=np.float64, count=len(texts))
    except _NotPlain:
        return None
    if not np.isfinite(numbers).all() or (numbers < 0).any():
        return None
    return numbers


def encode_paths(paths: list[bytes], split_on: bytes) -> tuple[tuple[str, ...], IntArray, IntArray] | None:
    """Channel names, flat channel codes and lengths of ``paths``; ``None`` if a name is empty.

    A one-byte separator allows one join and one split over all paths; a longer one could
    match across the joint of two paths, so those are split one by one.
    """
    if len(split_on) == 1:
        tokens = split_on.join(paths).split(split_on)
    else:
        tokens = list(chain.from_iterable(map(bytes.split, paths, repeat(split_on))))
    lengths = np.fromiter(map(bytes.count, paths, repeat(split_on)), dtype=np.int64, count=len(paths))
    lengths += 1
    code_of_token = _CodeOfToken()
    try:
        codes = np.fromiter(map(code_of_token.__getitem__, tokens), dtype=np.int64, count=len(tokens))
    except _NotPlain:
        return None
    return tuple(code_of_token.code_of_name), codes, lengths


def _merge(before: _Paths, after: _Paths) -> _Paths:
    """``before`` then ``after``: paths new in ``after`` go last, in their own order."""
    names = tuple(dict.fromkeys((*before.channel_names, *after.channel_names)))
    code_of = {name: code for code, name in enumerate(names)}
    recode = np.array([code_of[name] for name in after.channel_names], dtype=np.int64)
    known = len(before.paths)
    path_id = dict(zip(before.paths, range(known), strict=True))
    # A new path is stored at ``known + its index in after``; renumber those densely.
    ids = np.fromiter(map(path_id.setdefault, after.paths, count(known)), dtype=np.int64, count=len(after.paths))
    is_new = ids >= known
    ids[is_new] = known + np.arange(int(is_new.sum()))
    paths = list(path_id)
    new_codes = recode[after.codes[np.repeat(is_new, after.lengths)]]
    sums = np.zeros((3, len(paths)))
    sums[:, : len(before.paths)] = before.sums
    for row in range(3):
        sums[row] += np.bincount(ids, weights=after.sums[row], minlength=len(paths))
    return _Paths(
        paths,
        names,
        np.concatenate((before.codes, new_codes)),
        np.concatenate((before.lengths, after.lengths[is_new])),
        sums,
    )
