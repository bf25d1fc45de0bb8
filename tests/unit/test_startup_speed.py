"""Start-up: what ``closedloop --help``, ``attribute --help`` and a plain ``attribute`` run import.

Import-based, not timed (timings on a shared machine prove nothing): each probe runs the console
script's ``entrypoint`` in a fresh interpreter and lists the heavy modules it loaded.  A command
module, typer or rich imported at the top again would show up here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from closedloop.cli import attribute
from closedloop.cli.main import COMMANDS, top_level_help
from closedloop.config.attribution import AttributionConfig
from closedloop.config.names import DEFAULT_MARKOV_ORDER
from closedloop.files import pathfile_fast
from closedloop.files.pathfile import path_file_credits

HEAVY = ("typer", "rich", "click", "pydantic", "numpy", "sqlalchemy", "sqlmodel", "yaml")


def probe(*args: str) -> tuple[set[str], str, int]:
    """Heavy top-level packages and closedloop modules loaded by ``closedloop ARGS``; stdout; exit."""
    script = (
        "import sys, json\n"
        "from closedloop.cli import entrypoint\n"
        "code = 0\n"
        "try:\n"
        f"    entrypoint({list(args)!r})\n"
        "except SystemExit as done:\n"
        "    code = done.code\n"
        "sys.stdout.flush()\n"
        "import os\n"
        "print('\\nPROBE', json.dumps([sorted(sys.modules), code, os.environ.get('OPENBLAS_NUM_THREADS')]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    out, _, tail = done.stdout.rpartition("\nPROBE ")
    assert tail, done.stderr
    modules, code, blas = json.loads(tail)
    loaded = {m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY}
    loaded |= {m for m in modules if m.startswith("closedloop.") and m != "closedloop.__main__"}
    if blas is not None:
        loaded.add(f"OPENBLAS_NUM_THREADS={blas}")
    return loaded, out, code


def test_help_loads_no_framework_and_no_command_module() -> None:
    loaded, out, code = probe("--help")
    assert code == 0
    assert loaded == {"closedloop.cli", "closedloop.cli.main", "closedloop.cli.help"}
    for name, entry in COMMANDS.items():
        assert name in out
        assert entry.help.split()[0] in out


def test_no_arguments_shows_help_and_exits_2_as_typer_did() -> None:
    loaded, out, code = probe()
    assert code == 2 and "Commands" in out and "typer" not in loaded


def test_attribute_help_loads_neither_typer_nor_numpy() -> None:
    loaded, out, code = probe("attribute", "--help")
    assert code == 0
    assert not loaded & set(HEAVY), loaded
    assert "--model" in out and "--config" in out and "PATHS_FILE" in out


def test_plain_markov_run_skips_typer_rich_and_pydantic(tmp_path: Path) -> None:
    paths = tmp_path / "paths.csv"
    paths.write_text("path,total_conversions,total_conversion_value,total_null\na > b,3,30,1\nb,1,10,2\n")
    loaded, out, code = probe("attribute", str(paths), "--model", "markov", "--format", "json")
    assert code == 0, out
    assert json.loads(out)["model"] == "markov"
    assert {"typer", "rich", "pydantic", "yaml", "sqlalchemy"}.isdisjoint(loaded), loaded
    assert "numpy" in loaded and "OPENBLAS_NUM_THREADS=1" in loaded


def test_odd_attribute_command_line_still_gets_typers_usage_error(tmp_path: Path) -> None:
    loaded, _out, code = probe("attribute", "--no-such-option")
    assert code == 2 and "typer" in loaded


def test_other_commands_still_go_through_typer() -> None:
    loaded, out, code = probe("config", "--help")
    assert code == 0 and "validate" in out and "typer" in loaded


def test_version_is_answered_without_typer() -> None:
    loaded, out, code = probe("--version")
    from closedloop import __version__

    assert code == 0 and out.strip() == f"closedloop {__version__}" and "typer" not in loaded


def test_hand_drawn_attribute_help_lists_every_option_typer_knows() -> None:
    command = typer.main.get_command(attribute.typer_app())
    screen = " ".join(re.sub("[│╭╮╰╯─]", " ", attribute.help_screen()).split())  # rows unwrapped
    for param in command.params:
        for option in param.opts:
            name = option if option.startswith("-") else option.upper()
            assert name in screen, name
        if param.help:
            assert param.help in screen, param.help


def test_help_defaults_are_the_readers_defaults() -> None:
    assert attribute.DEFAULT_PATH_COLUMN == pathfile_fast.DEFAULT_PATH_COLUMN
    assert attribute.DEFAULT_CONVERSIONS_COLUMN == pathfile_fast.DEFAULT_CONVERSIONS_COLUMN
    assert attribute.DEFAULT_SEPARATOR == pathfile_fast.DEFAULT_SEPARATOR


@pytest.mark.parametrize("order", [1, 2])
def test_markov_without_settings_is_the_configured_default_order(tmp_path: Path, order: int) -> None:
    assert AttributionConfig().markov_order == DEFAULT_MARKOV_ORDER
    paths = tmp_path / "paths.csv"
    paths.write_text(
        "path,total_conversions,total_conversion_value,total_null\n"
        "a > b > c,3,30,1\nb > a,1,10,2\nc,0,0,5\na > c,2,7,1\n"
    )
    fast = path_file_credits(paths, "markov", config=None)
    configured = path_file_credits(paths, "markov", config=AttributionConfig(markov_order=DEFAULT_MARKOV_ORDER))
    other = path_file_credits(paths, "markov", config=AttributionConfig(markov_order=order))
    assert fast == configured
    assert (fast == other) == (order == DEFAULT_MARKOV_ORDER)


def test_top_level_help_wraps_to_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    assert max(len(line) for line in top_level_help().splitlines()) <= 60
