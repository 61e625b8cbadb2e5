"""Room versions 1-12 as data.

Each room version is a bundle of algorithm choices. Code elsewhere asks a
`RoomVersion` what to do (``if rv.knock_join_rule: ...``) instead of comparing
version strings, so adding a version means adding one row here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EventFormat(enum.Enum):
    """How event IDs are formed and how prev/auth event references look."""

    V1 = 1  # "$random:server" in the PDU; prev/auth events are [id, {hashes}] pairs
    V3 = 3  # ID is the reference hash, standard unpadded base64; plain ID lists
    V4 = 4  # as V3, with URL-safe unpadded base64


class StateResAlgorithm(enum.Enum):
    V1 = 1
    V2 = 2
    V2_1 = 21  # room version 12's revision of v2


class RedactionRules(enum.Enum):
    """Which content keys survive redaction (see rooms/fragments/*-redactions.md)."""

    V1 = 1  # v1-v5: m.room.aliases keeps `aliases`
    V6 = 6  # v6-v7: m.room.aliases loses its special case
    V8 = 8  # v8: join_rules keeps `allow`
    V9 = 9  # v9-v10: member keeps `join_authorised_via_users_server`
    V11 = 11  # v11+: create keeps all content, power levels keep `invite`, ...


@dataclass(frozen=True, slots=True)
class RoomVersion:
    identifier: str
    event_format: EventFormat
    state_res: StateResAlgorithm
    redaction_rules: RedactionRules
    # v3+: redaction events are accepted without checking the redacted event's
    # sender at auth time (v3-handling-redactions)
    deferred_redaction_checks: bool
    # v5+: a signature only counts if the key was valid at origin_server_ts
    enforce_key_validity: bool
    # v1-v5: m.room.aliases has its own auth rule
    special_case_aliases_auth: bool
    # v6+: PDUs must be strict canonical JSON (no floats, ints within +-(2**53-1))
    strict_canonical_json: bool
    # v6+: changing power_levels.notifications is checked like `events`
    limit_notifications_power_levels: bool
    # v7+: the "knock" join rule and membership
    knock_join_rule: bool
    # v8+: the "restricted" join rule with join_authorised_via_users_server
    restricted_join_rule: bool
    # v10+: the "knock_restricted" join rule
    knock_restricted_join_rule: bool
    # v10+: power level values must be integers (no stringy numbers)
    enforce_int_power_levels: bool
    # v11+: m.room.create has no `creator`; the sender is the creator
    implicit_room_creator: bool
    # v11+: `redacts` is a content key of m.room.redaction rather than top-level
    redacts_in_content: bool
    # v12: the room ID is derived from the create event's reference hash and the
    # create event carries no room_id
    room_id_from_create_event: bool
    # v12: creators (sender + additional_creators) have infinite power
    privileged_creators: bool


def _v(identifier: str, **overrides: object) -> RoomVersion:
    base: dict[str, object] = dict(
        identifier=identifier,
        event_format=EventFormat.V1,
        state_res=StateResAlgorithm.V1,
        redaction_rules=RedactionRules.V1,
        deferred_redaction_checks=False,
        enforce_key_validity=False,
        special_case_aliases_auth=True,
        strict_canonical_json=False,
        limit_notifications_power_levels=False,
        knock_join_rule=False,
        restricted_join_rule=False,
        knock_restricted_join_rule=False,
        enforce_int_power_levels=False,
        implicit_room_creator=False,
        redacts_in_content=False,
        room_id_from_create_event=False,
        privileged_creators=False,
    )
    base.update(overrides)
    return RoomVersion(**base)  # type: ignore[arg-type]


V1 = _v("1")
V2 = _v("2", state_res=StateResAlgorithm.V2)
V3 = _v("3", state_res=StateResAlgorithm.V2, event_format=EventFormat.V3,
        deferred_redaction_checks=True)
V4 = _v("4", state_res=StateResAlgorithm.V2, event_format=EventFormat.V4,
        deferred_redaction_checks=True)
V5 = _v("5", state_res=StateResAlgorithm.V2, event_format=EventFormat.V4,
        deferred_redaction_checks=True, enforce_key_validity=True)
_V6_FLAGS: dict[str, object] = dict(
    state_res=StateResAlgorithm.V2,
    event_format=EventFormat.V4,
    redaction_rules=RedactionRules.V6,
    deferred_redaction_checks=True,
    enforce_key_validity=True,
    special_case_aliases_auth=False,
    strict_canonical_json=True,
    limit_notifications_power_levels=True,
)
V6 = _v("6", **_V6_FLAGS)
V7 = _v("7", **{**_V6_FLAGS, "knock_join_rule": True})
V8 = _v("8", **{**_V6_FLAGS, "knock_join_rule": True, "restricted_join_rule": True,
                "redaction_rules": RedactionRules.V8})
_V9_FLAGS = {**_V6_FLAGS, "knock_join_rule": True, "restricted_join_rule": True,
             "redaction_rules": RedactionRules.V9}
V9 = _v("9", **_V9_FLAGS)
_V10_FLAGS = {**_V9_FLAGS, "knock_restricted_join_rule": True,
              "enforce_int_power_levels": True}
V10 = _v("10", **_V10_FLAGS)
_V11_FLAGS = {**_V10_FLAGS, "redaction_rules": RedactionRules.V11,
              "implicit_room_creator": True, "redacts_in_content": True}
V11 = _v("11", **_V11_FLAGS)
V12 = _v("12", **{**_V11_FLAGS, "state_res": StateResAlgorithm.V2_1,
                  "room_id_from_create_event": True, "privileged_creators": True})

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {
    rv.identifier: rv for rv in (V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12)
}
DEFAULT_ROOM_VERSION = V12
