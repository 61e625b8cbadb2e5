"""GET /_hearth/metrics: Prometheus text format (the `metrics` listener resource)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from hearth.api.keys import HS

routes = web.RouteTableDef()


@routes.get("/_hearth/metrics")
async def metrics(request: web.Request) -> web.Response:
    hs = request.config_dict[HS]
    pool = hs.db.engine.pool
    checked_out = getattr(pool, "checkedout", None)
    size = getattr(pool, "size", None)
    if callable(checked_out):
        hs.metrics.db_pool_checked_out.set(checked_out())
    if callable(size):
        hs.metrics.db_pool_size.set(size())
    return web.Response(body=hs.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
