"""State resolution: merge the room states of several DAG branches into one.

Design note
-----------
`resolve_state` is the only entry point. It is pure and synchronous: the room
server loads every event the algorithm may touch - the events of the state
sets and their whole auth chains - into ``event_map`` and passes them in; if
one is missing we raise `MissingEventError` (a ``KeyError``) naming it rather
than fetching. That keeps the algorithms testable with in-memory rooms and
lets the caller decide how to batch database reads.

The room version picks the algorithm (`RoomVersion.state_res`):

* ``V1`` (room version 1): `hearth.core.state_res.v1`;
* ``V2`` (room versions 2-11) and ``V2_1`` (room version 12):
  `hearth.core.state_res.v2`, where v2.1 is a variant of v2 (conflicted state
  subgraph, iterative auth checks from an empty state).

Authorisation is never re-implemented here: every check goes through
`hearth.core.auth.check_auth_rules` with the auth events the algorithm
selects, and power levels through `hearth.core.power_levels`.

Rejected events: the spec excludes events that were rejected from serving as
*auth events* during the iterative auth checks; ``Event`` does not carry a
rejection flag, so the caller passes their IDs in ``rejected_event_ids``
(optional; state sets normally hold no rejected events).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from hearth.core.events import Event, StateKey
from hearth.core.room_versions import RoomVersion, StateResAlgorithm
from hearth.core.state_res.graph import MissingEventError
from hearth.core.state_res.v1 import resolve_v1
from hearth.core.state_res.v2 import resolve_v2

__all__ = ["MissingEventError", "resolve_state"]


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    event_map: Mapping[str, Event],
    *,
    rejected_event_ids: Collection[str] = frozenset(),
) -> dict[StateKey, str]:
    """The resolved state of ``state_sets`` ((type, state_key) -> event ID).

    ``event_map`` must hold every event of the state sets and of their auth
    chains, else `MissingEventError`. The result does not depend on the order
    of ``state_sets``; resolving a single state set returns a copy of it.
    """
    if not state_sets:
        return {}
    if len(state_sets) == 1:
        return dict(state_sets[0])
    algorithm = room_version.state_res
    if algorithm is StateResAlgorithm.V1:
        return resolve_v1(state_sets, event_map)
    return resolve_v2(
        room_version,
        state_sets,
        event_map,
        v2_1=algorithm is StateResAlgorithm.V2_1,
        rejected_event_ids=rejected_event_ids,
    )
