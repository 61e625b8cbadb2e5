"""Who is calling: the access token on a client request, checked once."""

from __future__ import annotations

from aiohttp import web

from hearth.api.keys import HS
from hearth.errors import forbidden
from hearth.users.sessions import Requester, require_token_value

_REQUESTER = web.RequestKey("hearth.requester", Requester)


async def get_requester(request: web.Request) -> Requester:
    """The authenticated requester, or M_MISSING_TOKEN / M_UNKNOWN_TOKEN."""
    cached = request.get(_REQUESTER)
    if cached is not None:
        return cached
    token = require_token_value(request.headers.get("Authorization"), request.query.get("access_token"))
    hs = request.config_dict[HS]
    requester = await hs.sessions.authenticate(token)
    # Cheap: writes last_seen_ts only every few minutes per device.
    await hs.device_manager.note_seen(requester.user_id, requester.device_id, request.remote)
    request[_REQUESTER] = requester
    return requester


async def require_admin(request: web.Request) -> Requester:
    requester = await get_requester(request)
    account = await request.config_dict[HS].users.get(requester.user_id)
    if account is None or not account.is_admin:
        raise forbidden("You are not a server admin")
    return requester
