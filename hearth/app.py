"""HTTP composition: one aiohttp application per listener.

Each API prefix (`/_matrix/client`, `/_synapse/admin`, ...) is a set of
route tables, mounted only where the listener's `resources` ask for it, so a
federation-only TLS listener serves nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from aiohttp import web

from hearth.api import metrics_resource, wellknown
from hearth.api.admin import ADMIN_ROUTES
from hearth.api.client import CLIENT_ROUTES
from hearth.api.keys import HS
from hearth.api.middleware import http_middleware
from hearth.homeserver import Homeserver

ALL_RESOURCES = ("client", "federation", "media", "admin", "metrics")


def build_app(hs: Homeserver, resources: Iterable[str] = ALL_RESOURCES) -> web.Application:
    wanted = set(resources)
    app = web.Application(
        middlewares=[http_middleware(hs.metrics)],
        client_max_size=hs.config.max_request_body_bytes,
    )
    app[HS] = hs

    async def push_delivery(_app: web.Application) -> AsyncIterator[None]:
        # Push processing and pusher delivery run while any listener's app runs.
        await hs.push.start()
        yield
        await hs.push.stop()

    app.cleanup_ctx.append(push_delivery)
    if "client" in wanted:
        _mount(app, "/_matrix/client", CLIENT_ROUTES)
        app.router.add_routes(wellknown.routes)
    if "admin" in wanted:
        _mount(app, "/_synapse/admin", ADMIN_ROUTES)
    if "metrics" in wanted:
        app.router.add_routes(metrics_resource.routes)
    return app


def _mount(app: web.Application, prefix: str, tables: Iterable[web.RouteTableDef]) -> None:
    """Add route tables under `prefix` to `app` itself.

    Not as sub-applications: aiohttp runs a middleware coroutine per
    application a request passes through, held for the request's life.
    """
    for table in tables:
        for route in table:
            assert isinstance(route, web.RouteDef)
            app.router.add_route(route.method, prefix + route.path, route.handler, **route.kwargs)
