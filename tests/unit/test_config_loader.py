"""The config loader: every problem at once, with file, line and field; secrets never inlined."""

from __future__ import annotations

from pathlib import Path

import pytest

from closedloop.config.loader import ConfigError, Problem, load_config, parse_config, read_secret

VALID = """\
version: 1
store:
  url: sqlite:///x.db
hubspot:
  base_url: http://127.0.0.1:9999
  access_token: ${HUBSPOT_TOKEN}
ga4:
  property_id: "123"
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="closedloop.yaml", environ=env or {})
    return info.value.problems


def test_valid_config_resolves_env_secret() -> None:
    config = parse_config(VALID, environ={"HUBSPOT_TOKEN": "pat-secret-value"})
    assert config.hubspot is not None and config.hubspot.access_token is not None
    assert config.hubspot.access_token.get_secret_value() == "pat-secret-value"
    assert "pat-secret-value" not in repr(config)
    assert config.ga4 is not None and config.ga4.base_url == "https://analyticsdata.googleapis.com"


def test_every_problem_is_reported_with_line_and_field() -> None:
    text = VALID.replace("  url: sqlite:///x.db\n", "  url: sqlite:///x.db\n  urll: typo\n").replace(
        'property_id: "123"', "property_id: abc\n  lookback_days: 99"
    )
    found = {(p.line, p.field) for p in problems(text, {"HUBSPOT_TOKEN": "t"})}
    assert (4, "store.urll") in found
    assert (9, "ga4.property_id") in found
    assert (10, "ga4.lookback_days") in found
    assert len(found) == 3


def test_inlined_secret_is_refused_and_not_echoed() -> None:
    text = VALID.replace("${HUBSPOT_TOKEN}", "pat-na1-abcdef")
    found = problems(text)
    assert [p.field for p in found] == ["hubspot.access_token"]
    assert found[0].line == 6
    assert "pat-na1-abcdef" not in str(ConfigError(found))


def test_missing_env_var_is_named_once() -> None:
    found = problems(VALID)
    assert len(found) == 1
    assert found[0].field == "hubspot.access_token" and "HUBSPOT_TOKEN" in found[0].message


def test_broken_yaml_names_the_line() -> None:
    found = problems("store:\n  url: [unclosed\nga4: {}\n")
    assert len(found) == 1 and found[0].line is not None and "not valid YAML" in found[0].message


def test_wrong_type_and_enum_are_explained() -> None:
    text = VALID + "writeback:\n  batch_size: 500\n  enabled: maybe\n"
    found = {p.field: p for p in problems(text, {"HUBSPOT_TOKEN": "t"})}
    assert set(found) == {"writeback.batch_size", "writeback.enabled"}
    assert found["writeback.batch_size"].line == 10
    assert "100" in found["writeback.batch_size"].message


def test_duplicate_keys_are_an_error() -> None:
    found = problems(VALID + "store:\n  url: sqlite:///y.db\n", {"HUBSPOT_TOKEN": "t"})
    assert any(p.message == "duplicate key" and p.line == 9 for p in found)


def test_missing_crm_section_is_explained() -> None:
    found = problems("ga4:\n  property_id: '1'\n")
    assert any("hubspot" in p.message for p in found)


def test_load_config_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "file not found" in str(info.value)


def test_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    text = VALID.replace("access_token: ${HUBSPOT_TOKEN}", f"access_token_file: {secret}")
    config = parse_config(text, environ={})
    assert config.hubspot is not None
    assert read_secret(config.hubspot.access_token, config.hubspot.access_token_file, what="t") == "from-file"


def test_the_example_config_for_admins_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "closedloop.example.yaml"
    config = load_config(example, environ={"HUBSPOT_TOKEN": "t"})
    assert config.hubspot is not None and config.ga4 is not None
    assert config.writeback.property_prefix == "closedloop_"
