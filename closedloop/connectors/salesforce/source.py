"""The one pull loop every Salesforce stream goes through (``query_all_iter`` + ``format_soql``).

A stream is read in two phases, each from its own position in the cursor:

- ``live``: ``query`` of rows with the cursor field at or after the position, oldest first;
- ``deleted``: ``queryAll`` of rows with ``IsDeleted = true`` modified since its position, which
  become ``DeletedRecord``s so the store drops them on this run (they stay queryable until the
  Recycle Bin is emptied, 15 days at most).  A first pull starts this phase at the pull's
  start, minus a margin for the org's clock: older deletions concern rows never stored.

A position is the newest cursor value read plus the ids read within its second, because SOQL
datetimes have whole seconds (``format_soql`` drops microseconds) and the query asks ``>=``.
So a query started again (after a renewed session, a 5xx, a dropped connection, or a crash
that replays a batch) neither loses nor repeats a row.  Every row that does not parse is
quarantined with its reason; the batch goes on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.format import format_soql

from closedloop.config.models import SalesforceConfig
from closedloop.connectors.salesforce import parse
from closedloop.connectors.salesforce.client import RetryBudget, SalesforceClient
from closedloop.connectors.salesforce.fields import SOBJECTS_OF, FieldNames
from closedloop.connectors.salesforce.streams import StreamSpec, build_streams
from closedloop.errors import SkippableRecordError
from closedloop.records import Batch, QuarantinedRecord

CLOCK_MARGIN = timedelta(minutes=5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Position:
    since: datetime | None = None
    ids: tuple[str, ...] = ()

    @classmethod
    def load(cls, state: Any) -> Position:
        if not isinstance(state, dict) or not state.get("since"):
            return cls()
        return cls(parse.parse_time(state["since"]), tuple(state.get("ids") or ()))

    def dump(self) -> dict[str, Any]:
        return {"since": self.since.isoformat() if self.since else None, "ids": list(self.ids)}

    def seen(self, at: datetime, record_id: str) -> bool:
        return self.since is not None and _second(at) == _second(self.since) and record_id in self.ids

    def advance(self, at: datetime, record_id: str) -> Position:
        if self.since is not None and _second(at) == _second(self.since):
            return Position(max(at, self.since), (*self.ids, record_id))
        return Position(at, (record_id,))


def _second(at: datetime) -> datetime:
    return at.replace(microsecond=0)


class SalesforceSource:
    name = "salesforce"

    def __init__(
        self,
        client: SalesforceClient,
        config: SalesforceConfig,
        *,
        names: FieldNames | None = None,
        writeback_properties: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """``writeback_properties`` (object type -> closedloop property names, fields per
        ``names``) are read with the Lead/Contact/Opportunity queries where describe shows them."""
        self.client = client
        self.config = config
        self.names = names
        self.writeback_properties = dict(writeback_properties or {})
        self._specs: dict[str, StreamSpec] | None = None

    def specs(self) -> dict[str, StreamSpec]:
        if self._specs is None:
            multicurrency = self.config.multicurrency
            if multicurrency is None:
                multicurrency = self.org_has_multicurrency()
            held = self.held_fields()
            self._specs = {s.name: s for s in build_streams(self.config, multicurrency=multicurrency, held=held)}
        return self._specs

    def held_fields(self) -> dict[str, dict[str, str]]:
        """By sobject, closedloop's fields this user can see (API name -> property name).

        They exist only once ``crm check --create`` (or the write-back) created and granted
        them, so describe decides; the write-back describes the same objects with the same
        client, which keeps each answer, so asking here costs no call of its own.
        """
        if self.names is None:
            return {}
        out: dict[str, dict[str, str]] = {}
        for object_type, props in self.writeback_properties.items():
            for sobject in SOBJECTS_OF.get(object_type, ()):
                described = self.client.describe(sobject)
                present = {str(f.get("name")) for f in (described or {}).get("fields") or []}
                fields = {self.names.field(p): p for p in props}
                out[sobject] = {name: prop for name, prop in fields.items() if name in present}
        return out

    def org_has_multicurrency(self) -> bool:
        """CurrencyIsoCode exists on Opportunity only where the org has multiple currencies."""
        described = self.client.describe("Opportunity")
        return any(f.get("name") == "CurrencyIsoCode" for f in (described or {}).get("fields") or [])

    def streams(self) -> Sequence[str]:
        # The names are fixed; the field lists (multicurrency) are settled on the first pull.
        return [s.name for s in build_streams(self.config, multicurrency=False)]

    def pull(self, stream: str, cursor: dict[str, Any] | None, *, now: datetime) -> Iterator[Batch]:
        spec = self.specs().get(stream)
        if spec is None:
            raise ValueError(f"unknown stream {stream!r}")
        state = dict(cursor or {})
        if spec.deleted_kind and "deleted" not in state:
            state["deleted"] = Position(now - CLOCK_MARGIN).dump()
        yield from self._phase(spec, state, "live")
        if spec.deleted_kind:
            yield from self._phase(spec, state, "deleted")

    def soql(self, spec: StreamSpec, phase: str, position: Position) -> str:
        since = _second(position.since or EPOCH)
        fields = spec.fields if phase == "live" else spec.deleted_fields
        where = "{:literal} >= {}"
        args: list[Any] = [spec.cursor_field, since]
        for name, value in spec.equals:
            where += " AND {:literal} = {}"
            args += [name, value]
        if phase == "deleted":
            where = "IsDeleted = true AND " + where
        return format_soql(
            "SELECT {:literal} FROM {:literal} WHERE " + where + " ORDER BY {:literal} ASC",
            ", ".join(fields),
            spec.sobject,
            *args,
            spec.cursor_field,
        )

    def _phase(self, spec: StreamSpec, state: dict[str, Any], phase: str) -> Iterator[Batch]:
        """Pages of one phase; a failure mid-way starts the query again from the last row read."""
        endpoint = f"GET {'queryAll' if phase == 'deleted' else 'query'} {spec.sobject}"
        size = self.config.query_batch_size
        headers = {"Sforce-Query-Options": f"batchSize={size}"}
        position = Position.load(state.get(phase))
        budget = RetryBudget(self.client)
        records: list[Any] = []
        quarantined: list[QuarantinedRecord] = []
        while True:
            self.client.usage.check(endpoint)
            sf = self.client.sf
            rows = self._rows(sf, spec, phase, position, headers)
            try:
                for row in rows:
                    position = self._take(spec, phase, row, position, records, quarantined)
                    if len(records) + len(quarantined) >= size:
                        yield self._batch(spec, state, phase, position, records, quarantined)
                        records, quarantined = [], []
                        self.client.usage.check(endpoint)
                break
            except Exception as exc:
                budget.absorb(exc, endpoint, sf)
        if records or quarantined or phase == "live" or state.get(phase) != position.dump():
            yield self._batch(spec, state, phase, position, records, quarantined)

    def _rows(
        self, sf: Salesforce, spec: StreamSpec, phase: str, position: Position, headers: dict[str, str]
    ) -> Iterator[dict[str, Any]]:
        soql = self.soql(spec, phase, position)
        # No progress total here: query_all_iter consumes each answer's totalSize and yields rows only.
        for row in sf.query_all_iter(soql, include_deleted=phase == "deleted", headers=headers):
            at = _cursor_value(row, spec.cursor_field)
            if at is not None and not position.seen(at, str(row.get("Id"))):
                yield row
            elif at is None:
                yield row  # no cursor value: the parser quarantines it

    def _take(
        self,
        spec: StreamSpec,
        phase: str,
        row: dict[str, Any],
        position: Position,
        records: list[Any],
        quarantined: list[QuarantinedRecord],
    ) -> Position:
        try:
            record = parse.deletion(spec.deleted_kind or "", row) if phase == "deleted" else spec.parse(row)
        except SkippableRecordError as exc:
            quarantined.append(QuarantinedRecord(spec.name, exc.record_key, str(exc), payload=_plain(row)))
        else:
            if record is not None:
                records.append(record)
        at = _cursor_value(row, spec.cursor_field)
        if at is None or not isinstance(row.get("Id"), str):
            return position
        return position.advance(at, row["Id"])

    def _batch(
        self,
        spec: StreamSpec,
        state: dict[str, Any],
        phase: str,
        position: Position,
        records: list[Any],
        quarantined: list[QuarantinedRecord],
    ) -> Batch:
        state[phase] = position.dump()
        return Batch(spec.name, records, dict(state), quarantined)


def _cursor_value(row: dict[str, Any], field: str) -> datetime | None:
    if not isinstance(row, dict):  # a null or list row: no cursor, the parser quarantines it
        return None
    try:
        return parse.parse_time(row.get(field))
    except ValueError:
        return None


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(row, dict):
        return {"row": type(row).__name__}
    return {k: v for k, v in row.items() if k != "attributes"}
