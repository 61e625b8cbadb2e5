"""Typed keys under which the HTTP apps find the homeserver's parts."""

from __future__ import annotations

from aiohttp import web

from hearth.homeserver import Homeserver

HS = web.AppKey("hearth", Homeserver)
