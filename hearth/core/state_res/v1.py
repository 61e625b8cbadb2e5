"""State resolution v1 (room version 1 only).

Design note
-----------
This is the original algorithm of ``rooms/v1.md``, kept for old rooms; it is
known to reset state and is not used by any newer room version. In outline:
take every key the state sets agree on (a key missing from some sets is *not*
a conflict here, unlike v2), then settle conflicts in passes - power levels,
join rules, memberships, then everything else - each pass checking candidates
against the state *R* built so far.

Where the prose is loose, we pick the reading the deployed servers use, so
that rooms converge:

* Sort orders: "ascending depth, then descending sha1(event_id)" for the
  auth-event passes and "highest depth, lowest sha1(event_id)" for the rest,
  where sha1 is taken over the UTF-8 event ID and compared as a hex digest.
* Membership conflicts are settled one key at a time, each against the same
  *R* (the state after the join-rules pass), so the result does not depend on
  which user's conflict happens to be looked at first. "Everything else" works
  the same way against *R* after the membership pass.
* If no candidate for an "everything else" key passes auth, the first in sort
  order is taken anyway (the prose does not say; dropping the key would make a
  room lose, say, its name because of an unrelated power change).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from hearth.core.auth import AuthError, auth_types_for_event, check_auth_rules_in_state
from hearth.core.events import Event, StateKey
from hearth.core.state_res.graph import JOIN_RULES_KEY, MEMBER, POWER_LEVELS_KEY, EventGraph


def _sha1(event_id: str) -> int:
    return int.from_bytes(hashlib.sha1(event_id.encode("utf-8")).digest(), "big")


def resolve_v1(
    state_sets: Sequence[Mapping[StateKey, str]],
    event_map: Mapping[str, Event],
) -> dict[StateKey, str]:
    """Resolve ``state_sets`` with the room version 1 algorithm."""
    candidates: dict[StateKey, set[str]] = {}
    for state_set in state_sets:
        for key, eid in state_set.items():
            ids = candidates.get(key)
            if ids is None:
                candidates[key] = {eid}
            else:
                ids.add(eid)
    resolved: dict[StateKey, str] = {}
    conflicted: dict[StateKey, set[str]] = {}
    for key, ids in candidates.items():
        if len(ids) == 1:
            (resolved[key],) = ids
        else:
            conflicted[key] = ids
    if not conflicted:
        return resolved

    graph = EventGraph(event_map)

    def allowed(event: Event, state: Mapping[StateKey, str], over: Mapping[StateKey, str]) -> bool:
        """Whether ``event`` passes auth in ``state`` with ``over`` laid on top."""
        try:
            auth: dict[StateKey, Event] = {}
            for key in auth_types_for_event(event):
                eid = over.get(key) or state.get(key)
                if eid is not None:
                    auth[key] = graph.get(eid, event.event_id)
            check_auth_rules_in_state(event, auth)
        except AuthError:
            return False
        return True

    def auth_pass(key: StateKey, ids: Iterable[str], state: Mapping[StateKey, str]) -> str:
        """Climb the candidates in (depth, -sha1) order while each passes auth."""
        events = sorted((graph.get(eid) for eid in ids), key=lambda e: (e.depth, -_sha1(e.event_id)))
        chosen = events[0]
        for event in events[1:]:
            if not allowed(event, state, {key: chosen.event_id}):
                break
            chosen = event
        return chosen.event_id

    def other_pass(ids: Iterable[str], state: Mapping[StateKey, str]) -> str:
        """The highest, lowest-sha1 candidate that passes auth (else the first)."""
        events = sorted((graph.get(eid) for eid in ids), key=lambda e: (-e.depth, _sha1(e.event_id)))
        for event in events:
            if allowed(event, state, {}):
                return event.event_id
        return events[0].event_id

    for single in (POWER_LEVELS_KEY, JOIN_RULES_KEY):
        if single in conflicted:
            resolved[single] = auth_pass(single, conflicted.pop(single), resolved)

    members = {key: ids for key, ids in conflicted.items() if key[0] == MEMBER}
    resolved.update({key: auth_pass(key, ids, resolved) for key, ids in members.items()})

    others = {key: ids for key, ids in conflicted.items() if key[0] != MEMBER}
    resolved.update({key: other_pass(ids, resolved) for key, ids in others.items()})
    return resolved
