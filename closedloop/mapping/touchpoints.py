"""A contact's touchpoints: matched web sessions, or the CRM's own source when none led to the lead.

Pure: rows in, rows out.  Touchpoint ids are a stable hash of (contact, key) so a rebuild after
a mapping change produces the same ids and only the changed rows are written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from closedloop.mapping.channels import ChannelMapper
from closedloop.mapping.utm import RawTouch
from closedloop.records import OfflineTouchRecord, WebSessionRecord


def session_raw_touch(session: WebSessionRecord) -> RawTouch:
    """What the channel rules see of a web session."""
    return RawTouch(
        source=session.source,
        medium=session.medium,
        campaign=session.campaign,
        landing_page=session.landing_page,
        click_ids=frozenset(session.click_ids),
    )


@dataclass(frozen=True, slots=True)
class OfflineSource:
    """The CRM's first-source fields of a contact (HubSpot hs_analytics_source, SF LeadSource)."""

    source: str | None
    detail_1: str | None = None
    detail_2: str | None = None


@dataclass(frozen=True, slots=True)
class TouchpointRow:
    id: int
    contact_id: str
    key: str
    occurred_at: datetime
    channel: str
    subchannel: str | None
    source: str
    medium: str
    campaign: str
    landing_page: str
    is_offline: bool
    rule: str


def touchpoint_id(contact_id: str, key: str) -> int:
    digest = hashlib.blake2b(f"{contact_id}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # fits a signed BIGINT


def session_touchpoint(contact_id: str, session: WebSessionRecord, mapper: ChannelMapper) -> TouchpointRow:
    match = mapper.assign(session_raw_touch(session))
    key = session.key
    return TouchpointRow(
        id=touchpoint_id(contact_id, key),
        contact_id=contact_id,
        key=key,
        occurred_at=session.started_at,
        channel=match.channel,
        subchannel=match.subchannel,
        source=session.source,
        medium=session.medium,
        campaign=session.campaign,
        landing_page=session.landing_page,
        is_offline=False,
        rule=match.rule,
    )


def offline_touchpoint(
    contact_id: str,
    created_at: datetime,
    offline: OfflineSource,
    mapper: ChannelMapper,
) -> TouchpointRow | None:
    if not offline.source:
        return None
    match = mapper.offline_channel(offline.source, offline.detail_1 or "", offline.detail_2 or "")
    key = f"crm:{contact_id}"
    return TouchpointRow(
        id=touchpoint_id(contact_id, key),
        contact_id=contact_id,
        key=key,
        occurred_at=created_at,
        channel=match.channel,
        subchannel=match.subchannel,
        source=offline.source,
        medium=offline.detail_1 or "",
        campaign=offline.detail_2 or "",
        landing_page="",
        is_offline=True,
        rule=match.rule,
    )


def crm_touchpoint(contact_id: str, touch: OfflineTouchRecord, mapper: ChannelMapper) -> TouchpointRow:
    """A touch the CRM recorded (a campaign response), channelled by the same rules as a session:
    its source is the campaign's type, its medium "campaign", its campaign the campaign's name."""
    match = mapper.assign(RawTouch(source=touch.source, medium=touch.medium, campaign=touch.campaign))
    return TouchpointRow(
        id=touchpoint_id(contact_id, touch.key),
        contact_id=contact_id,
        key=touch.key,
        occurred_at=touch.occurred_at,
        channel=match.channel,
        subchannel=match.subchannel,
        source=touch.source,
        medium=touch.medium,
        campaign=touch.campaign,
        landing_page="",
        is_offline=True,
        rule=match.rule,
    )


def contact_touchpoints(
    contact_id: str,
    created_at: datetime,
    sessions: Iterable[WebSessionRecord],
    offline: OfflineSource,
    mapper: ChannelMapper,
    crm_touches: Iterable[OfflineTouchRecord] = (),
) -> list[TouchpointRow]:
    """Sessions and CRM touches (campaign responses) in time order; the CRM source is added only
    when none of them came before the lead.

    A lead created with no web session before it (an event badge scan, a list import, a form on
    another device GA never tied) would otherwise have no first touch at all; a campaign
    response before it is that first touch, and a more precise one than the lead source.
    """
    touches = sorted(
        [
            *(session_touchpoint(contact_id, s, mapper) for s in sessions),
            *(crm_touchpoint(contact_id, t, mapper) for t in crm_touches),
        ],
        key=lambda t: (t.occurred_at, t.key),
    )
    if not any(t.occurred_at <= created_at for t in touches):
        crm_touch = offline_touchpoint(contact_id, created_at, offline, mapper)
        if crm_touch is not None:
            touches.insert(0, crm_touch)
    return touches
