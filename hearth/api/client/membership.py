"""Room membership (joining.yaml, knocking.yaml, inviting.yaml, leaving.yaml,
kicking.yaml, banning.yaml, list_joined_rooms.yaml).

    POST /v3/rooms/{roomId}/join
    POST /v3/join/{roomIdOrAlias}          (?via= / ?server_name= are accepted; remote joins come
                                            with federation, so only rooms known here can be joined)
    POST /v3/knock/{roomIdOrAlias}
    POST /v3/rooms/{roomId}/invite
    POST /v3/rooms/{roomId}/leave
    POST /v3/rooms/{roomId}/forget
    POST /v3/rooms/{roomId}/kick
    POST /v3/rooms/{roomId}/ban
    POST /v3/rooms/{roomId}/unban
    GET  /v3/joined_rooms

Each has an /r0 twin. The spec marks the bodies of join, knock and leave as
required, but clients have long sent none; an empty body is read as `{}`.
Unknown rooms are 404 for join and knock (the room cannot be found), and
for forget (which, like a room the caller was never in, has nothing to
forget); 403 for the others, where the caller would have to be in the room.
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, parse_body, validate
from hearth.api.keys import HS
from hearth.core.ids import is_valid_room_id, is_valid_user_id
from hearth.errors import invalid_param
from hearth.rooms.membership import ThirdPartySigned
from hearth.validation import Model, field_validator

routes = web.RouteTableDef()

M = TypeVar("M", bound=Model)


class ReasonBody(Model, strict=True, extra="allow"):
    reason: str | None = None


class ThirdPartySignedBody(Model, strict=True, extra="allow"):
    sender: str
    mxid: str
    token: str
    signatures: dict[str, dict[str, str]]

    @field_validator("sender", "mxid")
    @classmethod
    def _user_id(cls, value: str) -> str:
        if not is_valid_user_id(value):
            raise ValueError(f"{value!r} is not a user ID")
        return value


class JoinBody(ReasonBody):
    third_party_signed: ThirdPartySignedBody | None = None


class TargetBody(ReasonBody):
    user_id: str

    @field_validator("user_id")
    @classmethod
    def _user_id(cls, value: str) -> str:
        if not is_valid_user_id(value):
            raise ValueError(f"{value!r} is not a user ID")
        return value


async def _optional_body(request: web.Request, model: type[M]) -> M:
    """The body parsed into `model`, an empty body counting as `{}`."""
    if not (await request.read()).strip():
        return validate({}, model)
    return await parse_body(request, model)


def _room_id(request: web.Request) -> str:
    room_id = request.match_info["roomId"]
    if not is_valid_room_id(room_id):
        raise invalid_param(f"{room_id!r} is not a room ID")
    return room_id


async def _join(request: web.Request, room_id: str) -> web.Response:
    requester = await get_requester(request)
    body = await _optional_body(request, JoinBody)
    signed = body.third_party_signed
    proof = None
    if signed is not None:
        proof = ThirdPartySigned(signed.sender, signed.mxid, signed.token, signed.model_dump())
    await request.config_dict[HS].membership.join(
        requester.user_id, room_id, reason=body.reason, third_party_signed=proof
    )
    return json_response({"room_id": room_id})


@routes.post("/v3/rooms/{roomId}/join")
@routes.post("/r0/rooms/{roomId}/join")
async def join_room_by_id(request: web.Request) -> web.Response:
    return await _join(request, _room_id(request))


@routes.post("/v3/join/{roomIdOrAlias}")
@routes.post("/r0/join/{roomIdOrAlias}")
async def join_room(request: web.Request) -> web.Response:
    await get_requester(request)
    room_id = await request.config_dict[HS].membership.resolve(request.match_info["roomIdOrAlias"])
    return await _join(request, room_id)


@routes.post("/v3/knock/{roomIdOrAlias}")
@routes.post("/r0/knock/{roomIdOrAlias}")
async def knock(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    membership = request.config_dict[HS].membership
    room_id = await membership.resolve(request.match_info["roomIdOrAlias"])
    body = await _optional_body(request, ReasonBody)
    await membership.knock(requester.user_id, room_id, reason=body.reason)
    return json_response({"room_id": room_id})


@routes.post("/v3/rooms/{roomId}/invite")
@routes.post("/r0/rooms/{roomId}/invite")
async def invite(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = _room_id(request)
    body = await parse_body(request, TargetBody)
    await request.config_dict[HS].membership.invite(
        requester.user_id, room_id, body.user_id, reason=body.reason
    )
    return json_response({})


@routes.post("/v3/rooms/{roomId}/leave")
@routes.post("/r0/rooms/{roomId}/leave")
async def leave(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = _room_id(request)
    body = await _optional_body(request, ReasonBody)
    await request.config_dict[HS].membership.leave(requester.user_id, room_id, reason=body.reason)
    return json_response({})


@routes.post("/v3/rooms/{roomId}/forget")
@routes.post("/r0/rooms/{roomId}/forget")
async def forget(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    await request.config_dict[HS].membership.forget(requester.user_id, _room_id(request))
    return json_response({})


@routes.post("/v3/rooms/{roomId}/kick")
@routes.post("/r0/rooms/{roomId}/kick")
async def kick(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = _room_id(request)
    body = await parse_body(request, TargetBody)
    await request.config_dict[HS].membership.kick(
        requester.user_id, room_id, body.user_id, reason=body.reason
    )
    return json_response({})


@routes.post("/v3/rooms/{roomId}/ban")
@routes.post("/r0/rooms/{roomId}/ban")
async def ban(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = _room_id(request)
    body = await parse_body(request, TargetBody)
    await request.config_dict[HS].membership.ban(
        requester.user_id, room_id, body.user_id, reason=body.reason
    )
    return json_response({})


@routes.post("/v3/rooms/{roomId}/unban")
@routes.post("/r0/rooms/{roomId}/unban")
async def unban(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = _room_id(request)
    body = await parse_body(request, TargetBody)
    await request.config_dict[HS].membership.unban(
        requester.user_id, room_id, body.user_id, reason=body.reason
    )
    return json_response({})


@routes.get("/v3/joined_rooms")
@routes.get("/r0/joined_rooms")
async def joined_rooms(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    rooms = await request.config_dict[HS].membership.joined_rooms(requester.user_id)
    return json_response({"joined_rooms": rooms})
