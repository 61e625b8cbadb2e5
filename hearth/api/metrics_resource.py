"""GET /_hearth/metrics: Prometheus text format (the `metrics` listener resource)."""

from __future__ import annotations

from aiohttp import web

from hearth.api.keys import HS
from hearth.metrics import CONTENT_TYPE

routes = web.RouteTableDef()


@routes.get("/_hearth/metrics")
async def metrics(request: web.Request) -> web.Response:
    hs = request.config_dict[HS]
    hs.metrics.observe_pool(hs.db.engine.pool)
    return web.Response(body=hs.metrics.render(), headers={"Content-Type": CONTENT_TYPE})
