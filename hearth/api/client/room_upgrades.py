"""Room upgrades (room_upgrades.yaml).

    POST /v3/rooms/{roomId}/upgrade     (also under /r0)

The behaviour (what is copied, aliases, tombstone, old room restrictions) is
described in hearth.rooms.upgrade.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.client.room_send import room_id_param
from hearth.api.errors import json_response, parse_body
from hearth.api.keys import HS
from hearth.core.ids import is_valid_user_id
from hearth.core.room_versions import DEFAULT_ROOM_VERSION
from hearth.rooms.create import room_version_or_error
from hearth.validation import Model, field, field_validator

routes = web.RouteTableDef()


class UpgradeBody(Model, strict=True, extra="allow"):
    new_version: str
    additional_creators: list[str] = field(default_factory=list)

    @field_validator("additional_creators")
    @classmethod
    def _user_ids(cls, users: list[str]) -> list[str]:
        for user_id in users:
            if not is_valid_user_id(user_id):
                raise ValueError(f"{user_id!r} is not a user ID")
        return list(dict.fromkeys(users))


@routes.post("/v3/rooms/{roomId}/upgrade")
@routes.post("/r0/rooms/{roomId}/upgrade")
async def upgrade_room(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    body = await parse_body(request, UpgradeBody)
    new_version = room_version_or_error(body.new_version, DEFAULT_ROOM_VERSION)
    additional = [u for u in body.additional_creators if u != requester.user_id]
    new_room_id = await request.config_dict[HS].room_upgrader.upgrade(
        requester.user_id, room_id, new_version, additional
    )
    return json_response({"replacement_room": new_room_id})
