"""Event authorization rules for room versions 1-12.

Design note
-----------
The spec's authorization rules (rooms/fragments/v1, v3, v8-auth-rules.md and
the inline rules of v6, v7, v10, v11, v12) are one algorithm with a handful of
version switches, so this module is one function body that asks the event's
`RoomVersion` for each switch instead of a copy per version. Rule numbers move
between versions, so errors name the rule by subject ("member/join: ...").

The rules are split the way a server uses them:

* `check_auth_event_references` is the state-independent part (rule "considering
  the event's auth_events"): run once per received event against the events
  its ``auth_events`` names.
* `check_auth_rules` is everything else, run against *some* state: the event's
  auth events, the state before it, the current state (soft failure), or the
  partial state of state resolution's iterative auth checks.
  `check_auth_rules_in_state` is the same for a caller that already holds a
  ``(type, state_key) -> Event`` map, so nothing is rebuilt per check.

What the caller owns:

* Rejected events must not be passed in (an `Event` does not know if it was
  rejected).
* Room version 12 never lists the create event in ``auth_events``; its ID is
  the room ID with ``$`` for ``!``. `check_auth_rules` still needs the create
  event in every version (for the creators, ``m.federate`` and the room ID
  check), so in v12 the caller adds it to the events it passes.
* Event signatures are verified elsewhere (they need server keys). For the v8+
  rule "a member event with ``join_authorised_via_users_server`` must be signed
  by that user's server" we check that such a signature is *present*; the
  signature step must also require and verify it. ``make_join`` templates,
  which are not signed yet, pass ``require_authoriser_signature=False``.
  Third-party invite signatures, by contrast, are verified here: the keys are in
  room state.

Readings where the spec is silent (see also hearth.core.power_levels):

* With no ``m.room.join_rules`` event the join rule is ``invite``, as deployed
  servers do; a ``join_rules`` event without a ``join_rule`` is also ``invite``.
* Malformed input (wrong JSON types, missing keys, user IDs that do not parse)
  is a rejection: every failure is an `AuthError`, never a ``KeyError``. "Valid
  user ID" is `hearth.core.ids.is_valid_user_id`, the historical grammar that
  events' senders are held to (v12 says ``additional_creators`` use exactly that).
* A new power levels event whose level values do not parse is rejected when it
  has to be compared with an earlier one (v1-9); v10+ rejects it outright as the
  spec says.

Performance: the state map is built once per check and lookups are plain dict
gets; power levels are parsed lazily (`PowerLevels`), and only the power levels
rule walks whole ``users``/``events`` maps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from canonicaljson import encode_canonical_json
from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey
from unpaddedbase64 import decode_base64

from hearth.core.errors import CoreError
from hearth.core.events import Event, StateKey
from hearth.core.ids import is_valid_user_id
from hearth.core.power_levels import (
    SCALAR_DEFAULTS,
    PowerLevels,
    as_mapping,
    content_of,
    parse_power_level,
)
from hearth.core.room_versions import KNOWN_ROOM_VERSIONS, EventFormat, RoomVersion

CREATE: Final = "m.room.create"
MEMBER: Final = "m.room.member"
POWER_LEVELS: Final = "m.room.power_levels"
JOIN_RULES: Final = "m.room.join_rules"
THIRD_PARTY_INVITE: Final = "m.room.third_party_invite"
ALIASES: Final = "m.room.aliases"
REDACTION: Final = "m.room.redaction"

CREATE_KEY: Final[StateKey] = (CREATE, "")
POWER_LEVELS_KEY: Final[StateKey] = (POWER_LEVELS, "")
JOIN_RULES_KEY: Final[StateKey] = (JOIN_RULES, "")

AUTHORISER: Final = "join_authorised_via_users_server"

_EMPTY: Final[Mapping[str, Any]] = {}


class AuthError(CoreError):
    """An event is not allowed by the authorization rules; ``reason`` says which rule."""


def _domain(identifier: str) -> str | None:
    """The server part of a user/room/event ID (after the first ``:``)."""
    _, sep, domain = identifier.partition(":")
    return domain if sep else None


def _event_state_key(event: Event) -> StateKey | None:
    """(type, state_key) of a state event; None for a message or malformed event."""
    pdu = event.pdu
    etype = pdu.get("type")
    state_key = pdu.get("state_key")
    if isinstance(etype, str) and isinstance(state_key, str):
        return (etype, state_key)
    return None


def _ref_ids(refs: object, room_version: RoomVersion, field: str) -> list[str]:
    """Event IDs from ``prev_events``/``auth_events``; AuthError if malformed."""
    if refs is None:
        return []
    if not isinstance(refs, list):
        raise AuthError(f"event format: {field} is not a list")
    ids: list[str] = []
    v1 = room_version.event_format is EventFormat.V1
    for ref in refs:
        if v1:
            # v1/v2: [event_id, {hashes}] pairs
            if not isinstance(ref, list | tuple) or not ref or not isinstance(ref[0], str):
                raise AuthError(f"event format: malformed entry in {field}")
            ids.append(ref[0])
        else:
            if not isinstance(ref, str):
                raise AuthError(f"event format: malformed entry in {field}")
            ids.append(ref)
    return ids


def _only_prev_event_is(pdu: Mapping[str, Any], room_version: RoomVersion, event_id: str) -> bool:
    refs = pdu.get("prev_events")
    if not isinstance(refs, list) or len(refs) != 1:
        return False
    return _ref_ids(refs, room_version, "prev_events") == [event_id]


def _room_id(event: Event) -> str:
    room_id = event.pdu.get("room_id")
    if not isinstance(room_id, str):
        raise AuthError("event format: event has no room_id")
    return room_id


def _type_and_sender(event: Event) -> tuple[str, str]:
    pdu = event.pdu
    etype = pdu.get("type")
    sender = pdu.get("sender")
    if not isinstance(etype, str):
        raise AuthError("event format: event has no type")
    if not isinstance(sender, str) or _domain(sender) is None:
        raise AuthError("event format: sender is not a user ID")
    return etype, sender


# --- auth event selection -------------------------------------------------------------


def auth_types_for_event(event: Event) -> set[StateKey]:
    """The state keys whose current events an event must cite as ``auth_events``.

    The server-server "auth events selection": the create event (not in v12,
    where the room ID names it), the power levels, the sender's membership and,
    for membership events, the target's membership, the join rules (join,
    invite, knock), the third-party invite a 3pid invite redeems, and the
    authorising user's membership for a restricted join (v8+).
    """
    etype, sender = _type_and_sender(event)
    if etype == CREATE:
        return set()
    rv = event.room_version
    types: set[StateKey] = {POWER_LEVELS_KEY, (MEMBER, sender)}
    if not rv.room_id_from_create_event:
        types.add(CREATE_KEY)
    if etype != MEMBER:
        return types
    state_key = event.pdu.get("state_key")
    if isinstance(state_key, str):
        types.add((MEMBER, state_key))
    content = content_of(event)
    membership = content.get("membership")
    if membership in ("join", "invite", "knock"):
        types.add(JOIN_RULES_KEY)
    if membership == "invite":
        tpi = content.get("third_party_invite")
        signed = tpi.get("signed") if isinstance(tpi, Mapping) else None
        token = signed.get("token") if isinstance(signed, Mapping) else None
        if isinstance(token, str):
            types.add((THIRD_PARTY_INVITE, token))
    elif membership == "join" and rv.restricted_join_rule:
        authoriser = content.get(AUTHORISER)
        if isinstance(authoriser, str):
            types.add((MEMBER, authoriser))
    return types


def check_auth_event_references(event: Event, auth_events: Mapping[str, Event]) -> None:
    """Check the auth events an event cites, independently of room state.

    ``auth_events`` maps event ID to event and must hold every event the event
    cites (it may hold more). Checks: each cited event is present, is a state
    event of the same room, no (type, state_key) is cited twice, nothing is cited
    that auth event selection would not pick, and (v1-11) the create event is
    cited, or (v12) it is not. Create events cite nothing and are not checked.
    """
    etype, _ = _type_and_sender(event)
    if etype == CREATE:
        return
    rv = event.room_version
    room_id = _room_id(event)
    expected = auth_types_for_event(event)
    seen: dict[StateKey, str] = {}
    for auth_id in _ref_ids(event.pdu.get("auth_events"), rv, "auth_events"):
        auth_event = auth_events.get(auth_id)
        if auth_event is None:
            raise AuthError(f"auth events: {auth_id} is missing")
        key = _event_state_key(auth_event)
        if key is None:
            raise AuthError(f"auth events: {auth_id} is not a state event")
        if key in seen:
            raise AuthError(f"auth events: duplicate entries for {key} ({seen[key]}, {auth_id})")
        if key not in expected:
            if key == CREATE_KEY:
                raise AuthError("auth events: the create event must not be listed in this room version")
            raise AuthError(f"auth events: {key} is not needed to authorise this event")
        if auth_event.pdu.get("room_id") != room_id:
            raise AuthError(f"auth events: {auth_id} belongs to another room")
        seen[key] = auth_id
    if not rv.room_id_from_create_event and CREATE_KEY not in seen:
        raise AuthError("auth events: no m.room.create event")


# --- the rules ------------------------------------------------------------------------


def check_auth_rules(
    event: Event, auth_events: Iterable[Event], *, require_authoriser_signature: bool = True
) -> None:
    """Raise AuthError unless ``event`` is allowed given the state ``auth_events``.

    ``auth_events`` are state events (at most one per (type, state_key)) and
    must include the room's create event, also in v12 (see module note).
    """
    state: dict[StateKey, Event] = {}
    for auth_event in auth_events:
        pdu = auth_event.pdu
        etype = pdu.get("type")
        state_key = pdu.get("state_key")
        if type(etype) is not str or type(state_key) is not str:
            raise AuthError(f"auth events: {auth_event.event_id} is not a state event")
        key = (etype, state_key)
        previous = state.setdefault(key, auth_event)
        if previous is not auth_event and previous.event_id != auth_event.event_id:
            raise AuthError(f"auth events: duplicate entries for {key}")
    check_auth_rules_in_state(event, state, require_authoriser_signature=require_authoriser_signature)


def check_auth_rules_in_state(
    event: Event, state: Mapping[StateKey, Event], *, require_authoriser_signature: bool = True
) -> None:
    """`check_auth_rules` for a caller that already has a (type, state_key) map."""
    etype, sender = _type_and_sender(event)
    pdu = event.pdu
    state_key = pdu.get("state_key")
    if state_key is None:
        if "state_key" in pdu:
            raise AuthError("event format: state_key is null")
    elif not isinstance(state_key, str):
        raise AuthError("event format: state_key is not a string")
    rv = event.room_version

    if etype == CREATE:
        _check_create(event, sender, state_key)
        return

    room_id = _room_id(event)
    create = state.get(CREATE_KEY)
    if create is None:
        raise AuthError("auth events: no m.room.create event")
    if rv.room_id_from_create_event:
        if room_id[:1] != "!" or "$" + room_id[1:] != create.event_id:
            raise AuthError("room ID: the room ID is not the create event's ID")
    elif create.pdu.get("room_id") != room_id:
        raise AuthError("auth events: the create event belongs to another room")

    sender_domain = _domain(sender)
    if content_of(create).get("m.federate") is False:
        create_sender = create.pdu.get("sender")
        if not isinstance(create_sender, str) or _domain(create_sender) != sender_domain:
            raise AuthError("m.federate: the room does not federate with the sender's server")

    if etype == ALIASES and rv.special_case_aliases_auth:
        if state_key is None:
            raise AuthError("aliases: m.room.aliases must have a state_key")
        if state_key != sender_domain:
            raise AuthError("aliases: state_key must be the sender's server name")
        return

    lookup = _StateLookup(state, room_id)
    power = PowerLevels(create, lookup.get(POWER_LEVELS_KEY))

    if etype == MEMBER:
        _check_membership(event, sender, state_key, create, lookup, power, require_authoriser_signature)
        return

    if lookup.membership(sender) != "join":
        raise AuthError(f"sender: {sender} is not joined to the room")

    sender_level = power.user_level(sender)
    if etype == THIRD_PARTY_INVITE:
        if sender_level >= power.level("invite"):
            return
        raise AuthError("third_party_invite: sender's power level is below the invite level")

    if power.event_level(etype, state_key is not None) > sender_level:
        raise AuthError(f"power levels: sender's power level is too low to send {etype}")

    if state_key is not None and state_key.startswith("@") and state_key != sender:
        raise AuthError("state_key: a state_key starting with @ must be the sender's user ID")

    if etype == POWER_LEVELS:
        _check_power_levels(event, sender, sender_level, power, lookup.get(POWER_LEVELS_KEY))
        return

    if etype == REDACTION and not rv.deferred_redaction_checks:
        if sender_level >= power.level("redact"):
            return
        redacts = event.redacts
        own_domain = _domain(event.event_id)
        if redacts is None or own_domain is None or _domain(redacts) != own_domain:
            raise AuthError("redaction: sender may only redact events from their own server")


class _StateLookup:
    """Reads from the state map, refusing events of another room (auth rule
    "any auth event has a room_id which does not match")."""

    __slots__ = ("_room_id", "_state")

    def __init__(self, state: Mapping[StateKey, Event], room_id: str) -> None:
        self._state = state
        self._room_id = room_id

    def get(self, key: StateKey) -> Event | None:
        event = self._state.get(key)
        if event is not None and event.pdu.get("room_id") != self._room_id:
            raise AuthError(f"auth events: {event.event_id} belongs to another room")
        return event

    def membership(self, user_id: str) -> str | None:
        member = self.get((MEMBER, user_id))
        if member is None:
            return None
        membership = content_of(member).get("membership")
        return membership if isinstance(membership, str) else None

    def join_rule(self) -> object:
        event = self.get(JOIN_RULES_KEY)
        if event is None:
            return "invite"
        return content_of(event).get("join_rule", "invite")


def _check_create(event: Event, sender: str, state_key: str | None) -> None:
    rv = event.room_version
    pdu = event.pdu
    if pdu.get("prev_events"):
        raise AuthError("create: the create event must have no prev_events")
    if rv.room_id_from_create_event:
        if "room_id" in pdu:
            raise AuthError("create: the create event must not have a room_id")
    else:
        room_id = pdu.get("room_id")
        if not isinstance(room_id, str) or _domain(room_id) != _domain(sender):
            raise AuthError("create: the room ID's server must be the sender's server")
    content = content_of(event)
    room_version = content.get("room_version")
    if room_version is not None and (
        not isinstance(room_version, str) or room_version not in KNOWN_ROOM_VERSIONS
    ):
        raise AuthError("create: unknown room_version")
    if not rv.implicit_room_creator and "creator" not in content:
        raise AuthError("create: content has no creator")
    if rv.privileged_creators and "additional_creators" in content:
        extra = content["additional_creators"]
        if not isinstance(extra, list) or not all(is_valid_user_id(u) for u in extra):
            raise AuthError("create: additional_creators must be a list of user IDs")


def _join_creator(create: Event) -> object:
    """The user whose join may directly follow the create event."""
    if create.room_version.implicit_room_creator:
        return create.pdu.get("sender")
    return create.content.get("creator")


def _signed_by(pdu: Mapping[str, Any], server_name: str) -> bool:
    signatures = pdu.get("signatures")
    if not isinstance(signatures, Mapping):
        return False
    server_sigs = signatures.get(server_name)
    return isinstance(server_sigs, Mapping) and len(server_sigs) > 0


def _check_membership(
    event: Event,
    sender: str,
    target: str | None,
    create: Event,
    lookup: _StateLookup,
    power: PowerLevels,
    require_authoriser_signature: bool,
) -> None:
    rv = event.room_version
    pdu = event.pdu
    content = content_of(event)
    if target is None:
        raise AuthError("member: m.room.member must have a state_key")
    membership = content.get("membership")
    if not isinstance(membership, str):
        raise AuthError("member: content has no membership")

    if rv.restricted_join_rule and AUTHORISER in content:
        authoriser = content[AUTHORISER]
        if not is_valid_user_id(authoriser):
            raise AuthError(f"member: {AUTHORISER} is not a user ID")
        server = _domain(authoriser)
        if require_authoriser_signature and (server is None or not _signed_by(pdu, server)):
            raise AuthError(f"member: event is not signed by the server of {AUTHORISER}")

    if membership == "join":
        if target == _join_creator(create) and _only_prev_event_is(pdu, rv, create.event_id):
            return
        if sender != target:
            raise AuthError("member/join: sender cannot join another user")
        sender_membership = lookup.membership(sender)
        if sender_membership == "ban":
            raise AuthError("member/join: sender is banned")
        join_rule = lookup.join_rule()
        if join_rule == "invite" or (rv.knock_join_rule and join_rule == "knock"):
            if sender_membership in ("invite", "join"):
                return
            raise AuthError(f"member/join: join rule is {join_rule} and sender is not invited")
        if (rv.restricted_join_rule and join_rule == "restricted") or (
            rv.knock_restricted_join_rule and join_rule == "knock_restricted"
        ):
            if sender_membership in ("invite", "join"):
                return
            authoriser = content.get(AUTHORISER)
            if not isinstance(authoriser, str):
                raise AuthError(f"member/join: restricted join without {AUTHORISER}")
            if lookup.membership(authoriser) != "join":
                raise AuthError("member/join: the authorising user is not joined to the room")
            if power.user_level(authoriser) < power.level("invite"):
                raise AuthError("member/join: the authorising user cannot invite")
            return
        if join_rule == "public":
            return
        raise AuthError(f"member/join: join rule {join_rule!r} does not allow joining")

    sender_membership = lookup.membership(sender)
    target_membership = lookup.membership(target)

    if membership == "invite":
        if "third_party_invite" in content:
            _check_third_party_invite(content["third_party_invite"], sender, target, target_membership,
                                      lookup)
            return
        if sender_membership != "join":
            raise AuthError("member/invite: sender is not joined to the room")
        if target_membership in ("join", "ban"):
            raise AuthError(f"member/invite: target is already {target_membership}")
        if power.user_level(sender) >= power.level("invite"):
            return
        raise AuthError("member/invite: sender's power level is below the invite level")

    if membership == "leave":
        if sender == target:
            allowed = ("invite", "join", "knock") if rv.knock_join_rule else ("invite", "join")
            if sender_membership in allowed:
                return
            raise AuthError(f"member/leave: cannot leave from membership {sender_membership!r}")
        if sender_membership != "join":
            raise AuthError("member/leave: sender is not joined to the room")
        sender_level = power.user_level(sender)
        if target_membership == "ban" and sender_level < power.level("ban"):
            raise AuthError("member/leave: sender's power level is below the ban level (unban)")
        if sender_level >= power.level("kick") and power.user_level(target) < sender_level:
            return
        raise AuthError("member/leave: sender may not kick the target")

    if membership == "ban":
        if sender_membership != "join":
            raise AuthError("member/ban: sender is not joined to the room")
        sender_level = power.user_level(sender)
        if sender_level >= power.level("ban") and power.user_level(target) < sender_level:
            return
        raise AuthError("member/ban: sender may not ban the target")

    if membership == "knock" and rv.knock_join_rule:
        join_rule = lookup.join_rule()
        if join_rule != "knock" and not (rv.knock_restricted_join_rule and join_rule == "knock_restricted"):
            raise AuthError(f"member/knock: join rule {join_rule!r} does not allow knocking")
        if sender != target:
            raise AuthError("member/knock: sender cannot knock for another user")
        if sender_membership not in ("ban", "invite", "join"):
            return
        raise AuthError(f"member/knock: sender is already {sender_membership}")

    raise AuthError(f"member: unknown membership {membership!r}")


def _check_third_party_invite(
    tpi: object, sender: str, target: str, target_membership: str | None, lookup: _StateLookup
) -> None:
    if target_membership == "ban":
        raise AuthError("member/invite (3pid): target is banned")
    signed = tpi.get("signed") if isinstance(tpi, Mapping) else None
    if not isinstance(signed, Mapping):
        raise AuthError("member/invite (3pid): third_party_invite has no signed object")
    mxid = signed.get("mxid")
    token = signed.get("token")
    if not isinstance(mxid, str) or not isinstance(token, str):
        raise AuthError("member/invite (3pid): signed has no mxid or token")
    if mxid != target:
        raise AuthError("member/invite (3pid): signed mxid is not the invited user")
    invite_event = lookup.get((THIRD_PARTY_INVITE, token))
    if invite_event is None:
        raise AuthError("member/invite (3pid): no m.room.third_party_invite for this token")
    if invite_event.pdu.get("sender") != sender:
        raise AuthError("member/invite (3pid): sender did not send the third-party invite")
    if not _third_party_signature_ok(signed, invite_event.content):
        raise AuthError("member/invite (3pid): no signature matches the invite's public keys")


def _third_party_signature_ok(signed: Mapping[str, Any], invite_content: Mapping[str, Any]) -> bool:
    """Whether any ed25519 signature in ``signed`` verifies with any key of the invite.

    Keys are ``public_key`` and each ``public_keys[].public_key``, unpadded base64
    in either alphabet. Signatures cover ``signed`` minus ``signatures`` and
    ``unsigned``, as canonical JSON.
    """
    signatures = signed.get("signatures")
    if not isinstance(signatures, Mapping):
        return False
    raw_keys: list[object] = [invite_content.get("public_key")]
    public_keys = invite_content.get("public_keys")
    if isinstance(public_keys, list):
        raw_keys.extend(k.get("public_key") for k in public_keys if isinstance(k, Mapping))
    keys: list[VerifyKey] = []
    for raw in raw_keys:
        if isinstance(raw, str):
            try:
                keys.append(VerifyKey(decode_base64(raw)))
            except (ValueError, TypeError, CryptoError):
                continue
    if not keys:
        return False
    try:
        message = encode_canonical_json(
            {k: v for k, v in signed.items() if k not in ("signatures", "unsigned")}
        )
    except (ValueError, TypeError):
        return False
    for server_sigs in signatures.values():
        if not isinstance(server_sigs, Mapping):
            continue
        for key_id, signature in server_sigs.items():
            if not isinstance(key_id, str) or not key_id.startswith("ed25519:"):
                continue
            if not isinstance(signature, str):
                continue
            try:
                sig_bytes = decode_base64(signature)
            except ValueError:
                continue
            for key in keys:
                try:
                    key.verify(message, sig_bytes)
                except (ValueError, TypeError, CryptoError):
                    continue
                return True
    return False


def _check_power_levels(
    event: Event, sender: str, sender_level: int | float, power: PowerLevels, current: Event | None
) -> None:
    rv = event.room_version
    content = content_of(event)
    if rv.enforce_int_power_levels:
        for key in SCALAR_DEFAULTS:
            if key in content and type(content[key]) is not int:
                raise AuthError(f"power levels: {key} is not an integer")
        for key in ("events", "notifications"):
            if key in content:
                sub = content[key]
                if not isinstance(sub, Mapping) or any(type(v) is not int for v in sub.values()):
                    raise AuthError(f"power levels: {key} is not an object of integers")

    new_users = content.get("users", _EMPTY)
    if not isinstance(new_users, Mapping):
        raise AuthError("power levels: users is not an object")
    old = content_of(current) if current is not None else _EMPTY
    old_users = as_mapping(old.get("users"))
    changed_users: list[tuple[str, int, object]] = []
    for user_id, raw in new_users.items():
        old_raw = old_users.get(user_id)
        if old_raw is not None and type(old_raw) is type(raw) and old_raw == raw:
            # Unchanged entry of the current (accepted, so validated) event: big
            # rooms re-send thousands of these, so skip parsing them again.
            continue
        if not is_valid_user_id(user_id):
            raise AuthError(f"power levels: users key {user_id!r} is not a user ID")
        level = parse_power_level(raw, rv)
        if level is None:
            raise AuthError(f"power levels: level of {user_id} is not an integer")
        changed_users.append((user_id, level, old_raw))

    if rv.privileged_creators:
        listed = power.creators().intersection(new_users)
        if listed:
            raise AuthError(f"power levels: room creators may not be listed in users ({sorted(listed)})")

    if current is None:
        return

    for key in SCALAR_DEFAULTS:
        old_value = _lenient(old.get(key), rv)
        new_value = _strict(content.get(key), rv, key)
        if old_value == new_value:
            continue
        if old_value is not None and old_value > sender_level:
            raise AuthError(f"power levels: sender cannot change {key} from {old_value}")
        if new_value is not None and new_value > sender_level:
            raise AuthError(f"power levels: sender cannot set {key} to {new_value}")

    maps = ("events", "notifications") if rv.limit_notifications_power_levels else ("events",)
    for name in maps:
        old_map = as_mapping(old.get(name))
        new_map = content.get(name, _EMPTY)
        if not isinstance(new_map, Mapping):
            raise AuthError(f"power levels: {name} is not an object")
        for key, raw in new_map.items():
            new_value = _strict(raw, rv, f"{name}.{key}")
            old_value = _lenient(old_map.get(key), rv)
            if old_value == new_value:
                continue
            if old_value is not None and old_value > sender_level:
                raise AuthError(f"power levels: sender cannot change {name}[{key!r}] from {old_value}")
            if new_value is not None and new_value > sender_level:
                raise AuthError(f"power levels: sender cannot set {name}[{key!r}] to {new_value}")
        for key, raw in old_map.items():
            if key in new_map:
                continue
            old_value = _lenient(raw, rv)
            if old_value is not None and old_value > sender_level:
                raise AuthError(f"power levels: sender cannot remove {name}[{key!r}] ({old_value})")

    for user_id, new_value, old_raw in changed_users:
        old_value = _lenient(old_raw, rv)
        if old_value == new_value:
            continue
        if user_id != sender and old_value is not None and old_value >= sender_level:
            raise AuthError(f"power levels: sender cannot change the level of {user_id}")
        if new_value > sender_level:
            raise AuthError(f"power levels: sender cannot raise {user_id} above their own level")
    for user_id, raw in old_users.items():
        if user_id in new_users or user_id == sender:
            continue
        old_value = _lenient(raw, rv)
        if old_value is not None and old_value >= sender_level:
            raise AuthError(f"power levels: sender cannot remove the level of {user_id}")


def _lenient(raw: object, rv: RoomVersion) -> int | None:
    """A level from the current (accepted) power levels; None if absent or unreadable."""
    return None if raw is None else parse_power_level(raw, rv)


def _strict(raw: object, rv: RoomVersion, what: str) -> int | None:
    """A level from the new power levels event; None if absent, AuthError if invalid."""
    if raw is None:
        return None
    value = parse_power_level(raw, rv)
    if value is None:
        raise AuthError(f"power levels: {what} is not an integer")
    return value
