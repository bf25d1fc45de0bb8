"""Campaign responses as touchpoints: channelled by the YAML rules like sessions, timed precisely.

The example rule is read from the commented block in config/closedloop.example.yaml, so the
example an admin copies is the one tested.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from closedloop.config.mapping import MappingConfig
from closedloop.connectors.salesforce import parse
from closedloop.mapping.channels import ChannelMapper
from closedloop.mapping.touchpoints import OfflineSource, contact_touchpoints
from closedloop.records import OfflineTouchRecord, WebSessionRecord

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "closedloop.example.yaml"
AT = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)


def example_campaign_rule() -> dict[str, Any]:
    text = EXAMPLE.read_text()
    block = re.search(r"^    # - name: Trade shows and events\n((?:    #   .*\n)+)", text, re.MULTILINE)
    assert block is not None, "the example config lost its campaign-response rule"
    lines = ["- name: Trade shows and events"] + [line[6:] for line in block.group(1).splitlines()]
    return dict(yaml.safe_load("\n".join(lines))[0])


def touch(source: str, campaign: str, at: datetime = AT, key: str = "sf-campaign-member:00v1") -> OfflineTouchRecord:
    return OfflineTouchRecord(key, "003A", at, source, "campaign", campaign)


def test_example_rule_channels_trade_shows_by_type_and_keeps_other_campaigns_out() -> None:
    mapper = ChannelMapper.from_config(MappingConfig(channel_rules=[example_campaign_rule()]))
    show = contact_touchpoints("003A", AT, [], OfflineSource(None), mapper, [touch("Trade Show", "Expo 2024")])
    assert [(t.channel, t.subchannel, t.is_offline, t.key, t.source) for t in show] == [
        ("Events", "expo 2024", True, "sf-campaign-member:00v1", "Trade Show")
    ]
    assert show[0].rule == "channel_rules[0] 'Trade shows and events'"
    email = contact_touchpoints("003A", AT, [], OfflineSource(None), mapper, [touch("Email", "Newsletter")])
    assert email[0].channel != "Events"
    # A web session whose source is "Trade Show" but medium is not "campaign" is not matched.
    web = WebSessionRecord("c1", AT, "Trade Show", "referral", "Expo 2024", "/")
    assert contact_touchpoints("003A", AT, [web], OfflineSource(None), mapper)[0].channel != "Events"


def test_campaign_touch_before_the_lead_replaces_the_lead_source_touch() -> None:
    mapper = ChannelMapper.from_config(MappingConfig())
    before = contact_touchpoints(
        "003A", AT, [], OfflineSource("Trade Show"), mapper, [touch("Event", "Expo", at=AT.replace(hour=9))]
    )
    assert [t.key for t in before] == ["sf-campaign-member:00v1"]
    after = contact_touchpoints(
        "003A", AT, [], OfflineSource("Trade Show"), mapper, [touch("Event", "Expo", at=AT.replace(day=9))]
    )
    assert [t.key for t in after] == ["crm:003A", "sf-campaign-member:00v1"]


def member(created: str, responded: str | None) -> dict[str, Any]:
    return {
        "Id": "00v000000000001AAA",
        "LeadOrContactId": "00Q000000000001AAA",
        "HasResponded": True,
        "FirstRespondedDate": responded,
        "CreatedDate": created,
        "Campaign": {"Type": "Webinar", "Name": "Spring webinar"},
    }


def test_response_time_is_the_members_creation_on_the_response_day_else_the_response_date() -> None:
    same_day = parse.campaign_response(member("2024-03-05T14:30:00.000+0000", "2024-03-05"))
    assert same_day is not None and same_day.occurred_at == AT
    later = parse.campaign_response(member("2024-03-01T08:00:00.000+0000", "2024-03-05"))
    assert later is not None and later.occurred_at == datetime(2024, 3, 5, tzinfo=UTC)
    unknown = parse.campaign_response(member("2024-03-01T08:00:00.000+0000", None))
    assert unknown is not None and unknown.occurred_at == datetime(2024, 3, 1, 8, tzinfo=UTC)
