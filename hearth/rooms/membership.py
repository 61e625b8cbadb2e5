"""Room membership for local users: join, knock, invite, leave, kick, ban, unban, forget.

Every change is an `m.room.member` event built and persisted through
`RoomSender.send_locked` under the room's lock, so the auth rules have the
final word; this service adds what the auth rules cannot know:

- the content a client expects: the user's own `displayname`/`avatar_url`
  on join and knock (and a local invitee's on invite), plus `reason`;
- restricted joins (v8+ `restricted`, v10+ `knock_restricted`): when the
  joiner is not invited, we check they are joined to one of the join rules'
  `m.room_membership` rooms and name a local member who may invite in
  `join_authorised_via_users_server` (our server signs every event, which is
  the signature the auth rules require);
- third-party invite redemption (`third_party_signed` on join): the pending
  invite is turned into an `m.room.member` invite from its original sender,
  which the auth rules verify against the invite's public keys, then joined;
- repeats are cheap and idempotent: a change identical to the target's
  current member event (same sender, same content) returns that event
  instead of sending another, and leaving a room already left is a no-op;
- profile changes reach the rooms (`propagate_profile`): a new join event
  with the current display name and avatar in every joined room;
- a deactivated account leaves everything (`leave_all`): joins, invites
  and knocks; in both, a room that fails is logged and skipped;
- friendlier refusals for the common cases (kicking someone not in the room,
  unbanning someone not banned), which the auth rules would otherwise allow
  or word obscurely.

Only rooms this server knows are handled. Joining or knocking on a remote
room needs the federation make_join/send_join (make_knock/send_knock)
handshake, which arrives with the federation client; until then such a room
is 404 M_NOT_FOUND. Likewise only local aliases resolve. Invites to remote
users are stored like any other event; delivering them to the invitee's
server is the federation sender's job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hearth.core.events import Event, StateKey
from hearth.core.ids import is_valid_room_alias, is_valid_room_id
from hearth.core.power_levels import USERS_DEFAULT, PowerLevels, parse_power_level
from hearth.core.room_versions import RoomVersion
from hearth.errors import MatrixError, forbidden, invalid_param, not_found
from hearth.rooms.persist import EventPersister
from hearth.rooms.send import RoomSender
from hearth.storage.db import Database
from hearth.storage.rooms import RoomInfo, RoomsStore
from hearth.storage.users import UsersStore

log = logging.getLogger(__name__)

MEMBER = "m.room.member"
CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")
JOIN_RULES_KEY: StateKey = ("m.room.join_rules", "")
THIRD_PARTY_INVITE = "m.room.third_party_invite"
AUTHORISER = "join_authorised_via_users_server"
# Memberships a user can leave from themselves (knock: v7+, checked by the auth rules).
IN_ROOM = ("join", "invite", "knock")


@dataclass(frozen=True, slots=True)
class ThirdPartySigned:
    """The identity server's signed proof that `mxid` owns an invited third-party ID.

    `signed` is the whole object exactly as received: the signature covers
    every field, including any this server does not know.
    """

    sender: str
    mxid: str
    token: str
    signed: Mapping[str, Any]


class _RoomView:
    """The few current-state events a membership change looks at."""

    def __init__(self, events: Mapping[StateKey, Event]) -> None:
        self._events = events

    def get(self, key: StateKey) -> Event | None:
        return self._events.get(key)

    def member_event(self, user_id: str) -> Event | None:
        return self._events.get((MEMBER, user_id))

    def membership(self, user_id: str) -> str | None:
        event = self.member_event(user_id)
        return event.membership if event is not None else None

    def join_rules(self) -> Mapping[str, Any]:
        event = self._events.get(JOIN_RULES_KEY)
        return event.content if event is not None else {}

    def power(self) -> PowerLevels:
        return PowerLevels(self._events.get(CREATE_KEY), self._events.get(POWER_LEVELS_KEY))


class AliasResolver(Protocol):
    """What joins and knocks need from the alias service (`hearth.rooms.aliases`)."""

    async def resolve(self, alias: str) -> str | None:
        """The room a (local) alias points to, if any."""
        ...


class MembershipService:
    def __init__(
        self,
        *,
        db: Database,
        aliases: AliasResolver,
        rooms: RoomsStore,
        users: UsersStore,
        persister: EventPersister,
        sender: RoomSender,
        server_name: str,
    ) -> None:
        self._db = db
        self._aliases = aliases
        self._rooms = rooms
        self._users = users
        self._persister = persister
        self._sender = sender
        self._server_name = server_name

    # --- room lookup -------------------------------------------------------

    async def resolve(self, room_id_or_alias: str) -> str:
        """A room ID from a room ID or an alias (400 if neither, 404 if the alias is unknown).

        Only local aliases resolve until the federation directory query exists.
        """
        if room_id_or_alias.startswith("#"):
            if not is_valid_room_alias(room_id_or_alias):
                raise invalid_param(f"{room_id_or_alias!r} is not a room alias")
            room_id = await self._aliases.resolve(room_id_or_alias)
            if room_id is None:
                raise not_found(f"Room alias {room_id_or_alias} not found")
            return room_id
        if not is_valid_room_id(room_id_or_alias):
            raise invalid_param(f"{room_id_or_alias!r} is not a room ID or alias")
        return room_id_or_alias

    async def _known_room(self, room_id: str) -> RoomInfo:
        """A room this server takes part in; others would need a federation join (404 for now)."""
        room = await self._rooms.get(room_id)
        if room is None:
            raise not_found(f"Room {room_id} is not known to this server")
        return room

    async def _room_for_member_change(self, room_id: str) -> RoomInfo:
        """The room, or 403: a caller who is not in a room learns nothing about it."""
        room = await self._rooms.get(room_id)
        if room is None:
            raise forbidden(f"You are not in room {room_id}")
        return room

    # --- the endpoints' operations ------------------------------------------

    async def join(
        self,
        user_id: str,
        room_id: str,
        *,
        reason: str | None = None,
        third_party_signed: ThirdPartySigned | None = None,
    ) -> str:
        """Join `user_id` to a local room; returns the join event's ID."""
        room = await self._known_room(room_id)
        content = await self._content("join", user_id, reason)
        keys = [(MEMBER, user_id), JOIN_RULES_KEY, POWER_LEVELS_KEY, CREATE_KEY]
        if third_party_signed is not None:
            keys.append((THIRD_PARTY_INVITE, third_party_signed.token))
        async with self._persister.locked(room.room_id):
            view = await self._view(room, keys)
            membership = view.membership(user_id)
            if membership == "ban":
                raise forbidden("You are banned from this room")
            if third_party_signed is not None and membership not in ("invite", "join"):
                await self._redeem_third_party_invite(room, view, user_id, third_party_signed)
            elif membership not in ("invite", "join") and self._is_restricted(room, view):
                content[AUTHORISER] = await self._authoriser(room, view, user_id)
            return await self._send_member(room, view, user_id, user_id, content)

    async def knock(self, user_id: str, room_id: str, *, reason: str | None = None) -> str:
        """Ask to join a local room whose join rule allows knocking (v7+)."""
        room = await self._known_room(room_id)
        if not room.room_version.knock_join_rule:
            raise forbidden(f"Room version {room.room_version.identifier} does not support knocking")
        content = await self._content("knock", user_id, reason)
        async with self._persister.locked(room.room_id):
            view = await self._view(room, [(MEMBER, user_id), JOIN_RULES_KEY, POWER_LEVELS_KEY, CREATE_KEY])
            membership = view.membership(user_id)
            if membership in ("join", "invite", "ban"):
                raise forbidden(f"You cannot knock: your membership is already {membership}")
            return await self._send_member(room, view, user_id, user_id, content)

    async def invite(self, sender: str, room_id: str, target: str, *, reason: str | None = None) -> str:
        room = await self._room_for_member_change(room_id)
        async with self._persister.locked(room.room_id):
            view = await self._member_view(room, sender, target)
            if view.membership(sender) != "join":
                raise forbidden(f"You are not in room {room_id}")
            membership = view.membership(target)
            if membership == "join":
                raise forbidden(f"{target} is already in the room")
            if membership == "ban":
                raise forbidden(f"{target} is banned from the room")
            content = await self._content("invite", target, reason)
            return await self._send_member(room, view, sender, target, content)

    async def leave(self, user_id: str, room_id: str, *, reason: str | None = None) -> str | None:
        """Leave, reject an invite or retract a knock; None if the user had already left."""
        room = await self._room_for_member_change(room_id)
        content = _with_reason({"membership": "leave"}, reason)
        async with self._persister.locked(room.room_id):
            view = await self._member_view(room, user_id, user_id)
            membership = view.membership(user_id)
            if membership == "leave":
                return None
            if membership not in IN_ROOM:
                if membership == "ban":
                    raise forbidden("You are banned from this room")
                raise forbidden(f"You are not in room {room_id}")
            return await self._send_member(room, view, user_id, user_id, content)

    async def kick(self, sender: str, room_id: str, target: str, *, reason: str | None = None) -> str:
        room = await self._room_for_member_change(room_id)
        content = _with_reason({"membership": "leave"}, reason)
        async with self._persister.locked(room.room_id):
            view = await self._member_view(room, sender, target)
            if view.membership(sender) != "join":
                raise forbidden(f"You are not in room {room_id}")
            membership = view.membership(target)
            if membership == "ban":
                raise forbidden(f"{target} is banned; unban them instead")
            if membership not in IN_ROOM:
                raise forbidden(f"{target} is not in the room")
            return await self._send_member(room, view, sender, target, content)

    async def ban(self, sender: str, room_id: str, target: str, *, reason: str | None = None) -> str:
        room = await self._room_for_member_change(room_id)
        content = _with_reason({"membership": "ban"}, reason)
        async with self._persister.locked(room.room_id):
            view = await self._member_view(room, sender, target)
            if view.membership(sender) != "join":
                raise forbidden(f"You are not in room {room_id}")
            return await self._send_member(room, view, sender, target, content)

    async def unban(self, sender: str, room_id: str, target: str, *, reason: str | None = None) -> str:
        room = await self._room_for_member_change(room_id)
        content = _with_reason({"membership": "leave"}, reason)
        async with self._persister.locked(room.room_id):
            view = await self._member_view(room, sender, target)
            if view.membership(sender) != "join":
                raise forbidden(f"You are not in room {room_id}")
            if view.membership(target) != "ban":
                raise forbidden(f"{target} is not banned from the room")
            return await self._send_member(room, view, sender, target, content)

    async def forget(self, user_id: str, room_id: str) -> None:
        """Hide a room the user has left from their lists (until a new membership)."""
        room = await self._rooms.get(room_id)
        current = await self._rooms.membership(room.room_nid, user_id) if room is not None else None
        if room is None or current is None:
            raise not_found(f"You have never been in room {room_id}")
        if current[0] in IN_ROOM or not await self._rooms.forget(room.room_nid, user_id):
            raise MatrixError(400, "M_UNKNOWN", "You must leave the room before forgetting it")

    async def leave_all(self, user_id: str) -> list[str]:
        """Leave every room, reject every invite and retract every knock (account deactivation).

        Each room is its own change: one that fails is logged and skipped so
        the others are still left. Returns the rooms left.
        """
        left: list[str] = []
        for membership in IN_ROOM:
            for room_id in await self._rooms.rooms_for_user(user_id, membership):
                try:
                    if await self.leave(user_id, room_id) is not None:
                        left.append(room_id)
                except MatrixError as e:
                    log.info("%s could not leave %s: %s", user_id, room_id, e)
                except Exception:
                    log.exception("%s could not leave %s", user_id, room_id)
        return left

    async def deactivated_members(self) -> list[str]:
        """Deactivated accounts still joined, invited or knocking somewhere (what `leave_all` would undo)."""
        return await self._rooms.deactivated_members(IN_ROOM)

    async def joined_rooms(self, user_id: str) -> list[str]:
        return await self._rooms.rooms_for_user(user_id, "join")

    async def propagate_profile(self, user_id: str) -> list[str]:
        """A fresh join event, with the current profile, in each room the user is joined to.

        The spec's "events on change of profile information"; the caller is
        whoever changed the profile. A room where the event fails (say the
        power levels now forbid it, or a bug) is logged and skipped, never
        fatal: the profile itself has changed either way, and the other rooms
        still deserve the news. Returns the new events' IDs.
        """
        content = await self._content("join", user_id, None)
        sent: list[str] = []
        for room_id in await self._rooms.rooms_for_user(user_id, "join"):
            try:
                event_id = await self._propagate_to(user_id, room_id, content)
            except MatrixError as e:
                log.info("Profile of %s not sent to %s: %s", user_id, room_id, e)
                continue
            except Exception:
                log.exception("Profile of %s not sent to %s", user_id, room_id)
                continue
            if event_id is not None:
                sent.append(event_id)
        return sent

    async def _propagate_to(self, user_id: str, room_id: str, content: Mapping[str, Any]) -> str | None:
        room = await self._rooms.get(room_id)
        if room is None:
            return None
        async with self._persister.locked(room_id):
            view = await self._member_view(room, user_id, user_id)
            current = view.member_event(user_id)
            if current is None or current.membership != "join" or dict(current.content) == content:
                return None
            return await self._send_member(room, view, user_id, user_id, dict(content))

    # --- helpers ----------------------------------------------------------------

    async def _content(self, membership: str, user_id: str, reason: str | None) -> dict[str, Any]:
        """Member content with a local user's profile, as clients expect to find it there."""
        content: dict[str, Any] = {"membership": membership}
        if self._is_local(user_id):
            profile = await self._users.get_profile(user_id)
            if profile is None:
                raise not_found(f"User {user_id} does not exist")
            if profile.displayname is not None:
                content["displayname"] = profile.displayname
            if profile.avatar_url is not None:
                content["avatar_url"] = profile.avatar_url
        return _with_reason(content, reason)

    async def _view(self, room: RoomInfo, keys: Iterable[StateKey]) -> _RoomView:
        """Just the asked-for keys of the room's current state (caller holds the room's lock).

        Read through the persister's room head, which caches current-state
        entries exactly while the lock is held.
        """
        async with self._db.read() as conn:
            found = await self._persister.current_state_events(conn, room, keys)
        return _RoomView({e.state_tuple: e for e in found})

    async def _member_view(self, room: RoomInfo, sender: str, target: str) -> _RoomView:
        return await self._view(room, [(MEMBER, sender), (MEMBER, target), POWER_LEVELS_KEY, CREATE_KEY])

    async def _send_member(
        self, room: RoomInfo, view: _RoomView, sender: str, target: str, content: dict[str, Any]
    ) -> str:
        """Send the member event, or return the current one if it is the same change."""
        current = view.member_event(target)
        if current is not None and current.sender == sender and dict(current.content) == content:
            return current.event_id
        stored = await self._sender.send_locked(room, sender, MEMBER, content, state_key=target)
        return stored.event_id

    def _is_restricted(self, room: RoomInfo, view: _RoomView) -> bool:
        rule = view.join_rules().get("join_rule")
        rv = room.room_version
        return (rv.restricted_join_rule and rule == "restricted") or (
            rv.knock_restricted_join_rule and rule == "knock_restricted"
        )

    async def _authoriser(self, room: RoomInfo, view: _RoomView, user_id: str) -> str:
        """A local member who may invite, vouching for a joiner who meets an allow condition."""
        allow = view.join_rules().get("allow")
        allowed_rooms = [
            a["room_id"]
            for a in (allow if isinstance(allow, list) else [])
            if isinstance(a, Mapping)
            and a.get("type") == "m.room_membership"
            and isinstance(a.get("room_id"), str)
        ]
        memberships = await self._rooms.user_memberships(user_id, allowed_rooms) if allowed_rooms else {}
        if "join" not in memberships.values():
            raise forbidden("You are not invited to this room and not in any room that allows joining it")
        power = view.power()
        needed = power.level("invite")
        # Only the creators and the users named in power levels can rise above
        # users_default, so look at those first and at everyone only if need be.
        users = power.content.get("users")
        candidates = set(power.creators()) | (
            {u for u in users if isinstance(u, str)} if isinstance(users, Mapping) else set()
        )
        local = {u for u in candidates if self._is_local(u) and power.user_level(u) >= needed}
        joined = [u for u, m in (await self._rooms.memberships(room.room_nid, local)).items() if m == "join"]
        if not joined and _users_default(power, room.room_version) >= needed:
            joined = [
                u for u in await self._rooms.members(room.room_nid, "join")
                if self._is_local(u) and power.user_level(u) >= needed
            ]
        if not joined:
            raise forbidden("No member of this server in the room can authorise your join")
        return min(joined, key=lambda u: (-power.user_level(u), u))

    async def _redeem_third_party_invite(
        self, room: RoomInfo, view: _RoomView, user_id: str, signed: ThirdPartySigned
    ) -> None:
        """Turn a pending third-party invite into an invite for `user_id`, from its sender."""
        if signed.mxid != user_id:
            raise forbidden("third_party_signed names another user")
        invite = view.get((THIRD_PARTY_INVITE, signed.token))
        if invite is None:
            raise forbidden("No third-party invite in this room matches the token")
        if invite.sender != signed.sender:
            raise forbidden("third_party_signed names another sender than the invite's")
        if not self._is_local(invite.sender):
            raise forbidden("The third-party invite was sent from another server; that needs federation")
        display_name = invite.content.get("display_name")
        content = await self._content("invite", user_id, None)
        content["third_party_invite"] = {
            "display_name": display_name if isinstance(display_name, str) else "",
            "signed": dict(signed.signed),
        }
        await self._sender.send_locked(room, invite.sender, MEMBER, content, state_key=user_id)

    def _is_local(self, user_id: str) -> bool:
        return user_id.partition(":")[2] == self._server_name


def _users_default(power: PowerLevels, rv: RoomVersion) -> int:
    """The level of a user not named in power levels (0 without a power levels event)."""
    if not power.has_event:
        return USERS_DEFAULT
    parsed = parse_power_level(power.content.get("users_default", USERS_DEFAULT), rv)
    return USERS_DEFAULT if parsed is None else parsed


def _with_reason(content: dict[str, Any], reason: str | None) -> dict[str, Any]:
    if reason is not None:
        content["reason"] = reason
    return content
