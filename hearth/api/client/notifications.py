"""The notifications list (notifications.yaml).

    GET /v3/notifications?from=&limit=&only=highlight

(also under /r0/). Newest first. `from`/`next_token` is the stream position
of the last notification returned; `limit` defaults to 20 and is capped at
100. `only=highlight` keeps notifications whose actions set the highlight
tweak; any other `only` value filters nothing, as the spec defines no other.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, parse_int
from hearth.api.keys import HS
from hearth.errors import invalid_param

routes = web.RouteTableDef()

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@routes.get("/v3/notifications")
@routes.get("/r0/notifications")
async def get_notifications(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    raw_from = request.query.get("from")
    before: int | None = None
    if raw_from:
        if not raw_from.isdigit() or len(raw_from) > 19:
            raise invalid_param("from must be a next_token from an earlier call")
        before = int(raw_from)
    limit = parse_int(request, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT) or DEFAULT_LIMIT
    hs = request.config_dict[HS]
    found, next_from = await hs.push.notifications(
        requester.user_id, before=before, limit=limit, only_highlight=request.query.get("only") == "highlight"
    )
    async with hs.db.read() as conn:
        events = await hs.event_serializer.serialize(
            conn, [stored for _, stored, _ in found], user_id=requester.user_id, include_room_id=False
        )
    notifications = [
        {
            "actions": list(row.actions),
            "event": event,
            "read": read,
            "room_id": stored.event.room_id,
            "ts": row.notified_ts,
        }
        for (row, stored, read), event in zip(found, events, strict=True)
    ]
    body: dict[str, object] = {"notifications": notifications}
    if next_from is not None:
        body["next_token"] = str(next_from)
    return json_response(body)
