"""The redaction algorithm, for every room version's redaction rules.

Design notes
------------
Redaction decides what survives when an event is redacted, and it is also the
first step of signing and of the reference hash (so of v3+ event IDs). A
difference of one kept key between two servers therefore means different event
IDs and failed signatures: the tables below follow the spec fragments
(rooms/fragments/v1-, v6-, v9-, v11-redactions.md and the v8 page) to the
letter, one row per rule set.

One detail the v11 text leaves open: for ``m.room.member`` it "allows the
``signed`` key of the ``third_party_invite`` key". When ``third_party_invite`` is
an object without ``signed`` we keep an empty ``third_party_invite`` object, as
Synapse does; anything else would give such events different event IDs on
different servers. A ``content`` that is missing or not an object redacts to
``{}``; the result always has a ``content`` key (also as Synapse does).

Two entry points:

- `redact` returns an independent deep copy, safe to mutate and store.
- `redact_shared` shares nested values with its input and is for the hot
  hashing and signing paths, which only encode the result. It can also drop
  ``signatures`` in the same pass, giving exactly the object that both the
  event signature and the reference hash cover.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hearth.core.events import Event
from hearth.core.room_versions import RedactionRules, RoomVersion

_TOP_LEVEL_V1 = frozenset({
    "event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures",
    "depth", "prev_events", "prev_state", "auth_events", "origin", "origin_server_ts",
    "membership",
})
# v11: `origin`, `membership` and `prev_state` are no longer protected.
_TOP_LEVEL_V11 = _TOP_LEVEL_V1 - {"origin", "membership", "prev_state"}

_POWER_LEVELS_V1 = ("ban", "events", "events_default", "kick", "redact", "state_default",
                    "users", "users_default")

# event type -> content keys kept. m.room.create under V11 keeps everything and
# m.room.member under V11 keeps part of third_party_invite; both are special-cased.
_CONTENT_V1: dict[str, tuple[str, ...]] = {
    "m.room.member": ("membership",),
    "m.room.create": ("creator",),
    "m.room.join_rules": ("join_rule",),
    "m.room.power_levels": _POWER_LEVELS_V1,
    "m.room.aliases": ("aliases",),
    "m.room.history_visibility": ("history_visibility",),
}
_CONTENT_V6 = {k: v for k, v in _CONTENT_V1.items() if k != "m.room.aliases"}
_CONTENT_V8 = {**_CONTENT_V6, "m.room.join_rules": ("join_rule", "allow")}
_CONTENT_V9 = {**_CONTENT_V8, "m.room.member": ("membership", "join_authorised_via_users_server")}
_CONTENT_V11 = {
    **{k: v for k, v in _CONTENT_V9.items() if k != "m.room.create"},
    "m.room.power_levels": tuple(sorted((*_POWER_LEVELS_V1, "invite"))),
    "m.room.redaction": ("redacts",),
}

_Rules = tuple[frozenset[str], dict[str, tuple[str, ...]]]
_RULES: dict[RedactionRules, _Rules] = {
    RedactionRules.V1: (_TOP_LEVEL_V1, _CONTENT_V1),
    RedactionRules.V6: (_TOP_LEVEL_V1, _CONTENT_V6),
    RedactionRules.V8: (_TOP_LEVEL_V1, _CONTENT_V8),
    RedactionRules.V9: (_TOP_LEVEL_V1, _CONTENT_V9),
    RedactionRules.V11: (_TOP_LEVEL_V11, _CONTENT_V11),
}
# The same without `signatures`: what signing and the reference hash cover.
_RULES_UNSIGNED: dict[RedactionRules, _Rules] = {
    rules: (top - {"signatures"}, content) for rules, (top, content) in _RULES.items()
}


def kept_top_level_keys(room_version: RoomVersion) -> frozenset[str]:
    """The top-level PDU keys that survive redaction in this room version."""
    return _RULES[room_version.redaction_rules][0]


def redact_shared(
    pdu: Mapping[str, Any], room_version: RoomVersion, *, drop_signatures: bool = False
) -> dict[str, Any]:
    """The redacted form of ``pdu`` as a new top-level dict sharing nested values.

    Read-only use only (encoding, hashing). ``drop_signatures`` also leaves out
    ``signatures``, as signing and the reference hash need.
    """
    rules = room_version.redaction_rules
    top_keys, content_rules = (_RULES_UNSIGNED if drop_signatures else _RULES)[rules]
    out = {k: v for k, v in pdu.items() if k in top_keys}
    content = pdu.get("content")
    if type(content) is not dict and not isinstance(content, Mapping):  # exact check first: ABCs are slow
        out["content"] = {}
        return out
    event_type = pdu.get("type")
    if rules is RedactionRules.V11 and event_type == "m.room.create":
        out["content"] = content
        return out
    kept = content_rules.get(event_type) if isinstance(event_type, str) else None
    new_content = {k: content[k] for k in kept if k in content} if kept else {}
    if rules is RedactionRules.V11 and event_type == "m.room.member":
        tpi = content.get("third_party_invite")
        if isinstance(tpi, Mapping):
            new_content["third_party_invite"] = {"signed": tpi["signed"]} if "signed" in tpi else {}
    out["content"] = new_content
    return out


def _json_copy(value: Any) -> Any:
    """A deep copy of a JSON value, much cheaper than `copy.deepcopy`."""
    if isinstance(value, Mapping):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_copy(v) for v in value]
    return value


def redact(pdu: Mapping[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """The redacted form of ``pdu`` per the room version's rules, as a fresh copy."""
    return _json_copy(redact_shared(pdu, room_version))


def redact_event(event: Event) -> Event:
    """The same event (same ID and room version) with its PDU redacted."""
    return Event(redact(event.pdu, event.room_version), event.event_id, event.room_version)
