"""What a run leaves behind, in a form two runs can be compared by: the store's data tables and
the CRM's closedloop properties.  Shared by the fault, hostile-answer and SIGKILL tests, which
all assert "the same as a clean run".

Left out are what only says *when* something was touched: ``updated_at``/``written_at`` columns,
and a record's ``crm_values`` (what the CRM held when it was pulled: closedloop's own
properties, which a retried or re-run write-back sets earlier or later).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, MetaData, select

from closedloop.sandbox.launch import RunningSandbox

PREFIX = "closedloop_"
VOLATILE = {"contacts": {"updated_at"}, "deals": {"updated_at"}, "writeback_state": {"written_at"}}
COMPARED_TABLES = (
    "contacts", "contact_identities", "web_sessions", "deals", "deal_stage_events", "deal_contacts",
    "pipeline_stages", "touchpoints", "conversions", "credits", "spend", "writeback_state",
)


def _without_crm_values(value: Any) -> Any:
    if isinstance(value, dict) and "crm_values" in value:
        return {k: v for k, v in value.items() if k != "crm_values"}
    return value


def store_snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    meta = MetaData()
    meta.reflect(engine, only=COMPARED_TABLES)
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for name in COMPARED_TABLES:
            cols = [c for c in meta.tables[name].columns if c.name not in VOLATILE.get(name, set())]
            rows = (tuple(_without_crm_values(value) for value in row) for row in conn.execute(select(*cols)))
            out[name] = sorted(rows, key=repr)
    return out


def crm_snapshot(sandbox: RunningSandbox) -> dict[tuple[str, str], dict[str, str | None]]:
    state = sandbox.hubspot.state
    objects = [("contacts", c.id) for c in sandbox.company.contacts] + [("deals", d.id) for d in sandbox.company.deals]
    return {
        (kind, oid): {k: v for k, v in state.get_properties(kind, oid).items() if k.startswith(PREFIX)}
        for kind, oid in objects
    }
