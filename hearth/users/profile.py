"""Profiles of local users: display name and avatar URL.

Only local users are served. A remote user's profile needs the federation
profile query, which arrives with the federation client; until then a remote
user ID is answered like an unknown user (404), which the spec allows.

Deactivated accounts have no profile (404), so a deactivated user disappears
from profile look-ups whether or not they asked for erasure.

Limits: a display name is at most 256 characters and an avatar URL at most
1000 and must be an `mxc://server/media-id` URI; together with the two fields
being the only ones stored, that keeps every profile far below the spec's
64 KiB ceiling. An empty string or null clears a field, as clients have always
done to remove an avatar.

Changing a field sends a new `m.room.member` join, with the new profile, to
every room the user is joined to (`ProfileRooms.propagate_profile`, the room
server's job). That happens after the profile is stored and never fails the
request: a room that refuses the event is skipped, and the profile has
changed either way.
"""

from __future__ import annotations

import logging
import re
from typing import Literal, Protocol

from hearth.core.ids import is_valid_server_name
from hearth.errors import forbidden, invalid_param, not_found
from hearth.storage.encoding import is_storable_text
from hearth.storage.users import Profile, UsersStore

log = logging.getLogger(__name__)

ProfileField = Literal["displayname", "avatar_url"]

MAX_DISPLAYNAME_LENGTH = 256
MAX_AVATAR_URL_LENGTH = 1000
_MEDIA_ID = re.compile(r"[A-Za-z0-9_\-]+", re.ASCII)


def is_valid_mxc_uri(value: str) -> bool:
    """`mxc://<server-name>/<media-id>` as the content repository defines it."""
    if not value.startswith("mxc://"):
        return False
    server, sep, media_id = value[len("mxc://"):].partition("/")
    return bool(sep) and is_valid_server_name(server) and _MEDIA_ID.fullmatch(media_id) is not None


class ProfileRooms(Protocol):
    """What a profile change needs from the room server (`hearth.rooms.membership`)."""

    async def propagate_profile(self, user_id: str) -> list[str]:
        """Send the current profile to each joined room, skipping rooms that fail."""
        ...


class ProfileService:
    def __init__(self, *, server_name: str, users: UsersStore, rooms: ProfileRooms | None = None) -> None:
        self._server_name = server_name
        self._users = users
        self._rooms = rooms

    def is_local(self, user_id: str) -> bool:
        return user_id.partition(":")[2] == self._server_name

    async def get(self, user_id: str) -> Profile:
        """The profile of a local, active user, or 404 M_NOT_FOUND."""
        profile = await self._users.get_profile(user_id) if self.is_local(user_id) else None
        if profile is None:
            raise not_found("Profile not found")
        return profile

    async def get_field(self, user_id: str, field: ProfileField) -> str:
        value = getattr(await self.get(user_id), field)
        if value is None:
            raise not_found(f"This user has no {field}")
        return str(value)

    async def set_field(self, requester: str, user_id: str, field: ProfileField, value: str | None) -> None:
        """Set one of `requester`'s own profile fields after checking its value."""
        self.check_can_edit(requester, user_id)
        value = self.check_value(field, value)
        await self.get(user_id)
        await self._users.set_profile_field(user_id, field, value)
        if self._rooms is None:
            return
        try:
            await self._rooms.propagate_profile(user_id)
        except Exception:
            # Stored is stored: the rooms catch up with the next profile change.
            log.exception("Profile change of %s not sent to its rooms", user_id)

    @staticmethod
    def check_can_edit(requester: str, user_id: str) -> None:
        if requester != user_id:
            raise forbidden("You may only change your own profile")

    @staticmethod
    def check_value(field: ProfileField, value: str | None) -> str | None:
        """The value to store (None clears the field), or M_INVALID_PARAM."""
        if value is None or value == "":
            return None
        if field == "displayname":
            if len(value) > MAX_DISPLAYNAME_LENGTH:
                raise invalid_param(f"displayname is longer than {MAX_DISPLAYNAME_LENGTH} characters")
            if not is_storable_text(value):
                raise invalid_param("displayname must not contain NUL or lone surrogates")
            return value
        if len(value) > MAX_AVATAR_URL_LENGTH:
            raise invalid_param(f"avatar_url is longer than {MAX_AVATAR_URL_LENGTH} characters")
        if not is_valid_mxc_uri(value):
            raise invalid_param("avatar_url must be an mxc:// URI")
        return value


def profile_json(profile: Profile) -> dict[str, str]:
    """The response body of GET /profile/{userId}: only fields that are set."""
    body: dict[str, str] = {}
    if profile.displayname is not None:
        body["displayname"] = profile.displayname
    if profile.avatar_url is not None:
        body["avatar_url"] = profile.avatar_url
    return body
