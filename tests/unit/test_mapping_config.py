"""Every kind of mistake an admin makes in the mapping YAML: file, line, field, message."""

from __future__ import annotations

import json
import textwrap

import pytest

from closedloop.config.loader import ConfigError, Problem, parse_config
from closedloop.config.mapping import MappingConfig
from closedloop.config.models import Config

ENV = {"HUBSPOT_TOKEN": "pat-test"}
HEADER = "hubspot:\n  access_token: ${HUBSPOT_TOKEN}\nmapping:\n"


def problems(mapping_yaml: str) -> list[Problem]:
    text = HEADER + textwrap.indent(textwrap.dedent(mapping_yaml), "  ")
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="closedloop.yaml", environ=ENV)
    return info.value.problems


def only(mapping_yaml: str) -> Problem:
    found = problems(mapping_yaml)
    assert len(found) == 1, found
    return found[0]


def test_a_valid_mapping_loads() -> None:
    text = HEADER + textwrap.indent(textwrap.dedent("""\
        default_channel_group: off
        aliases:
          source: {facebook: [fb, m.facebook.com]}
        channel_rules:
          - name: LinkedIn Ads
            channel: Paid Social
            subchannel: "LinkedIn / {campaign}"
            when:
              all:
                - {field: source, in: [linkedin, lnkd.in]}
                - {field: medium, regex: "^(cpc|paid.*)$"}
                - {field: click_id, present: true, not: true}
        milestones:
          pipelines:
            default: {closedwon: closed_won}
    """), "  ")
    config = parse_config(text, environ=ENV)
    rule = config.mapping.channel_rules[0]
    assert config.mapping.default_channel_group == "off"
    assert rule.when is not None and rule.when.all is not None and rule.when.all[2].not_


def test_regex_that_does_not_compile() -> None:
    problem = only("""\
        channel_rules:
          - name: Bad
            channel: X
            when: {field: campaign, regex: "^(unclosed"}
    """)
    assert problem.file == "closedloop.yaml"
    assert problem.field == "mapping.channel_rules[0].when.regex"
    assert problem.line == 7
    assert "does not compile" in problem.message


def test_nested_regex_error_has_its_full_path() -> None:
    problem = only("""\
        channel_rules:
          - name: Ok
            channel: X
          - name: Bad
            channel: Y
            when:
              any:
                - {field: source, equals: a}
                - {field: source, regex: "[z-a]"}
    """)
    assert problem.field == "mapping.channel_rules[1].when.any[1].regex"
    assert problem.line == 12


def test_unknown_field_name() -> None:
    problem = only("""\
        channel_rules:
          - {name: A, channel: X, when: {field: utm_source, equals: a}}
    """)
    assert problem.field == "mapping.channel_rules[0].when.field"
    assert "source" in problem.message  # the valid choices are listed


def test_misspelt_operator_is_an_unknown_key() -> None:
    found = problems("""\
        channel_rules:
          - {name: A, channel: X, when: {field: source, equal: a}}
    """)
    fields = {p.field for p in found}
    assert "mapping.channel_rules[0].when.equal" in fields
    assert any("unknown field" in p.message for p in found)


def test_two_operators_in_one_condition() -> None:
    problem = only("""\
        channel_rules:
          - {name: A, channel: X, when: {field: source, equals: a, like: "b*"}}
    """)
    assert problem.field == "mapping.channel_rules[0].when"
    assert "exactly one operator" in problem.message and "equals, like" in problem.message


def test_condition_without_field() -> None:
    problem = only("""\
        channel_rules:
          - {name: A, channel: X, when: {equals: a}}
    """)
    assert "give field:" in problem.message


def test_all_and_any_in_one_group() -> None:
    problem = only("""\
        channel_rules:
          - name: A
            channel: X
            when:
              all: [{field: source, equals: a}]
              any: [{field: source, equals: b}]
    """)
    assert "exactly one of all: or any:" in problem.message


def test_rule_without_channel() -> None:
    problem = only("""\
        channel_rules:
          - {name: A, when: {field: source, equals: a}}
    """)
    assert problem.field == "mapping.channel_rules[0].channel"
    assert problem.line == 5


def test_duplicate_rule_names() -> None:
    problem = only("""\
        channel_rules:
          - {name: A, channel: X}
          - {name: A, channel: Y}
    """)
    assert problem.field == "mapping.channel_rules" and "unique" in problem.message


def test_unknown_milestone() -> None:
    problem = only("""\
        milestones:
          pipelines:
            default: {closedwon: won}
    """)
    assert problem.field == "mapping.milestones.pipelines.default.closedwon"
    assert "closed_won" in problem.message


def test_alias_of_two_canonicals() -> None:
    problem = only("""\
        aliases:
          source: {facebook: [fb], fbads: [fb]}
    """)
    assert problem.field == "mapping.aliases" and "both" in problem.message


def test_subchannel_template_with_unknown_field() -> None:
    problem = only("""\
        channel_rules:
          - {name: A, channel: X, subchannel: "{utm_campaign}"}
    """)
    assert problem.field == "mapping.channel_rules[0].subchannel"
    assert "utm_campaign" in problem.message


def test_empty_in_list_and_bad_category() -> None:
    found = problems("""\
        channel_rules:
          - {name: A, channel: X, when: {field: source, in: []}}
          - {name: B, channel: Y, when: {field: source, in_category: news}}
    """)
    assert {p.field for p in found} == {
        "mapping.channel_rules[0].when.in", "mapping.channel_rules[1].when.in_category"}


def test_every_error_is_reported_at_once() -> None:
    found = problems("""\
        default_channel_group: prepend
        channel_rules:
          - {name: A, channel: X, when: {field: source, regex: "("}}
          - {name: B}
    """)
    assert len(found) == 3


def test_json_schema_describes_the_mapping_for_editors() -> None:
    schema = Config.model_json_schema()
    text = json.dumps(schema)
    condition = schema["$defs"]["Condition"]["properties"]
    expected = {"field", "equals", "in", "like", "regex", "in_category", "all", "any", "not"}
    assert expected <= set(condition)
    assert "first rule whose conditions hold" in text
    assert MappingConfig.model_json_schema()["properties"]["default_channel_group"]["enum"] == [
        "after_rules", "off"]
