"""State resolution v2 (room versions 2-11) and v2.1 (12) on classic fork shapes.

Each test builds a small room (see state_res_helpers: alice admin; bob,
charlie, zara joined; public), forks it, and resolves the branch heads. The
expected answers follow from the spec text; the comments say which step
decides.
"""

from __future__ import annotations

import pytest

from hearth.core.events import StateKey
from hearth.core.room_versions import KNOWN_ROOM_VERSIONS, V10, V12, RoomVersion, StateResAlgorithm
from hearth.core.state_res import MissingEventError, resolve_state
from tests.core.state_res_helpers import (
    ALICE,
    BOB,
    CHARLIE,
    EVELYN,
    JR_KEY,
    PL_KEY,
    TOPIC_KEY,
    ZARA,
    RoomBuilder,
    member_key,
)

V2_FAMILY = [
    pytest.param(rv, id=f"v{rv.identifier}")
    for rv in KNOWN_ROOM_VERSIONS.values()
    if rv.state_res is not StateResAlgorithm.V1
]


@pytest.fixture(params=V2_FAMILY)
def room(request: pytest.FixtureRequest) -> RoomBuilder:
    rv: RoomVersion = request.param
    return RoomBuilder(rv)


def _both_orders(room: RoomBuilder, a: str, b: str) -> dict[StateKey, str]:
    first = room.resolve(a, b)
    assert room.resolve(b, a) == first
    return first


def test_ban_beats_concurrent_power_change(room: RoomBuilder) -> None:
    # alice makes bob a moderator; then alice bans bob while bob, on his
    # branch, edits the power levels. The ban and both PL events are power
    # events; alice's ban sorts before bob's edit (higher sender power) and
    # leaves bob unable to send anything.
    pa = room.power_levels("pa", ALICE, {BOB: 50})
    mb = room.member("mb", BOB, "ban", sender=ALICE)
    pb = room.power_levels("pb", BOB, {BOB: 50, CHARLIE: 50}, prev=[pa])
    state = _both_orders(room, mb, pb)
    assert state[PL_KEY] == pa
    assert state[member_key(BOB)] == mb


def test_topic_reset_after_ban(room: RoomBuilder) -> None:
    # One branch: topic T1, bob promoted, bob sets T2, alice bans bob.
    # The other stays at T1. The ban is replayed first (power event); in
    # mainline order T1 (based on the older PL) comes before T2, and T2 then
    # fails because bob is banned - the topic goes back to T1.
    t1 = room.topic("t1", ALICE)
    pa = room.power_levels("pa", ALICE, {BOB: 50})
    room.topic("t2", BOB)
    mb = room.member("mb", BOB, "ban", sender=ALICE)
    state = _both_orders(room, mb, t1)
    assert state[TOPIC_KEY] == t1
    assert state[PL_KEY] == pa
    assert state[member_key(BOB)] == mb


def test_join_rules_change_blocks_concurrent_join(room: RoomBuilder) -> None:
    # alice closes the room while evelyn joins on another branch. Join rules
    # are a power event and go first; evelyn's join, replayed after, fails.
    base = room.base
    jr = room.join_rules("jr", ALICE, "invite")
    me = room.member("me", EVELYN, "join", prev=[base])
    state = _both_orders(room, jr, me)
    assert state[JR_KEY] == jr
    assert member_key(EVELYN) not in state


def test_demotion_beats_concurrent_power_change(room: RoomBuilder) -> None:
    # bob (50) promotes charlie while alice (100) demotes bob: alice's PL
    # event sorts first, so bob's no longer passes.
    pa = room.power_levels("pa", ALICE, {BOB: 50})
    pc = room.power_levels("pc", ALICE, {BOB: 0}, prev=[pa])
    pb = room.power_levels("pb", BOB, {BOB: 50, CHARLIE: 50}, prev=[pa])
    assert _both_orders(room, pc, pb)[PL_KEY] == pc


def test_offtopic_power_levels_chain(room: RoomBuilder) -> None:
    # One branch has PA -> PB (bob) -> PC (alice); the other only PA. The
    # whole chain is in the auth difference and replays in auth order.
    pa = room.power_levels("pa", ALICE, {BOB: 50})
    room.power_levels("pb", BOB, {BOB: 50, CHARLIE: 50})
    pc = room.power_levels("pc", ALICE, {BOB: 50, CHARLIE: 0})
    assert _both_orders(room, pc, pa)[PL_KEY] == pc


def test_concurrent_ban_and_member_update(room: RoomBuilder) -> None:
    # alice bans zara while zara changes her display name. The ban (a power
    # event) is replayed first; zara's join then fails.
    base = room.base
    ban = room.member("ban", ZARA, "ban", sender=ALICE)
    rename = room.member("rename", ZARA, "join", prev=[base], content={"displayname": "Z"})
    assert _both_orders(room, ban, rename)[member_key(ZARA)] == ban


def test_concurrent_joins_both_survive(room: RoomBuilder) -> None:
    # Two new users join on different branches: each key is conflicted
    # (missing on one side), both joins pass in the replay.
    base = room.base
    me = room.member("me", EVELYN, "join")
    frank = "@frank:f.test"
    mf = room.member("mf", frank, "join", prev=[base])
    state = _both_orders(room, me, mf)
    assert state[member_key(EVELYN)] == me
    assert state[member_key(frank)] == mf


def test_kick_and_self_leave_concurrently(room: RoomBuilder) -> None:
    # alice kicks charlie, charlie leaves on his own. Only the kick is a power
    # event; it goes first, then charlie's own leave fails (he is no longer
    # joined), so the kick stands.
    base = room.base
    kick = room.member("kick", CHARLIE, "leave", sender=ALICE)
    leave = room.member("leave", CHARLIE, "leave", prev=[base])
    assert _both_orders(room, kick, leave)[member_key(CHARLIE)] == kick


# --- orderings ----------------------------------------------------------------


def test_mainline_same_position_later_timestamp_wins(room: RoomBuilder) -> None:
    base = room.base
    early = room.topic("early", ALICE, ts=50_000, prev=[base])
    late = room.topic("late", ALICE, ts=60_000, prev=[base])
    assert _both_orders(room, late, early)[TOPIC_KEY] == late


def test_mainline_timestamp_tie_broken_by_event_id(room: RoomBuilder) -> None:
    # Same mainline position, same origin_server_ts: the smaller event ID is
    # replayed first, so the larger one is applied last and wins.
    base = room.base
    tb = room.topic("tb", ALICE, ts=50_000, prev=[base])
    ta = room.topic("ta", ALICE, ts=50_000, prev=[base])
    assert room.event_id("ta") < room.event_id("tb")
    assert _both_orders(room, ta, tb)[TOPIC_KEY] == tb


def test_mainline_position_beats_timestamp(room: RoomBuilder) -> None:
    # A topic based on the newer power levels comes later in mainline order
    # than one based on the older power levels, whatever their timestamps.
    base = room.base
    room.power_levels("pa", ALICE, {CHARLIE: 10}, prev=[base])
    newer = room.topic("newer", ALICE, ts=2)
    older = room.topic("older", ALICE, ts=90_000, prev=[base])
    assert _both_orders(room, newer, older)[TOPIC_KEY] == newer


def test_power_order_timestamp_tie_break(room: RoomBuilder) -> None:
    # Two independent PL events by alice: same sender power, so the earlier
    # origin_server_ts replays first and the later one wins.
    base = room.base
    p1 = room.power_levels("p1", ALICE, {CHARLIE: 10}, ts=70_000, prev=[base])
    p2 = room.power_levels("p2", ALICE, {CHARLIE: 20}, ts=60_000, prev=[base])
    assert _both_orders(room, p1, p2)[PL_KEY] == p1


def test_power_order_event_id_tie_break(room: RoomBuilder) -> None:
    base = room.base
    px = room.power_levels("px", ALICE, {CHARLIE: 10}, ts=70_000, prev=[base])
    py = room.power_levels("py", ALICE, {CHARLIE: 20}, ts=70_000, prev=[base])
    assert _both_orders(room, px, py)[PL_KEY] == py


def test_power_order_sender_power_before_timestamp(room: RoomBuilder) -> None:
    # bob (50) and alice (100) change the join rules concurrently; alice's
    # event is later in time but replays first because she has more power,
    # so bob's, replayed last and still allowed, wins.
    pa = room.power_levels("pa", ALICE, {BOB: 50})
    by_alice = room.join_rules("by_alice", ALICE, "invite", ts=90_000, prev=[pa])
    by_bob = room.join_rules("by_bob", BOB, "public", ts=80_000, prev=[pa])
    assert _both_orders(room, by_alice, by_bob)[JR_KEY] == by_bob


# --- the unconflicted state -----------------------------------------------------


def test_unconflicted_state_is_put_back(room: RoomBuilder) -> None:
    # Both state sets say charlie's membership is his original join, but one
    # set's conflicted topic was sent after charlie renamed himself, so the
    # rename is in the auth difference, replayed, and passes. Step 5 then
    # restores the unconflicted entry.
    room.power_levels("pa", ALICE, {CHARLIE: 50})
    before = dict(room.state_after[room.head])
    rename = room.member("rename", CHARLIE, "join", content={"displayname": "C"})
    topic = room.topic("topic", CHARLIE)
    after = dict(room.state_after[topic])
    after[member_key(CHARLIE)] = before[member_key(CHARLIE)]
    state = room.resolve_sets([after, before])
    assert state[member_key(CHARLIE)] == before[member_key(CHARLIE)] != rename
    assert state[TOPIC_KEY] == topic


def test_no_conflict_returns_the_shared_state(room: RoomBuilder) -> None:
    state = room.state_after[room.head]
    assert room.resolve_sets([state, dict(state), dict(state)]) == state


def test_missing_event_is_named(room: RoomBuilder) -> None:
    base = room.base
    pa = room.power_levels("pa", ALICE, {BOB: 50})
    t = room.topic("t", ALICE, prev=[base])
    events = dict(room.events)
    del events[pa]
    with pytest.raises(MissingEventError) as info:
        resolve_state(room.rv, [room.state_after[pa], room.state_after[t]], events)
    assert info.value.event_id == pa
    assert isinstance(info.value, KeyError)
    assert pa in str(info.value)


@pytest.mark.parametrize("rv", [V10, V12], ids=["v10", "v12"])
def test_deep_auth_chain_has_no_recursion_limit(rv: RoomVersion) -> None:
    # 1500 power level events, each citing the last (deeper than Python's
    # recursion limit): auth chains and the mainline are walked iteratively.
    room = RoomBuilder(rv)
    base = room.base
    last = base
    for i in range(1500):
        last = room.power_levels(f"p{i}", ALICE, {CHARLIE: i % 50})
    topic = room.topic("deep", ALICE)
    other = room.topic("shallow", ALICE, prev=[base])
    state = _both_orders(room, topic, other)
    assert state[PL_KEY] == last
    assert state[TOPIC_KEY] == topic
