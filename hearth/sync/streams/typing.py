"""The typing stream: `m.typing` ephemeral events in joined rooms.

An incremental sync gets the full typing list of each joined room whose list
changed since its token (clients replace what they knew); an initial sync
the rooms where someone is typing. A token the typing service does not know
(from before a restart) gets every joined room's list, empty ones included,
so a client forgets typing notices the restart ended.
"""

from __future__ import annotations

from hearth.rooms.typing import TypingService
from hearth.sync.streams import SyncContext
from hearth.sync.streams.filtering import ephemeral_filter, ephemeral_room_wanted, type_wanted


class TypingStream:
    token_key = "typing"

    def __init__(self, *, typing: TypingService) -> None:
        self._typing = typing

    def current_position(self) -> int:
        return self._typing.current_position()

    async def collect(self, ctx: SyncContext) -> None:
        part = ephemeral_filter(ctx.flt)
        if not ctx.joined_room_ids or not type_wanted(part, "m.typing"):
            return
        joined = set(ctx.joined_room_ids)
        if ctx.since is None:
            rooms = [r for r in self._typing.typing_rooms() if r in joined]
        else:
            changed = self._typing.changed_rooms(ctx.since.typing, ctx.upto.typing)
            rooms = list(ctx.joined_room_ids) if changed is None else [r for r in changed if r in joined]
        for room_id in rooms:
            if ephemeral_room_wanted(part, room_id):
                ctx.add_ephemeral(
                    room_id, {"type": "m.typing", "content": {"user_ids": self._typing.typing_in(room_id)}}
                )
