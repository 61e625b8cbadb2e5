"""State resolution v2 (room versions 2-11) and v2.1 (room version 12).

Design note
-----------
This follows ``rooms/fragments/v2-state-res.md`` step by step; v2.1
(``rooms/v12.md``, MSC4297) is the same code with two switches:

* the full conflicted set also takes in the *conflicted state subgraph* (the
  events on auth paths between two conflicted events), and
* the first iterative auth checks start from an *empty* state map instead of
  the unconflicted state map, so replayed events are authorised against their
  own auth chains rather than against state that ``prev_events`` happened to
  agree on.

The partially resolved state is an overlay (``resolved``) on a base map: the
unconflicted state for v2, nothing for v2.1. Lookups read the overlay first.
Step 5 (put the unconflicted state back) is then just ``{**resolved,
**unconflicted}`` for both variants, and the 10,000-member unconflicted map of
a big room is never copied before the last line.

Choices where the text leaves room (each kept narrow and deterministic):

* Reverse topological power ordering sorts the set X with the auth DAG
  *restricted to X* using reachability, so an auth path that leaves X and comes
  back still orders its ends. Each event's dependencies inside X are found once
  with a memoised walk (`_dependencies_in`).
* A power-levels chain or auth DAG with a cycle (only constructible in v1/v2
  rooms, whose event IDs are not hashes) cannot be ordered; events stuck in a
  cycle are left out of the ordering rather than looping forever.
* Sender power for the ordering comes from the event's own auth events; in
  room version 12 the create event is not among them and is found from the
  room ID (``!x`` -> ``$x``), as the auth rules themselves do.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable, Mapping, Sequence

from hearth.core.auth import AuthError, auth_types_for_event, check_auth_rules_in_state
from hearth.core.events import Event, StateKey
from hearth.core.power_levels import user_power_level
from hearth.core.room_versions import RoomVersion
from hearth.core.state_res.graph import (
    CREATE,
    CREATE_KEY,
    POWER_LEVELS_KEY,
    EventGraph,
    auth_difference,
    conflicted_subgraph,
    is_power_event,
    split_state_sets,
)

_NOTHING: frozenset[str] = frozenset()


def resolve_v2(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    event_map: Mapping[str, Event],
    *,
    v2_1: bool = False,
    rejected_event_ids: Collection[str] = (),
) -> dict[StateKey, str]:
    """Resolve ``state_sets`` with state resolution v2, or v2.1 if ``v2_1``."""
    unconflicted, conflicted = split_state_sets(state_sets)
    if not conflicted:
        return dict(unconflicted)
    graph = EventGraph(event_map)
    resolver = _Resolver(room_version, graph, rejected_event_ids)

    conflicted_ids: set[str] = set().union(*conflicted.values())
    full = conflicted_ids | auth_difference(graph, state_sets, unconflicted, conflicted)
    if v2_1:
        full |= conflicted_subgraph(graph, conflicted_ids)

    # Step 1: the power events of the full conflicted set with their auth
    # chains inside it, in reverse topological power order.
    power = [eid for eid in full if is_power_event(graph.get(eid))]
    deps = _dependencies_in(graph, full, power)
    ordered_power = resolver.reverse_topological_power_order(deps)

    # Step 2: iterative auth checks from the unconflicted state (v2) or from
    # nothing (v2.1).
    base: Mapping[StateKey, str] = {} if v2_1 else unconflicted
    resolved: dict[StateKey, str] = {}
    resolver.iterative_auth_checks(ordered_power, base, resolved)

    # Step 3: everything else, in mainline order of the resolved power levels.
    others = [eid for eid in full if eid not in deps]
    pl_id = resolved.get(POWER_LEVELS_KEY) or base.get(POWER_LEVELS_KEY)
    ordered_others = resolver.mainline_order(others, pl_id)

    # Step 4: iterative auth checks on top of the partially resolved state.
    resolver.iterative_auth_checks(ordered_others, base, resolved)

    # Step 5: the unconflicted state wins wherever it has a say.
    resolved.update(unconflicted)
    return resolved


def _dependencies_in(
    graph: EventGraph, full: Collection[str], roots: Iterable[str]
) -> dict[str, set[str]]:
    """X = ``roots`` plus their auth chains inside ``full``, each mapped to the
    events of X it must follow.

    An event's dependencies are the members of ``full`` reachable from it over
    auth links whose inner steps all avoid ``full``. Because X is closed
    downwards inside ``full``, those are exactly its nearest ancestors in X. The
    part of a walk below events outside ``full`` is memoised (``below``), so a
    shared stretch of old history is walked once, not once per event.
    """
    auth_ids = graph.auth_ids
    below: dict[str, frozenset[str]] = {}
    in_progress: set[str] = set()

    def frontier(start: str) -> frozenset[str]:
        """Members of ``full`` first met walking down from ``start`` (not in ``full``)."""
        if start in below:
            return below[start]
        stack: list[tuple[str, bool]] = [(start, False)]
        while stack:
            node, expanded = stack.pop()
            if node in below:
                continue
            if not expanded:
                in_progress.add(node)
                stack.append((node, True))
                for aid in auth_ids(node):
                    if aid not in full and aid not in below and aid not in in_progress:
                        stack.append((aid, False))
                continue
            found: set[str] = set()
            for aid in auth_ids(node):
                if aid in full:
                    found.add(aid)
                else:
                    found.update(below.get(aid, _NOTHING))
            below[node] = frozenset(found) if found else _NOTHING
            in_progress.discard(node)
        return below[start]

    deps: dict[str, set[str]] = {}
    stack = list(roots)
    while stack:
        eid = stack.pop()
        if eid in deps:
            continue
        mine: set[str] = set()
        for aid in auth_ids(eid):
            if aid in full:
                mine.add(aid)
            else:
                mine.update(frontier(aid))
        mine.discard(eid)
        deps[eid] = mine
        stack.extend(d for d in mine if d not in deps)
    return deps


class _Resolver:
    """The orderings and auth replays of one resolution, sharing one `EventGraph`."""

    __slots__ = ("_graph", "_rejected", "_rv")

    def __init__(self, room_version: RoomVersion, graph: EventGraph, rejected: Collection[str]) -> None:
        self._rv = room_version
        self._graph = graph
        self._rejected = rejected

    def _create_event_for(self, event: Event) -> Event | None:
        """The room's create event as seen from ``event``'s auth events (or room ID in v12).

        In v12 an event whose room ID names no create event we hold gets None,
        and so fails auth rule 2 like any event of the wrong room; the real
        create event is in every state set, so the walks have already insisted
        it is in the event map.
        """
        graph = self._graph
        if self._rv.room_id_from_create_event:
            room_id = event.room_id
            if event.type == CREATE or not room_id.startswith("!"):
                return None
            create = graph.find("$" + room_id[1:])
            return create if create is not None and create.type == CREATE else None
        create_id = graph.auth_event_of_type(event.event_id, CREATE_KEY)
        return graph.get(create_id) if create_id is not None else None

    def sender_power(self, event_id: str) -> int | float:
        """The sender's power level according to the event's own auth events."""
        graph = self._graph
        event = graph.get(event_id)
        pl_id = graph.power_levels_of(event_id)
        pl = graph.get(pl_id) if pl_id is not None else None
        return user_power_level(event.sender, self._create_event_for(event), pl)

    def reverse_topological_power_order(self, deps: Mapping[str, Collection[str]]) -> list[str]:
        """Kahn's algorithm over ``deps``, always taking the smallest ready event.

        Smallest means: greater sender power level first, then earlier
        ``origin_server_ts``, then smaller event ID.
        """
        graph = self._graph
        waiting: dict[str, int] = {}
        followers: dict[str, list[str]] = {}
        for eid, mine in deps.items():
            waiting[eid] = len(mine)
            for dep in mine:
                followers.setdefault(dep, []).append(eid)

        def key(eid: str) -> tuple[int | float, int, str]:
            return (-self.sender_power(eid), graph.get(eid).origin_server_ts, eid)

        ready = [(key(eid), eid) for eid, n in waiting.items() if n == 0]
        heapq.heapify(ready)
        ordered: list[str] = []
        while ready:
            _, eid = heapq.heappop(ready)
            ordered.append(eid)
            for follower in followers.get(eid, ()):
                waiting[follower] -= 1
                if waiting[follower] == 0:
                    heapq.heappush(ready, (key(follower), follower))
        return ordered

    def mainline_order(self, event_ids: Iterable[str], power_levels_id: str | None) -> list[str]:
        """Mainline ordering based on ``power_levels_id``.

        Sorted by mainline position *descending* (an event based on an older
        power levels event comes first; one with no power levels in its chain,
        position infinity, comes very first), then ``origin_server_ts``, then event ID.
        """
        graph = self._graph
        mainline: dict[str, int] = {}
        pl = power_levels_id
        while pl is not None and pl not in mainline:
            mainline[pl] = len(mainline)
            pl = graph.power_levels_of(pl)

        # position(e) looks at e's power-levels chain e1, e2, ... (e itself
        # excluded) for the first member of the mainline; every event met on
        # the way has that same answer, so remember it for them too.
        known: dict[str, int | float] = {}

        def position(eid: str) -> int | float:
            path: list[str] = []
            seen: set[str] = {eid}
            found: int | float = math.inf
            cur = graph.power_levels_of(eid)
            while cur is not None and cur not in seen:
                if cur in mainline:
                    found = mainline[cur]
                    break
                if cur in known:
                    found = known[cur]
                    break
                seen.add(cur)
                path.append(cur)
                cur = graph.power_levels_of(cur)
            for p in path:
                known[p] = found
            return found

        keyed = [(-position(eid), graph.get(eid).origin_server_ts, eid) for eid in event_ids]
        keyed.sort()
        return [eid for _, _, eid in keyed]

    def iterative_auth_checks(
        self,
        event_ids: Iterable[str],
        base: Mapping[StateKey, str],
        resolved: dict[StateKey, str],
    ) -> None:
        """Apply each event to ``resolved`` (an overlay on ``base``) if it passes auth.

        The auth events of an event are the partially resolved state's entries
        for the types its auth rules need, falling back to the event's own
        ``auth_events`` for types the state lacks; rejected events never serve
        as auth events.
        """
        graph = self._graph
        rejected = self._rejected
        v12 = self._rv.room_id_from_create_event
        for eid in event_ids:
            event = graph.get(eid)
            auth: dict[StateKey, Event] = {}
            for aid in graph.auth_ids(eid):
                if aid not in rejected:
                    aev = graph.get(aid, eid)
                    auth[aev.state_tuple] = aev
            try:
                for key in auth_types_for_event(event):
                    sid = resolved.get(key) or base.get(key)
                    if sid is not None and sid not in rejected:
                        auth[key] = graph.get(sid, eid)
                if v12 and CREATE_KEY not in auth:
                    create = self._create_event_for(event)
                    if create is not None:
                        auth[CREATE_KEY] = create
                check_auth_rules_in_state(event, auth)
            except AuthError:
                continue
            resolved[event.state_tuple] = eid
