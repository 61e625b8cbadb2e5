"""Creating a room: the create event, then the initial state in the spec's order.

The order (create_room.yaml): create, creator's join, power levels (with the
override), canonical alias, the preset's join rules / history visibility /
guest access, `initial_state`, name and topic, then invites. Every event goes
through the normal build-and-persist path, so each is checked by the auth rules
like any other.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hearth.clock import Clock
from hearth.core.events import Event, StateKey
from hearth.core.power_levels import parse_power_level
from hearth.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from hearth.errors import MatrixError, limit_exceeded
from hearth.rooms.builder import EventBuilder
from hearth.rooms.persist import EventPersister, EventRejected
from hearth.rooms.send import RoomSender
from hearth.storage.db import Database, DbConnection
from hearth.storage.rooms import RoomIdTaken, RoomInfo, RoomsStore
from hearth.storage.users import UsersStore

PRESETS: dict[str, dict[str, str]] = {
    "private_chat": {"join_rule": "invite", "history_visibility": "shared", "guest_access": "can_join"},
    "trusted_private_chat": {
        "join_rule": "invite",
        "history_visibility": "shared",
        "guest_access": "can_join",
    },
    "public_chat": {"join_rule": "public", "history_visibility": "shared", "guest_access": "forbidden"},
}


@dataclass
class RoomSpec:
    """A validated /createRoom request."""

    creator: str
    room_version: RoomVersion
    preset: str
    creation_content: dict[str, Any] = field(default_factory=dict)
    power_level_override: dict[str, Any] | None = None
    initial_state: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    name: str | None = None
    topic: str | None = None
    invite: list[str] = field(default_factory=list)
    is_direct: bool = False
    # The local part of an alias to create and make canonical.
    room_alias_name: str | None = None
    visibility: str = "private"


def default_power_levels(spec: RoomSpec) -> dict[str, Any]:
    rv = spec.room_version
    users: dict[str, int] = {}
    if not rv.privileged_creators:
        users[spec.creator] = 100
        if spec.preset == "trusted_private_chat":
            users.update({u: 100 for u in spec.invite})
    events = {
        "m.room.name": 50,
        "m.room.power_levels": 100,
        "m.room.history_visibility": 100,
        "m.room.canonical_alias": 50,
        "m.room.avatar": 50,
        "m.room.tombstone": 100,
        "m.room.server_acl": 100,
        "m.room.encryption": 100,
    }
    if rv.privileged_creators:
        # v12: upgrading must need more than ordinary state changes (create_room.yaml).
        events["m.room.tombstone"] = 150
    return {
        "users": users,
        "users_default": 0,
        "events": events,
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0 if spec.preset in ("private_chat", "trusted_private_chat") else 50,
        "notifications": {"room": 50},
        "historical": 100,
    }


class AliasReserver(Protocol):
    """What room creation needs from the alias service (hearth.rooms.aliases.AliasService)."""

    def alias_for_name(self, name: str) -> str:
        """The local alias for a `room_alias_name`, or M_INVALID_PARAM."""
        ...

    async def ensure_free(self, alias: str) -> None:
        """M_ROOM_IN_USE if the alias exists."""
        ...

    async def reserve(self, conn: DbConnection, alias: str, room_id: str, creator: str) -> None:
        """Create the alias in the caller's transaction, or M_ROOM_IN_USE."""
        ...


# How many create timestamps to try before giving up on a free v12 room ID.
_CLAIM_ATTEMPTS = 100


class RoomCreator:
    def __init__(
        self,
        *,
        db: Database,
        rooms: RoomsStore,
        users: UsersStore,
        builder: EventBuilder,
        persister: EventPersister,
        sender: RoomSender,
        server_name: str,
        clock: Clock,
        aliases: AliasReserver | None = None,
    ) -> None:
        self._db = db
        self._aliases = aliases
        self._rooms = rooms
        self._users = users
        self._builder = builder
        self._persister = persister
        self._sender = sender
        self._server_name = server_name
        self._clock = clock

    async def create(self, spec: RoomSpec) -> str:
        """Create the room and send its initial events; returns the room ID.

        A `room_alias_name` is checked before anything is made and claimed in
        the same transaction that creates the room, so a taken or invalid alias
        leaves no room behind. `visibility: public` publishes the room once its
        initial state is in place.
        """
        rv = spec.room_version
        alias = None
        if spec.room_alias_name is not None and self._aliases is not None:
            alias = self._aliases.alias_for_name(spec.room_alias_name)
            await self._aliases.ensure_free(alias)
        if spec.power_level_override is not None:
            check_power_levels_content(spec.power_level_override, rv)
        content = dict(spec.creation_content)
        if not rv.implicit_room_creator:
            content["creator"] = spec.creator
        content["room_version"] = rv.identifier
        if rv.privileged_creators and spec.preset == "trusted_private_chat" and spec.invite:
            extra = content.get("additional_creators")
            merged = list(extra) if isinstance(extra, list) else []
            content["additional_creators"] = merged + [u for u in spec.invite if u not in merged]
        join = await self._creator_join_content(spec.creator)
        create_event, room = await self._claim_room(spec, content, alias)
        room_id = room.room_id
        async with self._persister.locked(room_id):
            try:
                await self._persister.persist(room, create_event)
            except EventRejected as e:
                raise MatrixError(400, "M_BAD_JSON", f"Invalid create event: {e.reason}") from e
            for event_type, state_key, event_content in self._initial_events(spec, join):
                await self._send(room, spec.creator, event_type, state_key, event_content)
        if spec.visibility == "public":
            await self._rooms.set_public(room_id, True)
        return room_id

    async def _claim_room(
        self, spec: RoomSpec, content: dict[str, Any], alias: str | None
    ) -> tuple[Event, RoomInfo]:
        """Build the create event and insert its room (and alias), on a free room ID.

        A v12 room ID is the create event's hash, and the only thing that sets
        apart two identical requests from one user is `origin_server_ts`
        (milliseconds). When the ID is taken, the timestamp moves one
        millisecond earlier and the event is built again: the event stays an
        ordinary, valid create event, and it is never dated after the events
        that follow it. Older versions just draw a new random ID.
        """
        rv = spec.room_version
        now = self._clock.time_ms()
        for attempt in range(_CLAIM_ATTEMPTS):
            room_id = (
                None if rv.room_id_from_create_event else f"!{secrets.token_urlsafe(18)}:{self._server_name}"
            )
            try:
                create_event = self._builder.build_create_event(
                    rv, room_id, spec.creator, content, origin_server_ts=now - attempt
                )
            except Exception as e:  # InvalidPDU from bad creation_content
                raise MatrixError(400, "M_BAD_JSON", f"Invalid creation_content: {e}") from e
            try:
                async with self._db.write() as conn:
                    room = await self._rooms.create(conn, create_event.room_id, rv, now)
                    if alias is not None and self._aliases is not None:
                        await self._aliases.reserve(conn, alias, room.room_id, spec.creator)
            except RoomIdTaken:
                continue
            return create_event, room
        # Only a flood of identical requests within one millisecond gets here.
        raise limit_exceeded(retry_after_ms=1)

    async def _creator_join_content(self, creator: str) -> dict[str, Any]:
        """The creator's join carries their profile, as any later join of theirs would."""
        content: dict[str, Any] = {"membership": "join"}
        profile = await self._users.get_profile(creator)
        if profile is not None:
            if profile.displayname is not None:
                content["displayname"] = profile.displayname
            if profile.avatar_url is not None:
                content["avatar_url"] = profile.avatar_url
        return content

    async def _send(
        self, room: RoomInfo, sender: str, event_type: str, state_key: str | None, content: Mapping[str, Any]
    ) -> None:
        await self._sender.send_locked(room, sender, event_type, content, state_key=state_key)

    def _initial_events(
        self, spec: RoomSpec, join: dict[str, Any]
    ) -> list[tuple[str, str | None, dict[str, Any]]]:
        preset = PRESETS[spec.preset]
        out: list[tuple[str, str | None, dict[str, Any]]] = [("m.room.member", spec.creator, join)]
        power = default_power_levels(spec)
        if spec.power_level_override:
            power.update(spec.power_level_override)
        out.append(("m.room.power_levels", "", power))
        if spec.room_alias_name is not None:
            alias = f"#{spec.room_alias_name}:{self._server_name}"
            out.append(("m.room.canonical_alias", "", {"alias": alias}))
        state: dict[StateKey, dict[str, Any]] = {
            ("m.room.join_rules", ""): {"join_rule": preset["join_rule"]},
            ("m.room.history_visibility", ""): {"history_visibility": preset["history_visibility"]},
            ("m.room.guest_access", ""): {"guest_access": preset["guest_access"]},
        }
        preset_keys = list(state)
        for event_type, state_key, content in spec.initial_state:
            state[(event_type, state_key)] = content
        if spec.name is not None:
            state[("m.room.name", "")] = {"name": spec.name}
        if spec.topic is not None:
            # v1.15 m.topic: a TopicContentBlock whose m.text lists representations.
            state[("m.room.topic", "")] = {
                "topic": spec.topic,
                "m.topic": {"m.text": [{"mimetype": "text/plain", "body": spec.topic}]},
            }
        for key in preset_keys:
            out.append((key[0], key[1], state.pop(key)))
        out.extend((t, sk, c) for (t, sk), c in state.items())
        for user_id in spec.invite:
            invite: dict[str, Any] = {"membership": "invite"}
            if spec.is_direct:
                invite["is_direct"] = True
            out.append(("m.room.member", user_id, invite))
        return out


_SCALAR_LEVELS = ("ban", "events_default", "invite", "kick", "redact", "state_default", "users_default")


def check_power_levels_content(content: Mapping[str, Any], rv: RoomVersion) -> None:
    """Refuse a power levels override the auth rules would refuse, before the room exists."""

    def bad(what: str) -> MatrixError:
        return MatrixError(400, "M_INVALID_ROOM_STATE", f"power_level_content_override: {what}")

    def level(value: object, what: str) -> None:
        if parse_power_level(value, rv) is None:
            raise bad(f"{what} is not an integer power level")

    for key in _SCALAR_LEVELS:
        if key in content:
            level(content[key], key)
    for key in ("users", "events", "notifications"):
        if key not in content:
            continue
        sub = content[key]
        if not isinstance(sub, Mapping):
            raise bad(f"{key} is not an object")
        for name, value in sub.items():
            level(value, f"{key}.{name}")


def room_version_or_error(identifier: str | None, default: RoomVersion) -> RoomVersion:
    if identifier is None:
        return default
    rv = KNOWN_ROOM_VERSIONS.get(identifier)
    if rv is None:
        raise MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION", f"Unsupported room version {identifier}")
    return rv
