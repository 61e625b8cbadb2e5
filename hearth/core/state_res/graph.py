"""Auth-DAG plumbing shared by the state resolution algorithms.

Design note
-----------
Every algorithm here walks the auth DAG (``auth_events`` links) many times:
auth chains, the auth difference, the v2.1 conflicted subgraph, power-level
chains for the mainline. `EventGraph` is a per-call view over the caller's
``event_map`` that

* turns a missing event into one clear error, `MissingEventError`, instead of
  a bare ``KeyError`` from deep inside a walk (the room server loads events;
  state resolution never fetches);
* caches each event's auth event IDs, since `Event.auth_event_ids` builds a
  fresh list on every call and the walks touch the same events over and over.
  For v3+ event formats the PDU's own ``auth_events`` list (plain IDs) is used
  as is - reading every member event of a 10,000-member room is the single
  biggest cost of a resolution, and the copy doubled it;
* walks iteratively with explicit stacks, so a room with a very long auth
  chain cannot hit Python's recursion limit.

The cache lives for one `resolve_state` call only; nothing here is global.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Final

from hearth.core.events import Event, StateKey
from hearth.core.room_versions import EventFormat

CREATE: Final = "m.room.create"
POWER_LEVELS: Final = "m.room.power_levels"
JOIN_RULES: Final = "m.room.join_rules"
MEMBER: Final = "m.room.member"

CREATE_KEY: Final[StateKey] = (CREATE, "")
POWER_LEVELS_KEY: Final[StateKey] = (POWER_LEVELS, "")
JOIN_RULES_KEY: Final[StateKey] = (JOIN_RULES, "")


class MissingEventError(KeyError):
    """An event that state resolution needs is not in the ``event_map``.

    The caller (the room server) must pass every event of the state sets and of
    their auth chains; this names the first one that was not there.
    """

    def __init__(self, event_id: str, needed_by: str | None = None) -> None:
        super().__init__(event_id)
        self.event_id = event_id
        self.needed_by = needed_by

    def __str__(self) -> str:
        if self.needed_by is not None:
            return f"event {self.event_id} (needed by {self.needed_by}) is not in the event map"
        return f"event {self.event_id} is not in the event map"


class EventGraph:
    """The auth DAG over one call's ``event_map``, with per-call caches."""

    __slots__ = ("_auth_ids", "_events", "_pl_of")

    def __init__(self, event_map: Mapping[str, Event]) -> None:
        self._events = event_map
        self._auth_ids: dict[str, Sequence[str]] = {}
        self._pl_of: dict[str, str | None] = {}

    def get(self, event_id: str, needed_by: str | None = None) -> Event:
        """The event, or `MissingEventError` naming it."""
        try:
            return self._events[event_id]
        except KeyError:
            raise MissingEventError(event_id, needed_by) from None

    def find(self, event_id: str) -> Event | None:
        """The event if the map has it (for lookups that may legitimately miss)."""
        return self._events.get(event_id)

    def auth_ids(self, event_id: str) -> Sequence[str]:
        """The event's ``auth_events`` IDs (cached; never mutate the result)."""
        ids = self._auth_ids.get(event_id)
        if ids is None:
            ids = self._auth_ids[event_id] = _auth_refs(self.get(event_id))
        return ids

    def auth_event_of_type(self, event_id: str, key: StateKey) -> str | None:
        """The first auth event of ``event_id`` whose (type, state_key) is ``key``."""
        for aid in self.auth_ids(event_id):
            if self.get(aid, event_id).state_tuple == key:
                return aid
        return None

    def power_levels_of(self, event_id: str) -> str | None:
        """The ``m.room.power_levels`` event among the event's auth events (cached)."""
        if event_id in self._pl_of:
            return self._pl_of[event_id]
        pl = self.auth_event_of_type(event_id, POWER_LEVELS_KEY)
        self._pl_of[event_id] = pl
        return pl

    def closure(self, start: Iterable[str], stop: Collection[str] = ()) -> set[str]:
        """``start`` plus everything reachable from it over auth links.

        Events in ``stop`` are neither entered nor returned (callers pass a set
        that is already closed downwards, so nothing below it is lost).
        """
        seen = {eid for eid in start if eid not in stop} if stop else set(start)
        stack = list(seen)
        # The hot loop of a big resolution: locals and the cache read inline.
        cache = self._auth_ids
        events = self._events
        pop, push, add = stack.pop, stack.append, seen.add
        while stack:
            eid = pop()
            ids = cache.get(eid)
            if ids is None:
                event = events.get(eid)
                if event is None:
                    raise MissingEventError(eid)
                ids = cache[eid] = _auth_refs(event)
            for aid in ids:
                if aid not in seen and aid not in stop:
                    add(aid)
                    push(aid)
        return seen


def _auth_refs(event: Event) -> Sequence[str]:
    """The event's auth event IDs: the PDU's own list for v3+ formats (no copy)."""
    refs = event.pdu.get("auth_events")
    if isinstance(refs, list) and event.room_version.event_format is not EventFormat.V1:
        return refs
    return tuple(event.auth_event_ids)


def is_power_event(event: Event) -> bool:
    """A power event (v2 "Definitions"): one that may take an ability away.

    Power levels and join rules, and a membership change to ``leave`` or
    ``ban`` made by someone other than its target (a kick or a ban).
    """
    if event.state_key is None:
        return False
    etype = event.type
    if etype in (POWER_LEVELS, JOIN_RULES):
        return event.state_key == ""
    if etype == MEMBER:
        return event.membership in ("leave", "ban") and event.sender != event.state_key
    return False


def split_state_sets(
    state_sets: Sequence[Mapping[StateKey, str]],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """The unconflicted state map and the conflicted keys (v2 "Definitions").

    A key is unconflicted only if *every* state set has it with the same event
    ID; a key missing from one set is conflicted even if the others agree.
    """
    first, rest = state_sets[0], state_sets[1:]
    unconflicted: dict[StateKey, str] = {}
    conflicted: dict[StateKey, set[str]] = {}
    for key, eid in first.items():
        for other in rest:
            if other.get(key) != eid:
                conflicted[key] = {s[key] for s in state_sets if key in s}
                break
        else:
            unconflicted[key] = eid
    for other in rest:
        for key in other.keys() - first.keys():
            if key not in conflicted:
                conflicted[key] = {s[key] for s in state_sets if key in s}
    return unconflicted, conflicted


def auth_difference(
    graph: EventGraph,
    state_sets: Sequence[Mapping[StateKey, str]],
    unconflicted: Mapping[StateKey, str],
    conflicted_keys: Iterable[StateKey],
) -> set[str]:
    """The auth difference: union(C_i) minus intersection(C_i).

    C_i is the full auth chain of state set i. As in Synapse, C_i counts the
    state events of set i themselves as well as their auth chains. This only changes whether an
    *unconflicted* event can land in the difference, and keeping it out there
    is what lets servers agree.

    Cheap by construction: everything reachable from the unconflicted events
    is in every C_i, so it is walked once (``common``) and each set's walk from
    its own conflicted events stops as soon as it reaches common ground.
    """
    common = graph.closure(unconflicted.values())
    keys = list(conflicted_keys)
    chains: list[set[str]] = []
    for state_set in state_sets:
        own = [state_set[key] for key in keys if key in state_set]
        chains.append(graph.closure(own, stop=common))
    union: set[str] = set().union(*chains)
    return union - chains[0].intersection(*chains[1:])


def conflicted_subgraph(graph: EventGraph, conflicted: Collection[str]) -> set[str]:
    """Room version 12's conflicted state subgraph, endpoints included.

    An event lies on an auth path between two conflicted events exactly when
    it is reachable from a conflicted event (downwards, over auth links) and a
    conflicted event is reachable from it. So: walk down from the conflicted
    events remembering every edge, then walk the remembered edges back up from
    the conflicted events. Anything the upward walk meets was met by the
    downward walk, so it is on such a path.
    """
    cited_by: dict[str, list[str]] = {}
    seen = set(conflicted)
    stack = list(seen)
    auth_ids = graph.auth_ids
    while stack:
        eid = stack.pop()
        for aid in auth_ids(eid):
            children = cited_by.get(aid)
            if children is None:
                cited_by[aid] = [eid]
            else:
                children.append(eid)
            if aid not in seen:
                seen.add(aid)
                stack.append(aid)
    subgraph = set(conflicted)
    stack = list(subgraph)
    while stack:
        eid = stack.pop()
        for parent in cited_by.get(eid, ()):
            if parent not in subgraph:
                subgraph.add(parent)
                stack.append(parent)
    return subgraph
