"""The one middleware every request passes: CORS, Matrix errors and request metrics.

One middleware rather than three: each middleware is a coroutine frame held
for as long as its request runs, and a server with a thousand parked /sync
long-polls holds a thousand of each.
"""

from __future__ import annotations

import time

from aiohttp import web

from hearth.api.errors import Handler, error_response_for
from hearth.metrics import Metrics

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
}


def http_middleware(metrics: Metrics) -> web.middlewares._Middleware:  # type: ignore[name-defined]
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Browsers preflight with OPTIONS on any path; the spec says answer it openly.
        if request.method == "OPTIONS":
            return web.Response(status=204, headers=CORS_HEADERS)
        start = time.perf_counter()
        try:
            response = await handler(request)
        except Exception as e:
            response = error_response_for(request, e)
        # Counted with the status the client receives, errors included.
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        metrics.observe_request(request.method, name, response.status, time.perf_counter() - start)
        response.headers.update(CORS_HEADERS)
        return response

    return middleware
