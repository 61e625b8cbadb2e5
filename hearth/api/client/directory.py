"""Room aliases, the published room directory and directory visibility.

directory.yaml and list_public_rooms.yaml; every path also under /r0:

    PUT    /v3/directory/room/{roomAlias}
    GET    /v3/directory/room/{roomAlias}        (no access token needed)
    DELETE /v3/directory/room/{roomAlias}
    GET    /v3/rooms/{roomId}/aliases
    GET    /v3/directory/list/room/{roomId}      (no access token needed)
    PUT    /v3/directory/list/room/{roomId}
    GET    /v3/publicRooms                       (no access token needed)
    POST   /v3/publicRooms

Only this server's directory is served: `server=` naming another server, and
aliases of other servers, need federation and are 404 M_NOT_FOUND for now.
This server bridges no third-party networks, so a `third_party_instance_id`
matches no rooms.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.client.room_send import room_id_param
from hearth.api.errors import json_response, parse_body, parse_int
from hearth.api.keys import HS
from hearth.core.ids import is_valid_server_name
from hearth.errors import invalid_param, not_found
from hearth.users.sessions import Requester
from hearth.validation import Model, field_validator

routes = web.RouteTableDef()


async def optional_requester(request: web.Request) -> Requester | None:
    """The requester if the request carries an access token (which must then be valid)."""
    if "Authorization" in request.headers or "access_token" in request.query:
        return await get_requester(request)
    return None


# --- aliases -------------------------------------------------------------------------


class SetAliasBody(Model, strict=True):
    room_id: str


@routes.put("/v3/directory/room/{roomAlias}")
@routes.put("/r0/directory/room/{roomAlias}")
async def set_alias(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    body = await parse_body(request, SetAliasBody)
    await request.config_dict[HS].aliases.create(
        requester.user_id, request.match_info["roomAlias"], body.room_id
    )
    return json_response({})


@routes.get("/v3/directory/room/{roomAlias}")
@routes.get("/r0/directory/room/{roomAlias}")
async def get_alias(request: web.Request) -> web.Response:
    await optional_requester(request)
    return json_response(await request.config_dict[HS].aliases.lookup(request.match_info["roomAlias"]))


@routes.delete("/v3/directory/room/{roomAlias}")
@routes.delete("/r0/directory/room/{roomAlias}")
async def delete_alias(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    await request.config_dict[HS].aliases.delete(requester.user_id, request.match_info["roomAlias"])
    return json_response({})


@routes.get("/v3/rooms/{roomId}/aliases")
@routes.get("/r0/rooms/{roomId}/aliases")
async def room_aliases(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    aliases = await request.config_dict[HS].aliases.local_aliases(requester.user_id, room_id)
    return json_response({"aliases": aliases})


# --- directory visibility ------------------------------------------------------------


class VisibilityBody(Model, strict=True, extra="allow"):
    visibility: str = "public"

    @field_validator("visibility")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ("public", "private"):
            raise ValueError("must be 'public' or 'private'")
        return value


@routes.get("/v3/directory/list/room/{roomId}")
@routes.get("/r0/directory/list/room/{roomId}")
async def get_visibility(request: web.Request) -> web.Response:
    await optional_requester(request)
    room_id = room_id_param(request)
    return json_response({"visibility": await request.config_dict[HS].room_directory.visibility(room_id)})


@routes.put("/v3/directory/list/room/{roomId}")
@routes.put("/r0/directory/list/room/{roomId}")
async def set_visibility(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    body = await parse_body(request, VisibilityBody)
    await request.config_dict[HS].room_directory.set_visibility(requester.user_id, room_id, body.visibility)
    return json_response({})


# --- listing -------------------------------------------------------------------------


class PublicRoomsFilter(Model, strict=True, extra="allow"):
    generic_search_term: str | None = None
    room_types: list[str | None] | None = None


class PublicRoomsBody(Model, strict=True, extra="allow"):
    limit: int | None = None
    since: str | None = None
    filter: PublicRoomsFilter | None = None
    include_all_networks: bool = False
    third_party_instance_id: str | None = None

    @field_validator("limit")
    @classmethod
    def _not_negative(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("must not be negative")
        return value


def _check_server(request: web.Request) -> None:
    """Only this server's directory can be listed until federation is available."""
    server = request.query.get("server")
    if server is None or server == request.config_dict[HS].config.server_name:
        return
    if not is_valid_server_name(server):
        raise invalid_param(f"{server!r} is not a server name")
    raise not_found(f"The room directory of {server} cannot be fetched: federation is not available")


@routes.get("/v3/publicRooms")
@routes.get("/r0/publicRooms")
async def list_public_rooms(request: web.Request) -> web.Response:
    await optional_requester(request)
    _check_server(request)
    limit = parse_int(request, "limit", minimum=0)
    result = await request.config_dict[HS].room_directory.public_rooms(
        limit=limit, since=request.query.get("since") or None
    )
    return json_response(result)


@routes.post("/v3/publicRooms")
@routes.post("/r0/publicRooms")
async def search_public_rooms(request: web.Request) -> web.Response:
    await get_requester(request)
    _check_server(request)
    body = await parse_body(request, PublicRoomsBody)
    if body.third_party_instance_id is not None:
        if body.include_all_networks:
            raise invalid_param("third_party_instance_id cannot be used with include_all_networks")
        empty: dict[str, Any] = {"chunk": [], "total_room_count_estimate": 0}
        return json_response(empty)
    flt = body.filter or PublicRoomsFilter()
    result = await request.config_dict[HS].room_directory.public_rooms(
        limit=body.limit,
        since=body.since or None,
        search_term=flt.generic_search_term,
        room_types=flt.room_types,
    )
    return json_response(result)
