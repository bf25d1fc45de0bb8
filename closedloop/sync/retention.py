"""Raw web sessions are kept ``privacy.session_retention_days``, then deleted on the next run.

Sessions are the only raw data about people that no CRM deletion reaches (an anonymous visitor
has no contact to delete), so they age out instead.  Older touchpoints built from them disappear
with the rebuild that follows, which no longer sees them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine

from closedloop.config.models import Config
from closedloop.store.engine import session_scope
from closedloop.store.purge import purge_old_sessions

log = logging.getLogger(__name__)


def expire_sessions(engine: Engine, config: Config, *, now: datetime) -> int:
    """Delete sessions that started before now - retention; the count deleted (0 when kept forever)."""
    days = config.privacy.session_retention_days
    if days is None:
        return 0
    with session_scope(engine) as session:
        removed = purge_old_sessions(session, before=now - timedelta(days=days))
    if removed:
        log.info("deleted %d web sessions older than %d days (privacy.session_retention_days)", removed, days)
    return removed
