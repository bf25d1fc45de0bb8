"""Identity resolution: devices, click ids, CRM merges, and ambiguity reported not guessed."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from closedloop.mapping.identity import (
    IdentityGraph,
    IdentityKey,
    normalise_key,
    split_multi_value,
)


def cid(value: str) -> IdentityKey:
    return IdentityKey("ga_client_id", value)


HASHED = hashlib.sha256(b"a keyed hash stands here").hexdigest()


def test_split_multi_value_dedupes_and_drops_blanks() -> None:
    assert split_multi_value("111.1; 222.2;;111.1 ; ") == ("111.1", "222.2")
    assert split_multi_value(None) == ()
    assert split_multi_value("a|b", separator="|") == ("a", "b")


def test_client_id_cookie_prefix_is_normalised_and_a_clear_email_refused() -> None:
    assert normalise_key(cid("GA1.2.12345.67890")) == cid("12345.67890")
    # Only connectors hash addresses (keyed); a clear one reaching mapping is not a key.
    assert normalise_key(IdentityKey("email_hash", "Ada@Example.com")) is None
    assert normalise_key(IdentityKey("email_hash", HASHED.upper())) == IdentityKey("email_hash", HASHED)
    assert normalise_key(cid("   ")) is None


def test_multi_device_contact_owns_every_client_id() -> None:
    graph = IdentityGraph.build([("c1", cid("111.1")), ("c1", cid("222.2")), ("c2", cid("333.3"))])
    assert graph.resolve(cid("111.1")) == "c1"
    assert graph.resolve(cid("GA1.2.222.2")) == "c1"  # the cookie spelling of the same device
    assert graph.resolve(cid("333.3")) == "c2"
    assert graph.resolve(cid("999.9")) is None
    assert graph.ambiguities == []


def test_click_ids_and_email_hash_tie_sessions_to_contacts() -> None:
    graph = IdentityGraph.build([
        ("c1", IdentityKey("gclid", "Cj0KCQ")),
        ("c2", IdentityKey("fbclid", "IwAR1")),
        ("c3", IdentityKey("msclkid", "abc123")),
        ("c4", IdentityKey("email_hash", HASHED)),
    ])
    assert graph.resolve(IdentityKey("gclid", "Cj0KCQ")) == "c1"
    assert graph.resolve(IdentityKey("gclid", "cj0kcq")) is None  # click ids are case-sensitive
    assert graph.resolve(IdentityKey("fbclid", "IwAR1")) == "c2"
    assert graph.resolve(IdentityKey("msclkid", "abc123")) == "c3"
    assert graph.resolve(IdentityKey("email_hash", HASHED.upper())) == "c4"
    assert graph.resolve(IdentityKey("email_hash", "bo@x.io")) is None
    assert graph.resolve(IdentityKey("gclid", "IwAR1")) is None  # kinds do not mix


def test_merges_collapse_identities_onto_the_survivor_through_chains() -> None:
    graph = IdentityGraph.build(
        [("a", cid("1.1")), ("b", cid("2.2")), ("c", cid("3.3")), ("c", cid("1.1"))],
        merges=[("a", "b"), ("b", "c")],  # a merged into b, later b merged into c
    )
    assert graph.canonical("a") == "c"
    assert graph.canonical("b") == "c"
    assert graph.canonical("c") == "c"
    assert graph.resolve(cid("1.1")) == "c"  # a and c shared it; after merging that is one contact
    assert graph.resolve(cid("2.2")) == "c"
    assert graph.ambiguities == []


def test_salesforce_converted_lead_counts_for_its_contact() -> None:
    graph = IdentityGraph.build([("00Q1", IdentityKey("gclid", "g1"))], merges=[("00Q1", "0031")])
    assert graph.resolve(IdentityKey("gclid", "g1")) == "0031"


def test_shared_client_id_is_reported_not_guessed() -> None:
    graph = IdentityGraph.build([("c1", cid("555.5")), ("c2", cid("555.5")), ("c2", cid("6.6"))])
    assert graph.resolve(cid("555.5")) is None
    assert graph.is_ambiguous(cid("555.5"))
    assert [(a.key, a.contact_ids) for a in graph.ambiguities] == [(cid("555.5"), ("c1", "c2"))]
    assert graph.resolve(cid("6.6")) == "c2"


def test_resolve_any_uses_an_unambiguous_key_and_refuses_disagreement() -> None:
    graph = IdentityGraph.build([
        ("c1", cid("1.1")), ("c2", cid("1.1")), ("c1", IdentityKey("gclid", "g")),
        ("c2", IdentityKey("fbclid", "f")),
    ])
    assert graph.resolve_any([cid("1.1"), IdentityKey("gclid", "g")]) == "c1"
    assert graph.resolve_any([IdentityKey("gclid", "g"), IdentityKey("fbclid", "f")]) is None


def test_merge_cycles_and_conflicts_are_reported() -> None:
    graph = IdentityGraph.build([], merges=[("a", "b"), ("b", "a"), ("x", "y"), ("x", "z")])
    assert graph.canonical("a") == graph.canonical("b") == "a"
    assert graph.canonical("x") == "y"
    messages = [p.message for p in graph.merge_problems]
    assert any("cycle" in m for m in messages) and any("merged into both" in m for m in messages)


contact_ids = st.sampled_from(["c1", "c2", "c3", "c4", "c5"])
client_ids = st.sampled_from(["1.1", "2.2", "3.3", "4.4"])


@given(st.lists(st.tuples(contact_ids, client_ids), max_size=20),
       st.lists(st.tuples(contact_ids, contact_ids), max_size=6))
def test_resolution_is_unique_owner_or_reported(
    pairs: list[tuple[str, str]], merges: list[tuple[str, str]],
) -> None:
    graph = IdentityGraph.build([(c, cid(v)) for c, v in pairs], merges)
    ambiguous = {a.key for a in graph.ambiguities}
    for value in {v for _, v in pairs}:
        owners = {graph.canonical(c) for c, v in pairs if v == value}
        resolved = graph.resolve(cid(value))
        if len(owners) == 1:
            assert resolved == owners.pop() and cid(value) not in ambiguous
        else:
            assert resolved is None and cid(value) in ambiguous
