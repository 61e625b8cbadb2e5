"""User profiles (profile.yaml).

    GET /v3/profile/{userId}               display name and avatar URL (no auth needed)
    GET /v3/profile/{userId}/displayname   one field (404 when unset)
    PUT /v3/profile/{userId}/displayname   set your own display name
    GET /v3/profile/{userId}/avatar_url    one field (404 when unset)
    PUT /v3/profile/{userId}/avatar_url    set your own avatar (an mxc:// URI)

(each also under /r0/). Only the two classic fields are served: the capability
`m.profile_fields` says so, and custom fields arrive with spec v1.16 support.
Remote users are answered 404 until the federation profile query exists (see
`hearth.users.profile`).
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, read_json_object
from hearth.api.keys import HS
from hearth.core.ids import is_valid_user_id
from hearth.errors import bad_json, invalid_param, missing_param
from hearth.users.profile import ProfileField, profile_json

routes = web.RouteTableDef()


def _user_id(request: web.Request) -> str:
    user_id = request.match_info["user_id"]
    if not is_valid_user_id(user_id):
        raise invalid_param(f"{user_id[:300]!r} is not a valid user ID")
    return user_id


@routes.get("/v3/profile/{user_id}")
@routes.get("/r0/profile/{user_id}")
async def get_profile(request: web.Request) -> web.Response:
    profile = await request.config_dict[HS].profiles.get(_user_id(request))
    return json_response(profile_json(profile))


async def _get_field(request: web.Request, field: ProfileField) -> web.Response:
    value = await request.config_dict[HS].profiles.get_field(_user_id(request), field)
    return json_response({field: value})


async def _put_field(request: web.Request, field: ProfileField) -> web.Response:
    requester = await get_requester(request)
    user_id = _user_id(request)
    profiles = request.config_dict[HS].profiles
    profiles.check_can_edit(requester.user_id, user_id)
    body = await read_json_object(request)
    if field not in body:
        raise missing_param(f"Missing parameter: {field}")
    value = body[field]
    if value is not None and not isinstance(value, str):
        raise bad_json(f"Invalid type for {field}: must be a string")
    await profiles.set_field(requester.user_id, user_id, field, value)
    return json_response({})


@routes.get("/v3/profile/{user_id}/displayname")
@routes.get("/r0/profile/{user_id}/displayname")
async def get_displayname(request: web.Request) -> web.Response:
    return await _get_field(request, "displayname")


@routes.put("/v3/profile/{user_id}/displayname")
@routes.put("/r0/profile/{user_id}/displayname")
async def set_displayname(request: web.Request) -> web.Response:
    return await _put_field(request, "displayname")


@routes.get("/v3/profile/{user_id}/avatar_url")
@routes.get("/r0/profile/{user_id}/avatar_url")
async def get_avatar_url(request: web.Request) -> web.Response:
    return await _get_field(request, "avatar_url")


@routes.put("/v3/profile/{user_id}/avatar_url")
@routes.put("/r0/profile/{user_id}/avatar_url")
async def set_avatar_url(request: web.Request) -> web.Response:
    return await _put_field(request, "avatar_url")
