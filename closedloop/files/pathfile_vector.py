"""The vectorised path-file reader: a plain file parsed as one numpy byte array, no per-row objects.

A million-journey file is 3 million channel tokens and 3 million numbers; making a Python
object of each (split, count, parse) is most of what reading costs.  Here every step works on
positions: the delimiters (newline, comma, separator byte) are found in one pass, a token is
identified by its length and its bytes read eight at a time, and a number of up to eight
characters of digits and one dot is parsed column by column.  Only what is rare is handed to
Python: the text of each distinct token, and numbers of another shape (parsed by ``float``).
Delimiters, tokens and numbers are found a chunk of ``CHUNK_BYTES`` at a time, so temporaries
stay small and their memory is reused (fresh pages cost the kernel more than the arithmetic);
token texts are numbered across chunks in order of first appearance.

It gives exactly the batch of the other readers: channels coded in order of first appearance,
paths keyed by their raw text (so ``a>b`` and ``a > b`` stay two paths) in order of first
appearance.  It takes less than they do: a one-byte separator other than comma, tokens of at
most ``MAX_TOKEN_BYTES`` bytes, and each channel spelt one way per place in a path (first,
middle, last, alone).  For anything else ``read_plain`` returns ``None`` and the caller uses
the next reader, which also finds and words every error.  ``read_path_file`` uses it when no
worker count is asked for.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from numpy.lib.stride_tricks import as_strided

from closedloop.attribution.batch import FloatArray, IntArray
from closedloop.files.pathfile_fast import _Layout

MAX_TOKEN_BYTES = 64
CHUNK_BYTES = 1 << 22
MAX_LINE_SEARCH = 1 << 20  # a chunk ends at the first newline this far past its nominal end
_NEWLINE, _RETURN, _COMMA, _DOT, _ZERO = 10, 13, 44, 46, 48
# Bit masks keeping the first r bytes of a little-endian 64-bit word, r = 0..8.
_KEEP = np.array([(1 << (8 * r)) - 1 for r in range(9)], dtype=np.uint64)
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93], dtype=np.uint64)

Encoded = tuple[tuple[str, ...], IntArray, IntArray, FloatArray]  # names, codes, lengths, sums (3 x paths)


def read_plain(data: bytes, layout: _Layout) -> Encoded | None:
    """Unique paths (codes and lengths) and their sums, or ``None`` to leave the file to another reader."""
    if len(layout.split_on) != 1 or layout.split_on in (b",", b"\n", b"\r"):
        return None
    body = np.frombuffer(data, dtype=np.uint8, offset=layout.body_start)
    size = body.shape[0]
    if size == 0:
        return (), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((3, 0))
    # Padded copy: ends with a newline and leaves room to read 8 bytes past any position.
    buffer = np.zeros(size + 24, dtype=np.uint8)
    buffer[:size] = body
    if body[-1] != _NEWLINE:
        ending = layout.newline[-(1 + (body[-1] != _RETURN)) :] if len(layout.newline) == 2 else b"\n"
        buffer[size : size + len(ending)] = np.frombuffer(ending, dtype=np.uint8)
        size += len(ending)
    del body
    words = _words(buffer)
    tokens = _Tokens()
    raw_parts: list[IntArray] = []
    line_parts: list[IntArray] = []
    sum_parts: list[FloatArray] = []
    for low, high in _chunks(buffer, size):
        fields = _fields(buffer[low:high], layout)
        if fields is None:
            return None
        token_start, token_end, line_tokens, numbers_at = fields
        token_start += low
        token_end += low
        raw = tokens.raw_ids(buffer, words, token_start, token_end)
        if raw is None:
            return None
        sums = np.zeros((3, line_tokens.shape[0]))
        for row, bounds in enumerate(numbers_at):
            if bounds is not None:
                numbers = _numbers(data, layout.body_start, buffer, words, bounds[0] + low, bounds[1] + low)
                if numbers is None:
                    return None
                sums[row] = numbers
        raw_parts.append(raw)
        line_parts.append(line_tokens)
        sum_parts.append(sums)
    del words, buffer
    line_tokens = np.concatenate(line_parts)
    coded = tokens.channel_codes(np.concatenate(raw_parts), line_tokens)
    if coded is None:
        return None
    names, codes = coded
    return _unique_paths(names, codes, line_tokens, np.concatenate(sum_parts, axis=1))


def _chunks(buffer: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``CHUNK_BYTES``, each ending just after a newline.

    Working a chunk at a time keeps every temporary (a flag per byte, a position per delimiter)
    small, so the allocator reuses the same memory instead of the kernel handing out and zeroing
    fresh pages for each: that, not the arithmetic, was most of a large file's reading time.
    """
    bounds = [0]
    while bounds[-1] < size:
        cut = bounds[-1] + CHUNK_BYTES
        if cut >= size:
            bounds.append(size)
            break
        newline = np.flatnonzero(buffer[cut : min(size, cut + MAX_LINE_SEARCH)] == _NEWLINE)
        bounds.append(cut + int(newline[0]) + 1 if newline.shape[0] else size)
    return list(pairwise(bounds))


Bounds = tuple[IntArray, IntArray]  # start and end of each field


def _fields(buffer: np.ndarray, layout: _Layout) -> tuple[IntArray, IntArray, IntArray, list[Bounds | None]] | None:
    """Path tokens (start, end), tokens per line and the bounds of each number column.

    A segment is the text before a delimiter.  Blank lines are skipped, as the other readers
    do; a line with another number of fields, or a separator byte outside the path column,
    leaves the file to the other readers.
    """
    separator = layout.split_on[0]
    is_delimiter = buffer == _NEWLINE
    is_delimiter |= buffer == _COMMA
    is_delimiter |= buffer == separator
    ends = np.flatnonzero(is_delimiter)
    del is_delimiter
    kinds = buffer[ends]
    is_comma = kinds == _COMMA
    newlines = np.flatnonzero(kinds == _NEWLINE)  # each line's last segment
    commas = np.flatnonzero(is_comma)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    if len(layout.newline) == 2:
        # Every line ends with \r\n and no other \r exists: the segment before \n ends at \r.
        line_ends = ends[newlines]
        if (buffer[line_ends - 1] != _RETURN).any() or int(np.count_nonzero(buffer == _RETURN)) != newlines.shape[0]:
            return None
        ends[newlines] -= 1
    first = np.empty_like(newlines)
    first[0] = 0
    first[1:] = newlines[:-1] + 1
    commas_in_line = np.diff(np.cumsum(is_comma, dtype=np.int64)[newlines], prepend=0)
    blank = (commas_in_line == 0) & (first == newlines) & (starts[newlines] == ends[newlines])
    if (commas_in_line[~blank] != layout.width - 1).any():
        return None
    last, first = newlines[~blank], first[~blank]
    grid = commas.reshape(-1, layout.width - 1)  # the commas of each line, in order

    def first_segment(column: int) -> IntArray:
        return first if column == 0 else grid[:, column - 1] + 1

    def last_segment(column: int) -> IntArray:
        return last if column == layout.width - 1 else grid[:, column]

    token_first = first_segment(layout.path_at)
    line_tokens = last_segment(layout.path_at) - token_first + 1
    total = int(line_tokens.sum())
    if ends.shape[0] - commas.shape[0] - newlines.shape[0] != total - line_tokens.shape[0]:
        return None  # a separator byte outside the path column
    tokens = np.repeat(token_first - (np.cumsum(line_tokens) - line_tokens), line_tokens)
    tokens += np.arange(total)
    numbers_at: list[Bounds | None] = []
    for column in layout.number_at:
        at = None if column is None else last_segment(column)
        numbers_at.append(None if at is None else (starts[at], ends[at]))
    return starts[tokens], ends[tokens], line_tokens, numbers_at


def _words(buffer: np.ndarray) -> np.ndarray:
    """``words[i]``: the 8 bytes from position ``i`` as one little-endian integer (a strided view)."""
    aligned = buffer[: (buffer.shape[0] // 8) * 8].view("<u8")
    return as_strided(aligned, shape=(buffer.shape[0] - 8,), strides=(1,), writeable=False)


class _Tokens:
    """Raw token texts numbered across chunks in order of first appearance, then named and coded."""

    def __init__(self) -> None:
        self.raw_of_text: dict[bytes, int] = {}

    def raw_ids(self, buffer: np.ndarray, words: np.ndarray, start: IntArray, end: IntArray) -> IntArray | None:
        """The raw id of every token of one chunk (its exact text), or ``None`` for a token too long."""
        length = end - start
        if not length.shape[0]:
            return np.zeros(0, np.int64)
        if int(length.max()) > MAX_TOKEN_BYTES:
            return None
        width = max(1, -(-int(length.max()) // 8))
        key = np.empty((width, length.shape[0]), dtype=np.uint64)
        for column in range(width):
            at = np.minimum(start + 8 * column, words.shape[0] - 1)  # past the end only where nothing is kept
            key[column] = words[at] & _KEEP[np.clip(length - 8 * column, 0, 8)]
        local = _distinct(key, length)
        first = np.full(int(local.max()) + 1, local.shape[0], dtype=np.int64)
        np.minimum.at(first, local, np.arange(local.shape[0]))
        order = np.argsort(first, kind="stable")
        global_of_local = np.empty(first.shape[0], dtype=np.int64)
        for local_id, token in zip(order.tolist(), first[order].tolist(), strict=True):
            text = bytes(buffer[start[token] : end[token]])
            global_of_local[local_id] = self.raw_of_text.setdefault(text, len(self.raw_of_text))
        return global_of_local[local]

    def channel_codes(self, raw: IntArray, line_tokens: IntArray) -> tuple[tuple[str, ...], IntArray] | None:
        """Channel names in order of first appearance and the name code of every token."""
        code_of_name: dict[str, int] = {}
        name_of_raw = np.empty(len(self.raw_of_text), dtype=np.int64)
        for text, raw_id in self.raw_of_text.items():  # numbered in order of first appearance
            name = text.strip().decode("utf-8")  # the layout checked UTF-8
            if not name:
                return None
            name_of_raw[raw_id] = code_of_name.setdefault(name, len(code_of_name))
        codes = name_of_raw[raw]
        # Paths are told apart by raw text: that equals telling them apart by names only when each
        # name has one spelling per place (first, middle, last, alone).
        first_of_line = np.cumsum(line_tokens) - line_tokens
        place = np.zeros(codes.shape[0], dtype=np.int64)
        place[first_of_line] += 1
        place[first_of_line + line_tokens - 1] += 2
        spelling = np.zeros(4 * len(code_of_name), dtype=np.int64)
        slot = codes * 4 + place
        spelling[slot] = raw
        if (spelling[slot] != raw).any():
            return None
        return tuple(code_of_name), codes


def _distinct(key: np.ndarray, length: IntArray) -> IntArray:
    """Exact ids (0, 1, ...) of equal (length, key words) rows.

    Rows are bucketed by a 16-bit hash; one row of each bucket stands for it, and the rows
    equal to it word by word take its id.  The others (a hash collision) go round again.
    """
    count = length.shape[0]
    hashed = length.astype(np.uint64) * _MIX[0]
    for column in range(key.shape[0]):
        hashed ^= key[column] * _MIX[(column + 1) % 4]
        hashed ^= hashed >> np.uint64(29)
    bucket = (hashed * _MIX[3] >> np.uint64(48)).astype(np.int64)
    stands_for = np.zeros(1 << 16, dtype=np.int64)
    stands_for[bucket] = np.arange(count)  # any one row of each bucket
    ids = stands_for[bucket]
    same = length == length[ids]
    for column in range(key.shape[0]):
        same &= key[column] == key[column][ids]
    pending = np.flatnonzero(~same)
    while pending.shape[0]:
        stands_for[bucket[pending]] = pending
        candidate = stands_for[bucket[pending]]
        same = length[pending] == length[candidate]
        for column in range(key.shape[0]):
            same &= key[column][pending] == key[column][candidate]
        ids[pending[same]] = candidate[same]
        pending = pending[~same]
    representatives = np.flatnonzero(ids == np.arange(count))
    dense = np.zeros(count, dtype=np.int64)
    dense[representatives] = np.arange(representatives.shape[0])
    return dense[ids]


def _numbers(
    data: bytes, offset: int, buffer: np.ndarray, words: np.ndarray, start: IntArray, end: IntArray
) -> FloatArray | None:
    """Each field as Python's ``float`` reads it; ``None`` unless all are finite and >= 0.

    One digit is the common case (counts, a zero value); up to eight digits with at most one
    dot are parsed as an integer divided by a power of ten, both exact, so the one rounding is
    the division's, as in ``float``.  Any other text is given to ``float`` itself.
    """
    length = end - start
    leading = buffer[start]
    numbers = leading.astype(np.float64) - _ZERO
    longer = np.flatnonzero((length != 1) | (leading - np.uint8(_ZERO) >= 10))
    if longer.shape[0]:
        parsed, simple = _decimals(words[start[longer]], length[longer])
        numbers[longer] = parsed
        for index in longer[~simple].tolist():
            text = data[offset + int(start[index]) : offset + int(end[index])]
            try:
                numbers[index] = float(text)
            except ValueError:
                return None
    if not np.isfinite(numbers).all() or (numbers < 0).any():
        return None
    return numbers


def _decimals(words: np.ndarray, length: IntArray) -> tuple[FloatArray, np.ndarray]:
    """Fields of up to 8 digits and at most one dot, and which fields were of that shape."""
    digits = (words & _KEEP[np.clip(length, 0, 8)]).view(np.uint8).reshape(-1, 8)
    inside = np.arange(8) < length[:, None]
    is_digit = (digits - np.uint8(_ZERO) < 10) & inside
    is_dot = (digits == _DOT) & inside
    simple = (length <= 8) & (is_digit | is_dot | ~inside).all(axis=1)
    simple &= (is_dot.sum(axis=1) <= 1) & is_digit.any(axis=1)
    mantissa = np.zeros(length.shape[0], dtype=np.int64)
    decimals = np.zeros(length.shape[0], dtype=np.int64)
    after_dot = np.zeros(length.shape[0], dtype=bool)
    for column in range(8):
        digit = is_digit[:, column]
        mantissa = np.where(digit, mantissa * 10 + (digits[:, column].astype(np.int64) - _ZERO), mantissa)
        decimals += digit & after_dot
        after_dot |= is_dot[:, column]
    return mantissa / np.power(10.0, decimals), simple


def _unique_paths(names: tuple[str, ...], codes: IntArray, line_tokens: IntArray, sums: FloatArray) -> Encoded:
    """Lines grouped by path (the name codes, which stand for the raw text here), first seen first.

    A line's key is its codes as digits in base ``channels + 1`` (0 pads, so lengths differ
    too).  Paths longer than one key holds are keyed a window of positions at a time, the key
    so far renumbered densely in between, so keys stay below ``2**62``.
    """
    lines = line_tokens.shape[0]
    base = len(names) + 1
    first_of_line = np.cumsum(line_tokens) - line_tokens
    position = np.arange(codes.shape[0]) - np.repeat(first_of_line, line_tokens)
    digit = codes + 1
    longest = int(line_tokens.max(initial=0))
    ids = np.zeros(lines, dtype=np.int64)
    known, window_start = 1, 0
    while True:
        window = 1
        while known * base ** (window + 1) <= 1 << 62:
            window += 1
        powers = np.array([base**power for power in range(window)], dtype=np.int64)
        if window_start == 0 and longest <= window:
            part = np.add.reduceat(digit * powers[position], first_of_line) if lines else ids
        else:
            chosen = np.flatnonzero((position >= window_start) & (position < window_start + window))
            part = np.zeros(lines, dtype=np.int64)
            chosen_lines = np.repeat(np.arange(lines), line_tokens)[chosen]
            if chosen.shape[0]:
                run = np.flatnonzero(np.diff(chosen_lines, prepend=-1))
                part[chosen_lines[run]] = np.add.reduceat(digit[chosen] * powers[position[chosen] - window_start], run)
        _, ids = np.unique(ids * base**window + part, return_inverse=True)
        ids = ids.reshape(-1)
        known = int(ids.max(initial=0)) + 1
        window_start += window
        if window_start >= longest:
            break
    first_line = np.full(known if lines else 0, lines, dtype=np.int64)
    np.minimum.at(first_line, ids, np.arange(lines))
    order = np.argsort(first_line, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    path_of_line = rank[ids]
    representative = first_line[order]
    lengths = line_tokens[representative]
    gather = np.repeat(first_of_line[representative] - (np.cumsum(lengths) - lengths), lengths)
    gather += np.arange(gather.shape[0])
    path_sums = np.zeros((3, representative.shape[0]))
    for row in range(3):
        path_sums[row] = np.bincount(path_of_line, weights=sums[row], minlength=representative.shape[0])
    return names, codes[gather], lengths, path_sums
