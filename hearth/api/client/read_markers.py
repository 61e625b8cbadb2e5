"""Read markers (read_markers.yaml).

    POST /v3/rooms/{roomId}/read_markers    (also under /r0/)

Body: optional `m.fully_read` (the fully read marker, room account data),
`m.read` and `m.read.private` (unthreaded receipts, exactly as POST /receipt
would set them). All are set in one transaction by `hearth.rooms.receipts`.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.client.room_send import room_id_param
from hearth.api.errors import json_response, parse_body
from hearth.api.keys import HS
from hearth.errors import invalid_param
from hearth.rooms.receipts import PUBLIC_READ, ReceiptUpdate
from hearth.storage.receipts import PRIVATE_READ
from hearth.validation import Model, field

routes = web.RouteTableDef()


class ReadMarkersBody(Model, strict=True):
    fully_read: str | None = field(default=None, alias="m.fully_read")
    read: str | None = field(default=None, alias="m.read")
    read_private: str | None = field(default=None, alias="m.read.private")


@routes.post("/v3/rooms/{roomId}/read_markers")
@routes.post("/r0/rooms/{roomId}/read_markers")
async def post_read_markers(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    room_id = room_id_param(request)
    body = await parse_body(request, ReadMarkersBody)
    for name, value in (("m.fully_read", body.fully_read), ("m.read", body.read),
                        ("m.read.private", body.read_private)):
        if value is not None and not value.startswith("$"):
            raise invalid_param(f"{name} must be an event ID")
    receipts = [
        ReceiptUpdate(receipt_type, event_id, None)
        for receipt_type, event_id in ((PUBLIC_READ, body.read), (PRIVATE_READ, body.read_private))
        if event_id is not None
    ]
    hs = request.config_dict[HS]
    await hs.receipts.set_markers(requester.user_id, room_id, fully_read=body.fully_read, receipts=receipts)
    await hs.presence.bump_active(requester.user_id)
    return json_response({})
