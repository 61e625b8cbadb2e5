"""The redaction algorithm, table-driven from the spec fragments for every rule set."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.core.events import Event
from hearth.core.redaction import kept_top_level_keys, redact, redact_event, redact_shared
from hearth.core.room_versions import KNOWN_ROOM_VERSIONS, V1, V5, V6, V7, V8, V9, V10, V11, V12, RoomVersion

TOP_LEVEL_V1 = {
    "event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures", "depth",
    "prev_events", "prev_state", "auth_events", "origin", "origin_server_ts", "membership",
}
TOP_LEVEL_V11 = TOP_LEVEL_V1 - {"origin", "membership", "prev_state"}

# Content of every event type with special rules, plus keys that never survive.
FULL_CONTENT: dict[str, dict[str, Any]] = {
    "m.room.member": {
        "membership": "join",
        "join_authorised_via_users_server": "@admin:example.org",
        "displayname": "Alice",
        "avatar_url": "mxc://x/y",
        "third_party_invite": {"display_name": "alice@…", "signed": {"mxid": "@a:b", "token": "t"}},
    },
    "m.room.create": {"creator": "@a:b", "room_version": "1", "m.federate": False, "predecessor": {}},
    "m.room.join_rules": {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}], "x": 1},
    "m.room.power_levels": {
        "ban": 50, "events": {}, "events_default": 0, "invite": 0, "kick": 50, "redact": 50,
        "state_default": 50, "users": {"@a:b": 100}, "users_default": 0, "notifications": {"room": 50},
    },
    "m.room.aliases": {"aliases": ["#a:b"], "x": 1},
    "m.room.history_visibility": {"history_visibility": "shared", "x": 1},
    "m.room.redaction": {"redacts": "$abc", "reason": "spam"},
    "m.room.message": {"body": "hello", "msgtype": "m.text"},
    "m.room.topic": {"topic": "secret"},
}

PL_V1 = ["ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"]

# Kept content keys per (rule set, type), straight from the fragments.
EXPECTED_CONTENT_KEYS: dict[str, dict[str, list[str]]] = {
    "v1": {
        "m.room.member": ["membership"],
        "m.room.create": ["creator"],
        "m.room.join_rules": ["join_rule"],
        "m.room.power_levels": PL_V1,
        "m.room.aliases": ["aliases"],
        "m.room.history_visibility": ["history_visibility"],
    },
    "v6": {
        "m.room.member": ["membership"],
        "m.room.create": ["creator"],
        "m.room.join_rules": ["join_rule"],
        "m.room.power_levels": PL_V1,
        "m.room.history_visibility": ["history_visibility"],
    },
    "v8": {
        "m.room.member": ["membership"],
        "m.room.create": ["creator"],
        "m.room.join_rules": ["join_rule", "allow"],
        "m.room.power_levels": PL_V1,
        "m.room.history_visibility": ["history_visibility"],
    },
    "v9": {
        "m.room.member": ["membership", "join_authorised_via_users_server"],
        "m.room.create": ["creator"],
        "m.room.join_rules": ["join_rule", "allow"],
        "m.room.power_levels": PL_V1,
        "m.room.history_visibility": ["history_visibility"],
    },
    "v11": {
        "m.room.member": ["membership", "join_authorised_via_users_server"],  # + third_party_invite.signed
        "m.room.create": list(FULL_CONTENT["m.room.create"]),
        "m.room.join_rules": ["join_rule", "allow"],
        "m.room.power_levels": [*PL_V1, "invite"],
        "m.room.history_visibility": ["history_visibility"],
        "m.room.redaction": ["redacts"],
    },
}
RULE_SET_OF = {V1: "v1", V5: "v1", V6: "v6", V7: "v6", V8: "v8", V9: "v9", V10: "v9", V11: "v11", V12: "v11"}


def full_pdu(event_type: str) -> dict[str, Any]:
    return {
        "event_id": "$e:example.org",
        "type": event_type,
        "room_id": "!r:example.org",
        "sender": "@a:example.org",
        "state_key": "",
        "content": FULL_CONTENT[event_type],
        "hashes": {"sha256": "abc"},
        "signatures": {"example.org": {"ed25519:1": "sig"}},
        "depth": 5,
        "prev_events": ["$p"],
        "prev_state": [],
        "auth_events": ["$a"],
        "origin": "example.org",
        "origin_server_ts": 1234,
        "membership": "join",
        "unsigned": {"age": 5, "redacted_because": {}},
        "redacts": "$top-level",
        "custom_top_level": {"x": 1},
    }


@pytest.mark.parametrize("room_version", list(RULE_SET_OF), ids=lambda rv: f"v{rv.identifier}")
@pytest.mark.parametrize("event_type", list(FULL_CONTENT))
def test_redaction_table(room_version: RoomVersion, event_type: str) -> None:
    rules = RULE_SET_OF[room_version]
    pdu = full_pdu(event_type)
    redacted = redact(pdu, room_version)
    top = TOP_LEVEL_V11 if rules == "v11" else TOP_LEVEL_V1
    assert set(redacted) == top
    assert kept_top_level_keys(room_version) == top
    kept = EXPECTED_CONTENT_KEYS[rules].get(event_type, [])
    expected_content = {k: FULL_CONTENT[event_type][k] for k in kept}
    if rules == "v11" and event_type == "m.room.member":
        expected_content["third_party_invite"] = {"signed": {"mxid": "@a:b", "token": "t"}}
    assert redacted["content"] == expected_content
    for key in top - {"content"}:
        assert redacted[key] == pdu[key]


def test_every_known_version_is_covered() -> None:
    for rv in KNOWN_ROOM_VERSIONS.values():
        assert redact(full_pdu("m.room.member"), rv)["content"]["membership"] == "join"
    assert {KNOWN_ROOM_VERSIONS[v].redaction_rules for v in "12345"} == {V1.redaction_rules}


def test_v11_third_party_invite_edge_cases() -> None:
    base: dict[str, Any] = {"type": "m.room.member", "content": {"membership": "invite"}}
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"third_party_invite": {"display_name": "x"}}, {"third_party_invite": {}}),
        ({"third_party_invite": "not an object"}, {}),
        ({"third_party_invite": {"signed": "odd"}}, {"third_party_invite": {"signed": "odd"}}),
        ({}, {}),
    ]
    for extra, expected_extra in cases:
        pdu = {**base, "content": {**base["content"], **extra}}
        assert redact(pdu, V11)["content"] == {"membership": "invite", **expected_extra}
        # Before v11 third_party_invite never survives.
        assert redact(pdu, V10)["content"] == {"membership": "invite"}


def test_missing_or_malformed_content_redacts_to_empty() -> None:
    for content in (None, "text", [1, 2]):
        pdu: dict[str, Any] = {"type": "m.room.member", "sender": "@a:b"}
        if content is not None:
            pdu["content"] = content
        assert redact(pdu, V1) == {"type": "m.room.member", "sender": "@a:b", "content": {}}
    assert redact({"type": 5, "content": {"membership": "x"}}, V11) == {"type": 5, "content": {}}


def test_redact_returns_an_independent_copy() -> None:
    pdu = full_pdu("m.room.power_levels")
    redacted = redact(pdu, V11)
    redacted["signatures"]["evil.org"] = {}
    redacted["content"]["users"]["@b:c"] = 100
    redacted["prev_events"].append("$x")
    assert pdu == full_pdu("m.room.power_levels")


def test_redact_shared_drops_signatures() -> None:
    pdu = full_pdu("m.room.message")
    assert "signatures" not in redact_shared(pdu, V6, drop_signatures=True)
    assert redact_shared(pdu, V6) == redact(pdu, V6)


def test_redact_event_keeps_identity() -> None:
    pdu = full_pdu("m.room.message")
    event = Event(pdu, "$e:example.org", V1)
    redacted = redact_event(event)
    assert redacted.event_id == event.event_id and redacted.room_version is V1
    assert redacted.content == {} and event.content == FULL_CONTENT["m.room.message"]


_json_leaf = st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=5)
_json = st.recursive(
    _json_leaf,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=10,
)
_keys = st.sampled_from([*TOP_LEVEL_V1, "unsigned", "extra", "redacts"])
_content_keys = st.sampled_from(
    sorted({k for c in FULL_CONTENT.values() for k in c} | {"other", "signed"})
)
_pdus = st.builds(
    lambda top, content, event_type: {**top, "type": event_type, "content": content},
    st.dictionaries(_keys, _json, max_size=6),
    st.dictionaries(_content_keys, _json, max_size=6),
    st.sampled_from(list(FULL_CONTENT)),
)


@settings(max_examples=150, deadline=None)
@given(_pdus, st.sampled_from(list(RULE_SET_OF)))
def test_redaction_is_idempotent_and_shrinking(pdu: dict[str, Any], room_version: RoomVersion) -> None:
    once = redact(pdu, room_version)
    assert redact(once, room_version) == once
    assert set(once) <= set(pdu) | {"content"}
    assert set(once["content"]) <= set(pdu["content"])
