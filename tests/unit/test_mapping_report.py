"""`mapping test` report and the `mapping` commands."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from typer.testing import CliRunner

from closedloop.cli import app as closedloop_app
from closedloop.config.mapping import MappingConfig
from closedloop.mapping.channels import ChannelMapper
from closedloop.mapping.report import mapping_test_report
from closedloop.mapping.utm import RawTouch

MAPPER = ChannelMapper.from_config(MappingConfig.model_validate({"channel_rules": [
    {"name": "Webinars", "channel": "Events", "when": {"field": "campaign", "like": "webinar*"}},
    {"name": "Typo", "channel": "Paid Social", "when": {"field": "source", "equals": "linkdin"}},
]}))


def test_report_counts_sessions_contacts_gaps_and_unused_rules() -> None:
    rows = [
        (RawTouch(source="google", medium="cpc"), 10, "c1"),
        (RawTouch(source="Google", medium="CPC"), 5, "c2"),
        (RawTouch(source="google", medium="cpc"), 7, None),
        (RawTouch(source="x", medium="y", campaign="webinar-3"), 2, "c1"),
        (RawTouch(source="foo", medium="bar"), 4, "c3"),
        (RawTouch(source="FOO", medium="bar"), 1, None),
        (RawTouch(source="baz", medium="qux"), 9, None),
    ]
    report = mapping_test_report(rows, MAPPER)
    volumes = {v.channel: (v.sessions, v.contacts) for v in report.channels}
    assert volumes == {"Paid Search": (22, 2), "Unassigned": (14, 1), "Events": (2, 1)}
    assert report.total_sessions == 38
    assert [(u.source, u.medium, u.sessions, u.contacts) for u in report.unmapped] == [
        ("baz", "qux", 9, 0), ("foo", "bar", 5, 1)]
    assert "channel_rules[1] 'Typo'" in report.unused_rules
    assert "channel_rules[0] 'Webinars'" not in report.unused_rules
    assert report.rule_hits["GA4 default: Paid Search"] == 22


def app() -> typer.Typer:
    return closedloop_app


def test_explain_command_prints_the_matching_rule(tmp_path: Path) -> None:
    result = CliRunner().invoke(app(), [
        "mapping", "explain", "--source", "LinkedIn", "--medium", "cpc",
        "--config", str(tmp_path / "absent.yaml"),
    ])
    assert result.exit_code == 0, result.output
    assert "GA4 default: Paid Social" in result.output
    assert "MATCHED" in result.output


def test_explain_uses_the_admin_rules_even_without_crm_secrets(tmp_path: Path) -> None:
    config = tmp_path / "closedloop.yaml"
    config.write_text(
        "hubspot:\n  access_token: ${UNSET_TOKEN_FOR_TEST}\n"
        "mapping:\n  channel_rules:\n"
        "    - {name: LI, channel: LinkedIn, when: {field: source, equals: linkedin}}\n"
    )
    result = CliRunner().invoke(app(), [
        "mapping", "explain", "--source", "linkedin", "--medium", "cpc", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "Channel: LinkedIn" in result.output


def test_explain_reports_a_broken_rule_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "closedloop.yaml"
    config.write_text(
        "hubspot:\n  access_token: ${UNSET_TOKEN_FOR_TEST}\n"
        "mapping:\n  channel_rules:\n"
        "    - {name: LI, channel: LinkedIn, when: {field: source, regex: '('}}\n"
    )
    result = CliRunner().invoke(
        app(), ["mapping", "explain", "--source", "x", "--config", str(config)])
    assert result.exit_code == 3, "a config error"
    assert ":5  mapping.channel_rules[0].when.regex" in result.stderr


def test_mapping_test_command_reads_the_store(tmp_path: Path) -> None:
    from sqlmodel import Session

    from closedloop.store import models as m
    from closedloop.store.engine import open_store

    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = open_store(url)
    at = datetime(2024, 5, 1, tzinfo=UTC)
    with Session(engine) as session:
        session.add(m.Contact(id="c1", created_at=at, updated_at=at))
        session.add(m.ContactIdentity(kind="ga_client_id", value="1.1", contact_id="c1"))
        session.add(m.WebSession(key="s1", client_id="1.1", started_at=at, source="google",
                                 medium="cpc", sessions=3))
        session.add(m.WebSession(key="s2", client_id="9.9", started_at=at, source="weird",
                                 medium="thing", sessions=2))
        session.commit()
    config = tmp_path / "closedloop.yaml"
    config.write_text(
        "hubspot:\n  access_token: ${TOKEN_FOR_TEST}\n"
        f"store:\n  url: {url}\n"
        "mapping:\n  channel_rules:\n"
        "    - {name: Never, channel: X, when: {field: source, equals: nothing}}\n"
    )
    result = CliRunner().invoke(app(), ["mapping", "test", "--config", str(config)],
                                env={"TOKEN_FOR_TEST": "pat-x", "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Paid Search" in result.output and "weird" in result.output
    assert "channel_rules[0] 'Never'" in result.output
