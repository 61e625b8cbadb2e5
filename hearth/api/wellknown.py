"""Server discovery documents.

GET /.well-known/matrix/client  (wellknown.yaml): where clients find us.
GET /.well-known/matrix/server  (server-server): delegation, when configured.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.errors import json_response
from hearth.api.keys import HS
from hearth.errors import not_found

routes = web.RouteTableDef()


@routes.get("/.well-known/matrix/client")
async def client_wellknown(request: web.Request) -> web.Response:
    base = request.config_dict[HS].config.client_base_url.rstrip("/")
    return json_response({"m.homeserver": {"base_url": base}})


@routes.get("/.well-known/matrix/server")
async def server_wellknown(request: web.Request) -> web.Response:
    delegated = request.config_dict[HS].config.serve_server_wellknown
    if not delegated:
        raise not_found("No server delegation configured")
    return json_response({"m.server": delegated})
