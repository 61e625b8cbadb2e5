"""Plug-in streams for /sync beyond room events and account data.

Each stream owns one field of the `SyncToken` (receipts, typing, to_device,
device_lists, presence). `SyncService` asks every stream for its current
position when it takes `upto`, and once per response lets it `collect` what
changed between `since` and `upto` into the `SyncContext`: per-room ephemeral
events, or top-level sections. A stream that adds anything sets `news`, so a
long-poll returns; writers of a stream wake long-polls through the `Notifier`
(`notify_room` for a room's ephemeral data, `notify_user` for one user's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from hearth.sync.token import SyncToken
from hearth.users.filters import Filter
from hearth.users.sessions import Requester


@dataclass
class SyncContext:
    requester: Requester
    since: SyncToken | None
    upto: SyncToken
    flt: Filter
    # Rooms the user is joined to and the filter allows.
    joined_room_ids: list[str]
    # Rooms (nids) the user joined in (since, upto] and is still in, whatever
    # the filter says (an incremental sync; the service knows them already).
    newly_joined_room_nids: list[int] = field(default_factory=list)
    # Room ID -> ephemeral events (m.typing, m.receipt) for rooms.join[...].ephemeral.
    ephemeral: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Top-level sections to set in the response (presence, to_device, device_lists, ...).
    top_level: dict[str, Any] = field(default_factory=dict)
    # Token field -> position for next_batch below `upto`, for a stream that
    # delivered only part of what is pending (the rest comes next time).
    stopped_at: dict[str, int] = field(default_factory=dict)
    news: bool = False

    def add_ephemeral(self, room_id: str, event: dict[str, Any]) -> None:
        self.ephemeral.setdefault(room_id, []).append(event)
        self.news = True


class SyncStream(Protocol):
    # The SyncToken field this stream's positions go in.
    token_key: str
    # Every /sync takes a token from this: it must not touch the database
    # (positions are kept in memory, see hearth.storage.streams).
    def current_position(self) -> int: ...

    async def collect(self, ctx: SyncContext) -> None: ...
