"""Identity resolution: which contact a session (or click) belongs to.

A contact carries several keys: one GA client id per device, ad click ids, an email hash.  A
session is tied through any of them.  CRM merges (HubSpot merged ids, Salesforce converted
leads) collapse contacts onto the survivor first, so keys of a merged contact count for the
survivor.  A key that still points at two surviving contacts is *ambiguous*: it is reported and
resolves to nobody, because guessing would credit one contact's deal to another's campaign.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

IdentityKind = Literal["ga_client_id", "email_hash", "gclid", "fbclid", "msclkid"]
IDENTITY_KINDS: tuple[str, ...] = ("ga_client_id", "email_hash", "gclid", "fbclid", "msclkid")
# The _ga cookie is 'GA1.2.<client id>'; sites store either form in the hidden field.
_GA_COOKIE = re.compile(r"^GA\d+\.\d+\.(\d+\.\d+)$", re.IGNORECASE)
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class IdentityKey:
    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class Ambiguity:
    key: IdentityKey
    contact_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MergeProblem:
    contact_id: str
    message: str


def split_multi_value(value: str | None, separator: str = ";") -> tuple[str, ...]:
    """'a; b;;a' -> ('a', 'b'): one CRM property holding a value per device, deduplicated."""
    if not value:
        return ()
    seen: dict[str, None] = {}
    for part in value.split(separator):
        part = part.strip()
        if part:
            seen.setdefault(part, None)
    return tuple(seen)


def normalise_key(key: IdentityKey) -> IdentityKey | None:
    """One spelling per key; None for an empty value.

    Client ids lose the cookie prefix, hashes are lower-cased.  An address in clear is refused
    (None): only the connectors hash emails, with the keyed hash (HMAC) whose key mapping never
    sees, so an unkeyed hash here would be both a second spelling and reversible.  Click ids are
    case-sensitive tokens and are only trimmed.  A key already in
    its one spelling is returned as it is (half a million lookups per rebuild allocate nothing).
    """
    kind = key.kind if key.kind in _KINDS else key.kind.strip().lower()
    value = key.value.strip()
    if not value:
        return None
    if kind == "ga_client_id":
        cookie = _GA_COOKIE.match(value)
        value = cookie.group(1) if cookie else value
    elif kind == "email_hash":
        if "@" in value:
            return None
        value = value if value.islower() else value.lower()
    if kind == key.kind and value == key.value:
        return key
    return IdentityKey(_KINDS.get(kind, kind), value)


_KINDS = {kind: kind for kind in IDENTITY_KINDS}
Owners = str | tuple[str, ...]  # one owner, or (sorted) several: a plain string for the usual case


@dataclass(slots=True)
class IdentityGraph:
    _survivor: dict[str, str] = field(default_factory=dict)
    # kind -> value -> owner(s); no key objects are kept, which at 100,000 contacts and their
    # quarter of a million keys is most of the graph's memory.
    _owners: dict[str, dict[str, Owners]] = field(default_factory=dict)
    ambiguities: list[Ambiguity] = field(default_factory=list)
    merge_problems: list[MergeProblem] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        keys: Iterable[tuple[str, IdentityKey]],
        merges: Iterable[tuple[str, str]] = (),
    ) -> IdentityGraph:
        """keys: (contact_id, key), read once (a generator is fine); merges: (merged_id, surviving_id)."""
        graph = cls()
        for merged, surviving in merges:
            if not merged or not surviving or merged == surviving:
                continue
            previous = graph._survivor.get(merged)
            if previous is not None and previous != surviving:
                graph.merge_problems.append(
                    MergeProblem(
                        merged,
                        f"merged into both {previous!r} and {surviving!r}; kept {previous!r}",
                    )
                )
                continue
            graph._survivor[merged] = surviving
        graph._break_cycles()
        for contact_id, key in keys:
            normal = normalise_key(key)
            if normal is None:
                continue
            owner = graph.canonical(contact_id)
            by_value = graph._owners.setdefault(normal.kind, {})
            current = by_value.get(normal.value)
            if current is None:
                by_value[normal.value] = owner
            elif isinstance(current, str):
                if current != owner:
                    by_value[normal.value] = tuple(sorted((current, owner)))
            elif owner not in current:
                by_value[normal.value] = tuple(sorted((*current, owner)))
        for kind, by_value in graph._owners.items():
            for value, owners in by_value.items():
                if isinstance(owners, tuple):
                    graph.ambiguities.append(Ambiguity(IdentityKey(kind, value), owners))
        graph.ambiguities.sort(key=lambda a: (a.key.kind, a.key.value))
        return graph

    def _break_cycles(self) -> None:
        """A merge loop (A into B, B into A) is bad data: the smallest id survives, reported."""
        for start in list(self._survivor):
            path: list[str] = []
            seen: set[str] = set()
            node = start
            while node in self._survivor and node not in seen:
                seen.add(node)
                path.append(node)
                node = self._survivor[node]
            if node in seen:
                cycle = path[path.index(node) :]
                winner = min(cycle)
                del self._survivor[winner]
                self.merge_problems.append(
                    MergeProblem(
                        winner,
                        f"merge cycle {' -> '.join([*cycle, node])}; {winner!r} survives",
                    )
                )

    def forget_keys(self) -> None:
        """Drop the key index (most of the graph's memory) once no more keys will be resolved;
        ``canonical`` and the recorded ambiguities remain."""
        self._owners = {}

    def canonical(self, contact_id: str) -> str:
        """The surviving contact after following every merge (chains compress as they are read)."""
        path: list[str] = []
        node = contact_id
        while node in self._survivor:
            path.append(node)
            node = self._survivor[node]
        for hop in path[:-1]:
            self._survivor[hop] = node
        return node

    def resolve(self, key: IdentityKey) -> str | None:
        """The surviving contact that owns this key; None if unknown or ambiguous."""
        normal = normalise_key(key)
        if normal is None:
            return None
        owners = self._owners.get(normal.kind, {}).get(normal.value)
        return owners if isinstance(owners, str) else None

    def resolve_any(self, keys: Iterable[IdentityKey]) -> str | None:
        """One contact for a session carrying several keys; None if they disagree or are unknown.

        An ambiguous key is skipped when another key decides; two keys naming two contacts
        decide nothing.
        """
        found: set[str] = set()
        for key in keys:
            contact = self.resolve(key)
            if contact is not None:
                found.add(contact)
        return found.pop() if len(found) == 1 else None

    def owners(self, key: IdentityKey) -> tuple[str, ...]:
        normal = normalise_key(key)
        owners = self._owners.get(normal.kind, {}).get(normal.value) if normal is not None else None
        if owners is None:
            return ()
        return (owners,) if isinstance(owners, str) else owners

    def is_ambiguous(self, key: IdentityKey) -> bool:
        return len(self.owners(key)) > 1
