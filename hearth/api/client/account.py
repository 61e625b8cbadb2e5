"""Account management (whoami.yaml, password_management.yaml, account_deactivation.yaml).

    GET  /v3/account/whoami       who owns this access token
    POST /v3/account/password     change password (UIA: m.login.password)
    POST /v3/account/deactivate   deactivate the account (UIA: m.login.password)

(each also under /r0/). The third-party identifier endpoints under
/account/3pid and the password-reset requestToken endpoints live in
`thirdparty.py`.

`whoami` is the measure of per-request overhead (token check plus a JSON
body), so it does nothing else. Password change and deactivation accept a
request without an access token, as the spec allows: the password stage then
says whose account it is.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, parse_body
from hearth.api.keys import HS
from hearth.errors import MatrixError
from hearth.homeserver import Homeserver
from hearth.users.sessions import Requester
from hearth.users.uia import PASSWORD
from hearth.validation import Model

routes = web.RouteTableDef()

PASSWORD_FLOWS = [[PASSWORD]]


class _Body(Model, strict=True, extra="allow"):
    """A body of JSON types as they are; keys it does not name are accepted."""


class ChangePasswordBody(_Body):
    new_password: str
    logout_devices: bool = True
    auth: Any = None


class DeactivateBody(_Body):
    auth: Any = None
    id_server: str | None = None
    erase: bool = False


@routes.get("/v3/account/whoami")
@routes.get("/r0/account/whoami")
async def whoami(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    return json_response({"user_id": requester.user_id, "device_id": requester.device_id,
                          "is_guest": False})


async def _optional_requester(request: web.Request) -> Requester | None:
    """The requester when the request carries a token; endpoints that allow anonymous use."""
    if "Authorization" not in request.headers and "access_token" not in request.query:
        return None
    return await get_requester(request)


async def _authenticate(request: web.Request, hs: Homeserver, auth: Any, purpose: str,
                        requester: Requester | None) -> str:
    """Run UIA for this account operation; returns the user it is for."""
    user_id = requester.user_id if requester is not None else None
    result = await hs.uia.authenticate(auth, purpose=f"{purpose}:{user_id or ''}", flows=PASSWORD_FLOWS,
                                       user_id=user_id, remote=request.remote)
    who = user_id or result.authenticated_user
    if who is None:
        raise MatrixError(401, "M_UNAUTHORIZED", "Authentication did not identify a user")
    return who


@routes.post("/v3/account/password")
@routes.post("/r0/account/password")
async def change_password(request: web.Request) -> web.Response:
    hs = request.config_dict[HS]
    requester = await _optional_requester(request)
    body = await parse_body(request, ChangePasswordBody)
    hs.password_changes.check_new_password(body.new_password)
    user_id = await _authenticate(request, hs, body.auth, "change_password", requester)
    await hs.password_changes.change(
        user_id, body.new_password, logout_devices=body.logout_devices,
        keep_device=requester.device_id if requester is not None else None,
    )
    return json_response({})


@routes.post("/v3/account/deactivate")
@routes.post("/r0/account/deactivate")
async def deactivate(request: web.Request) -> web.Response:
    hs = request.config_dict[HS]
    requester = await _optional_requester(request)
    body = await parse_body(request, DeactivateBody)
    user_id = await _authenticate(request, hs, body.auth, "deactivate", requester)
    await hs.deactivation.deactivate(user_id, erase=body.erase)
    # This server never binds third-party identifiers, so there was nothing
    # to unbind: the spec says that is "success".
    return json_response({"id_server_unbind_result": "success"})
