"""Account registration.

Endpoints:
- POST /_matrix/client/{v3,r0}/register
- GET  /_matrix/client/{v3,r0}/register/available?username=
- GET  /_matrix/client/v1/register/m.login.registration_token/validity?token=

The handlers only parse and shape; the rules (open or closed registration, rate
limits, username checks, UIA flows, token accounting) are in
`hearth.users.registration.RegistrationService`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hearth.api.errors import json_response, parse_body
from hearth.api.keys import HS
from hearth.errors import MatrixError, missing_param
from hearth.users.registration import Registered, RegistrationRequest
from hearth.users.sessions import IssuedTokens
from hearth.validation import Model

routes = web.RouteTableDef()


class RegisterBody(Model, strict=True):
    auth: dict[str, Any] | None = None
    username: str | None = None
    password: str | None = None
    device_id: str | None = None
    initial_device_display_name: str | None = None
    inhibit_login: bool = False
    refresh_token: bool = False


@routes.post("/r0/register")
@routes.post("/v3/register")
async def register(request: web.Request) -> web.Response:
    hs = request.config_dict[HS]
    kind = request.query.get("kind", "user")
    if kind == "guest":
        raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access is not enabled on this homeserver")
    if kind != "user":
        raise MatrixError(400, "M_INVALID_PARAM", "kind must be 'user' or 'guest'")
    body = await parse_body(request, RegisterBody)
    registered = await hs.registration.register(RegistrationRequest(
        username=body.username, password=body.password, auth=body.auth, device_id=body.device_id,
        initial_device_display_name=body.initial_device_display_name,
        inhibit_login=body.inhibit_login, refresh_token=body.refresh_token,
    ), remote=request.remote)
    return json_response(registration_body(registered, hs.config.server_name))


@routes.get("/r0/register/available")
@routes.get("/v3/register/available")
async def available(request: web.Request) -> web.Response:
    username = request.query.get("username")
    if not username:
        raise missing_param("Missing query parameter: username")
    await request.config_dict[HS].registration.check_username(username)
    return json_response({"available": True})


@routes.get("/v1/register/m.login.registration_token/validity")
async def token_validity(request: web.Request) -> web.Response:
    token = request.query.get("token")
    if token is None:
        raise missing_param("Missing query parameter: token")
    valid = await request.config_dict[HS].registration.token_is_valid(token, request.remote)
    return json_response({"valid": valid})


def registration_body(registered: Registered, server_name: str) -> dict[str, Any]:
    """user_id always; the device and tokens unless login was inhibited."""
    body: dict[str, Any] = {"user_id": registered.user_id, "home_server": server_name}
    if registered.tokens is not None:
        body.update(tokens_body(registered.tokens))
    return body


def tokens_body(tokens: IssuedTokens) -> dict[str, Any]:
    """The token fields shared by /register, /login and /refresh responses."""
    body: dict[str, Any] = {"access_token": tokens.access_token, "device_id": tokens.device_id}
    if tokens.refresh_token is not None:
        body["refresh_token"] = tokens.refresh_token
    if tokens.expires_in_ms is not None:
        body["expires_in_ms"] = tokens.expires_in_ms
    return body
