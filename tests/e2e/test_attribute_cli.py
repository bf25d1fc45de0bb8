"""``attribute`` end to end through typer's CliRunner on small path files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from closedloop.attribution.command import register
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
    assert code == 1
    assert "'path'" in err and str(file) in err


def test_explicit_value_column_must_exist(app: typer.Typer, tmp_path: Path) -> None:
    file = write(tmp_path, "path,total_conversions\na,1\n")
    code, _, err = run(app, str(file), "--value-column", "revenue")
    assert code == 1 and "'revenue'" in err


@pytest.mark.parametrize("bad", ["x", "-1", "nan"])
def test_bad_number_names_the_line(app: typer.Typer, tmp_path: Path, bad: str) -> None:
    file = write(tmp_path, f"path,total_conversions,total_null\na,1,0\nb,{bad},0\n")
    code, _, err = run(app, str(file))
    assert code == 1
    assert f"{file}:3" in err and "total_conversions" in err


def test_empty_channel_and_short_row_name_the_line(app: typer.Typer, tmp_path: Path) -> None:
    file = write(tmp_path, "path,total_conversions\na,1\na >  > b,1\n")
    code, _, err = run(app, str(file))
    assert code == 1 and f"{file}:3" in err and "empty channel" in err
    file = write(tmp_path, "path,total_conversions\na,1\nb\n", "short.csv")
    code, _, err = run(app, str(file))
    assert code == 1 and f"{file}:3" in err


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
    assert code == 1 and "nope.csv" in err
