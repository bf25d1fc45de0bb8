"""The path-file readers: fast (aggregating, forked) and careful (csv) must give the same batch."""

from __future__ import annotations

import json
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from closedloop.attribution import markov
from closedloop.attribution.batch import TouchBatch
from closedloop.attribution.markov import markov_attribution
from closedloop.cli.attribute import main, parse_plain_command_line, register
from closedloop.files import pathfile_fast
from closedloop.files.pathfile import PathColumns, PathFileError, read_path_file

HEADER = "path,total_conversions,total_conversion_value,total_null"
CHANNELS = ("a", "b", "direct", "é-mail", "paid search")
SEPARATORS = (" > ", ">", "  >", "> ")

Row = tuple[list[str], int, float, int]
rows_strategy = st.lists(
    st.tuples(
        st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=5),
        st.integers(0, 3),
        st.integers(0, 50_000).map(lambda cents: cents / 100),
        st.integers(0, 3),
    ),
    min_size=1,
    max_size=60,
)


def csv_text(rows: list[Row], *, separators: list[str] | None = None, quoted: bool = False) -> str:
    lines = [HEADER]
    for index, (channels, conversions, value, nulls) in enumerate(rows):
        separator = separators[index % len(separators)] if separators else " > "
        path = separator.join(channels)
        field = '"' + path + '"' if quoted else path
        lines.append(f"{field},{conversions},{value!r},{nulls}")
    return "\n".join(lines) + "\n"


def write(directory: Path, text: str, name: str = "paths.csv") -> Path:
    file = directory / name
    file.write_bytes(text.encode("utf-8"))
    return file


def by_path(batch: TouchBatch) -> dict[tuple[str, ...], np.ndarray]:
    """Sums per channel sequence, so batches that group paths differently can be compared."""
    totals: dict[tuple[str, ...], np.ndarray] = defaultdict(lambda: np.zeros(3))
    for index, (start, length) in enumerate(zip(batch.starts, batch.lengths, strict=True)):
        channels = tuple(batch.channel_names[code] for code in batch.codes[start : start + length])
        totals[channels] += [batch.conversions[index], batch.value[index], batch.nulls[index]]
    return dict(totals)


def assert_same_batch(left: TouchBatch, right: TouchBatch) -> None:
    assert left.channel_names == right.channel_names
    np.testing.assert_array_equal(left.codes, right.codes)
    np.testing.assert_array_equal(left.lengths, right.lengths)
    np.testing.assert_array_equal(left.conversions, right.conversions)
    np.testing.assert_array_equal(left.nulls, right.nulls)
    np.testing.assert_allclose(left.value, right.value, rtol=1e-12, atol=1e-9)


def assert_same_sums(left: TouchBatch, right: TouchBatch) -> None:
    left_sums, right_sums = by_path(left), by_path(right)
    assert left_sums.keys() == right_sums.keys()
    for path, sums in left_sums.items():
        np.testing.assert_allclose(sums, right_sums[path], rtol=1e-12, atol=1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=rows_strategy,
    workers=st.integers(1, 4),
    separators=st.lists(st.sampled_from(SEPARATORS), min_size=1),
    block_bytes=st.sampled_from([1, 5, 64, 1 << 20]),
    crlf=st.booleans(),
)
def test_fast_forked_and_careful_readers_agree(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rows: list[Row],
    workers: int,
    separators: list[str],
    block_bytes: int,
    crlf: bool,
) -> None:
    monkeypatch.setattr(pathfile_fast, "_BLOCK_BYTES", block_bytes)
    # Repeated rows are what the fast reader counts before parsing.
    rows = rows + rows[::2]
    text = csv_text(rows, separators=separators)
    plain = write(tmp_path, text.replace("\n", "\r\n") if crlf else text, "plain.csv")
    quoted = write(tmp_path, csv_text(rows, separators=separators, quoted=True), "quoted.csv")
    careful = read_path_file(quoted)
    assert_same_batch(read_path_file(plain, workers=workers), careful)
    assert_same_batch(read_path_file(plain, workers=1), careful)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy)
def test_aggregated_and_one_row_per_journey_files_give_identical_credits(tmp_path: Path, rows: list[Row]) -> None:
    journeys: list[Row] = []
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])
    for channels, conversions, value, nulls in rows:
        path = " > ".join(channels)
        for _ in range(conversions):
            journeys.append((channels, 1, value, 0))
        journeys.extend((channels, 0, 0.0, 1) for _ in range(nulls))
        totals[path][0] += conversions
        totals[path][1] += conversions * value
        totals[path][2] += nulls
    if not journeys:
        return
    aggregated_rows: list[Row] = [
        (path.split(" > "), int(c), v, int(n)) for path, (c, v, n) in totals.items() if c + n > 0
    ]
    one_per_journey = read_path_file(write(tmp_path, csv_text(journeys), "journeys.csv"), workers=2)
    aggregated = read_path_file(write(tmp_path, csv_text(aggregated_rows), "aggregated.csv"))
    assert_same_sums(one_per_journey, aggregated)
    left, right = markov_attribution(one_per_journey), markov_attribution(aggregated)
    credit = dict(zip(left.channel_names, left.conversions, strict=True))
    for name, conversions in zip(right.channel_names, right.conversions, strict=True):
        assert credit[name] == pytest.approx(conversions, rel=1e-9, abs=1e-9)


def test_crlf_bom_and_lf_files_read_alike(tmp_path: Path) -> None:
    rows: list[Row] = [(["a", "b"], 1, 2.5, 0), (["b"], 0, 0.0, 3), (["a", "b"], 2, 1.0, 1)]
    text = csv_text(rows)
    lf = read_path_file(write(tmp_path, text, "lf.csv"))
    crlf = read_path_file(write(tmp_path, "\ufeff" + text.replace("\n", "\r\n"), "crlf.csv"), workers=2)
    assert_same_batch(lf, crlf)
    assert lf.path_count == 2 and lf.conversions.tolist() == [3.0, 0.0]


def test_long_separator_never_matches_across_two_paths(tmp_path: Path) -> None:
    file = write(tmp_path, "path,total_conversions\nx>,1\ny,1\nx>>>z,1\n")
    batch = read_path_file(file, separator=">>")
    assert batch.channel_names == ("x>", "y", "x", ">z")
    assert batch.lengths.tolist() == [1, 1, 2]


def test_a_worker_that_dies_is_replaced_by_the_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows: list[Row] = [([CHANNELS[i % 5], CHANNELS[i % 3]], i % 2, float(i), 1) for i in range(200)]
    file = write(tmp_path, csv_text(rows))
    expected = read_path_file(file, workers=1)

    def broken_dumps(*_: object, **__: object) -> bytes:
        raise RuntimeError("worker lost")

    monkeypatch.setattr(pickle, "dumps", broken_dumps)  # only children pickle
    assert_same_batch(read_path_file(file, workers=3), expected)


def test_without_fork_the_parent_reads_every_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows: list[Row] = [([CHANNELS[i % 5], CHANNELS[i % 2]], i % 3, float(i), 1) for i in range(100)]
    file = write(tmp_path, csv_text(rows))
    expected = read_path_file(file, workers=1)

    def no_fork() -> int:
        raise OSError("fork refused")

    monkeypatch.setattr(pathfile_fast.os, "fork", no_fork)
    assert_same_batch(read_path_file(file, workers=2), expected)


def test_small_files_are_read_in_one_process() -> None:
    assert pathfile_fast._worker_count(None, pathfile_fast.PARALLEL_MIN_BYTES - 1) == 1
    assert pathfile_fast._worker_count(3, 10) == 3


def many_rows(bad_line: int, bad_row: str, total: int = 3000) -> str:
    """A one-row-per-journey file whose line ``bad_line`` (1 = header) is ``bad_row``."""
    lines = [HEADER] + [f"{CHANNELS[i % 3]} > b,{i % 2},{(i % 2) * 10},{1 - i % 2}" for i in range(total)]
    lines[bad_line - 1] = bad_row
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(
    ("bad_row", "words"),
    [
        ("a > b,x,0,1", "total_conversions"),
        ("a > b,1,-5,0", "total_conversion_value"),
        ("a > b,1,10,inf", "total_null"),
        ("a >  > b,0,0,1", "empty channel"),
        ("a > b,0,0", "expected 4 fields, found 3"),
        ("a > b,0,0,1,7", "expected 4 fields, found 5"),
    ],
)
def test_errors_name_the_line_even_when_identical_lines_were_counted_first(
    tmp_path: Path, workers: int, bad_row: str, words: str
) -> None:
    # Late in the file, so with two workers it lands in the child's chunk.
    file = write(tmp_path, many_rows(2900, bad_row))
    with pytest.raises(PathFileError) as caught:
        read_path_file(file, workers=workers)
    assert f"{file}:2900:" in str(caught.value)
    assert words in str(caught.value)


def test_bytes_the_fast_reader_refuses_still_get_a_clear_line(tmp_path: Path) -> None:
    file = tmp_path / "bad.csv"
    file.write_bytes(many_rows(40, "a > b,0,0,1").encode() + b"\xff > b,0,0,1\n")
    with pytest.raises(PathFileError, match=r"bad\.csv:3002: not UTF-8"):
        read_path_file(file, workers=2)
    # Python 3.11's csv takes NUL as a character, so the careful reader keeps it in the name.
    file.write_bytes(many_rows(40, "a\x00 > b,0,0,1").encode())
    assert "a\x00" in read_path_file(file, workers=2).channel_names


def test_lone_carriage_return_ends_a_row_as_the_csv_module_says(tmp_path: Path) -> None:
    file = write(tmp_path, many_rows(30, "a\r > b,0,0,1"))
    with pytest.raises(PathFileError, match=r":30: expected 4 fields, found 1"):
        read_path_file(file, workers=2)


def test_value_and_null_columns_are_optional_unless_named(tmp_path: Path) -> None:
    file = write(tmp_path, "total_conversions,path\n2,a>b\n1,a > b\n")
    batch = read_path_file(file, workers=2)
    assert {path: sums.tolist() for path, sums in by_path(batch).items()} == {("a", "b"): [3.0, 0.0, 0.0]}
    with pytest.raises(PathFileError, match="'total_null'"):
        read_path_file(file, columns=PathColumns(nulls="total_null"))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_counting_states_numbers_them_as_sorting_does(monkeypatch: pytest.MonkeyPatch, order: int) -> None:
    rng = np.random.default_rng(order)
    lengths = rng.integers(1, 7, 300)
    batch = batch_of_codes(rng.integers(0, 6, int(lengths.sum())), lengths)
    counted = markov.state_codes(batch, order)
    monkeypatch.setattr(markov, "DENSE_KEY_LIMIT", 0)
    sorted_ = markov.state_codes(batch, order)
    for mine, reference in zip(counted, sorted_, strict=True):
        np.testing.assert_array_equal(mine, reference)


def batch_of_codes(codes: np.ndarray, lengths: np.ndarray) -> TouchBatch:
    from closedloop.attribution.batch import batch_from_codes

    ones = np.ones(lengths.shape[0])
    return batch_from_codes(tuple("abcdef"), codes, lengths, conversions=ones, value=ones, nulls=ones)


# The standalone command: its plain-command-line fast path must match the typer command.

PATHS = f"{HEADER}\na > b,3,30,1\na,1,10,2\nb > c > a,2,5,0\ndirect,1,1,4\n"


def typer_output(*args: str) -> tuple[int, str, str]:
    app = typer.Typer()
    register(app)

    @app.callback()
    def group() -> None:
        """Makes ``attribute`` a subcommand, as in the real CLI."""

    result = CliRunner().invoke(app, ["attribute", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "markov_1", "--format", "json"],
        ["--model=markov_2", "--format=csv"],
        ["-m", "linear", "--format", "json", "--separator", ">"],
        ["--format", "json", "--model", "all"],
    ],
)
def test_standalone_fast_path_prints_what_typer_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    file = str(write(tmp_path, PATHS))
    assert parse_plain_command_line([file, *args]) is not None
    assert main([file, *args]) == 0
    code, expected, _ = typer_output(file, *args)
    assert code == 0
    assert capsys.readouterr().out == expected


def test_markov_without_settings_equals_markov_with_default_settings(tmp_path: Path) -> None:
    file = str(write(tmp_path, PATHS))
    config = write(tmp_path, "attribution: {}\n", "attribution.yaml")
    fast = typer_output(file, "--model", "markov_1", "--format", "json")
    configured = typer_output(file, "--model", "markov_1", "--format", "json", "--config", str(config))
    assert fast[0] == configured[0] == 0
    assert json.loads(fast[1]) == json.loads(configured[1])


def test_bad_data_exits_2_and_odd_command_lines_go_to_typer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = write(tmp_path, f"{HEADER}\na,1,0,0\nb,x,0,0\n")
    assert main([str(file), "--model", "markov_1"]) == 2
    assert f"{file}:3" in capsys.readouterr().err
    for odd in (["--help"], [str(file), "--colour", "red"], [str(file), "extra.csv"], [str(file), "--model"]):
        assert parse_plain_command_line(odd) is None
    assert main([str(file), "--model", "magic"]) == 2
    assert "magic" in capsys.readouterr().err
