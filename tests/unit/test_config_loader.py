"""The config loader: every problem at once, with file, line and field; secrets never inlined."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import pytest

from closedloop.config.loader import MAX_CONFIG_BYTES, ConfigError, Problem, load_config, parse_config, read_secret

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
    assert "200" in found["writeback.batch_size"].message  # no CRM takes more a call


def test_batch_size_over_the_crms_own_limit_names_the_section() -> None:
    found = problems(VALID + "writeback:\n  batch_size: 150\n", {"HUBSPOT_TOKEN": "t"})
    assert [(p.field, p.line) for p in found] == [("writeback", 9)]  # the section's line
    assert "at most 100 for HubSpot" in found[0].message


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


# --- hostile files: each refused with file, line and field, quickly --------------------------


def test_example_config_names_its_secret_files_when_they_are_checked() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "closedloop.example.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(example, environ={"HUBSPOT_TOKEN": "t"}, check_files=True)
    found = {p.field: p for p in info.value.problems}
    assert "ga4.credentials_file" in found and "file not found" in found["ga4.credentials_file"].message
    text = example.read_text(encoding="utf-8").splitlines()
    assert "credentials_file" in text[found["ga4.credentials_file"].line - 1]  # type: ignore[operator]


def test_secret_files_must_exist_and_be_files_but_are_never_shown(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("pat-secret-in-file\n", encoding="utf-8")
    text = VALID.replace("access_token: ${HUBSPOT_TOKEN}", f"access_token_file: {token}")
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_config(path, check_files=True).hubspot is not None  # readable: fine
    token.unlink()
    with pytest.raises(ConfigError) as info:
        load_config(path, check_files=True)
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.field) == (str(path), 6, "hubspot.access_token_file")
    assert "file not found" in problem.message
    token.mkdir()
    with pytest.raises(ConfigError) as info:
        load_config(path, check_files=True)
    assert "directory" in info.value.problems[0].message
    token.rmdir()
    assert load_config(path).hubspot is not None, "library callers may skip the file checks"


@pytest.mark.skipif(os.getuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_secret_file_is_named_without_its_content(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("pat-secret-in-file\n", encoding="utf-8")
    token.chmod(0)
    path = tmp_path / "c.yaml"
    path.write_text(VALID.replace("access_token: ${HUBSPOT_TOKEN}", f"access_token_file: {token}"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, check_files=True)
    assert "not readable" in str(info.value) and "pat-secret" not in str(info.value)


@pytest.mark.parametrize("url", ["mysql://u@h/db", "mysql+pymysql://u@h/db", "oracle://h/x", "closedloop.db",
                                 "sqlite:x.db"])
def test_unsupported_store_url_is_refused_at_its_line(url: str) -> None:
    found = problems(VALID.replace("sqlite:///x.db", url), {"HUBSPOT_TOKEN": "t"})
    assert [(p.line, p.field) for p in found] == [(3, "store.url")]
    assert "sqlite" in found[0].message  # says what would do


@pytest.mark.parametrize("url", ["sqlite:///x.db", "sqlite:////abs/x.db", "sqlite://", "postgresql://u@h:5432/db",
                                 "postgresql+psycopg://u@h/db"])
def test_supported_store_urls_pass(url: str) -> None:
    assert parse_config(VALID.replace("sqlite:///x.db", url), environ={"HUBSPOT_TOKEN": "t"}).store.url == url


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:9999", "file:///etc/passwd", "127.0.0.1:9999", "javascript:x",
                                 "http://", "http://h:99999"])
def test_service_url_with_a_bad_scheme_or_host_is_refused(url: str) -> None:
    found = problems(VALID.replace("http://127.0.0.1:9999", url), {"HUBSPOT_TOKEN": "t"})
    assert [(p.line, p.field) for p in found] == [(5, "hubspot.base_url")]
    text = VALID.replace('property_id: "123"', f'property_id: "123"\n  base_url: "{url}"')
    assert [(p.line, p.field) for p in problems(text, {"HUBSPOT_TOKEN": "t"})] == [(9, "ga4.base_url")]


def test_latin1_file_names_the_byte_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    raw = VALID.replace("version: 1\n", "version: 1\n# Gr\xfc\xdfe aus K\xf6ln\n").encode("latin-1")
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"HUBSPOT_TOKEN": "t"})
    [problem] = info.value.problems
    assert problem.file == str(path) and problem.line == 2
    assert f"offset {raw.index(0xFC)}" in problem.message and "0xfc" in problem.message and "UTF-8" in problem.message


def test_binary_file_is_refused_not_decoded(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].line == 1 and "not UTF-8" in info.value.problems[0].message
    path.write_bytes(b"store:\n  url: sqlite:///x.db\x00\x01\n")  # valid UTF-8 but control bytes
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].line == 2 and "not valid YAML" in info.value.problems[0].message


def test_utf8_with_bom_and_non_ascii_values_load(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + (VALID + 'schedule:\n  timezone: "Europe/Z\u00fcrich"\n').encode("utf-8"))
    with pytest.raises(ConfigError) as info:  # a real problem, found past the BOM and the umlaut
        load_config(path, environ={"HUBSPOT_TOKEN": "t"})
    assert [(p.line, p.field) for p in info.value.problems] == [(10, "schedule.timezone")]
    assert "Z\u00fcrich" in info.value.problems[0].message


def _alias_bomb(levels: int) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijklmnop"
    for prev, name in itertools.pairwise(names[:levels]):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [5, 7, 12])
def test_alias_bomb_is_refused_within_a_second(levels: int) -> None:
    started = time.perf_counter()
    found = problems(_alias_bomb(levels))
    assert time.perf_counter() - started < 1.0
    assert len(found) == 1 and "alias" in found[0].message and found[0].line is not None
    assert found[0].line <= levels


def test_a_few_aliases_are_still_fine() -> None:
    text = VALID.replace('property_id: "123"', 'property_id: &pid "123"') + "x_alias: *pid\n"
    found = problems(text, {"HUBSPOT_TOKEN": "t"})
    assert [p.field for p in found] == ["x_alias"]  # an unknown key; the alias itself is no problem


def test_self_referencing_alias_is_refused() -> None:
    found = problems("a: &a [1, *a]\n")
    assert "itself" in found[0].message and found[0].line == 1


def test_deep_nesting_is_refused_before_the_composer_recurses() -> None:
    started = time.perf_counter()
    found = problems("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert time.perf_counter() - started < 1.0
    assert "nest" in found[0].message
    found = problems("a: " + "[" * 60 + "]" * 60 + "\n")
    assert found[0].message == "nested more than 50 levels deep"


def test_oversized_file_is_refused_unparsed(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(VALID.encode() + b"# " + b"x" * MAX_CONFIG_BYTES + b"\n")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert time.perf_counter() - started < 1.0
    assert info.value.problems[0].file == str(path) and "larger than" in info.value.problems[0].message


def test_non_text_keys_and_unknown_tags_are_problems_not_crashes() -> None:
    assert problems("? [a, b]\n: 1\n")[0].message == "a key must be plain text"
    found = problems(VALID + "timezone: !!python/object:os.system x\n", {"HUBSPOT_TOKEN": "t"})
    assert found[0].field == "timezone" and "tag" in found[0].message
    found = problems(VALID + "timezone: !!timestamp not-a-date\n", {"HUBSPOT_TOKEN": "t"})
    assert found[0].field == "timezone" and found[0].line == 9
