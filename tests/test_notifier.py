"""The notifier wakes exactly the subscriptions that asked, and forgets closed ones."""

from __future__ import annotations

import asyncio

from hearth.notifier import Notifier


def test_a_user_change_wakes_only_that_users_subscriptions() -> None:
    notifier = Notifier()
    alice, alice2, bob = notifier.subscribe("@a:x"), notifier.subscribe("@a:x"), notifier.subscribe("@b:x")
    notifier.notify_user("@a:x")
    assert (alice.notified, alice2.notified, bob.notified) == (True, True, False)


def test_room_news_wakes_watchers_of_that_room_and_the_member_it_names() -> None:
    notifier = Notifier()
    watcher, other, invitee = (notifier.subscribe(u) for u in ("@a:x", "@b:x", "@c:x"))
    watcher.watch_rooms(["!r:x", "!s:x"])
    other.watch_rooms(["!s:x"])
    notifier.notify_room_event("!r:x", 5, member="@c:x")
    assert (watcher.notified, other.notified, invitee.notified) == (True, False, True)
    other.notified = watcher.notified = False
    notifier.notify_room("!s:x")
    assert (watcher.notified, other.notified) == (True, True)


def test_watching_a_room_twice_registers_it_once() -> None:
    notifier = Notifier()
    sub = notifier.subscribe("@a:x")
    sub.watch_rooms(["!r:x", "!r:x"])
    sub.watch_rooms(["!r:x", "!s:x"])
    assert sub.room_ids == ("!r:x", "!s:x")
    sub.close()
    assert notifier._by_room == {} and notifier._by_user == {}


def test_closing_one_subscription_leaves_the_users_others() -> None:
    notifier = Notifier()
    first, second = notifier.subscribe("@a:x"), notifier.subscribe("@a:x")
    first.watch_rooms(["!r:x"])
    second.watch_rooms(["!r:x"])
    with first:
        pass
    notifier.notify_user("@a:x")
    notifier.notify_room("!r:x")
    assert (first.notified, second.notified) == (False, True)
    first.close()  # closing twice is harmless
    assert notifier._by_user == {"@a:x": [second]}


def test_room_listeners_hear_every_room_event() -> None:
    notifier = Notifier()
    heard: list[tuple[str, int]] = []
    notifier.add_room_event_listener(lambda room_id, pos: heard.append((room_id, pos)))
    notifier.notify_room_event("!r:x", 7)
    assert heard == [("!r:x", 7)]


async def test_wait_returns_on_notification_or_timeout_and_rearms() -> None:
    notifier = Notifier()
    sub = notifier.subscribe("@a:x")
    assert await sub.wait(0.01) is False
    notifier.notify_user("@a:x")  # before waiting: the flag is kept
    assert await sub.wait(5) is True
    assert sub.notified is False
    waiting = asyncio.ensure_future(sub.wait(5))
    await asyncio.sleep(0)
    notifier.notify_user("@a:x")
    assert await asyncio.wait_for(waiting, 5) is True


async def test_a_notification_after_a_timeout_is_kept_for_the_next_wait() -> None:
    notifier = Notifier()
    sub = notifier.subscribe("@a:x")
    assert await sub.wait(0) is False
    notifier.notify_user("@a:x")
    assert sub.notified is True
    assert await sub.wait(5) is True


async def test_closing_a_cancelled_wait_stops_its_timer() -> None:
    notifier = Notifier()
    sub = notifier.subscribe("@a:x")

    async def poll() -> bool:
        with sub:
            return await sub.wait(60)

    task = asyncio.ensure_future(poll())
    await asyncio.sleep(0)
    timer = sub._timer
    assert timer is not None
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert timer.cancelled() and sub._timer is None
    assert notifier._by_user == {}
