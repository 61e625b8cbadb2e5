"""Room upgrades (room_upgrades.yaml, modules/room_upgrades.md): POST /rooms/{roomId}/upgrade.

The steps, in the spec's order:

1. the user must be joined and have the power to send `m.room.tombstone`;
2. a replacement room is created through `RoomCreator` (so every event is
   checked by the auth rules), its create event naming the `predecessor`
   (the old room and its latest event) and copying the room `type` and a
   false `m.federate`;
3. the transferable state is copied: server ACL, encryption, name, avatar,
   topic, guest access, history visibility, join rules, power levels, the
   canonical alias, and a space's `m.space.child` links. Preset defaults are
   never invented: where the old room lacks join rules, history visibility or
   guest access, the new room gets the value the absence meant (`invite`,
   `shared`, `forbidden`). Bans are carried over too, so an upgrade is not a
   way back in for banned users;
4. local aliases move to the new room, and the old room's canonical alias
   event is emptied;
5. the tombstone is sent in the old room;
6. the old room's `events_default` and `invite` are raised to
   max(50, users_default + 1) so it falls quiet;
7. a room published in the directory is published in its place.

Power levels across versions: values are normalised to integers (a v1-9
room may hold "50"), the new room's creators are left out of `users` when it
is a v12+ room (they have infinite power there), and creators of a v12 old
room who are not creators of the new one keep admin rank as an explicit level
(the highest level the content uses, at least 100) rather than silently
losing it. When the upgrading user's level in the new room would be too low
to send the copied state, they get the needed level for the copy and the
final power levels are sent afterwards (as Synapse does).

Upgrades of one room are serialised, so a repeated click makes a second
replacement only after the first finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from hearth.core.events import Event, StateKey
from hearth.core.power_levels import SCALAR_DEFAULTS, PowerLevels, parse_power_level
from hearth.core.room_versions import RoomVersion
from hearth.errors import MatrixError, forbidden
from hearth.rooms.aliases import CANONICAL_ALIAS, canonical_aliases
from hearth.rooms.create import RoomCreator, RoomSpec
from hearth.rooms.send import RoomSender
from hearth.rooms.summary import (
    AVATAR_KEY,
    CANONICAL_ALIAS_KEY,
    CREATE_KEY,
    ENCRYPTION_KEY,
    GUEST_ACCESS_KEY,
    HISTORY_VISIBILITY_KEY,
    JOIN_RULES_KEY,
    NAME_KEY,
    POWER_LEVELS_KEY,
    SPACE_CHILD,
    SPACE_TYPE,
    TOPIC_KEY,
    StateReader,
    valid_via,
)
from hearth.storage.aliases import AliasesStore
from hearth.storage.db import Database
from hearth.storage.directory import DirectoryStore
from hearth.storage.rooms import RoomsStore

TOMBSTONE = "m.room.tombstone"
POWER_LEVELS = "m.room.power_levels"
SERVER_ACL_KEY: StateKey = ("m.room.server_acl", "")
# Copied as they are, in this order (join rules first: it shapes everything after).
COPIED_KEYS: tuple[StateKey, ...] = (
    JOIN_RULES_KEY,
    HISTORY_VISIBILITY_KEY,
    GUEST_ACCESS_KEY,
    NAME_KEY,
    TOPIC_KEY,
    AVATAR_KEY,
    ENCRYPTION_KEY,
    SERVER_ACL_KEY,
)
# What the absence of these events means, sent explicitly so createRoom's preset does not decide.
ABSENT_MEANS: Mapping[StateKey, dict[str, Any]] = {
    JOIN_RULES_KEY: {"join_rule": "invite"},
    HISTORY_VISIBILITY_KEY: {"history_visibility": "shared"},
    GUEST_ACCESS_KEY: {"guest_access": "forbidden"},
}
MAX_COPIED_CHILDREN = 1000
ADMIN_LEVEL = 100


def normalised_power_levels(content: Mapping[str, Any], rv: RoomVersion) -> dict[str, Any]:
    """The power levels content with every level a JSON integer (unparseable entries dropped)."""
    out: dict[str, Any] = {}
    for key, value in content.items():
        if key in SCALAR_DEFAULTS:
            level = parse_power_level(value, rv)
            if level is not None:
                out[key] = level
        elif key in ("users", "events", "notifications") and isinstance(value, Mapping):
            out[key] = {
                name: level
                for name, raw in value.items()
                if (level := parse_power_level(raw, rv)) is not None
            }
        else:
            out[key] = value
    return out


def _levels_in(content: Mapping[str, Any]) -> Iterable[int]:
    for key, value in content.items():
        if isinstance(value, int):
            if key in SCALAR_DEFAULTS:
                yield value
        elif key in ("users", "events") and isinstance(value, Mapping):
            yield from (v for v in value.values() if isinstance(v, int))


class RoomUpgrader:
    def __init__(
        self,
        *,
        db: Database,
        rooms: RoomsStore,
        directory: DirectoryStore,
        reader: StateReader,
        aliases: AliasesStore,
        creator: RoomCreator,
        sender: RoomSender,
        server_name: str,
    ) -> None:
        self._db = db
        self._server_name = server_name
        self._rooms = rooms
        self._directory = directory
        self._reader = reader
        self._aliases = aliases
        self._creator = creator
        self._sender = sender
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def upgrade(
        self, user_id: str, room_id: str, new_version: RoomVersion, additional_creators: list[str]
    ) -> str:
        """Replace the room with one of `new_version`; returns the new room's ID."""
        lock = self._locks.get(room_id)
        if lock is None:
            lock = self._locks[room_id] = asyncio.Lock()
        async with lock:
            return await self._upgrade(user_id, room_id, new_version, additional_creators)

    async def _upgrade(
        self, user_id: str, room_id: str, new_rv: RoomVersion, additional_creators: list[str]
    ) -> str:
        room = await self._rooms.get(room_id)
        if room is None:
            raise forbidden(f"You are not in room {room_id}")
        member_key: StateKey = ("m.room.member", user_id)
        keys = [CREATE_KEY, POWER_LEVELS_KEY, CANONICAL_ALIAS_KEY, member_key, *COPIED_KEYS]
        async with self._db.read() as conn:
            state = (await self._reader.events(conn, [room.room_nid], keys)).get(room.room_nid, {})
            create = state.get(CREATE_KEY)
            member = state.get(member_key)
            if create is None or member is None or member.membership != "join":
                raise forbidden(f"You are not in room {room_id}")
            power = PowerLevels(create, state.get(POWER_LEVELS_KEY))
            if power.user_level(user_id) < power.event_level(TOMBSTONE, True):
                raise forbidden("You do not have the power to upgrade this room")
            room_type = create.content.get("type")
            children: dict[str, int] = {}
            if room_type == SPACE_TYPE:
                children = (
                    await self._directory.current_state_of_type(
                        conn, [room.room_nid], SPACE_CHILD, MAX_COPIED_CHILDREN
                    )
                ).get(room.room_nid, {})
            child_events = await self._reader.by_nids(conn, children.values())
            banned = await self._directory.members_with(conn, room.room_nid, "ban")
            extremities = await self._rooms.extremities(conn, room.room_nid)
            is_public = (await self._directory.rooms(conn, [room_id]))[room_id].is_public

        new_creators = {user_id, *additional_creators} if new_rv.privileged_creators else {user_id}
        final_pl, copy_pl = self._power_levels(
            state.get(POWER_LEVELS_KEY), create, new_rv, user_id, new_creators, state, bool(banned)
        )
        initial: list[tuple[str, str, dict[str, Any]]] = []
        for key in COPIED_KEYS:
            event = state.get(key)
            if event is not None:
                initial.append((key[0], key[1], dict(event.content)))
            elif key in ABSENT_MEANS:
                initial.append((key[0], key[1], dict(ABSENT_MEANS[key])))
        canonical = state.get(CANONICAL_ALIAS_KEY)
        if canonical is not None:
            initial.append((*CANONICAL_ALIAS_KEY, await self._moved_canonical(canonical, room_id)))
        for event in sorted(child_events.values(), key=lambda e: e.state_key or ""):
            if valid_via(event.content):
                initial.append((SPACE_CHILD, event.state_key or "", dict(event.content)))

        creation: dict[str, Any] = {"predecessor": {"room_id": room_id}}
        if extremities:
            creation["predecessor"]["event_id"] = extremities[0].event_id
        if isinstance(room_type, str):
            creation["type"] = room_type
        if create.content.get("m.federate") is False:
            creation["m.federate"] = False
        if new_rv.privileged_creators and additional_creators:
            creation["additional_creators"] = list(additional_creators)
        join_rule = state.get(JOIN_RULES_KEY)
        spec = RoomSpec(
            creator=user_id,
            room_version=new_rv,
            preset="public_chat"
            if join_rule is not None and join_rule.content.get("join_rule") == "public"
            else "private_chat",
            creation_content=creation,
            power_level_override=copy_pl,
            initial_state=initial,
        )
        new_room_id = await self._creator.create(spec)

        for target in banned:
            await self._try_send(
                new_room_id, user_id, "m.room.member", {"membership": "ban"}, state_key=target
            )
        if final_pl is not None and final_pl != copy_pl:
            await self._sender.send(new_room_id, user_id, POWER_LEVELS, final_pl, state_key="")

        async with self._db.write() as conn:
            await self._aliases.move(conn, room_id, new_room_id)
        if canonical is not None and canonical_aliases(canonical.content):
            await self._try_send(room_id, user_id, CANONICAL_ALIAS, {}, state_key="")
        await self._sender.send(
            room_id,
            user_id,
            TOMBSTONE,
            {"body": "This room has been replaced", "replacement_room": new_room_id},
            state_key="",
        )
        await self._restrict_old_room(room.room_nid, room_id, user_id)
        if is_public:
            await self._rooms.set_public(new_room_id, True)
            await self._rooms.set_public(room_id, False)
        return new_room_id

    def _power_levels(
        self,
        pl_event: Event | None,
        create: Event,
        new_rv: RoomVersion,
        user_id: str,
        new_creators: set[str],
        state: Mapping[StateKey, Event],
        copies_bans: bool,
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(final power levels, power levels to create the room with); None: createRoom's defaults."""
        if pl_event is None:
            return None, None
        old_rv = create.room_version
        content = normalised_power_levels(pl_event.content, old_rv)
        users: dict[str, int] = dict(content.get("users", {}))
        top = max([ADMIN_LEVEL, *_levels_in(content)])
        if old_rv.privileged_creators:
            for old_creator in PowerLevels(create, pl_event).creators():
                if old_creator not in new_creators or not new_rv.privileged_creators:
                    users[old_creator] = top
        if new_rv.privileged_creators:
            for creator in new_creators:
                users.pop(creator, None)
        content["users"] = users
        if new_rv.privileged_creators:
            return content, content
        # Pre-v12 rooms: make sure the upgrader can send everything the copy sends.
        new_power = _content_power(content, new_rv)
        types = [key[0] for key in COPIED_KEYS] + [CANONICAL_ALIAS, SPACE_CHILD, POWER_LEVELS]
        needed = max(new_power.event_level(t, True) for t in types)
        if copies_bans:
            needed = max(needed, new_power.level("ban"))
        if new_power.user_level(user_id) >= needed:
            return content, content
        return content, {**content, "users": {**users, user_id: needed}}

    async def _moved_canonical(self, canonical: Event, old_room_id: str) -> dict[str, Any]:
        """The canonical alias content for the new room: local aliases not moving with it are dropped."""
        content = dict(canonical.content)
        points_to = await self._aliases.rooms_for(canonical_aliases(content))

        def keep(alias: object) -> bool:
            if not isinstance(alias, str):
                return False
            if alias.partition(":")[2] == self._server_name:
                return points_to.get(alias) == old_room_id
            return True

        if "alias" in content and not keep(content["alias"]):
            del content["alias"]
        alt = content.get("alt_aliases")
        if isinstance(alt, list):
            content["alt_aliases"] = [a for a in alt if keep(a)]
        return content

    async def _restrict_old_room(self, room_nid: int, room_id: str, user_id: str) -> None:
        """Raise events_default and invite so the old room falls quiet (best effort)."""
        state = await self._reader.room_events(room_nid, [CREATE_KEY, POWER_LEVELS_KEY])
        pl_event = state.get(POWER_LEVELS_KEY)
        if pl_event is None:
            return
        power = PowerLevels(state.get(CREATE_KEY), pl_event)
        needed = max(50, power.level("users_default") + 1)
        content = dict(pl_event.content)
        changed = False
        for key in ("events_default", "invite"):
            if power.level(key) < needed:
                content[key] = needed
                changed = True
        if changed:
            await self._try_send(room_id, user_id, POWER_LEVELS, content, state_key="")

    async def _try_send(
        self, room_id: str, user_id: str, event_type: str, content: Mapping[str, Any], *, state_key: str
    ) -> None:
        # Best-effort steps: the auth rules may refuse them; the upgrade stands.
        with contextlib.suppress(MatrixError):
            await self._sender.send(room_id, user_id, event_type, content, state_key=state_key)


def _content_power(content: Mapping[str, Any], rv: RoomVersion) -> PowerLevels:
    """PowerLevels over a content not yet in any event (no creators: pre-v12 use only)."""
    return PowerLevels(None, Event({"type": POWER_LEVELS, "content": dict(content)}, "$pending", rv))
