"""/user/{userId}/filter and /user/{userId}/filter/{filterId}."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.users import make_user

SPEC_EXAMPLE: dict[str, Any] = {
    "room": {
        "state": {"types": ["m.room.*"], "not_rooms": ["!726s6s6q:example.com"]},
        "timeline": {"limit": 10, "types": ["m.room.message"], "not_rooms": ["!726s6s6q:example.com"],
                     "not_senders": ["@spam:example.com"]},
        "ephemeral": {"types": ["m.receipt", "m.typing"], "not_rooms": ["!726s6s6q:example.com"],
                      "not_senders": ["@spam:example.com"]},
    },
    "presence": {"types": ["m.presence"], "not_senders": ["@alice:example.com"]},
    "event_format": "client",
    "event_fields": ["type", "content", "sender"],
}


def _url(user_id: str, filter_id: str | None = None) -> str:
    base = f"/_matrix/client/v3/user/{user_id}/filter"
    return base if filter_id is None else f"{base}/{filter_id}"


async def test_upload_and_download(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    body = await client.request("POST", _url(alice.user_id), token=alice.token, json=SPEC_EXAMPLE)
    filter_id = body["filter_id"]
    assert isinstance(filter_id, str) and not filter_id.startswith("{")
    assert await client.request("GET", _url(alice.user_id, filter_id), token=alice.token) == SPEC_EXAMPLE


async def test_every_field_of_the_schema_is_accepted(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    room_event_filter = {
        "limit": 5, "types": ["m.*"], "not_types": ["m.room.member"], "senders": ["@a:b.c"],
        "not_senders": ["@d:e.f"], "rooms": ["!r:b.c"], "not_rooms": ["!s:b.c"], "contains_url": True,
        "lazy_load_members": True, "include_redundant_members": False, "unread_thread_notifications": True,
    }
    definition = {
        "event_fields": ["content.body"], "event_format": "federation",
        "presence": {"limit": 1, "types": [], "not_types": [], "senders": [], "not_senders": []},
        "account_data": {"limit": 2},
        "room": {"rooms": ["!r:b.c"], "not_rooms": [], "include_leave": True,
                 "ephemeral": room_event_filter, "state": room_event_filter,
                 "timeline": room_event_filter, "account_data": room_event_filter},
    }
    body = await client.request("POST", _url(alice.user_id), token=alice.token, json=definition)
    fetched = await client.request("GET", _url(alice.user_id, body["filter_id"]), token=alice.token)
    assert fetched == definition


async def test_empty_filter_and_unknown_keys_round_trip(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    empty = await client.request("POST", _url(alice.user_id), token=alice.token, json={})
    assert await client.request("GET", _url(alice.user_id, empty["filter_id"]), token=alice.token) == {}
    extra = {"org.example.future": {"x": 1}, "room": {"timeline": {"org.example.knob": True}}}
    made = await client.request("POST", _url(alice.user_id), token=alice.token, json=extra)
    assert await client.request("GET", _url(alice.user_id, made["filter_id"]), token=alice.token) == extra


async def test_filters_get_distinct_ids_and_identical_ones_are_reused(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    first = await client.request("POST", _url(alice.user_id), token=alice.token, json={"room": {}})
    second = await client.request("POST", _url(alice.user_id), token=alice.token, json={"presence": {}})
    again = await client.request("POST", _url(alice.user_id), token=alice.token, json={"room": {}})
    assert first["filter_id"] != second["filter_id"]
    assert again["filter_id"] == first["filter_id"]


async def test_r0_paths(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    base = f"/_matrix/client/r0/user/{alice.user_id}/filter"
    made = await client.request("POST", base, token=alice.token, json={"room": {"include_leave": True}})
    body = await client.request("GET", f"{base}/{made['filter_id']}", token=alice.token)
    assert body == {"room": {"include_leave": True}}


@pytest.mark.parametrize("filter_id", ["999", "abc", "-1", "99999999999999999999", "1.5", "٣"])
async def test_unknown_filter_is_404(client: MatrixTestClient, filter_id: str) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("GET", _url(alice.user_id, filter_id), token=alice.token, expect=404)
    assert resp["errcode"] == "M_NOT_FOUND"


async def test_another_users_filter_is_forbidden(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    mallory = await make_user(client.hs, "mallory")
    made = await client.request("POST", _url(alice.user_id), token=alice.token, json={"room": {}})
    resp = await client.request("GET", _url(alice.user_id, made["filter_id"]), token=mallory.token,
                                expect=403)
    assert resp["errcode"] == "M_FORBIDDEN"


async def test_cannot_upload_for_another_user(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    mallory = await make_user(client.hs, "mallory")
    resp = await client.request("POST", _url(alice.user_id), token=mallory.token, json={}, expect=403)
    assert resp["errcode"] == "M_FORBIDDEN"


@pytest.mark.parametrize("definition,field", [
    ({"event_fields": "type"}, "event_fields"),
    ({"event_fields": [1]}, "event_fields"),
    ({"event_format": 1}, "event_format"),
    ({"presence": []}, "presence"),
    ({"presence": {"limit": "10"}}, "presence.limit"),
    ({"presence": {"limit": 1.5}}, "presence.limit"),
    ({"presence": {"limit": True}}, "presence.limit"),
    ({"account_data": {"types": "m.*"}}, "account_data.types"),
    ({"room": "all"}, "room"),
    ({"room": {"include_leave": "yes"}}, "room.include_leave"),
    ({"room": {"rooms": [5]}}, "room.rooms"),
    ({"room": {"timeline": {"contains_url": 1}}}, "room.timeline.contains_url"),
    ({"room": {"state": {"lazy_load_members": "true"}}}, "room.state.lazy_load_members"),
    ({"room": {"ephemeral": {"not_senders": "@a:b"}}}, "room.ephemeral.not_senders"),
])
async def test_wrong_types_are_bad_json(client: MatrixTestClient, definition: dict[str, Any],
                                        field: str) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", _url(alice.user_id), token=alice.token, json=definition, expect=400)
    assert resp["errcode"] == "M_BAD_JSON"
    assert field in resp["error"]


@pytest.mark.parametrize("definition,field", [
    ({"event_format": "xml"}, "event_format"),
    ({"presence": {"limit": 0}}, "presence.limit"),
    ({"room": {"timeline": {"limit": -5}}}, "room.timeline.limit"),
    ({"room": {"rooms": ["#alias:b.c"]}}, "room.rooms"),
    ({"room": {"timeline": {"not_rooms": ["room"]}}}, "room.timeline.not_rooms"),
    ({"presence": {"senders": ["alice"]}}, "presence.senders"),
    ({"room": {"state": {"not_senders": ["!r:b.c"]}}}, "room.state.not_senders"),
])
async def test_bad_values_are_invalid_param(client: MatrixTestClient, definition: dict[str, Any],
                                            field: str) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", _url(alice.user_id), token=alice.token, json=definition, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"
    assert field in resp["error"]


@pytest.mark.parametrize("body,errcode", [
    (b"{", "M_NOT_JSON"),
    (b"", "M_NOT_JSON"),
    (b"[]", "M_BAD_JSON"),
    (b'{"room": {"rooms": ["!\\udc00"]}}', "M_BAD_JSON"),  # a lone surrogate
])
async def test_body_errors(client: MatrixTestClient, body: bytes, errcode: str) -> None:
    alice = await make_user(client.hs, "alice")
    resp = await client.request("POST", _url(alice.user_id), token=alice.token, data=body, expect=400)
    assert resp["errcode"] == errcode


async def test_huge_body_is_too_large(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    huge = b'{"event_fields": ["' + b"x" * (10 * 1024 * 1024) + b'"]}'
    resp = await client.request("POST", _url(alice.user_id), token=alice.token, data=huge, expect=413)
    assert resp["errcode"] == "M_TOO_LARGE"


@pytest.mark.parametrize("method,filter_id", [("POST", None), ("GET", "0")])
async def test_needs_a_token(client: MatrixTestClient, method: str, filter_id: str | None) -> None:
    url = _url("@alice:test.local", filter_id)
    resp = await client.request(method, url, json={}, expect=401)
    assert resp["errcode"] == "M_MISSING_TOKEN"
    resp = await client.request(method, url, token="hat_unknown", json={}, expect=401)
    assert resp["errcode"] == "M_UNKNOWN_TOKEN"


async def test_query_token(client: MatrixTestClient) -> None:
    alice = await make_user(client.hs, "alice")
    made = await client.request("POST", f"{_url(alice.user_id)}?access_token={alice.token}", json={})
    await client.request("GET", f"{_url(alice.user_id, made['filter_id'])}?access_token={alice.token}")
