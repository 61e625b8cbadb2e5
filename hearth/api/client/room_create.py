"""POST /createRoom (create_room.yaml)."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, parse_body
from hearth.api.keys import HS
from hearth.core.ids import is_valid_user_id
from hearth.core.room_versions import DEFAULT_ROOM_VERSION
from hearth.errors import MatrixError
from hearth.rooms.create import RoomSpec, room_version_or_error
from hearth.validation import Model, field, field_validator

routes = web.RouteTableDef()


class StateEventBody(Model, strict=True):
    type: str
    state_key: str = ""
    content: dict[str, Any]


class CreateRoomBody(Model, strict=True, extra="allow"):
    visibility: Literal["public", "private"] = "private"
    room_alias_name: str | None = None
    name: str | None = None
    topic: str | None = None
    invite: list[str] = field(default_factory=list)
    invite_3pid: list[dict[str, Any]] = field(default_factory=list)
    room_version: str | None = None
    creation_content: dict[str, Any] = field(default_factory=dict)
    initial_state: list[StateEventBody] = field(default_factory=list)
    preset: Literal["private_chat", "public_chat", "trusted_private_chat"] | None = None
    is_direct: bool = False
    power_level_content_override: dict[str, Any] | None = None

    @field_validator("invite")
    @classmethod
    def _user_ids(cls, invite: list[str]) -> list[str]:
        for user_id in invite:
            if not is_valid_user_id(user_id):
                raise ValueError(f"{user_id!r} is not a user ID")
        return list(dict.fromkeys(invite))


@routes.post("/v3/createRoom")
@routes.post("/r0/createRoom")
async def create_room(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    body = await parse_body(request, CreateRoomBody)
    hs = request.config_dict[HS]
    if body.invite_3pid:
        raise MatrixError(
            400, "M_INVALID_PARAM", "Third-party invites need an identity server; none is configured"
        )
    preset = body.preset or ("public_chat" if body.visibility == "public" else "private_chat")
    for state in body.initial_state:
        if state.type == "m.room.create":
            raise MatrixError(400, "M_INVALID_ROOM_STATE", "initial_state may not contain m.room.create")
    spec = RoomSpec(
        creator=requester.user_id,
        room_version=room_version_or_error(body.room_version, DEFAULT_ROOM_VERSION),
        preset=preset,
        creation_content=body.creation_content,
        power_level_override=body.power_level_content_override,
        initial_state=[(s.type, s.state_key, s.content) for s in body.initial_state],
        name=body.name,
        topic=body.topic,
        invite=[u for u in body.invite if u != requester.user_id],
        is_direct=body.is_direct,
        room_alias_name=body.room_alias_name,
        visibility=body.visibility,
    )
    room_id = await hs.room_creator.create(spec)
    response: dict[str, Any] = {"room_id": room_id}
    if body.room_alias_name is not None:
        response["room_alias"] = f"#{body.room_alias_name}:{hs.config.server_name}"
    return json_response(response)
