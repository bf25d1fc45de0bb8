"""A tiny store, filled through the store's own upsert, whose report figures can be computed by hand.

Three contacts, two won deals, two models (first_touch, linear):

- c1 (customer) came by Paid Search (campaign spring, /pricing) on 1 Oct, then Email (/news) on 4 Oct,
  became a lead on 5 Oct; its deal d1 was created 15 Oct and won 25 Oct for 1,000.
- c2 (marketing-qualified) has only an offline touch; lead on 10 Oct; deal d2 won 9 Nov for 500.
- c3 (lead) came by Organic Search (/blog) on 1 Nov and became a lead on 2 Nov.

GA4 counted 2 Paid Search sessions, 1 Email, 4 Organic Search; Paid Search cost 200 on 1 Oct.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from closedloop.store import models as m
from closedloop.store.engine import open_store, session_scope
from closedloop.store.models import table
from closedloop.store.upsert import upsert


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=UTC)


def _touch(tid: int, contact: str, when: datetime, channel: str, *, campaign: str = "", page: str = "",
           offline: bool = False) -> dict[str, object]:
    return {"id": tid, "contact_id": contact, "key": f"t{tid}", "occurred_at": when, "channel": channel,
            "subchannel": None, "source": "", "medium": "", "campaign": campaign, "landing_page": page,
            "is_offline": offline, "rule": ""}


def _credit(conversion: str, tid: int, model: str, channel: str, weight: float, revenue: float = 0.0,
            campaign: str = "") -> dict[str, object]:
    return {"conversion_id": conversion, "touchpoint_id": tid, "model": model, "channel": channel,
            "campaign": campaign, "weight": weight, "revenue": revenue}


def _session(key: str, when: datetime, source: str, medium: str, n: int, page: str, campaign: str = "") -> dict[
        str, object]:
    return {"key": key, "client_id": f"cid-{key}", "started_at": when, "source": source, "medium": medium,
            "campaign": campaign, "landing_page": page, "sessions": n, "engaged_sessions": n, "key_events": 0.0,
            "ad_cost": None, "click_ids": {}}


def fill_store(folder: Path) -> str:
    """A migrated SQLite store under ``folder`` holding the story above; returns its URL."""
    url = f"sqlite:///{folder / 'report.db'}"
    contacts = [
        {"id": "c1", "created_at": at(10, 5), "updated_at": at(10, 5), "lifecycle_stage": "customer",
         "properties": {}},
        {"id": "c2", "created_at": at(10, 10), "updated_at": at(10, 10),
         "lifecycle_stage": "marketingqualifiedlead", "properties": {}},
        {"id": "c3", "created_at": at(11, 2), "updated_at": at(11, 2), "lifecycle_stage": "lead", "properties": {}},
    ]
    deals = [
        {"id": "d1", "created_at": at(10, 15), "updated_at": at(10, 25), "amount": 1000.0, "closed_at": at(10, 25),
         "is_won": True, "is_closed": True, "properties": {}},
        {"id": "d2", "created_at": at(10, 20), "updated_at": at(11, 9), "amount": 500.0, "closed_at": at(11, 9),
         "is_won": True, "is_closed": True, "properties": {}},
    ]
    links = [{"deal_id": "d1", "contact_id": "c1", "is_primary": True},
             {"deal_id": "d2", "contact_id": "c2", "is_primary": True}]
    touches = [
        _touch(1, "c1", at(10, 1), "Paid Search", campaign="spring", page="/pricing"),
        _touch(2, "c1", at(10, 4), "Email", page="/news"),
        _touch(3, "c2", at(10, 9), "Offline", offline=True),
        _touch(4, "c3", at(11, 1), "Organic Search", page="/blog"),
    ]
    conversions = [
        {"id": "c1:lead", "kind": "contact_created", "contact_id": "c1", "deal_id": None, "occurred_at": at(10, 5),
         "value": 0.0},
        {"id": "c2:lead", "kind": "contact_created", "contact_id": "c2", "deal_id": None, "occurred_at": at(10, 10),
         "value": 0.0},
        {"id": "c3:lead", "kind": "contact_created", "contact_id": "c3", "deal_id": None, "occurred_at": at(11, 2),
         "value": 0.0},
        {"id": "d1:opp", "kind": "deal_created", "contact_id": "c1", "deal_id": "d1", "occurred_at": at(10, 15),
         "value": 0.0},
        {"id": "d2:opp", "kind": "deal_created", "contact_id": "c2", "deal_id": "d2", "occurred_at": at(10, 20),
         "value": 0.0},
        {"id": "d1:won", "kind": "deal_won", "contact_id": "c1", "deal_id": "d1", "occurred_at": at(10, 25),
         "value": 1000.0},
        {"id": "d2:won", "kind": "deal_won", "contact_id": "c2", "deal_id": "d2", "occurred_at": at(11, 9),
         "value": 500.0},
    ]
    credits = [
        # first_touch: all to the first touch
        _credit("c1:lead", 1, "first_touch", "Paid Search", 1, campaign="spring"),
        _credit("c2:lead", 3, "first_touch", "Offline", 1),
        _credit("c3:lead", 4, "first_touch", "Organic Search", 1),
        _credit("d1:opp", 1, "first_touch", "Paid Search", 1, campaign="spring"),
        _credit("d2:opp", 3, "first_touch", "Offline", 1),
        _credit("d1:won", 1, "first_touch", "Paid Search", 1, 1000.0, campaign="spring"),
        _credit("d2:won", 3, "first_touch", "Offline", 1, 500.0),
        # linear: c1's two touches share
        _credit("c1:lead", 1, "linear", "Paid Search", 0.5, campaign="spring"),
        _credit("c1:lead", 2, "linear", "Email", 0.5),
        _credit("c2:lead", 3, "linear", "Offline", 1),
        _credit("c3:lead", 4, "linear", "Organic Search", 1),
        _credit("d1:opp", 1, "linear", "Paid Search", 0.5, campaign="spring"),
        _credit("d1:opp", 2, "linear", "Email", 0.5),
        _credit("d2:opp", 3, "linear", "Offline", 1),
        _credit("d1:won", 1, "linear", "Paid Search", 0.5, 500.0, campaign="spring"),
        _credit("d1:won", 2, "linear", "Email", 0.5, 500.0),
        _credit("d2:won", 3, "linear", "Offline", 1, 500.0),
    ]
    sessions = [
        _session("s1", at(10, 1), "google", "cpc", 2, "/pricing", "spring"),
        _session("s2", at(10, 4), "newsletter", "email", 1, "/news"),
        _session("s3", at(11, 1), "google", "organic", 4, "/blog"),
    ]
    spend = [{"origin": "ga4", "day": date(2026, 10, 1), "channel": "", "source": "google", "medium": "cpc",
              "campaign": "spring", "cost": 200.0, "currency": ""}]
    engine = open_store(url)
    with session_scope(engine) as session:
        upsert(session, table(m.Contact), contacts, key=("id",))
        upsert(session, table(m.Deal), deals, key=("id",))
        upsert(session, table(m.DealContact), links, key=("deal_id", "contact_id"))
        upsert(session, table(m.Touchpoint), touches, key=("id",))
        upsert(session, table(m.Conversion), conversions, key=("id",))
        upsert(session, table(m.Credit), credits, key=("conversion_id", "touchpoint_id", "model"))
        upsert(session, table(m.WebSession), sessions, key=("key",))
        upsert(session, table(m.Spend), spend, key=("origin", "day", "channel", "source", "medium", "campaign"))
    return url


def write_config(folder: Path, url: str, *, extra: str = "") -> Path:
    path = folder / "closedloop.yaml"
    path.write_text(
        "version: 1\n"
        f"store:\n  url: {url}\n"
        "hubspot:\n  base_url: http://127.0.0.1:9\n  access_token: ${REPORT_TEST_TOKEN}\n"
        "attribution:\n  models: [first_touch, linear]\n  primary_model: first_touch\n" + extra,
        encoding="utf-8",
    )
    return path
