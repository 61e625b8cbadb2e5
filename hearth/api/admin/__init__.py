"""The admin API under /_synapse/admin (Synapse-compatible paths where tools expect them)."""

from __future__ import annotations

from aiohttp import web

from hearth.api.admin import register


def build_admin_app() -> web.Application:
    app = web.Application()
    app.router.add_routes(register.routes)
    return app
