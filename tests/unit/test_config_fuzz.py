"""Fuzz the config loader: any input ends in a Config or a ConfigError, never another exception,
and each within a second (alias bombs, deep nesting and odd tags included).

Three generators: raw bytes (binary, Latin-1, truncated UTF-8), arbitrary text, and YAML built
from the config's own section and field names with hostile values spliced in, which reaches
the validators rather than stopping at the parser.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closedloop.config.loader import ConfigError, load_config, parse_config
from closedloop.config.models import Config

ENV = {"HUBSPOT_TOKEN": "t", "EMPTY": ""}
FUZZ = settings(max_examples=250, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])

SECTIONS = ["version", "store", "crm", "hubspot", "salesforce", "ga4", "mapping", "attribution", "writeback",
            "schedule", "privacy", "timezone", "reporting_currency"]
FIELDS = ["url", "base_url", "access_token", "access_token_file", "property_id", "jobs", "run", "interval_seconds",
          "cron", "models", "rules", "channel", "health_port", "health_host", "lease_seconds", "enabled",
          "batch_size", "login_url", "instance_url", "auth", "tier", "timezone", "<<", "credentials_file"]
SCALARS = st.one_of(
    st.sampled_from(["~", "null", "yes", "no", "0x1F", "1e400", "-.inf", ".nan", "2024-13-45", "!!binary ###",
                     "!!timestamp x", "!!python/name:os.system", "!!map x", "${HUBSPOT_TOKEN}", "${MISSING}",
                     "mysql://x/y", "sqlite:///x.db", "ftp://h", "http://127.0.0.1:1", "'quoted'", "\"\\x00\"",
                     "&a 1", "*a", "*undefined", "[1, 2", "{a: }", "|\n  block", "99999999999999999999999",
                     "*/5 * * * *", "61 * * * *", "Europe/Nowhere", "/nonexistent/secret"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=20).map(repr),
)


def _yaml_tree(depth: int = 0) -> st.SearchStrategy[str]:
    indent = "  " * depth
    leaf = SCALARS.map(lambda v: f" {v}\n")
    if depth >= 3:
        child: st.SearchStrategy[str] = leaf
    else:
        child = st.one_of(leaf, _yaml_tree(depth + 1).map(lambda body: "\n" + body),
                          st.lists(SCALARS, max_size=4).map(lambda xs: f" [{', '.join(xs)}]\n"))
    key = st.sampled_from(SECTIONS if depth == 0 else FIELDS)
    return st.lists(st.tuples(key, child), min_size=1, max_size=5).map(
        lambda items: "".join(f"{indent}{k}:{v}" for k, v in items)
    )


def _ends_well(run: object) -> None:
    started = time.perf_counter()
    try:
        result = run()  # type: ignore[operator]
    except ConfigError as exc:
        assert exc.problems, "a ConfigError always names at least one problem"
        assert all(p.file and isinstance(p.message, str) and p.message for p in exc.problems)
    else:
        assert isinstance(result, Config)
    assert time.perf_counter() - started < 1.0


@FUZZ
@given(raw=st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(lambda t: t.encode("latin-1", "replace")),
                     st.text(max_size=500).map(lambda t: t.encode("utf-8")[:-1])))
def test_any_bytes_end_in_a_config_or_a_config_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(raw)
    _ends_well(lambda: load_config(path, environ=ENV, check_files=True))


@FUZZ
@given(text=st.text(max_size=800))
def test_any_text_ends_in_a_config_or_a_config_error(text: str) -> None:
    _ends_well(lambda: parse_config(text, file="c.yaml", environ=ENV, check_files=True))


@FUZZ
@given(text=_yaml_tree())
def test_config_shaped_yaml_ends_in_a_config_or_a_config_error(text: str) -> None:
    _ends_well(lambda: parse_config(text, file="c.yaml", environ=ENV, check_files=True))


@pytest.mark.parametrize("section", ["store", "hubspot", "ga4", "schedule", "salesforce"])
@FUZZ
@given(value=SCALARS, field=st.sampled_from(FIELDS))
def test_one_hostile_value_in_a_valid_config(section: str, value: str, field: str) -> None:
    base = ("store:\n  url: sqlite:///x.db\nhubspot:\n  base_url: http://127.0.0.1:1\n"
            "  access_token: ${HUBSPOT_TOKEN}\nga4:\n  property_id: '1'\n")
    header = f"{section}:\n"
    text = (base.replace(header, f"{header}  {field}: {value}\n") if header in base
            else base + f"{header}  {field}: {value}\n")
    _ends_well(lambda: parse_config(text, file="c.yaml", environ=ENV, check_files=True))
