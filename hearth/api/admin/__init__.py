"""The admin API under /_synapse/admin (Synapse-compatible paths where tools expect them)."""

from __future__ import annotations

from aiohttp import web

from hearth.api.admin import register

ADMIN_ROUTES: tuple[web.RouteTableDef, ...] = (register.routes,)
