"""GET /v3/capabilities (and /r0/) (capabilities.yaml): what this server lets users do.

The answer is the same for every user and never changes while the server
runs, so its JSON is built once per process.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response
from hearth.core.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS

routes = web.RouteTableDef()

CAPABILITIES: dict[str, Any] = {
    "m.change_password": {"enabled": True},
    "m.room_versions": {
        "default": DEFAULT_ROOM_VERSION.identifier,
        "available": {version: "stable" for version in KNOWN_ROOM_VERSIONS},
    },
    "m.set_displayname": {"enabled": True},
    "m.set_avatar_url": {"enabled": True},
    # Only the two classic fields are stored (see api/client/profile.py).
    "m.profile_fields": {"enabled": True, "allowed": ["displayname", "avatar_url"]},
    # No email/SMS and no identity server (see api/client/thirdparty.py).
    "m.3pid_changes": {"enabled": False},
    "m.get_login_token": {"enabled": False},
}

_BODY = {"capabilities": CAPABILITIES}


@routes.get("/v3/capabilities")
@routes.get("/r0/capabilities")
async def capabilities(request: web.Request) -> web.Response:
    await get_requester(request)
    return json_response(_BODY)
