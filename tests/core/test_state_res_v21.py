"""State resolution v2.1 (room version 12) against v2 (room version 11).

The two MSC4297 scenarios, built as the spec describes them: one state set
is "outdated" (as a server can get from a partial /state response) while the
auth chains all agree. v2 resets state; v2.1 does not.
"""

from __future__ import annotations

from hearth.core.events import Event
from hearth.core.room_versions import V11, V12
from hearth.core.state_res import resolve_state
from hearth.core.state_res.graph import EventGraph, auth_difference, conflicted_subgraph, split_state_sets
from tests.core.state_res_helpers import ALICE, BOB, CHARLIE, EVELYN, JR_KEY, PL_KEY, TOPIC_KEY, RoomBuilder


def _problem_a(room: RoomBuilder) -> tuple[str, str, dict, dict]:
    """alice changes the join rules twice, then leaves; one set still has jr1."""
    jr1 = room.join_rules("jr1", ALICE, "invite")
    jr2 = room.join_rules("jr2", ALICE, "public")
    leave = room.member("aleave", ALICE, "leave")
    correct = dict(room.state_after[leave])
    outdated = {**correct, JR_KEY: jr1}
    return jr1, jr2, correct, outdated


def test_problem_a_v2_loses_the_join_rules() -> None:
    # v2 replays both join rules events on top of the unconflicted state, in
    # which alice has already left: both fail and the room has no join rules.
    room = RoomBuilder(V11)
    _, _, correct, outdated = _problem_a(room)
    assert JR_KEY not in room.resolve_sets([correct, outdated])


def test_problem_a_v21_starts_from_empty_state() -> None:
    # v2.1 replays them from an empty state map, so alice's membership comes
    # from each event's own auth events, where she is still joined.
    room = RoomBuilder(V12)
    _, jr2, correct, outdated = _problem_a(room)
    state = room.resolve_sets([correct, outdated])
    assert state[JR_KEY] == jr2
    # Step 5 still puts the unconflicted state back: alice has left.
    assert state[("m.room.member", ALICE)] == correct[("m.room.member", ALICE)]
    assert room.resolve_sets([outdated, correct]) == state


def _problem_b(room: RoomBuilder) -> tuple[str, str, str, dict, dict]:
    """alice promotes bob (pl1), evelyn joins, bob promotes charlie (pl2);
    one set still has the room's first power levels."""
    ipower = room.state_after[room.head][PL_KEY]
    pl1 = room.power_levels("pl1", ALICE, {BOB: 100})
    room.member("me", EVELYN, "join")  # cites pl1, so pl1 is in every auth chain
    pl2 = room.power_levels("pl2", BOB, {BOB: 100, CHARLIE: 50})
    correct = dict(room.state_after[pl2])
    outdated = {**correct, PL_KEY: ipower}
    return ipower, pl1, pl2, correct, outdated


def test_problem_b_v2_misses_the_event_in_between() -> None:
    # pl1 is in both auth chains, so not in the auth difference: v2 replays
    # only ipower and pl2, and bob (0 in ipower) cannot send pl2.
    room = RoomBuilder(V11)
    ipower, pl1, _, correct, outdated = _problem_b(room)
    graph = EventGraph(room.events)
    unconflicted, conflicted = split_state_sets([correct, outdated])
    assert pl1 not in auth_difference(graph, [correct, outdated], unconflicted, conflicted)
    assert room.resolve_sets([correct, outdated])[PL_KEY] == ipower


def test_problem_b_v21_replays_the_conflicted_subgraph() -> None:
    # pl2 -> pl1 -> ipower is an auth path between two conflicted events, so
    # pl1 joins the full conflicted set and bob's promotion is replayed first.
    room = RoomBuilder(V12)
    ipower, pl1, pl2, correct, outdated = _problem_b(room)
    # Also on such paths: bob's join (pl2 -> imb -> ipower) and the join rules
    # it cites (imb -> ijr -> ipower).
    expected = {ipower, pl1, pl2, room.event_id("imb"), room.event_id("ijr")}
    assert conflicted_subgraph(EventGraph(room.events), {ipower, pl2}) == expected
    assert room.resolve_sets([correct, outdated])[PL_KEY] == pl2
    assert room.resolve_sets([outdated, correct])[PL_KEY] == pl2


def _concurrent_join_rules(room: RoomBuilder) -> tuple[str, str]:
    """bob is promoted to 100, then alice and bob change the join rules at once."""
    head = room.power_levels("pa", ALICE, {BOB: 100})
    by_alice = room.join_rules("by_alice", ALICE, "invite", ts=90_000, prev=[head])
    by_bob = room.join_rules("by_bob", BOB, "public", ts=80_000, prev=[head])
    return by_alice, by_bob


def test_v11_equal_power_falls_back_to_timestamp() -> None:
    # alice and bob both have 100: bob's earlier event replays first, alice's
    # is applied last and wins.
    room = RoomBuilder(V11)
    by_alice, by_bob = _concurrent_join_rules(room)
    assert room.resolve(by_alice, by_bob)[JR_KEY] == by_alice


def test_v12_creator_outranks_everyone_in_power_order() -> None:
    # In v12 alice, the creator, has infinite power: her event sorts first
    # although it is later, and bob's (replayed last, still allowed) wins.
    room = RoomBuilder(V12)
    by_alice, by_bob = _concurrent_join_rules(room)
    assert room.resolve(by_alice, by_bob)[JR_KEY] == by_bob


def test_rejected_auth_events_are_not_used() -> None:
    # Problem A again, but alice's join is known to be rejected: with an empty
    # starting state her membership can only come from the join rules events'
    # own auth events, which may not use a rejected event - both fail.
    room = RoomBuilder(V12)
    _, jr2, correct, outdated = _problem_a(room)
    assert room.resolve_sets([correct, outdated])[JR_KEY] == jr2
    rejected = {room.event_id("ima")}
    state = resolve_state(V12, [correct, outdated], room.events, rejected_event_ids=rejected)
    assert JR_KEY not in state


def test_v12_event_naming_an_unknown_create_event_fails_auth() -> None:
    # A conflicted topic whose room ID names no create event we hold: auth
    # rule 2 rejects it during the replay; the resolution itself goes on.
    room = RoomBuilder(V12)
    base = room.base
    good = room.topic("good", ALICE, ts=1)
    stray = room.topic("stray", ALICE, prev=[base], ts=2)
    room.events[stray] = Event({**room.events[stray].pdu, "room_id": "!elsewhere"}, stray, V12)
    assert room.resolve(good, stray)[TOPIC_KEY] == good
