"""Cross-cutting HTTP behaviour: CORS for browser clients and request metrics."""

from __future__ import annotations

import time

from aiohttp import web

from hearth.api.errors import Handler
from hearth.metrics import Metrics

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
}


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Browsers preflight with OPTIONS on any path; the spec says answer it openly."""
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=CORS_HEADERS)
    response = await handler(request)
    response.headers.update(CORS_HEADERS)
    return response


def metrics_middleware(metrics: Metrics) -> web.middlewares._Middleware:  # type: ignore[name-defined]
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        response = await handler(request)
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        metrics.observe_request(request.method, name, response.status, time.perf_counter() - start)
        return response

    return middleware
