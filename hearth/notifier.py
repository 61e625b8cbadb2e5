"""Tells waiting readers that something they care about changed.

Writers call it after their transaction commits: `notify_room_event` for a new
room event (naming the user a membership event is about, so an invitee wakes
too), `notify_user` for per-user streams (account data, to-device, ...). Sync
long-polls wait here for their user or their rooms; other subscribers (the
federation sender, later) add listeners.

Waking is exact: a room event wakes only the long-polls of users who asked
about that room, and a per-user change only that user's. It is process-local,
behind this small interface, so a multi-process Hearth can feed it from
PostgreSQL LISTEN/NOTIFY without touching writers or readers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

RoomEventListener = Callable[[str, int], None]


class Subscription:
    """One long-poll's interest: its user, and the rooms it watches.

    Register before reading the database, so nothing that commits after the
    read can slip past: its notification sets `notified`, which `wait` sees.

    Every parked long-poll holds one, so it is kept small: a bare flag and a
    future made only while waiting rather than an `asyncio.Event` (which
    carries a deque), a timer handle of the loop's rather than
    `asyncio.timeout` (an object and a coroutine frame more), its rooms as a
    tuple and a user's subscriptions (one per sync in flight: a handful) as a
    list, where sets would cost four times the memory.
    """

    __slots__ = ("_notifier", "_timer", "_waiter", "notified", "room_ids", "user_id")

    def __init__(self, notifier: Notifier, user_id: str) -> None:
        self._notifier = notifier
        self.user_id = user_id
        self.room_ids: tuple[str, ...] = ()
        self.notified = False
        self._waiter: asyncio.Future[bool] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def notify(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._settle(True)  # the waiter takes the notification
        else:
            self.notified = True

    def watch_rooms(self, room_ids: Iterable[str]) -> None:
        have = set(self.room_ids)
        new = [r for r in dict.fromkeys(room_ids) if r not in have]
        for room_id in new:
            self._notifier._by_room.setdefault(room_id, set()).add(self)
        self.room_ids += tuple(new)

    def wait(self, timeout_s: float) -> asyncio.Future[bool]:
        """Await it for a notification (True) or the timeout (False); either re-arms.

        A notification that came before the wait is taken at once. Not
        `wait_for`: on Python 3.11 it wraps the wait in a task of its own.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        if self.notified:
            self.notified = False
            waiter.set_result(True)
            return waiter
        self._waiter = waiter
        self._timer = loop.call_later(max(0.0, timeout_s), self._settle, False)
        return waiter

    def _settle(self, notified: bool) -> None:
        waiter, timer = self._waiter, self._timer
        self._waiter = self._timer = None
        if timer is not None:
            timer.cancel()
        if waiter is not None and not waiter.done():
            waiter.set_result(notified)

    def close(self) -> None:
        self._settle(False)  # stops the timer of a wait whose request was cancelled
        notifier = self._notifier
        subs = notifier._by_user.get(self.user_id)
        if subs is not None and self in subs:
            subs.remove(self)
            if not subs:
                del notifier._by_user[self.user_id]
        for room_id in self.room_ids:
            room_subs = notifier._by_room.get(room_id)
            if room_subs is not None:
                room_subs.discard(self)
                if not room_subs:
                    del notifier._by_room[room_id]

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Notifier:
    def __init__(self) -> None:
        self._room_event_listeners: list[RoomEventListener] = []
        self._by_user: dict[str, list[Subscription]] = {}
        self._by_room: dict[str, set[Subscription]] = {}

    def add_room_event_listener(self, listener: RoomEventListener) -> None:
        self._room_event_listeners.append(listener)

    def notify_room_event(self, room_id: str, stream_ordering: int, *, member: str | None = None) -> None:
        for listener in self._room_event_listeners:
            listener(room_id, stream_ordering)
        for sub in self._by_room.get(room_id, ()):
            sub.notify()
        if member is not None:
            self.notify_user(member)

    def notify_room(self, room_id: str) -> None:
        """Something other than a room event changed in the room (typing, receipts)."""
        for sub in self._by_room.get(room_id, ()):
            sub.notify()

    def notify_user(self, user_id: str) -> None:
        for sub in self._by_user.get(user_id, ()):
            sub.notify()

    def subscribe(self, user_id: str) -> Subscription:
        sub = Subscription(self, user_id)
        self._by_user.setdefault(user_id, []).append(sub)
        return sub
