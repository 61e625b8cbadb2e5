"""Device management (device_management.yaml).

    GET    /v3/devices               the caller's devices
    GET    /v3/devices/{deviceId}    one device (404 M_NOT_FOUND if not the caller's)
    PUT    /v3/devices/{deviceId}    rename a device
    DELETE /v3/devices/{deviceId}    delete a device (UIA: m.login.password)
    POST   /v3/delete_devices        delete several devices (UIA: m.login.password)

(each also under /r0/). The UIA session is bound to the exact set of devices
being deleted, so a password typed to delete one device cannot be replayed to
delete others. DELETE may come without a body (clients send one only after the
401), which counts as `{}`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, parse_body, read_json_object, validate
from hearth.api.keys import HS
from hearth.homeserver import Homeserver
from hearth.storage.devices import Device
from hearth.users.uia import PASSWORD
from hearth.validation import Model

routes = web.RouteTableDef()


class _Body(Model, strict=True, extra="allow"):
    """A body of JSON types as they are; keys it does not name are accepted."""


class UpdateDeviceBody(_Body):
    display_name: str | None = None


class DeleteDeviceBody(_Body):
    auth: Any = None


class DeleteDevicesBody(_Body):
    devices: list[str]
    auth: Any = None


def device_json(device: Device) -> dict[str, Any]:
    return {"device_id": device.device_id, "display_name": device.display_name,
            "last_seen_ip": device.last_seen_ip, "last_seen_ts": device.last_seen_ts}


@routes.get("/v3/devices")
@routes.get("/r0/devices")
async def list_devices(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    devices = await request.config_dict[HS].device_manager.list_devices(requester.user_id)
    return json_response({"devices": [device_json(d) for d in devices]})


@routes.get("/v3/devices/{device_id}")
@routes.get("/r0/devices/{device_id}")
async def get_device(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    device = await request.config_dict[HS].device_manager.get(
        requester.user_id, request.match_info["device_id"])
    return json_response(device_json(device))


@routes.put("/v3/devices/{device_id}")
@routes.put("/r0/devices/{device_id}")
async def update_device(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    body = await parse_body(request, UpdateDeviceBody)
    await request.config_dict[HS].device_manager.rename(
        requester.user_id, request.match_info["device_id"], body.display_name)
    return json_response({})


async def _delete_with_uia(request: web.Request, hs: Homeserver, user_id: str, device_ids: list[str],
                           auth: Any) -> None:
    purpose = f"delete_devices:{user_id}:{','.join(sorted(set(device_ids)))}"
    await hs.uia.authenticate(auth, purpose=purpose, flows=[[PASSWORD]], user_id=user_id,
                              remote=request.remote)
    await hs.device_manager.delete(user_id, device_ids)


@routes.delete("/v3/devices/{device_id}")
@routes.delete("/r0/devices/{device_id}")
async def delete_device(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    raw = await request.read()
    body = validate(await read_json_object(request), DeleteDeviceBody) if raw.strip() else DeleteDeviceBody()
    await _delete_with_uia(request, request.config_dict[HS], requester.user_id,
                           [request.match_info["device_id"]], body.auth)
    return json_response({})


@routes.post("/v3/delete_devices")
@routes.post("/r0/delete_devices")
async def delete_devices(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    body = await parse_body(request, DeleteDevicesBody)
    await _delete_with_uia(request, request.config_dict[HS], requester.user_id, body.devices, body.auth)
    return json_response({})
