"""The two seams every connector implements: a source that pulls, a CRM writer that writes back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from closedloop.records import Batch

ObjectType = Literal["contacts", "deals"]


class Source(Protocol):
    """Pulls one or more streams from a cursor, in batches.

    Each yielded batch carries the cursor that is safe to commit once its records are stored,
    so store and cursor commit in one transaction and a crash replays at most one batch.
    """

    name: str

    def streams(self) -> Sequence[str]: ...

    def pull(self, stream: str, cursor: dict[str, Any] | None, *, now: datetime) -> Iterator[Batch]: ...


@dataclass(frozen=True, slots=True)
class PropertyUpdate:
    object_type: ObjectType
    object_id: str
    properties: dict[str, str]


@dataclass(frozen=True, slots=True)
class RecordFailure:
    object_type: ObjectType
    object_id: str
    reason: str
    retriable: bool = True


@dataclass(slots=True)
class WriteResult:
    written: list[PropertyUpdate] = field(default_factory=list)
    failed: list[RecordFailure] = field(default_factory=list)
    skipped: list[PropertyUpdate] = field(default_factory=list)

    def extend(self, other: WriteResult) -> None:
        self.written.extend(other.written)
        self.failed.extend(other.failed)
        self.skipped.extend(other.skipped)


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """A custom property closedloop owns in the CRM."""

    object_type: ObjectType
    name: str
    label: str
    type: Literal["string", "number", "enumeration", "datetime"] = "string"
    field_type: Literal["text", "textarea", "number", "select", "date"] = "text"
    description: str = ""


class CRMWriter(Protocol):
    """Writes closedloop's properties back; per-record failures come back, never raise."""

    def ensure_properties(self, specs: Sequence[PropertySpec], *, group_name: str, group_label: str) -> list[str]:
        """Create the group and any missing property; return the names created."""
        ...

    def write(self, updates: Sequence[PropertyUpdate]) -> WriteResult: ...

    def read_properties(
        self, object_type: ObjectType, object_ids: Sequence[str], properties: Sequence[str]
    ) -> dict[str, dict[str, str | None]]:
        """Current values, to reconcile writes a crash left unconfirmed; unknown ids are absent."""
        ...
