"""The typing service's change log and the typing stream, without a database."""

from __future__ import annotations

import pytest

from hearth.core.room_versions import KNOWN_ROOM_VERSIONS
from hearth.notifier import Notifier
from hearth.rooms import typing as typing_module
from hearth.rooms.typing import TypingService
from hearth.storage.rooms import RoomInfo
from hearth.sync.streams import SyncContext
from hearth.sync.streams.typing import TypingStream
from hearth.sync.token import SyncToken
from hearth.users.filters import Filter
from hearth.users.sessions import Requester
from tests.helpers.clock import FakeClock

VERSION = KNOWN_ROOM_VERSIONS["10"]


class Rooms:
    """Everyone is joined to every room."""

    async def get(self, room_id: str) -> RoomInfo:
        return RoomInfo(1, room_id, VERSION)

    async def membership(self, room_nid: int, user_id: str) -> tuple[str, int]:
        return ("join", 1)


def service(clock: FakeClock, notifier: Notifier | None = None) -> TypingService:
    return TypingService(rooms=Rooms(), notifier=notifier or Notifier(), clock=clock)  # type: ignore[arg-type]


async def test_positions_follow_the_clock_and_never_repeat() -> None:
    clock = FakeClock()
    typing = service(clock)
    start = typing.current_position()
    assert start == clock.time_ms() == typing.first_position
    await typing.set_typing("@a:x", "@a:x", "!r:x", True, 1000)
    await typing.set_typing("@b:x", "@b:x", "!r:x", True, 1000)
    assert typing.current_position() == start + 2
    clock.advance(10_000)  # both expire: two changes, positions jump to the clock
    assert typing.current_position() == clock.time_ms() + 1
    assert typing.typing_in("!r:x") == []


async def test_changed_rooms_between_positions() -> None:
    clock = FakeClock()
    typing = service(clock)
    first = typing.current_position()
    await typing.set_typing("@a:x", "@a:x", "!one:x", True, None)
    middle = typing.current_position()
    await typing.set_typing("@a:x", "@a:x", "!two:x", True, None)
    last = typing.current_position()
    assert typing.changed_rooms(first, last) == {"!one:x", "!two:x"}
    assert typing.changed_rooms(middle, last) == {"!two:x"}
    assert typing.changed_rooms(first, middle) == {"!one:x"}
    assert typing.changed_rooms(last, last) == set()
    assert typing.changed_rooms(first - 1, last) is None  # an earlier process's position
    assert typing.changed_rooms(last + 1, last) is None  # beyond this process
    assert sorted(typing.typing_rooms()) == ["!one:x", "!two:x"]


async def test_old_positions_after_the_log_is_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(typing_module, "_LOG_SIZE", 4)
    clock = FakeClock()
    typing = service(clock)
    first = typing.current_position()
    for i in range(6):
        await typing.set_typing("@a:x", "@a:x", f"!r{i}:x", True, None)
    third = first + 3
    last = typing.current_position()
    assert typing.changed_rooms(first, last) == {f"!r{i}:x" for i in range(6)}
    assert typing.changed_rooms(third, last) == {"!r3:x", "!r4:x", "!r5:x"}


async def test_zero_timeout_ends_at_once_and_wakes_the_room() -> None:
    clock = FakeClock()
    notifier = Notifier()
    typing = service(clock, notifier)
    with notifier.subscribe("@b:x") as sub:
        sub.watch_rooms(["!r:x"])
        await typing.set_typing("@a:x", "@a:x", "!r:x", True, 0)
        assert sub.notified
    assert typing.typing_in("!r:x") == []
    typing.close()


async def test_stream_collects_changed_joined_rooms_only() -> None:
    clock = FakeClock()
    typing = service(clock)
    stream = TypingStream(typing=typing)
    since = SyncToken(typing=stream.current_position())
    await typing.set_typing("@a:x", "@a:x", "!mine:x", True, None)
    await typing.set_typing("@a:x", "@a:x", "!other:x", True, None)
    upto = SyncToken(typing=stream.current_position())
    ctx = SyncContext(Requester("@b:x", "DEV", b""), since, upto, Filter(), ["!mine:x", "!quiet:x"])
    await stream.collect(ctx)
    assert ctx.ephemeral == {"!mine:x": [{"type": "m.typing", "content": {"user_ids": ["@a:x"]}}]}
    assert ctx.news
    nothing = SyncContext(Requester("@b:x", "DEV", b""), upto, upto, Filter(), ["!mine:x"])
    await stream.collect(nothing)
    assert nothing.ephemeral == {}
    assert not nothing.news
    typing.close()
