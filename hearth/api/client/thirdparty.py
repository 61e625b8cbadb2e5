"""Third-party identifiers and third-party networks, on a server that has neither.

Hearth sends no email or SMS, trusts no identity server and runs no bridges
(application services), so it stores no third-party identifiers (3PIDs) and
knows no third-party protocols. Each endpoint still answers with the error
the spec names for that case, never a 404 M_UNRECOGNIZED, and the
`m.3pid_changes` capability is `false` so clients do not offer these actions.

Account contact information (administrative_contact.yaml):

    GET  /v3/account/3pid                       {"threepids": []}
    POST /v3/account/3pid                       403 M_THREEPID_AUTH_FAILED (deprecated bind)
    POST /v3/account/3pid/add                   400 M_THREEPID_AUTH_FAILED (no validation session)
    POST /v3/account/3pid/bind                  403 M_SERVER_NOT_TRUSTED (no identity server)
    POST /v3/account/3pid/delete                400 M_THREEPID_NOT_FOUND
    POST /v3/account/3pid/unbind                400 M_THREEPID_NOT_FOUND
    POST /v3/account/3pid/email/requestToken    403 M_THREEPID_DENIED
    POST /v3/account/3pid/msisdn/requestToken   403 M_THREEPID_DENIED

Registration and password reset by 3PID (registration.yaml, password_management.yaml):

    POST /v3/register/email/requestToken            403 M_THREEPID_DENIED
    POST /v3/register/msisdn/requestToken           403 M_THREEPID_DENIED
    POST /v3/account/password/email/requestToken    403 M_THREEPID_DENIED
    POST /v3/account/password/msisdn/requestToken   403 M_THREEPID_DENIED

Third-party lookup (third_party_lookup.yaml):

    GET /v3/thirdparty/protocols                       {}
    GET /v3/thirdparty/protocol/{protocol}             404 M_NOT_FOUND
    GET /v3/thirdparty/location/{protocol}             404 M_NOT_FOUND
    GET /v3/thirdparty/user/{protocol}                 404 M_NOT_FOUND
    GET /v3/thirdparty/location?alias=...              []
    GET /v3/thirdparty/user?userid=...                 []

(each also under /r0/). Request bodies are checked first, so a malformed
request still gets M_BAD_JSON / M_MISSING_PARAM rather than the refusal.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, parse_body
from hearth.errors import MatrixError, missing_param, not_found
from hearth.validation import Model

routes = web.RouteTableDef()


class _Body(Model, strict=True, extra="allow"):
    """A body of JSON types as they are; keys it does not name are accepted."""


class ThreePidCreds(_Body):
    client_secret: str
    sid: str
    id_server: str | None = None
    id_access_token: str | None = None


class AddThreePidBody(_Body):
    client_secret: str
    sid: str
    auth: Any = None


class BindThreePidBody(ThreePidCreds):
    id_server: str


class LegacyAddThreePidBody(_Body):
    three_pid_creds: ThreePidCreds


class RemoveThreePidBody(_Body):
    medium: Literal["email", "msisdn"]
    address: str
    id_server: str | None = None


class EmailTokenBody(_Body):
    client_secret: str
    email: str
    send_attempt: int
    next_link: str | None = None
    id_server: str | None = None
    id_access_token: str | None = None


class MsisdnTokenBody(_Body):
    client_secret: str
    country: str
    phone_number: str
    send_attempt: int
    next_link: str | None = None
    id_server: str | None = None
    id_access_token: str | None = None


def _denied() -> MatrixError:
    return MatrixError(403, "M_THREEPID_DENIED",
                       "This server does not accept third-party identifiers (email or phone)")


def _not_found() -> MatrixError:
    return MatrixError(400, "M_THREEPID_NOT_FOUND",
                       "This server stores no third-party identifiers for your account")


# --- account contact information ----------------------------------------------


@routes.get("/v3/account/3pid")
@routes.get("/r0/account/3pid")
async def list_threepids(request: web.Request) -> web.Response:
    await get_requester(request)
    return json_response({"threepids": []})


@routes.post("/v3/account/3pid")
@routes.post("/r0/account/3pid")
async def legacy_add_threepid(request: web.Request) -> web.Response:
    await get_requester(request)
    await parse_body(request, LegacyAddThreePidBody)
    raise MatrixError(403, "M_THREEPID_AUTH_FAILED",
                      "This server trusts no identity server to verify third-party credentials")


@routes.post("/v3/account/3pid/add")
@routes.post("/r0/account/3pid/add")
async def add_threepid(request: web.Request) -> web.Response:
    await get_requester(request)
    await parse_body(request, AddThreePidBody)
    # A session ID could only come from our requestToken endpoints, which
    # never create one; no password is asked for an action that cannot succeed.
    raise MatrixError(400, "M_THREEPID_AUTH_FAILED",
                      "No validated third-party identifier session with this sid")


@routes.post("/v3/account/3pid/bind")
@routes.post("/r0/account/3pid/bind")
async def bind_threepid(request: web.Request) -> web.Response:
    await get_requester(request)
    await parse_body(request, BindThreePidBody)
    raise MatrixError(403, "M_SERVER_NOT_TRUSTED", "This server does not use identity servers")


@routes.post("/v3/account/3pid/delete")
@routes.post("/r0/account/3pid/delete")
async def delete_threepid(request: web.Request) -> web.Response:
    await get_requester(request)
    await parse_body(request, RemoveThreePidBody)
    raise _not_found()


@routes.post("/v3/account/3pid/unbind")
@routes.post("/r0/account/3pid/unbind")
async def unbind_threepid(request: web.Request) -> web.Response:
    await get_requester(request)
    await parse_body(request, RemoveThreePidBody)
    raise _not_found()


@routes.post("/v3/account/3pid/email/requestToken")
@routes.post("/r0/account/3pid/email/requestToken")
async def threepid_email_token(request: web.Request) -> web.Response:
    await get_requester(request)
    await parse_body(request, EmailTokenBody)
    raise _denied()


@routes.post("/v3/account/3pid/msisdn/requestToken")
@routes.post("/r0/account/3pid/msisdn/requestToken")
async def threepid_msisdn_token(request: web.Request) -> web.Response:
    await get_requester(request)
    await parse_body(request, MsisdnTokenBody)
    raise _denied()


# --- registration and password reset by 3PID (no access token) ---------------------


@routes.post("/v3/register/email/requestToken")
@routes.post("/r0/register/email/requestToken")
@routes.post("/v3/account/password/email/requestToken")
@routes.post("/r0/account/password/email/requestToken")
async def anonymous_email_token(request: web.Request) -> web.Response:
    await parse_body(request, EmailTokenBody)
    raise _denied()


@routes.post("/v3/register/msisdn/requestToken")
@routes.post("/r0/register/msisdn/requestToken")
@routes.post("/v3/account/password/msisdn/requestToken")
@routes.post("/r0/account/password/msisdn/requestToken")
async def anonymous_msisdn_token(request: web.Request) -> web.Response:
    await parse_body(request, MsisdnTokenBody)
    raise _denied()


# --- third-party networks (bridges) ----------------------------------------------


@routes.get("/v3/thirdparty/protocols")
@routes.get("/r0/thirdparty/protocols")
async def protocols(request: web.Request) -> web.Response:
    await get_requester(request)
    return json_response({})


@routes.get("/v3/thirdparty/protocol/{protocol}")
@routes.get("/r0/thirdparty/protocol/{protocol}")
@routes.get("/v3/thirdparty/location/{protocol}")
@routes.get("/r0/thirdparty/location/{protocol}")
@routes.get("/v3/thirdparty/user/{protocol}")
@routes.get("/r0/thirdparty/user/{protocol}")
async def unknown_protocol(request: web.Request) -> web.Response:
    await get_requester(request)
    raise not_found(f"Unknown third-party protocol: {request.match_info['protocol'][:100]}")


@routes.get("/v3/thirdparty/location")
@routes.get("/r0/thirdparty/location")
async def locations_for_alias(request: web.Request) -> web.Response:
    await get_requester(request)
    if "alias" not in request.query:
        raise missing_param("Missing query parameter: alias")
    return json_response([])


@routes.get("/v3/thirdparty/user")
@routes.get("/r0/thirdparty/user")
async def users_for_user_id(request: web.Request) -> web.Response:
    await get_requester(request)
    if "userid" not in request.query:
        raise missing_param("Missing query parameter: userid")
    return json_response([])
