"""Push rules (pushrules.yaml).

    GET    /v3/pushrules/                                   {"global": ruleset}
    GET    /v3/pushrules/global/                            the ruleset
    GET    /v3/pushrules/global/{kind}/{ruleId}             one rule
    PUT    /v3/pushrules/global/{kind}/{ruleId}             create/update (?before=, ?after=)
    DELETE /v3/pushrules/global/{kind}/{ruleId}
    GET    /v3/pushrules/global/{kind}/{ruleId}/enabled
    PUT    /v3/pushrules/global/{kind}/{ruleId}/enabled     {"enabled": bool}
    GET    /v3/pushrules/global/{kind}/{ruleId}/actions
    PUT    /v3/pushrules/global/{kind}/{ruleId}/actions     {"actions": [...]}

(each also under /r0/, and the two listings without their trailing slash).
`global` is the only scope; another is 400 M_INVALID_PARAM, as is an unknown
kind. Rule validation and the rules about server-default rules are in
`hearth.push.rules_service`.
"""

from __future__ import annotations

from aiohttp import web

from hearth.api.auth import get_requester
from hearth.api.errors import json_response, read_json_object
from hearth.api.keys import HS
from hearth.errors import bad_json, invalid_param, missing_param
from hearth.push.rules_service import check_kind

routes = web.RouteTableDef()


def _rule_path(request: web.Request) -> tuple[str, str]:
    """(kind, rule_id) from the path, after checking the scope and kind."""
    if request.match_info["scope"] != "global":
        raise invalid_param("Only the 'global' push rule scope is supported")
    kind = request.match_info["kind"]
    check_kind(kind)
    return kind, request.match_info["rule_id"]


@routes.get("/v3/pushrules/")
@routes.get("/r0/pushrules/")
@routes.get("/v3/pushrules")
@routes.get("/r0/pushrules")
async def get_all(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    ruleset = await request.config_dict[HS].push_rules.ruleset(requester.user_id)
    return json_response({"global": ruleset.to_json()})


@routes.get("/v3/pushrules/global/")
@routes.get("/r0/pushrules/global/")
@routes.get("/v3/pushrules/global")
@routes.get("/r0/pushrules/global")
async def get_global(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    ruleset = await request.config_dict[HS].push_rules.ruleset(requester.user_id)
    return json_response(ruleset.to_json())


@routes.get("/v3/pushrules/{scope}/{kind}/{rule_id}")
@routes.get("/r0/pushrules/{scope}/{kind}/{rule_id}")
async def get_rule(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    kind, rule_id = _rule_path(request)
    rule = await request.config_dict[HS].push_rules.get_rule(requester.user_id, kind, rule_id)
    return json_response(rule.to_json())


@routes.put("/v3/pushrules/{scope}/{kind}/{rule_id}")
@routes.put("/r0/pushrules/{scope}/{kind}/{rule_id}")
async def put_rule(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    kind, rule_id = _rule_path(request)
    body = await read_json_object(request)
    await request.config_dict[HS].push_rules.put_rule(
        requester.user_id, kind, rule_id, body,
        before=request.query.get("before"), after=request.query.get("after"),
    )
    return json_response({})


@routes.delete("/v3/pushrules/{scope}/{kind}/{rule_id}")
@routes.delete("/r0/pushrules/{scope}/{kind}/{rule_id}")
async def delete_rule(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    kind, rule_id = _rule_path(request)
    await request.config_dict[HS].push_rules.delete_rule(requester.user_id, kind, rule_id)
    return json_response({})


@routes.get("/v3/pushrules/{scope}/{kind}/{rule_id}/enabled")
@routes.get("/r0/pushrules/{scope}/{kind}/{rule_id}/enabled")
async def get_enabled(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    kind, rule_id = _rule_path(request)
    rule = await request.config_dict[HS].push_rules.get_rule(requester.user_id, kind, rule_id)
    return json_response({"enabled": rule.enabled})


@routes.put("/v3/pushrules/{scope}/{kind}/{rule_id}/enabled")
@routes.put("/r0/pushrules/{scope}/{kind}/{rule_id}/enabled")
async def put_enabled(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    kind, rule_id = _rule_path(request)
    body = await read_json_object(request)
    if "enabled" not in body:
        raise missing_param("Missing parameter: enabled")
    if not isinstance(body["enabled"], bool):
        raise bad_json("enabled must be a boolean")
    await request.config_dict[HS].push_rules.set_enabled(requester.user_id, kind, rule_id, body["enabled"])
    return json_response({})


@routes.get("/v3/pushrules/{scope}/{kind}/{rule_id}/actions")
@routes.get("/r0/pushrules/{scope}/{kind}/{rule_id}/actions")
async def get_actions(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    kind, rule_id = _rule_path(request)
    rule = await request.config_dict[HS].push_rules.get_rule(requester.user_id, kind, rule_id)
    return json_response({"actions": rule.to_json()["actions"]})


@routes.put("/v3/pushrules/{scope}/{kind}/{rule_id}/actions")
@routes.put("/r0/pushrules/{scope}/{kind}/{rule_id}/actions")
async def put_actions(request: web.Request) -> web.Response:
    requester = await get_requester(request)
    kind, rule_id = _rule_path(request)
    body = await read_json_object(request)
    if "actions" not in body:
        raise missing_param("Missing parameter: actions")
    await request.config_dict[HS].push_rules.set_actions(requester.user_id, kind, rule_id, body["actions"])
    return json_response({})
