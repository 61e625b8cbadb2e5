"""Room aliases: this server's `#name:server` directory and the canonical alias rule.

Serves (through hearth.api.client.directory) `PUT/GET/DELETE /directory/room/{roomAlias}`
and `GET /rooms/{roomId}/aliases`, and `resolve` for joining by alias.

Only aliases on this server are stored and served. Resolving another server's
alias needs the federation directory query, which arrives with the federation
client; until then such aliases are 404 M_NOT_FOUND.

Who may do what (the spec leaves the access checks to servers):

- create: a user joined to the room (aliases name rooms their members vouch
  for); the alias must be new, on this server, with a non-empty localpart
  without whitespace (the grammar allows more, but such names cannot be
  typed or linked reliably);
- delete: the alias's creator, a server admin, or anyone whose power in the
  room would let them send `m.room.canonical_alias`. If the room's canonical
  alias event lists the deleted alias, it is updated as the deleting user,
  and the deletion stands even if they may not send that event (as the spec
  recommends);
- list a room's local aliases: joined members, or anyone if the room is
  `world_readable`.

`CanonicalAliasCheck` is run by `RoomSender.send` on every client-sent
`m.room.canonical_alias` event: malformed aliases are M_INVALID_PARAM, and
every alias listed must currently point to this room, else M_BAD_ALIAS. Aliases
of other servers cannot be checked without federation and are refused too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from hearth.clock import Clock
from hearth.core.ids import is_valid_room_alias, is_valid_room_id
from hearth.core.power_levels import PowerLevels
from hearth.errors import MatrixError, forbidden, invalid_param, not_found
from hearth.rooms.persist import EventPersister
from hearth.rooms.send import RoomSender
from hearth.rooms.summary import (
    CANONICAL_ALIAS_KEY,
    CREATE_KEY,
    HISTORY_VISIBILITY_KEY,
    POWER_LEVELS_KEY,
    StateReader,
)
from hearth.storage.aliases import AliasesStore
from hearth.storage.db import Database, DbConnection
from hearth.storage.directory import DirectoryStore
from hearth.storage.rooms import RoomsStore
from hearth.storage.users import UsersStore

CANONICAL_ALIAS = "m.room.canonical_alias"


def _domain(identifier: str) -> str:
    return identifier.partition(":")[2]


def room_in_use(alias: str, status: int) -> MatrixError:
    return MatrixError(status, "M_ROOM_IN_USE", f"Room alias {alias} already exists")


def canonical_aliases(content: Mapping[str, Any]) -> list[str]:
    """The aliases an m.room.canonical_alias content names (well-formed ones only)."""
    out: list[str] = []
    alias = content.get("alias")
    if isinstance(alias, str) and alias:
        out.append(alias)
    alt = content.get("alt_aliases")
    if isinstance(alt, list):
        out.extend(a for a in alt if isinstance(a, str) and a not in out)
    return out


class CanonicalAliasCheck:
    """Refuses an m.room.canonical_alias content naming aliases that do not point to the room."""

    def __init__(self, *, aliases: AliasesStore, server_name: str) -> None:
        self._aliases = aliases
        self._server_name = server_name

    async def __call__(self, room_id: str, content: Mapping[str, Any]) -> None:
        named: list[str] = []
        alias = content.get("alias")
        if alias is not None and alias != "":
            if not isinstance(alias, str) or not is_valid_room_alias(alias):
                raise invalid_param(f"alias {alias!r} is not a valid room alias")
            named.append(alias)
        if "alt_aliases" in content:
            alt = content["alt_aliases"]
            if not isinstance(alt, list):
                raise invalid_param("alt_aliases must be a list of room aliases")
            for item in alt:
                if not isinstance(item, str) or not is_valid_room_alias(item):
                    raise invalid_param(f"alt_aliases entry {item!r} is not a valid room alias")
                named.append(item)
        if not named:
            return
        points_to = await self._aliases.rooms_for(a for a in named if _domain(a) == self._server_name)
        for name in named:
            if _domain(name) != self._server_name:
                raise MatrixError(
                    400,
                    "M_BAD_ALIAS",
                    f"The alias {name} is on another server and cannot be checked without federation",
                )
            if points_to.get(name) != room_id:
                raise MatrixError(400, "M_BAD_ALIAS", f"The alias {name} does not point to this room")


class AliasService:
    # Joined members looked at to name the servers that know a room.
    _SERVER_SAMPLE = 1000

    def __init__(
        self,
        *,
        db: Database,
        aliases: AliasesStore,
        rooms: RoomsStore,
        directory: DirectoryStore,
        reader: StateReader,
        users: UsersStore,
        persister: EventPersister,
        sender: RoomSender,
        server_name: str,
        clock: Clock,
    ) -> None:
        self._db = db
        self._aliases = aliases
        self._rooms = rooms
        self._directory = directory
        self._reader = reader
        self._users = users
        self._persister = persister
        self._sender = sender
        self._server_name = server_name
        self._clock = clock

    # --- names -----------------------------------------------------------------

    def is_local(self, alias: str) -> bool:
        return _domain(alias) == self._server_name

    def parse(self, alias: str) -> str:
        """`alias` if it is a well-formed room alias, else M_INVALID_PARAM."""
        if not is_valid_room_alias(alias):
            raise invalid_param(f"{alias!r} is not a valid room alias")
        return alias

    def new_local_alias(self, alias: str) -> str:
        """`alias` if this server may create it, else M_INVALID_PARAM."""
        self.parse(alias)
        if not self.is_local(alias):
            raise invalid_param(f"Room aliases can only be created on {self._server_name}")
        localpart = alias[1:].partition(":")[0]
        if not localpart or any(c.isspace() for c in localpart):
            raise invalid_param("A room alias name must be non-empty and contain no whitespace")
        return alias

    def alias_for_name(self, name: str) -> str:
        """The local alias for a createRoom `room_alias_name`, validated."""
        if ":" in name:
            raise invalid_param("room_alias_name must be a localpart, without ':'")
        return self.new_local_alias(f"#{name}:{self._server_name}")

    # --- lookups ---------------------------------------------------------------

    async def resolve(self, alias: str) -> str | None:
        """The room a local alias points to (None for unknown and, for now, remote aliases)."""
        if not self.is_local(alias):
            return None
        entry = await self._aliases.get(alias)
        return entry.room_id if entry is not None else None

    async def lookup(self, alias: str) -> dict[str, Any]:
        """GET /directory/room/{alias}: the room ID and servers that know the room."""
        self.parse(alias)
        room_id = await self.resolve(alias)
        if room_id is None:
            raise not_found(f"Room alias {alias} not found")
        servers = [self._server_name]
        room = await self._rooms.get(room_id)
        if room is not None:
            async with self._db.read() as conn:
                members = await self._directory.joined_sample(conn, room.room_nid, self._SERVER_SAMPLE)
            servers.extend(sorted({_domain(m) for m in members} - {self._server_name}))
        return {"room_id": room_id, "servers": servers}

    async def local_aliases(self, user_id: str, room_id: str) -> list[str]:
        """GET /rooms/{roomId}/aliases, for members or anyone if the room is world_readable."""
        room = await self._rooms.get(room_id)
        if room is None:
            raise forbidden("You are not a member of this room")
        membership = await self._rooms.membership(room.room_nid, user_id)
        if membership is None or membership[0] != "join":
            state = await self._reader.room_events(room.room_nid, [HISTORY_VISIBILITY_KEY])
            event = state.get(HISTORY_VISIBILITY_KEY)
            if event is None or event.content.get("history_visibility") != "world_readable":
                raise forbidden("You are not a member of this room")
        return await self._aliases.for_room(room_id)

    # --- changes ---------------------------------------------------------------

    async def create(self, user_id: str, alias: str, room_id: str) -> None:
        """PUT /directory/room/{alias}."""
        self.new_local_alias(alias)
        if not is_valid_room_id(room_id):
            raise invalid_param(f"{room_id!r} is not a room ID")
        room = await self._rooms.get(room_id)
        membership = await self._rooms.membership(room.room_nid, user_id) if room is not None else None
        if membership is None or membership[0] != "join":
            raise forbidden("You must be in the room to give it an alias")
        if not await self._aliases.create(alias, room_id, user_id, self._clock.time_ms()):
            raise room_in_use(alias, 409)

    async def ensure_free(self, alias: str) -> None:
        """M_ROOM_IN_USE (400, as createRoom has it) if the alias exists."""
        if await self._aliases.get(alias) is not None:
            raise room_in_use(alias, 400)

    async def reserve(self, conn: DbConnection, alias: str, room_id: str, creator: str) -> None:
        """Create the alias inside the caller's transaction (createRoom), or M_ROOM_IN_USE."""
        if not await self._aliases.insert(conn, alias, room_id, creator, self._clock.time_ms()):
            raise room_in_use(alias, 400)

    async def delete(self, user_id: str, alias: str) -> None:
        """DELETE /directory/room/{alias}."""
        self.parse(alias)
        entry = await self._aliases.get(alias) if self.is_local(alias) else None
        if entry is None:
            raise not_found(f"Room alias {alias} not found")
        room = await self._rooms.get(entry.room_id)
        state = (
            await self._reader.room_events(room.room_nid, [CREATE_KEY, POWER_LEVELS_KEY, CANONICAL_ALIAS_KEY])
            if room is not None
            else {}
        )
        if entry.creator != user_id and not await self._is_admin(user_id):
            power = PowerLevels(state.get(CREATE_KEY), state.get(POWER_LEVELS_KEY))
            if room is None or power.user_level(user_id) < power.event_level(CANONICAL_ALIAS, True):
                raise forbidden("You may not delete this alias")
        if not await self._aliases.delete(alias):
            raise not_found(f"Room alias {alias} not found")
        canonical = state.get(CANONICAL_ALIAS_KEY)
        if room is not None and canonical is not None and alias in canonical_aliases(canonical.content):
            await self._drop_from_canonical(room.room_id, user_id, alias)

    async def _drop_from_canonical(self, room_id: str, user_id: str, alias: str) -> None:
        """Remove a deleted alias from the room's canonical alias event, if the user may."""
        room = await self._rooms.get(room_id)
        if room is None:
            return
        async with self._persister.locked(room_id):
            event = (await self._reader.room_events(room.room_nid, [CANONICAL_ALIAS_KEY])).get(
                CANONICAL_ALIAS_KEY
            )
            if event is None:
                return
            content = dict(event.content)
            if content.get("alias") == alias:
                del content["alias"]
            alt = content.get("alt_aliases")
            if isinstance(alt, list) and alias in alt:
                content["alt_aliases"] = [a for a in alt if a != alias]
            if content == dict(event.content):
                return
            # Without the power to edit it, the alias is gone all the same.
            with contextlib.suppress(MatrixError):
                await self._sender.send_locked(room, user_id, CANONICAL_ALIAS, content, state_key="")

    async def _is_admin(self, user_id: str) -> bool:
        account = await self._users.get(user_id)
        return account is not None and account.is_admin
