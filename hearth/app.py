"""HTTP composition: one aiohttp application per listener.

Each API prefix is a nested app (`/_matrix/client`, `/_matrix/federation`,
`/_matrix/media`, `/_synapse/admin`), mounted only where the listener's
`resources` ask for it, so a federation-only TLS listener serves nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from aiohttp import web

from hearth.api import metrics_resource, wellknown
from hearth.api.admin import build_admin_app
from hearth.api.client import build_client_app
from hearth.api.errors import matrix_errors_middleware
from hearth.api.keys import HS
from hearth.api.middleware import cors_middleware, metrics_middleware
from hearth.homeserver import Homeserver

ALL_RESOURCES = ("client", "federation", "media", "admin", "metrics")


def build_app(hs: Homeserver, resources: Iterable[str] = ALL_RESOURCES) -> web.Application:
    wanted = set(resources)
    app = web.Application(
        # Metrics wrap the error mapper so a Matrix error is counted with the
        # status the client received (an exception never reaches them).
        middlewares=[cors_middleware, metrics_middleware(hs.metrics), matrix_errors_middleware],
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
        app.add_subapp("/_matrix/client", build_client_app())
        app.router.add_routes(wellknown.routes)
    if "admin" in wanted:
        app.add_subapp("/_synapse/admin", build_admin_app())
    if "metrics" in wanted:
        app.router.add_routes(metrics_resource.routes)
    return app
