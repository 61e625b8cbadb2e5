"""The auth-DAG helpers: state set split, auth difference, power events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.core.events import Event
from hearth.core.room_versions import V10, V12
from hearth.core.state_res import MissingEventError, resolve_state
from hearth.core.state_res.graph import (
    EventGraph,
    auth_difference,
    conflicted_subgraph,
    is_power_event,
    split_state_sets,
)
from hearth.core.state_res.v2 import _dependencies_in, _Resolver
from tests.core.state_res_helpers import ALICE, BOB, CHARLIE, PL_KEY, RoomBuilder, member_key
from tests.core.test_state_res_properties import actions, build


def test_split_key_missing_from_one_set_is_conflicted() -> None:
    a = {("t", ""): "$1", ("u", ""): "$2", ("only_a", ""): "$3"}
    b = {("t", ""): "$1", ("u", ""): "$9"}
    unconflicted, conflicted = split_state_sets([a, b])
    assert unconflicted == {("t", ""): "$1"}
    assert conflicted == {("u", ""): {"$2", "$9"}, ("only_a", ""): {"$3"}}
    assert split_state_sets([b, a]) == (unconflicted, conflicted)


def test_auth_difference_of_ban_vs_power_change() -> None:
    room = RoomBuilder(V10)
    pa = room.power_levels("pa", ALICE, {BOB: 50})
    mb = room.member("mb", BOB, "ban", sender=ALICE)
    pb = room.power_levels("pb", BOB, {BOB: 50}, prev=[pa])
    sets = [room.state_after[mb], room.state_after[pb]]
    unconflicted, conflicted = split_state_sets(sets)
    # pa is in both chains (pb cites it); bob's join is cited by the ban.
    assert auth_difference(EventGraph(room.events), sets, unconflicted, conflicted) == {mb, pb}


def test_auth_difference_reaches_below_the_state_sets() -> None:
    # Two PL changes on one branch: the first is only in that branch's chain.
    room = RoomBuilder(V10)
    base = room.base
    p1 = room.power_levels("p1", ALICE, {CHARLIE: 1})
    p2 = room.power_levels("p2", ALICE, {CHARLIE: 2})
    t = room.topic("t", ALICE, prev=[base])
    sets = [room.state_after[p2], room.state_after[t]]
    unconflicted, conflicted = split_state_sets(sets)
    diff = auth_difference(EventGraph(room.events), sets, unconflicted, conflicted)
    assert diff == {p1, p2, t}


def test_conflicted_subgraph_leaves_out_side_branches() -> None:
    room = RoomBuilder(V12)
    base = room.base
    p1 = room.power_levels("p1", ALICE, {CHARLIE: 1})
    p2 = room.power_levels("p2", ALICE, {CHARLIE: 2})
    t = room.topic("t", ALICE, prev=[base])
    sub = conflicted_subgraph(EventGraph(room.events), {p2, t, room.state_after[base][PL_KEY]})
    assert p1 in sub
    assert room.event_id("imb") not in sub  # nothing conflicted cites bob's join


def test_power_events() -> None:
    room = RoomBuilder(V10)
    kick = room.member("kick", CHARLIE, "leave", sender=ALICE)
    leave = room.member("leave", BOB, "leave")
    ban = room.member("ban", BOB, "ban", sender=ALICE)
    topic = room.topic("topic", ALICE)
    events = room.events
    assert is_power_event(events[kick])
    assert not is_power_event(events[leave])
    assert is_power_event(events[ban])
    assert not is_power_event(events[topic])
    assert is_power_event(events[room.event_id("ipower")])
    assert is_power_event(events[room.event_id("ijr")])
    message = Event({"type": "m.room.power_levels", "sender": ALICE, "content": {}}, "$m", V10)
    assert not is_power_event(message)


def test_missing_state_set_event() -> None:
    room = RoomBuilder(V10)
    a = dict(room.state_after[room.head])
    b = {**a, member_key(BOB): "$nowhere"}
    with pytest.raises(MissingEventError, match=r"\$nowhere"):
        resolve_state(V10, [a, b], room.events)


def test_empty_and_single_inputs() -> None:
    room = RoomBuilder(V10)
    state = room.state_after[room.head]
    assert resolve_state(V10, [], room.events) == {}
    assert resolve_state(V10, [state], {}) == state


# --- the fast walks against brute force on random histories ---------------------


def _closure(events: dict[str, Event], start: set[str]) -> set[str]:
    """Everything reachable from ``start`` over auth links, ``start`` included."""
    seen = set(start)
    todo = list(start)
    while todo:
        for aid in events[todo.pop()].auth_event_ids:
            if aid not in seen:
                seen.add(aid)
                todo.append(aid)
    return seen


@settings(max_examples=40, deadline=None)
@given(steps=actions, v12=st.booleans())
def test_walks_match_their_definitions(steps: list, v12: bool) -> None:
    room, heads = build(V12 if v12 else V10, steps)
    if len(heads) < 2:
        return
    events = room.events
    sets = [room.state_after[h] for h in heads]
    graph = EventGraph(events)
    unconflicted, conflicted = split_state_sets(sets)
    conf: set[str] = set().union(*conflicted.values())

    chains = [_closure(events, set(s.values())) for s in sets]
    naive_diff = set().union(*chains) - chains[0].intersection(*chains[1:])
    assert auth_difference(graph, sets, unconflicted, conflicted) == naive_diff

    # On a path between conflicted events: below one and above (or equal to) another.
    below_conflicted: set[str] = set().union(*(_closure(events, {c}) - {c} for c in conf))
    naive_sub = conf | {x for x in below_conflicted if conf & _closure(events, {x})}
    assert conflicted_subgraph(graph, conf) == naive_sub

    full = conf | naive_diff | (naive_sub if v12 else set())
    power = {e for e in full if is_power_event(events[e])}
    deps = _dependencies_in(graph, full, power)
    naive_x = power | {x for p in power for x in _closure(events, {p}) & full}
    assert set(deps) == naive_x
    order = {e: i for i, e in enumerate(_Resolver(room.rv, graph, ()).reverse_topological_power_order(deps))}
    assert set(order) == naive_x
    for x in naive_x:
        for y in (_closure(events, {x}) - {x}) & naive_x:
            assert order[y] < order[x]
