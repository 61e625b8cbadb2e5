"""Logging in and out, and refreshing tokens.

Endpoints:
- GET  /_matrix/client/{v3,r0}/login
- POST /_matrix/client/{v3,r0}/login          (m.login.password)
- POST /_matrix/client/v3/refresh
- POST /_matrix/client/{v3,r0}/logout
- POST /_matrix/client/{v3,r0}/logout/all

Password checks and rate limits are in `hearth.users.login.LoginService`;
tokens and devices in `hearth.users.sessions.SessionService`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hearth.api.client.register import tokens_body
from hearth.api.errors import json_response, parse_body
from hearth.api.keys import HS
from hearth.errors import MatrixError, forbidden, invalid_param, missing_param
from hearth.users.sessions import Requester, require_token_value
from hearth.validation import Model

routes = web.RouteTableDef()

PASSWORD_LOGIN = "m.login.password"
MAX_DEVICE_ID_LENGTH = 255


class LoginBody(Model, strict=True):
    type: str
    identifier: dict[str, Any] | None = None
    # Deprecated top-level forms of the identifier.
    user: str | None = None
    medium: str | None = None
    address: str | None = None
    password: str | None = None
    device_id: str | None = None
    initial_device_display_name: str | None = None
    refresh_token: bool = False


class RefreshBody(Model, strict=True):
    refresh_token: str


@routes.get("/r0/login")
@routes.get("/v3/login")
async def login_flows(request: web.Request) -> web.Response:
    return json_response({"flows": [{"type": PASSWORD_LOGIN}]})


@routes.post("/r0/login")
@routes.post("/v3/login")
async def login(request: web.Request) -> web.Response:
    hs = request.config_dict[HS]
    body = await parse_body(request, LoginBody)
    if body.type != PASSWORD_LOGIN:
        raise MatrixError(400, "M_UNKNOWN", "Unknown login type")
    if body.password is None:
        raise missing_param("Missing parameter: password")
    if body.device_id is not None and not 0 < len(body.device_id) <= MAX_DEVICE_ID_LENGTH:
        raise invalid_param("device_id must be 1 to 255 characters")
    identifier = _identifier(body)
    tokens = await hs.login.login_with_password(
        identifier, body.password, device_id=body.device_id,
        display_name=body.initial_device_display_name, with_refresh=body.refresh_token,
        remote=request.remote,
    )
    return json_response({
        "user_id": tokens.user_id,
        "home_server": hs.config.server_name,
        **tokens_body(tokens),
        "well_known": {"m.homeserver": {"base_url": hs.config.client_base_url}},
    })


def _identifier(body: LoginBody) -> dict[str, Any]:
    """The identifier object, built from the deprecated top-level fields if need be."""
    if body.identifier is not None:
        return body.identifier
    if body.user is not None:
        return {"type": "m.id.user", "user": body.user}
    if body.medium is not None or body.address is not None:
        # A third-party ID: none is bound to any account here.
        raise forbidden("Invalid username or password")
    raise missing_param("Missing parameter: identifier")


@routes.post("/v3/refresh")
async def refresh(request: web.Request) -> web.Response:
    body = await parse_body(request, RefreshBody)
    tokens = await request.config_dict[HS].sessions.refresh(body.refresh_token)
    return json_response({k: v for k, v in tokens_body(tokens).items() if k != "device_id"})


async def _logging_out(request: web.Request) -> Requester:
    """The requester, accepting an expired token: a soft-logged-out client may still log out."""
    token = require_token_value(request.headers.get("Authorization"), request.query.get("access_token"))
    return await request.config_dict[HS].sessions.authenticate(token, allow_expired=True)


@routes.post("/r0/logout")
@routes.post("/v3/logout")
async def logout(request: web.Request) -> web.Response:
    requester = await _logging_out(request)
    await request.config_dict[HS].sessions.logout(requester)
    return json_response({})


@routes.post("/r0/logout/all")
@routes.post("/v3/logout/all")
async def logout_all(request: web.Request) -> web.Response:
    requester = await _logging_out(request)
    await request.config_dict[HS].sessions.logout_all(requester.user_id)
    return json_response({})
