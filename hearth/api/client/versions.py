"""GET /_matrix/client/versions (versions.yaml): which spec versions we speak."""

from __future__ import annotations

from aiohttp import web

from hearth.api.errors import json_response

routes = web.RouteTableDef()

SPEC_VERSIONS = [f"v1.{n}" for n in range(1, 13)]

_BODY = {"versions": SPEC_VERSIONS, "unstable_features": {}}


@routes.get("/versions")
async def versions(request: web.Request) -> web.Response:
    return json_response(_BODY)
