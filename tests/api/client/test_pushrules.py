"""Push rules API (pushrules.yaml): listing, CRUD, ordering, enabled/actions, errors, m.push_rules."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.helpers.homeserver import MatrixTestClient

RULES = "/_matrix/client/v3/pushrules"


def ids(ruleset: dict[str, Any], kind: str) -> list[str]:
    return [r["rule_id"] for r in ruleset[kind]]


async def test_default_ruleset_is_the_spec_list_in_order(client: MatrixTestClient) -> None:
    alice, token = await client.user("alice")
    body = await client.request("GET", f"{RULES}/", token=token)
    ruleset = body["global"]
    assert ids(ruleset, "override") == [
        ".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me", ".m.rule.member_event",
        ".m.rule.is_user_mention", ".m.rule.is_room_mention", ".m.rule.tombstone", ".m.rule.reaction",
        ".m.rule.room.server_acl", ".m.rule.suppress_edits",
    ]
    assert ruleset["content"] == [] and ruleset["room"] == [] and ruleset["sender"] == []
    assert ids(ruleset, "underride") == [
        ".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one", ".m.rule.message",
        ".m.rule.encrypted",
    ]
    master = ruleset["override"][0]
    assert master == {"rule_id": ".m.rule.master", "default": True, "enabled": False, "conditions": [],
                      "actions": []}
    mention = ruleset["override"][4]
    assert mention["conditions"] == [
        {"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": alice}
    ]
    assert mention["actions"] == [
        "notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "highlight"}
    ]
    invite = ruleset["override"][2]
    assert invite["conditions"][2] == {"key": "state_key", "kind": "event_match", "pattern": alice}
    assert await client.request("GET", f"{RULES}/global/", token=token) == ruleset
    assert await client.request("GET", RULES, token=token) == body


async def test_put_get_delete_a_rule(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    rule = {"pattern": "cake*lie", "actions": ["notify"]}
    assert await client.request("PUT", f"{RULES}/global/content/nocake", token=token, json=rule) == {}
    got = await client.request("GET", f"{RULES}/global/content/nocake", token=token)
    assert got == {"rule_id": "nocake", "default": False, "enabled": True, "pattern": "cake*lie",
                   "actions": ["notify"]}
    ruleset = await client.request("GET", f"{RULES}/global/", token=token)
    assert ruleset["content"] == [got]
    await client.request("DELETE", f"{RULES}/global/content/nocake", token=token)
    body = await client.request("GET", f"{RULES}/global/content/nocake", token=token, expect=404)
    assert body["errcode"] == "M_NOT_FOUND"
    body = await client.request("DELETE", f"{RULES}/global/content/nocake", token=token, expect=404)
    assert body["errcode"] == "M_NOT_FOUND"


async def test_room_sender_and_override_rules(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    await client.request("PUT", f"{RULES}/global/room/%21abc%3Aexample.org", token=token,
                         json={"actions": []})
    await client.request("PUT", f"{RULES}/global/sender/%40spam%3Aexample.org", token=token,
                         json={"actions": ["dont_notify"]})
    cond = [{"kind": "event_match", "key": "content.body", "pattern": "beer"},
            {"kind": "room_member_count", "is": "<=10"}]
    await client.request("PUT", f"{RULES}/global/override/beer", token=token,
                         json={"conditions": cond,
                               "actions": ["notify", {"set_tweak": "sound", "value": "b"}]})
    ruleset = await client.request("GET", f"{RULES}/global/", token=token)
    assert ruleset["room"] == [
        {"rule_id": "!abc:example.org", "default": False, "enabled": True, "actions": []}
    ]
    # Historical actions are stripped.
    assert ruleset["sender"][0]["actions"] == []
    # A user override comes after the master rule and before the other server defaults.
    assert ids(ruleset, "override")[:3] == [".m.rule.master", "beer", ".m.rule.suppress_notices"]
    assert ruleset["override"][1]["conditions"] == cond


async def test_new_rules_go_first_and_before_after_place_them(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")

    async def put(rule_id: str, query: str = "") -> None:
        await client.request("PUT", f"{RULES}/global/content/{rule_id}{query}", token=token,
                             json={"pattern": rule_id, "actions": ["notify"]})

    async def order() -> list[str]:
        return ids(await client.request("GET", f"{RULES}/global/", token=token), "content")

    await put("a")
    await put("b")
    assert await order() == ["b", "a"]
    await put("c", "?after=a")
    await put("d", "?before=a")
    assert await order() == ["b", "d", "a", "c"]
    # Updating without before/after keeps the position; with them it moves.
    await put("d")
    assert await order() == ["b", "d", "a", "c"]
    await put("b", "?after=c")
    assert await order() == ["d", "a", "c", "b"]
    # before wins when both are given.
    await put("c", "?before=d&after=b")
    assert await order() == ["c", "d", "a", "b"]
    for anchor in ("missing", ".m.rule.master"):
        body = await client.request("PUT", f"{RULES}/global/content/e?before={anchor}", token=token,
                                    json={"pattern": "e", "actions": []}, expect=400)
        assert body["errcode"] == "M_UNKNOWN"
        assert anchor in body["error"]


async def test_enabled_and_actions_on_user_and_default_rules(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    base = f"{RULES}/global/override/.m.rule.master"
    assert await client.request("GET", f"{base}/enabled", token=token) == {"enabled": False}
    await client.request("PUT", f"{base}/enabled", token=token, json={"enabled": True})
    assert await client.request("GET", f"{base}/enabled", token=token) == {"enabled": True}
    msg = f"{RULES}/global/underride/.m.rule.message"
    sound = {"set_tweak": "sound", "value": "x"}
    await client.request("PUT", f"{msg}/actions", token=token, json={"actions": ["notify", sound]})
    assert (await client.request("GET", f"{msg}/actions", token=token))["actions"][1]["value"] == "x"
    # Changing one field of a default rule keeps the other change.
    assert (await client.request("GET", msg, token=token))["enabled"] is True
    await client.request("PUT", f"{msg}/enabled", token=token, json={"enabled": False})
    got = await client.request("GET", msg, token=token)
    assert got["enabled"] is False and got["actions"][1]["value"] == "x" and got["default"] is True

    await client.request("PUT", f"{RULES}/global/room/%21r%3Ax", token=token, json={"actions": ["notify"]})
    await client.request("PUT", f"{RULES}/global/room/%21r%3Ax/enabled", token=token, json={"enabled": False})
    await client.request("PUT", f"{RULES}/global/room/%21r%3Ax/actions", token=token, json={"actions": []})
    got = await client.request("GET", f"{RULES}/global/room/%21r%3Ax", token=token)
    assert got == {"rule_id": "!r:x", "default": False, "enabled": False, "actions": []}
    # An update by PUT keeps the rule disabled.
    await client.request("PUT", f"{RULES}/global/room/%21r%3Ax", token=token, json={"actions": ["notify"]})
    assert (await client.request("GET", f"{RULES}/global/room/%21r%3Ax/enabled", token=token)) == {
        "enabled": False}


async def test_errors(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")

    async def err(method: str, path: str, status: int, json: Any = None) -> str:
        body = await client.request(method, path, token=token, json=json, expect=status)
        return body["errcode"]  # type: ignore[no-any-return]

    g = f"{RULES}/global"
    assert await err("GET", f"{g}/override/nope", 404) == "M_NOT_FOUND"
    assert await err("GET", f"{g}/override/nope/enabled", 404) == "M_NOT_FOUND"
    assert await err("GET", f"{g}/override/nope/actions", 404) == "M_NOT_FOUND"
    assert await err("PUT", f"{g}/override/nope/enabled", 404, {"enabled": True}) == "M_NOT_FOUND"
    assert await err("PUT", f"{g}/override/nope/actions", 404, {"actions": []}) == "M_NOT_FOUND"
    # A default rule is looked up in its own kind only.
    assert await err("GET", f"{g}/underride/.m.rule.master", 404) == "M_NOT_FOUND"
    assert await err("GET", f"{g}/bogus/x", 400) == "M_INVALID_PARAM"
    assert await err("GET", f"{RULES}/device/override/x", 400) == "M_INVALID_PARAM"
    assert await err("PUT", f"{g}/override/.mine", 400, {"actions": []}) == "M_INVALID_PARAM"
    assert await err("PUT", f"{g}/override/a%5Cb", 400, {"actions": []}) == "M_INVALID_PARAM"
    assert await err("PUT", f"{g}/override/x", 400, {"conditions": []}) == "M_MISSING_PARAM"
    assert await err("PUT", f"{g}/content/x", 400, {"actions": []}) == "M_MISSING_PARAM"
    assert await err("PUT", f"{g}/content/x", 400, {"actions": [], "pattern": 3}) == "M_INVALID_PARAM"
    assert await err("PUT", f"{g}/override/x", 400, {"actions": "notify"}) == "M_INVALID_PARAM"
    assert await err("PUT", f"{g}/override/x", 400, {"actions": ["explode"]}) == "M_INVALID_PARAM"
    assert await err("PUT", f"{g}/override/x", 400, {"actions": [{"value": 1}]}) == "M_INVALID_PARAM"
    for bad in ({"kind": "event_match", "key": "type"}, {"kind": "event_property_is", "key": "a"},
                {"kind": "event_property_is", "key": "a", "value": [1]},
                {"kind": "room_member_count", "is": "lots"}, {"key": "x"}, "event_match"):
        body = {"actions": [], "conditions": [bad]}
        assert await err("PUT", f"{g}/override/x", 400, body) == "M_INVALID_PARAM"
    assert await err("PUT", f"{g}/override/x", 400, {"actions": [], "conditions": {}}) == "M_INVALID_PARAM"
    # Unknown condition kinds are accepted (and never match).
    await client.request("PUT", f"{g}/override/x", token=token,
                         json={"actions": [], "conditions": [{"kind": "org.example.future"}]})
    assert await err("DELETE", f"{g}/override/.m.rule.master", 400) == "M_INVALID_PARAM"
    assert await err("PUT", f"{g}/override/.m.rule.master", 400, {"actions": []}) == "M_INVALID_PARAM"
    assert await err("PUT", f"{g}/override/x/enabled", 400, {}) == "M_MISSING_PARAM"
    assert await err("PUT", f"{g}/override/x/enabled", 400, {"enabled": "yes"}) == "M_BAD_JSON"
    assert await err("PUT", f"{g}/override/x/actions", 400, {}) == "M_MISSING_PARAM"
    assert await err("PUT", f"{g}/override/x/actions", 400, {"actions": [7]}) == "M_INVALID_PARAM"
    resp = await client.http.request("PUT", f"{g}/override/x", data=b"not json",
                                     headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 400 and (await resp.json())["errcode"] == "M_NOT_JSON"
    body = await client.request("GET", f"{RULES}/", expect=401)
    assert body["errcode"] == "M_MISSING_TOKEN"


async def test_rules_are_per_user(client: MatrixTestClient) -> None:
    _, alice = await client.user("alice")
    _, bob = await client.user("bob")
    await client.request("PUT", f"{RULES}/global/content/mine", token=alice,
                         json={"pattern": "x", "actions": []})
    assert (await client.request("GET", f"{RULES}/global/", token=bob))["content"] == []
    await client.request("GET", f"{RULES}/global/content/mine", token=bob, expect=404)


async def test_changes_arrive_in_sync_as_account_data(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    first = await client.request("GET", "/_matrix/client/v3/sync", token=token)
    push_rules = [e for e in first["account_data"]["events"] if e["type"] == "m.push_rules"]
    assert len(push_rules) == 1
    assert push_rules[0]["content"] == await client.request("GET", f"{RULES}/", token=token)

    poll = asyncio.create_task(client.request(
        "GET", f"/_matrix/client/v3/sync?since={first['next_batch']}&timeout=30000", token=token))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await client.request("PUT", f"{RULES}/global/override/.m.rule.master/enabled", token=token,
                         json={"enabled": True})
    body = await asyncio.wait_for(poll, 10)
    events = [e for e in body["account_data"]["events"] if e["type"] == "m.push_rules"]
    assert len(events) == 1
    assert events[0]["content"]["global"]["override"][0]["enabled"] is True
    # The account data API refuses to write m.push_rules.
    alice = (await client.request("GET", "/_matrix/client/v3/account/whoami", token=token))["user_id"]
    resp = await client.request("PUT", f"/_matrix/client/v3/user/{alice}/account_data/m.push_rules",
                                token=token, json={}, expect=405)
    assert resp["errcode"] == "M_BAD_JSON"
