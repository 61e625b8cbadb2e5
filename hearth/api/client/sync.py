"""GET /sync (sync.yaml): initial, incremental and long-poll sync.

Query parameters: `since` (a sync token), `timeout` (ms to wait when there is
nothing new), `full_state`, `filter` (a stored filter ID or inline JSON) and
`set_presence` (online by default, unavailable, or offline to leave presence
alone; see `hearth.users.presence`).
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, parse_bool, parse_int
from hearth.api.keys import HS
from hearth.errors import invalid_param
from hearth.sync.token import SyncToken
from hearth.users.filters import Filter

routes = web.RouteTableDef()

MAX_TIMEOUT_MS = 10 * 60 * 1000

# Filters are frozen, so every sync without one shares this (a parked long-poll
# holds its filter for the whole wait).
_NO_FILTER = Filter()


async def _filter(request: web.Request, user_id: str) -> Filter:
    raw = request.query.get("filter")
    if raw is None:
        return _NO_FILTER
    return await request.config_dict[HS].filters.for_sync(user_id, raw)


@routes.get("/v3/sync")
@routes.get("/r0/sync")
async def sync(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    since_raw = request.query.get("since")
    since = SyncToken.parse(since_raw) if since_raw else None
    timeout = parse_int(request, "timeout", default=0, minimum=0, maximum=MAX_TIMEOUT_MS) or 0
    set_presence = request.query.get("set_presence")
    if set_presence not in (None, "online", "offline", "unavailable"):
        raise invalid_param("set_presence must be online, offline or unavailable")
    flt = await _filter(request, requester.user_id)
    hs = request.config_dict[HS]
    async with hs.presence.syncing(requester.user_id, set_presence):
        response = await hs.sync.sync(
            requester, since=since, timeout_ms=timeout, full_state=parse_bool(request, "full_state"), flt=flt
        )
    return json_response(response)
