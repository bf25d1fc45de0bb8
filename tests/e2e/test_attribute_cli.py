"""``attribute`` end to end through typer's CliRunner on small path files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import typer
from typer.testing import CliRunner

from closedloop.cli.attribute import register
from closedloop.config.attribution import AttributionConfig

PATHS = """path,total_conversions,total_conversion_value,total_null
a > b,3,30,1
a,1,10,2
b > c > a,2,5,0
direct,1,1,4
"""


@pytest.fixture
def app() -> typer.Typer:
    application = typer.Typer()
    register(application)

    @application.callback()
    def main() -> None:
        """Group so that ``attribute`` is a subcommand, as in the real CLI."""

    return application


def run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["attribute", *args])
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, text: str, name: str = "paths.csv") -> Path:
    file = tmp_path / name
    file.write_text(text)
    return file


def test_json_single_model_first_touch(app: typer.Typer, tmp_path: Path) -> None:
    file = str(write(tmp_path, PATHS))
    code, out, _ = run(app, file, "--model", "first_touch", "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["model"] == "first_touch"
    assert document["channels"] == {
        "a": {"conversions": 4.0, "value": 40.0},
        "b": {"conversions": 2.0, "value": 5.0},
        "c": {"conversions": 0.0, "value": 0.0},
        "direct": {"conversions": 1.0, "value": 1.0},
    }


def test_all_models_json_and_totals(app: typer.Typer, tmp_path: Path) -> None:
    code, out, _ = run(app, str(write(tmp_path, PATHS)), "--model", "all", "--format", "json")
    assert code == 0
    documents = json.loads(out)
    assert [document["model"] for document in documents] == list(AttributionConfig().model_names())
    for document in documents:
        conversions = sum(ch["conversions"] for ch in document["channels"].values())
        value = sum(ch["value"] for ch in document["channels"].values())
        assert conversions == pytest.approx(7.0), document["model"]
        assert value == pytest.approx(46.0), document["model"]


def channels_of(app: typer.Typer, tmp_path: Path, model: str) -> dict[str, dict[str, float]]:
    code, out, err = run(app, str(write(tmp_path, PATHS)), "--model", model, "--format", "json")
    assert code == 0, err
    channels: dict[str, dict[str, float]] = json.loads(out)["channels"]
    return channels


# PATHS worked by hand.  last touch: a>b -> b, a -> a, b>c>a -> a, direct -> direct.
# linear: a>b halves 3 (30); b>c>a thirds 2 (5); the one-touch paths keep theirs.
HAND_WORKED = {
    "last_touch": {
        "a": {"conversions": 3.0, "value": 15.0},
        "b": {"conversions": 3.0, "value": 30.0},
        "c": {"conversions": 0.0, "value": 0.0},
        "direct": {"conversions": 1.0, "value": 1.0},
    },
    "linear": {
        "a": {"conversions": 1.5 + 1 + 2 / 3, "value": 15 + 10 + 5 / 3},
        "b": {"conversions": 1.5 + 2 / 3, "value": 15 + 5 / 3},
        "c": {"conversions": 2 / 3, "value": 5 / 3},
        "direct": {"conversions": 1.0, "value": 1.0},
    },
}


@pytest.mark.parametrize("model", sorted(HAND_WORKED))
def test_exact_channel_credits_worked_by_hand(app: typer.Typer, tmp_path: Path, model: str) -> None:
    got = channels_of(app, tmp_path, model)
    assert got.keys() == HAND_WORKED[model].keys()
    for channel, want in HAND_WORKED[model].items():
        assert got[channel] == pytest.approx(want, abs=1e-9), (model, channel)


def test_markov_order_one_worked_by_hand(app: typer.Typer, tmp_path: Path) -> None:
    # Steps carry conversions + nulls: start->a 7, ->b 2, ->direct 5; a->b 4, a->conv 3, a->null 2;
    # b->conv 3, b->null 1, b->c 2; c->a 2; direct->conv 1, direct->null 4.
    # P(a) = 15/23, P(b) = 33/46, P(direct) = 1/5, P = 1/2.  Without a: 1/7 (RE 5/7); without b:
    # 5/21 (RE 11/21); without c: 53/126 (RE 10/63); without direct: 3/7 (RE 1/7).
    # Sum of RE = 97/63, so 7 conversions split 315/97, 231/97, 70/97, 63/97.
    got = channels_of(app, tmp_path, "markov_1")
    assert {channel: row["conversions"] for channel, row in got.items()} == pytest.approx(
        {"a": 315 / 97, "b": 231 / 97, "c": 70 / 97, "direct": 63 / 97}, abs=1e-9
    )


def _reference() -> ModuleType:
    """The independent ChannelAttribution-definition reference beside the unit tests."""
    location = Path(__file__).parents[1] / "unit" / "reference_markov.py"
    spec = importlib.util.spec_from_file_location("reference_markov", location)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("reference_markov", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_markov_credits_match_the_independent_reference(app: typer.Typer, tmp_path: Path, order: int) -> None:
    rows = [line.split(",") for line in PATHS.strip().splitlines()[1:]]
    expected = _reference().reference_markov(
        [[channel.strip() for channel in row[0].split(">")] for row in rows],
        [float(row[1]) for row in rows],
        [float(row[2]) for row in rows],
        [float(row[3]) for row in rows],
        order,
    )
    got = channels_of(app, tmp_path, f"markov_{order}")
    for channel in expected.conversions:
        assert got[channel]["conversions"] == pytest.approx(expected.conversions[channel], rel=1e-9, abs=1e-12)
        assert got[channel]["value"] == pytest.approx(expected.value[channel], rel=1e-9, abs=1e-12)


def test_csv_and_table(app: typer.Typer, tmp_path: Path) -> None:
    file = str(write(tmp_path, PATHS))
    code, out, _ = run(app, file, "--model", "linear", "--format", "csv")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "model,channel,conversions,value"
    assert lines[4].startswith("linear,direct,1.0,")
    code, out, _ = run(app, file, "--model", "markov")
    assert code == 0
    assert "model: markov" in out and "direct" in out


def test_other_column_names_and_separator(app: typer.Typer, tmp_path: Path) -> None:
    text = "journey;x,conv,money,lost\nseo;mail,2,20,0\nmail,0,0,3\n"
    file = str(write(tmp_path, text.replace("journey;x", "journey")))
    code, out, err = run(
        app, file, "--model", "last_touch", "--format", "json", "--path-column", "journey",
        "--conversions-column", "conv", "--value-column", "money", "--null-column", "lost",
        "--separator", ";",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["channels"]["mail"] == {"conversions": 2.0, "value": 20.0}


def test_aggregated_and_per_journey_files_agree(app: typer.Typer, tmp_path: Path) -> None:
    rows = "path,total_conversions,total_conversion_value,total_null\n" + "a>b,1,10,0\n" * 3
    rows += "a > b,0,0,1\r\n" + "b,1,2,0\n"
    aggregated = "path,total_conversions,total_conversion_value,total_null\na>b,3,30,1\nb,1,2,0\n"
    one = json.loads(run(app, str(write(tmp_path, rows, "1.csv")), "--format", "json")[1])
    two = json.loads(run(app, str(write(tmp_path, aggregated, "2.csv")), "--format", "json")[1])
    assert one == two


def test_quoted_file_takes_the_careful_reader(app: typer.Typer, tmp_path: Path) -> None:
    text = 'path,total_conversions\n"a > b",2\n"b",1\n'
    code, out, _ = run(app, str(write(tmp_path, text)), "--model", "last_touch", "--format", "json")
    assert code == 0
    assert json.loads(out)["channels"]["b"]["conversions"] == 3.0


def test_missing_column_names_column_and_file(app: typer.Typer, tmp_path: Path) -> None:
    file = write(tmp_path, "route,total_conversions\na,1\n")
    code, _, err = run(app, str(file))
    assert code == 2
    assert "'path'" in err and str(file) in err


def test_explicit_value_column_must_exist(app: typer.Typer, tmp_path: Path) -> None:
    file = write(tmp_path, "path,total_conversions\na,1\n")
    code, _, err = run(app, str(file), "--value-column", "revenue")
    assert code == 2 and "'revenue'" in err


@pytest.mark.parametrize("bad", ["x", "-1", "nan"])
def test_bad_number_names_the_line(app: typer.Typer, tmp_path: Path, bad: str) -> None:
    file = write(tmp_path, f"path,total_conversions,total_null\na,1,0\nb,{bad},0\n")
    code, _, err = run(app, str(file))
    assert code == 2
    assert f"{file}:3" in err and "total_conversions" in err


def test_empty_channel_and_short_row_name_the_line(app: typer.Typer, tmp_path: Path) -> None:
    file = write(tmp_path, "path,total_conversions\na,1\na >  > b,1\n")
    code, _, err = run(app, str(file))
    assert code == 2 and f"{file}:3" in err and "empty channel" in err
    file = write(tmp_path, "path,total_conversions\na,1\nb\n", "short.csv")
    code, _, err = run(app, str(file))
    assert code == 2 and f"{file}:3" in err


def test_unknown_model_and_format(app: typer.Typer, tmp_path: Path) -> None:
    file = str(write(tmp_path, PATHS))
    code, _, err = run(app, file, "--model", "magic")
    assert code == 2 and "magic" in err and "u_shaped" in err
    code, _, err = run(app, file, "--format", "xml")
    assert code == 2 and "xml" in err


def test_config_file_custom_model(app: typer.Typer, tmp_path: Path) -> None:
    config = tmp_path / "attribution.yaml"
    config.write_text("attribution:\n  custom_models:\n    marketo_u: {first: 50, lead: 50}\n")
    code, out, err = run(
        app, str(write(tmp_path, PATHS)), "--model", "marketo_u", "--format", "json",
        "--config", str(config),
    )  # fmt: skip
    assert code == 0, err
    # path files: lead is the last touch, so a > b splits 50/50 and single touches keep all.
    assert json.loads(out)["channels"]["b"]["conversions"] == pytest.approx(1.5 + 1.0)


def test_missing_file(app: typer.Typer, tmp_path: Path) -> None:
    code, _, err = run(app, str(tmp_path / "nope.csv"))
    assert code == 2 and "nope.csv" in err
