"""State resolution v1 (room version 1): passes by event type, depth and sha1."""

from __future__ import annotations

import hashlib

import pytest

from hearth.core.room_versions import V1, V2
from tests.core.state_res_helpers import (
    ALICE,
    BOB,
    CHARLIE,
    EVELYN,
    JR_KEY,
    PL_KEY,
    TOPIC_KEY,
    RoomBuilder,
    member_key,
)


def _sha1(event_id: str) -> str:
    return hashlib.sha1(event_id.encode()).hexdigest()


@pytest.fixture
def room() -> RoomBuilder:
    return RoomBuilder(V1)


def test_key_missing_from_one_set_is_not_a_conflict(room: RoomBuilder) -> None:
    # v1 only calls a key conflicted if two sets give it different events, so
    # evelyn's join, seen on one branch only, is kept even though the join
    # rules changed on the other. (v2 rejects it; see the v2 test.)
    base = room.base
    jr = room.join_rules("jr", ALICE, "invite")
    me = room.member("me", EVELYN, "join", prev=[base])
    state = room.resolve(jr, me)
    assert state[JR_KEY] == jr
    assert state[member_key(EVELYN)] == me

    v2 = RoomBuilder(V2)
    jr2 = v2.join_rules("jr", ALICE, "invite")
    me2 = v2.member("me", EVELYN, "join", prev=[v2.base])
    assert member_key(EVELYN) not in v2.resolve(jr2, me2)


def test_power_levels_climb_to_the_deepest_allowed(room: RoomBuilder) -> None:
    base = room.base
    pa = room.power_levels("pa", ALICE, {BOB: 50})
    room.topic("t", ALICE, prev=[base])
    pb = room.power_levels("pb", ALICE, {CHARLIE: 50})
    assert room.events[pb].depth > room.events[pa].depth
    assert room.resolve(pa, pb)[PL_KEY] == pb
    assert room.resolve(pb, pa)[PL_KEY] == pb


def test_power_levels_stop_at_the_first_disallowed(room: RoomBuilder) -> None:
    # bob (power 0) sends a deeper power levels event: it is not allowed in R,
    # so alice's shallower one stays.
    base = room.base
    pa = room.power_levels("pa", ALICE, {BOB: 0, CHARLIE: 10})
    room.topic("t", ALICE, prev=[base])
    pb = room.power_levels("pb", BOB, {BOB: 100})
    assert room.resolve(pa, pb)[PL_KEY] == pa


def test_ban_beats_power_change(room: RoomBuilder) -> None:
    # Power levels first: bob's PB needs bob joined, but bob's membership is
    # itself conflicted (so absent from R) - PB fails. Then the membership
    # pass climbs from bob's join to alice's ban.
    pa = room.power_levels("pa", ALICE, {BOB: 50})
    mb = room.member("mb", BOB, "ban", sender=ALICE)
    pb = room.power_levels("pb", BOB, {BOB: 50, CHARLIE: 50}, prev=[pa])
    state = room.resolve(mb, pb)
    assert state[PL_KEY] == pa
    assert state[member_key(BOB)] == mb


def test_other_events_take_the_deepest_that_passes(room: RoomBuilder) -> None:
    base = room.base
    t1 = room.topic("t1", ALICE)
    room.topic("filler", CHARLIE, prev=[base])  # charlie (0) cannot set topics
    t2 = room.topic("t2", BOB)  # neither can bob
    assert room.events[t2].depth > room.events[t1].depth
    assert room.resolve(t1, t2)[TOPIC_KEY] == t1


def test_other_events_fall_back_to_the_deepest_if_none_passes(room: RoomBuilder) -> None:
    base = room.base
    t1 = room.topic("t1", CHARLIE)
    t2 = room.topic("t2", BOB, prev=[base], ts=1)
    room.topic("t3", BOB, prev=[t2])
    t4 = room.head
    assert room.resolve(t1, t4)[TOPIC_KEY] == t4


def test_equal_depth_other_events_lowest_sha1_wins(room: RoomBuilder) -> None:
    base = room.base
    ta = room.topic("ta", ALICE, prev=[base])
    tb = room.topic("tb", ALICE, prev=[base])
    winner = min((ta, tb), key=_sha1)
    assert room.resolve(ta, tb)[TOPIC_KEY] == winner
    assert room.resolve(tb, ta)[TOPIC_KEY] == winner


def test_equal_depth_power_levels_end_on_lowest_sha1(room: RoomBuilder) -> None:
    # Sorted by descending sha1 within a depth, all allowed: the climb ends on
    # the lowest sha1.
    base = room.base
    pa = room.power_levels("pa", ALICE, {CHARLIE: 10}, prev=[base])
    pb = room.power_levels("pb", ALICE, {CHARLIE: 20}, prev=[base])
    winner = min((pa, pb), key=_sha1)
    assert room.resolve(pa, pb)[PL_KEY] == winner
    assert room.resolve(pb, pa)[PL_KEY] == winner
