"""The vectorised reader gives the careful ``csv`` reader's batch, and takes the files it claims to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closedloop.attribution.batch import TouchBatch
from closedloop.files import pathfile_vector
from closedloop.files.pathfile import read_path_file
from closedloop.files.pathfile_fast import PathColumns, plain_layout
from closedloop.files.pathfile_vector import read_plain

# Names of 1, 8, 9, 16, 17 and 30 bytes (the reader compares 8 bytes at a time) and non-ASCII.
CHANNELS = ("a", "b", "direct", "abcdefgh", "abcdefghi", "é-mail", "paid search 1234", "x" * 17, "y" * 30)
# Texts of numbers: digits and one dot (parsed by the reader) and others (handed to float).
NUMBERS = st.one_of(
    st.integers(0, 99_999_999).map(str),
    st.integers(0, 9_999_999).map(lambda cents: f"{cents / 100:.2f}"),
    st.sampled_from(["0", "7", "1.", ".5", "007.50", "1e2", " 3", "2.5 ", "123456789", "1_0", "0.000001"]),
)

Row = tuple[list[str], str, str, str]
rows_strategy = st.lists(
    st.tuples(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=7), NUMBERS, NUMBERS, NUMBERS),
    min_size=1,
    max_size=40,
)


def text_of(rows: list[Row], *, separator: str = " > ", quoted: bool = False, blank_every: int = 0) -> str:
    lines = ["path,total_conversions,total_conversion_value,total_null"]
    for index, (channels, conversions, value, nulls) in enumerate(rows):
        path = separator.join(channels)
        lines.append(f"{chr(34) + path + chr(34) if quoted else path},{conversions},{value},{nulls}")
        if blank_every and index % blank_every == 0:
            lines.append("")
    return "\n".join(lines)


def assert_same_batch(left: TouchBatch, right: TouchBatch) -> None:
    assert left.channel_names == right.channel_names
    np.testing.assert_array_equal(left.codes, right.codes)
    np.testing.assert_array_equal(left.lengths, right.lengths)
    np.testing.assert_array_equal(left.conversions, right.conversions)
    np.testing.assert_array_equal(left.nulls, right.nulls)
    np.testing.assert_allclose(left.value, right.value, rtol=1e-12, atol=1e-9)


def vector_takes(file: Path, separator: str = " > ") -> bool:
    data = file.read_bytes()
    layout = plain_layout(data, PathColumns(), separator)
    return layout is not None and read_plain(data, layout) is not None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=rows_strategy,
    separator=st.sampled_from([" > ", ">", "  >  "]),
    crlf=st.booleans(),
    final_newline=st.booleans(),
    blank_every=st.integers(0, 3),
    chunk_bytes=st.sampled_from([pathfile_vector.CHUNK_BYTES, 1, 13, 64]),
)
def test_vector_reader_gives_the_careful_readers_batch(
    tmp_path: Path,
    rows: list[Row],
    separator: str,
    crlf: bool,
    final_newline: bool,
    blank_every: int,
    chunk_bytes: int,
) -> None:
    """Also read in chunks of a line or a few (a large file's are 4 MB): names, paths and their
    order must not depend on where the chunks end."""
    rows = rows + rows[::2]  # repeated paths are grouped
    text = text_of(rows, separator=separator, blank_every=blank_every) + ("\n" if final_newline else "")
    plain = tmp_path / "plain.csv"
    plain.write_bytes((text.replace("\n", "\r\n") if crlf else text).encode("utf-8"))
    quoted = tmp_path / "quoted.csv"
    quoted.write_bytes(text_of(rows, separator=separator, quoted=True).encode("utf-8"))
    default, pathfile_vector.CHUNK_BYTES = pathfile_vector.CHUNK_BYTES, chunk_bytes
    try:
        assert vector_takes(plain, separator)
        assert_same_batch(read_path_file(plain), read_path_file(quoted))
    finally:
        pathfile_vector.CHUNK_BYTES = default


def test_numbers_are_read_as_float_reads_them(tmp_path: Path) -> None:
    texts = ["0.1", "0.7", "12345.67", "99999.99", "1.", ".5", "007.50", "1e2", "0.000001", "12345678"]
    rows = [([f"c{index}"], "1", text, "0") for index, text in enumerate(texts)]
    file = tmp_path / "numbers.csv"
    file.write_text(text_of(rows) + "\n")
    assert vector_takes(file)
    batch = read_path_file(file)
    assert batch.value.tolist() == [float(text) for text in texts]


def test_long_paths_are_keyed_a_window_at_a_time(tmp_path: Path) -> None:
    # 40 channels and 30 touches: one 62-bit key holds 11 positions, so three windows.
    rng = np.random.default_rng(3)
    names = [f"ch{index:02d}" for index in range(40)]
    paths = [[names[code] for code in rng.integers(0, 40, rng.integers(1, 31))] for _ in range(300)]
    paths += [[*path[:-1], names[(names.index(path[-1]) + 1) % 40]] for path in paths[:50]]  # differ at the end only
    rows = [(path, "1", "2.5", "1") for path in paths + paths[:100]]
    file = tmp_path / "long.csv"
    file.write_text(text_of(rows) + "\n")
    quoted = tmp_path / "quoted.csv"
    quoted.write_text(text_of(rows, quoted=True) + "\n")
    assert vector_takes(file)
    assert_same_batch(read_path_file(file), read_path_file(quoted))


@pytest.mark.parametrize(
    "text",
    [
        "a>b,1,0,0\na > b,1,0,0\n",  # one channel spelt two ways in one place: two raw paths
        "a > b,1,0>1,0\n",  # a separator outside the path column
        "a > b,1,0\n",  # a field short
        "a >> b,1,0,0\n",  # an empty channel name
        "a > b,1,x,0\n",
        "a > b,1,-1,0\n",
        "a > b,1,inf,0\n",
    ],
)
def test_files_it_does_not_take_go_to_the_other_readers(tmp_path: Path, text: str) -> None:
    file = tmp_path / "odd.csv"
    file.write_text("path,total_conversions,total_conversion_value,total_null\n" + text)
    assert not vector_takes(file)
