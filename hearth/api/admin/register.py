"""Admin registration: shared-secret user creation and registration tokens (Synapse-compatible).

Endpoints:
- GET    /_synapse/admin/v1/register                      a nonce for shared-secret registration
- POST   /_synapse/admin/v1/register                      create a user with an HMAC over the nonce
- GET    /_synapse/admin/v1/registration_tokens[?valid=]  list tokens
- POST   /_synapse/admin/v1/registration_tokens/new       create a token
- GET    /_synapse/admin/v1/registration_tokens/{token}
- PUT    /_synapse/admin/v1/registration_tokens/{token}   change uses_allowed / expiry_time
- DELETE /_synapse/admin/v1/registration_tokens/{token}

The shared-secret endpoints authenticate by the MAC alone (tools like
`register_new_matrix_user` have no access token yet); the token endpoints need
a server admin's access token.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hearth.api.auth import require_admin
from hearth.api.errors import json_response, parse_body, parse_bool
from hearth.api.keys import HS
from hearth.errors import invalid_param
from hearth.storage.registration_tokens import RegistrationToken
from hearth.validation import Model

routes = web.RouteTableDef()


class SharedSecretBody(Model, strict=True):
    nonce: str
    username: str
    password: str
    mac: str
    admin: bool = False
    displayname: str | None = None
    user_type: str | None = None


class NewTokenBody(Model, strict=True):
    token: str | None = None
    uses_allowed: int | None = None
    expiry_time: int | None = None
    length: int = 16


class UpdateTokenBody(Model, strict=True):
    uses_allowed: int | None = None
    expiry_time: int | None = None


@routes.get("/v1/register")
async def get_nonce(request: web.Request) -> web.Response:
    return json_response({"nonce": request.config_dict[HS].shared_secret_registration.new_nonce()})


@routes.post("/v1/register")
async def shared_secret_register(request: web.Request) -> web.Response:
    hs = request.config_dict[HS]
    body = await parse_body(request, SharedSecretBody)
    if body.user_type is not None:
        raise invalid_param("user_type is not supported")
    tokens = await hs.shared_secret_registration.register(
        nonce=body.nonce, username=body.username, password=body.password, admin=body.admin,
        mac=body.mac, displayname=body.displayname,
    )
    return json_response({"access_token": tokens.access_token, "user_id": tokens.user_id,
                          "home_server": hs.config.server_name, "device_id": tokens.device_id})


def _token_json(token: RegistrationToken) -> dict[str, Any]:
    return {"token": token.token, "uses_allowed": token.uses_allowed, "pending": token.pending,
            "completed": token.completed, "expiry_time": token.expiry_ts}


@routes.get("/v1/registration_tokens")
async def list_tokens(request: web.Request) -> web.Response:
    await require_admin(request)
    valid = parse_bool(request, "valid") if "valid" in request.query else None
    tokens = await request.config_dict[HS].registration.list_tokens(valid)
    return json_response({"registration_tokens": [_token_json(t) for t in tokens]})


@routes.post("/v1/registration_tokens/new")
async def new_token(request: web.Request) -> web.Response:
    await require_admin(request)
    body = await parse_body(request, NewTokenBody)
    token = await request.config_dict[HS].registration.create_token(
        token=body.token, uses_allowed=body.uses_allowed, expiry_ts=body.expiry_time, length=body.length)
    return json_response(_token_json(token))


@routes.get("/v1/registration_tokens/{token}")
async def get_token(request: web.Request) -> web.Response:
    await require_admin(request)
    token = await request.config_dict[HS].registration.get_token(request.match_info["token"])
    return json_response(_token_json(token))


@routes.put("/v1/registration_tokens/{token}")
async def update_token(request: web.Request) -> web.Response:
    await require_admin(request)
    body = await parse_body(request, UpdateTokenBody)
    token = await request.config_dict[HS].registration.update_token(
        request.match_info["token"], uses_allowed=body.uses_allowed, expiry_ts=body.expiry_time,
        set_uses="uses_allowed" in body.model_fields_set, set_expiry="expiry_time" in body.model_fields_set)
    return json_response(_token_json(token))


@routes.delete("/v1/registration_tokens/{token}")
async def delete_token(request: web.Request) -> web.Response:
    await require_admin(request)
    await request.config_dict[HS].registration.delete_token(request.match_info["token"])
    return json_response({})
