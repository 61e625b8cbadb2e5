"""Server-side search (search.yaml).

    POST /v3/search            (?next_batch; body {"search_categories": {"room_events": {...}}})

Only the `room_events` category exists; a request without it gets an empty
`search_categories`. The body is validated here; what is searched and who
sees what is in `hearth.rooms.search`.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, parse_body
from hearth.api.keys import HS
from hearth.rooms.search import MAX_CONTEXT, EventContextSpec, RoomEventsCriteria
from hearth.storage.search import SEARCH_KEYS
from hearth.users.filters import RoomEventFilter
from hearth.validation import Model, field

routes = web.RouteTableDef()

SearchKey = Literal["content.body", "content.name", "content.topic"]


class EventContextBody(Model, strict=True, extra="allow"):
    before_limit: int = field(default=5, ge=0)
    after_limit: int = field(default=5, ge=0)
    include_profile: bool = False


class GroupBody(Model, strict=True, extra="allow"):
    key: Literal["room_id", "sender"]


class GroupingsBody(Model, strict=True, extra="allow"):
    group_by: list[GroupBody] = field(default_factory=list)


class RoomEventsBody(Model, strict=True, extra="allow"):
    search_term: str
    keys: list[SearchKey] | None = None
    filter: RoomEventFilter | None = None
    order_by: Literal["recent", "rank"] = "rank"
    event_context: EventContextBody | None = None
    include_state: bool = False
    groupings: GroupingsBody | None = None


class CategoriesBody(Model, strict=True, extra="allow"):
    room_events: RoomEventsBody | None = None


class SearchBody(Model, strict=True, extra="allow"):
    search_categories: CategoriesBody


@routes.post("/v3/search")
@routes.post("/r0/search")
async def search(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    body = await parse_body(request, SearchBody)
    room_events = body.search_categories.room_events
    if room_events is None:
        return json_response({"search_categories": {}})
    context = room_events.event_context
    criteria = RoomEventsCriteria(
        search_term=room_events.search_term,
        keys=tuple(room_events.keys) if room_events.keys else SEARCH_KEYS,
        filter=room_events.filter,
        order_by=room_events.order_by,
        event_context=EventContextSpec(
            before_limit=min(context.before_limit, MAX_CONTEXT),
            after_limit=min(context.after_limit, MAX_CONTEXT),
            include_profile=context.include_profile,
        ) if context is not None else None,
        include_state=room_events.include_state,
        group_by=[g.key for g in room_events.groupings.group_by] if room_events.groupings else (),
    )
    result = await request.config_dict[HS].search.search(
        requester, criteria, next_batch=request.query.get("next_batch") or None
    )
    return json_response({"search_categories": {"room_events": result}})
