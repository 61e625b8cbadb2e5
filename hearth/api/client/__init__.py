"""The Client-Server API under /_matrix/client, one module per endpoint family."""

from __future__ import annotations

from aiohttp import web

from hearth.api.client import (
    account,
    account_data,
    capabilities,
    devices,
    directory,
    filters,
    login,
    membership,
    messages,
    notifications,
    presence,
    profile,
    pushers,
    pushrules,
    read_markers,
    receipts,
    redaction,
    register,
    relations,
    report,
    room_create,
    room_send,
    room_state,
    room_summary,
    room_upgrades,
    search,
    space_hierarchy,
    sync,
    tags,
    thirdparty,
    to_device,
    typing,
    user_directory,
    versions,
)

CLIENT_ROUTES: tuple[web.RouteTableDef, ...] = tuple(module.routes for module in (
    versions, capabilities, register, login, account, devices, profile, account_data, filters, thirdparty,
    room_create, room_send, membership,
    room_state, messages, redaction, report,
    relations, search, user_directory, tags,
    sync, receipts, read_markers, typing, presence, to_device,
    pushrules, pushers, notifications,
    directory, room_upgrades, room_summary, space_hierarchy,
))
