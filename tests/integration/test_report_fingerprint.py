"""`report` and `roi` never pass off credits of an older rebuild as the current YAML's.

The rebuild stores the fingerprint of the config it used (store/rebuilt.py); `report` and `roi`
compare it with the YAML they read and, when they differ, say so on the terminal, in a JSON
field and as the HTML report's first note, telling the reader to run `closedloop run --no-pull`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_spend_currency import SPEND, _store
from typer.testing import CliRunner

from closedloop.cli.application import app
from closedloop.config.fingerprint import derivation_fingerprint
from closedloop.config.loader import load_config
from closedloop.store.engine import open_store
from closedloop.store.rebuilt import credits_basis
from closedloop.sync.derive import rebuild

STALE = "Credits in the store come from"  # the first words of the warning
ENV = {"SPEND_TEST_TOKEN": "unused", "COLUMNS": "200"}
RULE = (
    "mapping:\n  channel_rules:\n    - name: Everything paid\n      channel: Paid\n"
    "      when: {field: medium, equals: cpc}\n"
)


def _yaml(folder: Path, url: str, name: str, extra: str = "") -> Path:
    path = folder / name
    path.write_text(
        f"version: 1\nstore:\n  url: {url}\nreporting_currency: USD\n"
        "hubspot:\n  base_url: http://127.0.0.1:9\n  access_token: ${SPEND_TEST_TOKEN}\n"
        "attribution:\n  models: [first_touch]\n  primary_model: first_touch\n" + extra,
        encoding="utf-8",
    )
    return path


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=ENV)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A store rebuilt with config A; config B differs only in a channel rule."""
    monkeypatch.setenv("SPEND_TEST_TOKEN", "unused")
    url = _store(tmp_path, [s for s in SPEND if s[2] == "USD"])
    a, b = _yaml(tmp_path, url, "a.yaml"), _yaml(tmp_path, url, "b.yaml", RULE)
    rebuild(open_store(url), load_config(a))
    return a, b


def test_credits_basis_compares_the_last_rebuild_with_the_yaml(stores: tuple[Path, Path]) -> None:
    a, b = (load_config(p) for p in stores)
    engine = open_store(a.store.url)
    assert derivation_fingerprint(a) != derivation_fingerprint(b)
    same = credits_basis(engine, a)
    assert same.current_matches and same.warning() is None and same.stored == derivation_fingerprint(a)
    other = credits_basis(engine, b)
    assert not other.current_matches and other.stored == derivation_fingerprint(a)
    assert "closedloop run --no-pull" in (other.warning() or "")
    rebuild(engine, b)  # what `closedloop run --no-pull` does with B
    assert credits_basis(engine, b).current_matches and not credits_basis(engine, a).current_matches


def test_report_says_so_on_the_terminal_in_json_and_html(stores: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = stores
    code, out, err = _cli("report", "-c", str(b))
    assert code == 0, err
    assert "another config" in out and "closedloop run --no-pull" in out
    code, out, err = _cli("report", "-c", str(b), "--json", "--html", str(tmp_path / "r.html"))
    assert code == 0, err
    data = json.loads(out)
    assert data["credits_config"]["current_matches"] is False
    assert data["credits_config"]["stored"] == derivation_fingerprint(load_config(a))
    assert data["notes"][0].startswith(STALE) and "closedloop run --no-pull" in data["notes"][0]
    assert "closedloop run --no-pull" in (tmp_path / "r.html").read_text(encoding="utf-8")
    # With the YAML the credits came from: no warning anywhere.
    code, out, err = _cli("report", "-c", str(a), "--json", "--html", str(tmp_path / "a.html"))
    assert code == 0, err
    data = json.loads(out)
    assert data["credits_config"]["current_matches"] is True
    assert not any(STALE in n for n in data["notes"])
    assert STALE not in (tmp_path / "a.html").read_text(encoding="utf-8")


def test_roi_says_so_too(stores: tuple[Path, Path]) -> None:
    a, b = stores
    code, out, err = _cli("roi", "-c", str(b), "--json")
    assert code == 0, err
    assert json.loads(out)["credits_config"]["current_matches"] is False
    assert "closedloop run --no-pull" in err
    code, out, err = _cli("roi", "-c", str(a), "--json")
    assert code == 0 and json.loads(out)["credits_config"]["current_matches"] is True
    assert STALE not in err
