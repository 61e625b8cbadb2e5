"""Typing notifications (typing.yaml): who is typing in which room, in memory.

Typing is ephemeral, so it is never written to the database: each room keeps
the users typing in it with the time each one's notice expires (on the
injected clock). Every change of a room's typing set (someone starts, stops
or expires) takes a new position on the typing stream and is logged as
(position, room), so sync finds the rooms that changed since its token with a
binary search, never a walk over the user's rooms.

Expiry happens whenever the service is asked anything (lazily, so a test's
fake clock decides) and from a timer armed for the earliest expiry, which
wakes long-polls when nobody is asking.

Positions start from the clock's milliseconds when the process starts and
never fall behind it (`max(previous + 1, now)`), so a token from an earlier
process is below this process's first position. Such a token, or one beyond
the current position, is "unknown": sync then sends the typing state of every
room instead of a delta, which also clears what the client remembers from
before a restart.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq

from hearth.clock import Clock
from hearth.errors import forbidden
from hearth.notifier import Notifier
from hearth.storage.rooms import RoomsStore

DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 120_000
# Changes remembered for incremental syncs; older tokens fall back to a scan
# of the rooms that have had typing since the process started.
_LOG_SIZE = 10_000


class TypingService:
    def __init__(self, *, rooms: RoomsStore, notifier: Notifier, clock: Clock) -> None:
        self._rooms = rooms
        self._notifier = notifier
        self._clock = clock
        # room -> user -> expiry (ms on the clock)
        self._typing: dict[str, dict[str, int]] = {}
        # (expiry, room, user); stale entries are skipped when popped.
        self._expiries: list[tuple[int, str, str]] = []
        self._position = clock.time_ms()
        self.first_position = self._position
        # Position of the latest change of each room that has had typing.
        self._room_positions: dict[str, int] = {}
        self._log_positions: list[int] = []
        self._log_rooms: list[str] = []
        # Changes at or below this position are no longer in the log.
        self._log_floor = self._position
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0

    async def set_typing(
        self, requester: str, user_id: str, room_id: str, typing: bool, timeout_ms: int | None
    ) -> None:
        """PUT /typing: start (for `timeout_ms`) or stop typing; only for yourself, in a joined room."""
        if requester != user_id:
            raise forbidden("Cannot set the typing state of another user")
        room = await self._rooms.get(room_id)
        membership = await self._rooms.membership(room.room_nid, user_id) if room is not None else None
        if room is None or membership is None or membership[0] != "join":
            raise forbidden("You are not joined to this room")
        self._expire()
        users = self._typing.get(room_id)
        if typing:
            timeout = DEFAULT_TIMEOUT_MS if timeout_ms is None else min(max(timeout_ms, 0), MAX_TIMEOUT_MS)
            expiry = self._clock.time_ms() + timeout
            if users is None:
                users = self._typing[room_id] = {}
            started = user_id not in users
            users[user_id] = expiry
            heapq.heappush(self._expiries, (expiry, room_id, user_id))
            if started:
                self._changed(room_id)
            self._expire()  # a zero timeout ends at once
            self._arm_timer()
        elif users is not None and users.pop(user_id, None) is not None:
            if not users:
                del self._typing[room_id]
            self._changed(room_id)

    def current_position(self) -> int:
        self._expire()
        return self._position

    def typing_in(self, room_id: str) -> list[str]:
        """The users typing in the room now, sorted."""
        self._expire()
        return sorted(self._typing.get(room_id, ()))

    def typing_rooms(self) -> list[str]:
        """Rooms where someone is typing now."""
        self._expire()
        return list(self._typing)

    def changed_rooms(self, since: int, upto: int) -> set[str] | None:
        """Rooms whose typing set changed in (since, upto]; None if `since` is unknown here."""
        self._expire()
        if since < self.first_position or since > self._position:
            return None
        if since >= upto:
            return set()
        if since < self._log_floor:
            return {room for room, pos in self._room_positions.items() if since < pos <= upto}
        start = bisect.bisect_right(self._log_positions, since)
        end = bisect.bisect_right(self._log_positions, upto)
        return set(self._log_rooms[start:end])

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _changed(self, room_id: str) -> None:
        self._position = max(self._position + 1, self._clock.time_ms())
        self._room_positions[room_id] = self._position
        self._log_positions.append(self._position)
        self._log_rooms.append(room_id)
        if len(self._log_positions) > _LOG_SIZE:
            drop = _LOG_SIZE // 2
            self._log_floor = self._log_positions[drop - 1]
            del self._log_positions[:drop]
            del self._log_rooms[:drop]
        self._notifier.notify_room(room_id)

    def _expire(self) -> None:
        now = self._clock.time_ms()
        while self._expiries and self._expiries[0][0] <= now:
            expiry, room_id, user_id = heapq.heappop(self._expiries)
            users = self._typing.get(room_id)
            if users is None or users.get(user_id) != expiry:
                continue  # renewed or stopped since
            del users[user_id]
            if not users:
                del self._typing[room_id]
            self._changed(room_id)

    def _arm_timer(self) -> None:
        """Make sure a timer fires by the earliest expiry (to wake long-polls)."""
        if not self._expiries:
            return
        due = self._expiries[0][0]
        if self._timer is not None and self._timer_due <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0, due - self._clock.time_ms()) / 1000
        self._timer_due = due
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._expire()
        self._arm_timer()
