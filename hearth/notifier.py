"""Tells waiting readers that a stream moved: the one place writers announce news.

Writers call `notify_room_event` (and, later, the other streams' methods) after
their transaction commits; sync long-polls and the federation sender subscribe.
It is process-local, behind this small interface, so a multi-process Hearth can
replace it with PostgreSQL LISTEN/NOTIFY without touching writers or readers.
"""

from __future__ import annotations

from collections.abc import Callable

RoomEventListener = Callable[[str, int], None]


class Notifier:
    def __init__(self) -> None:
        self._room_event_listeners: list[RoomEventListener] = []

    def add_room_event_listener(self, listener: RoomEventListener) -> None:
        self._room_event_listeners.append(listener)

    def notify_room_event(self, room_id: str, stream_ordering: int) -> None:
        for listener in self._room_event_listeners:
            listener(room_id, stream_ordering)
