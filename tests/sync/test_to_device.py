"""PUT /sendToDevice and the to_device section of /sync (delivery, acknowledgement, limits)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from sqlalchemy import func, select

from hearth.storage.tables import to_device_inbox
from hearth.sync.streams.to_device import DEFAULT_LIMIT
from hearth.sync.token import SyncToken
from tests.helpers.clients import ClientFactory
from tests.helpers.homeserver import MatrixTestClient
from tests.helpers.users import UserSession, login_device, make_user, password_auth

SYNC = "/_matrix/client/v3/sync"
TYPE = "m.test.ping"
_txn = itertools.count()


def send_url(txn_id: str | None = None, event_type: str = TYPE) -> str:
    return f"/_matrix/client/v3/sendToDevice/{event_type}/{txn_id or f'txn{next(_txn)}'}"


async def send(client: MatrixTestClient, sender: UserSession, messages: dict[str, Any], *,
               txn_id: str | None = None, event_type: str = TYPE) -> None:
    body = await client.request("PUT", send_url(txn_id, event_type), token=sender.token,
                                json={"messages": messages})
    assert body == {}


async def sync(client: MatrixTestClient, who: UserSession, since: str | None = None,
               **params: Any) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return await client.request(
        "GET", SYNC + "?" + (f"since={since}&" if since else "") + query, token=who.token)


def events(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body["to_device"]["events"]


def contents(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["content"] for e in events(body)]


async def inbox_size(client: MatrixTestClient, who: UserSession) -> int:
    async with client.hs.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(to_device_inbox).where(
            to_device_inbox.c.user_id == who.user_id,
            to_device_inbox.c.device_id == who.device_id))).scalar_one())


async def users(client: MatrixTestClient) -> tuple[UserSession, UserSession, UserSession]:
    alice = await make_user(client.hs, "alice", device_id="ALICE1")
    bob = await make_user(client.hs, "bob", device_id="BOB1")
    bob2 = await login_device(client.hs, bob.user_id, device_id="BOB2")
    return alice, bob, bob2


# --- delivery ---------------------------------------------------------------------------


async def test_message_reaches_the_named_device_only(client: MatrixTestClient) -> None:
    alice, bob, bob2 = await users(client)
    carol = await make_user(client.hs, "carol", device_id="BOB1")  # same device ID, other user
    await send(client, alice, {bob.user_id: {"BOB1": {"n": 1}}})
    body = await sync(client, bob)
    assert events(body) == [{"sender": alice.user_id, "type": TYPE, "content": {"n": 1}}]
    assert events(await sync(client, bob2)) == []
    assert events(await sync(client, carol)) == []
    assert events(await sync(client, alice)) == []


async def test_star_reaches_every_device_of_the_user(client: MatrixTestClient) -> None:
    alice, bob, bob2 = await users(client)
    carol = await make_user(client.hs, "carol")
    await send(client, alice, {bob.user_id: {"*": {"all": True}}})
    assert contents(await sync(client, bob)) == [{"all": True}]
    assert contents(await sync(client, bob2)) == [{"all": True}]
    assert events(await sync(client, carol)) == []


async def test_named_device_overrides_star(client: MatrixTestClient) -> None:
    alice, bob, bob2 = await users(client)
    await send(client, alice, {bob.user_id: {"*": {"to": "all"}, "BOB2": {"to": "bob2"}}})
    assert contents(await sync(client, bob)) == [{"to": "all"}]
    assert contents(await sync(client, bob2)) == [{"to": "bob2"}]


async def test_several_users_in_one_request(client: MatrixTestClient) -> None:
    alice, bob, bob2 = await users(client)
    await send(client, bob, {alice.user_id: {"ALICE1": {"for": "alice"}},
                             bob.user_id: {"BOB2": {"for": "bob2"}}})
    assert events(await sync(client, alice)) == [
        {"sender": bob.user_id, "type": TYPE, "content": {"for": "alice"}}]
    assert contents(await sync(client, bob2)) == [{"for": "bob2"}]
    assert events(await sync(client, bob)) == []


async def test_messages_arrive_in_order(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    for n in range(5):
        await send(client, alice, {bob.user_id: {"BOB1": {"n": n}}}, event_type=f"m.test.{n}")
    body = await sync(client, bob)
    assert [e["type"] for e in events(body)] == [f"m.test.{n}" for n in range(5)]
    assert contents(body) == [{"n": n} for n in range(5)]


async def test_unknown_devices_users_and_remote_users_are_dropped(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    await send(client, alice, {
        bob.user_id: {"NOSUCHDEVICE": {"n": 1}, "BOB1": {"n": 2}},
        "@nobody:test.local": {"*": {"n": 3}},
        "@someone:elsewhere.example": {"*": {"n": 4}},
        "@empty:test.local": {},
    })
    assert contents(await sync(client, bob)) == [{"n": 2}]
    assert await inbox_size(client, bob) == 1


async def test_content_round_trips(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    content = {"nested": {"list": [1, "two", None, True], "nul": "a\u0000b"}, "é": "ü"}
    await send(client, alice, {bob.user_id: {"BOB1": content}})
    assert contents(await sync(client, bob)) == [content]


async def test_r0_path(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    await client.request("PUT", f"/_matrix/client/r0/sendToDevice/{TYPE}/r0txn", token=alice.token,
                         json={"messages": {bob.user_id: {"BOB1": {"r0": True}}}})
    assert contents(await sync(client, bob)) == [{"r0": True}]


# --- idempotency --------------------------------------------------------------------------


async def test_retried_transaction_is_delivered_once(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    for _ in range(3):
        await send(client, alice, {bob.user_id: {"BOB1": {"n": 1}}}, txn_id="same")
    assert contents(await sync(client, bob)) == [{"n": 1}]
    assert await inbox_size(client, bob) == 1


async def test_transaction_ids_are_per_sending_device(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    alice2 = await login_device(client.hs, alice.user_id, device_id="ALICE2")
    await send(client, alice, {bob.user_id: {"BOB1": {"from": 1}}}, txn_id="same")
    await send(client, alice2, {bob.user_id: {"BOB1": {"from": 2}}}, txn_id="same")
    await send(client, alice, {bob.user_id: {"BOB1": {"from": 3}}}, txn_id="other")
    assert contents(await sync(client, bob)) == [{"from": 1}, {"from": 2}, {"from": 3}]


async def test_concurrent_duplicates_are_delivered_once(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    await asyncio.gather(*(send(client, alice, {bob.user_id: {"BOB1": {"n": 1}}}, txn_id="race")
                           for _ in range(5)))
    assert contents(await sync(client, bob)) == [{"n": 1}]


# --- acknowledgement ------------------------------------------------------------------------


async def test_acknowledged_by_syncing_with_the_next_token(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    first = await sync(client, bob)
    await send(client, alice, {bob.user_id: {"BOB1": {"n": 1}}})
    got = await sync(client, bob, since=first["next_batch"])
    assert contents(got) == [{"n": 1}]
    # The client lost that response and retries with the old token: delivered again.
    again = await sync(client, bob, since=first["next_batch"])
    assert contents(again) == [{"n": 1}]
    assert await inbox_size(client, bob) == 1
    # Syncing with the newer token acknowledges it: deleted, never delivered again.
    after = await sync(client, bob, since=again["next_batch"])
    assert events(after) == []
    assert await inbox_size(client, bob) == 0
    assert events(await sync(client, bob, since=first["next_batch"])) == []
    assert events(await sync(client, bob)) == []


async def test_initial_sync_delivers_unacknowledged_messages(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    await send(client, alice, {bob.user_id: {"BOB1": {"n": 1}}})
    assert contents(await sync(client, bob)) == [{"n": 1}]
    assert contents(await sync(client, bob)) == [{"n": 1}]


async def test_ack_leaves_newer_messages(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    await send(client, alice, {bob.user_id: {"BOB1": {"n": 1}}})
    got = await sync(client, bob)
    await send(client, alice, {bob.user_id: {"BOB1": {"n": 2}}})
    assert contents(await sync(client, bob, since=got["next_batch"])) == [{"n": 2}]
    assert await inbox_size(client, bob) == 1


async def test_one_device_acknowledging_leaves_the_others(client: MatrixTestClient) -> None:
    alice, bob, bob2 = await users(client)
    await send(client, alice, {bob.user_id: {"*": {"n": 1}}})
    got = await sync(client, bob)
    await sync(client, bob, since=got["next_batch"])
    assert await inbox_size(client, bob) == 0
    assert await inbox_size(client, bob2) == 1
    assert contents(await sync(client, bob2)) == [{"n": 1}]


async def test_next_batch_without_messages_is_the_stream_position(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    await send(client, alice, {bob.user_id: {"BOB2": {"n": 1}}})
    await send(client, alice, {bob.user_id: {"BOB2": {"n": 2}}})
    body = await sync(client, bob)
    assert events(body) == []
    assert SyncToken.parse(body["next_batch"]).to_device == 2


# --- limits ------------------------------------------------------------------------------------


async def test_large_queue_is_spread_over_syncs(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    total = DEFAULT_LIMIT + 3
    for n in range(total):
        await send(client, alice, {bob.user_id: {"BOB1": {"n": n}}})
    first = await sync(client, bob)
    assert contents(first) == [{"n": n} for n in range(DEFAULT_LIMIT)]
    assert SyncToken.parse(first["next_batch"]).to_device == DEFAULT_LIMIT
    # The rest is news: a long-poll returns at once.
    second = await sync(client, bob, since=first["next_batch"], timeout=30000)
    assert contents(second) == [{"n": n} for n in range(DEFAULT_LIMIT, total)]
    assert SyncToken.parse(second["next_batch"]).to_device == total
    assert await inbox_size(client, bob) == 3
    third = await sync(client, bob, since=second["next_batch"])
    assert events(third) == []
    assert await inbox_size(client, bob) == 0


# --- long-polls -----------------------------------------------------------------------------


async def test_long_poll_wakes_on_a_message(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    mark = await sync(client, bob)
    poll = asyncio.create_task(sync(client, bob, since=mark["next_batch"], timeout=30000))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await send(client, alice, {bob.user_id: {"BOB1": {"wake": True}}})
    body = await asyncio.wait_for(poll, 10)
    assert contents(body) == [{"wake": True}]


async def test_long_poll_keeps_waiting_for_another_devices_message(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    mark = await sync(client, bob)
    poll = asyncio.create_task(sync(client, bob, since=mark["next_batch"], timeout=30000))
    await asyncio.sleep(0.05)
    await send(client, alice, {bob.user_id: {"BOB2": {"for": "bob2"}}})
    await asyncio.sleep(0.05)
    assert not poll.done()
    await send(client, alice, {bob.user_id: {"BOB1": {"for": "bob1"}}})
    body = await asyncio.wait_for(poll, 10)
    assert contents(body) == [{"for": "bob1"}]


async def test_long_poll_times_out_empty(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    mark = await sync(client, bob)
    await send(client, alice, {bob.user_id: {"BOB2": {"n": 1}}})
    body = await sync(client, bob, since=mark["next_batch"], timeout=0)
    assert events(body) == []
    assert SyncToken.parse(body["next_batch"]).to_device == 1


# --- restart --------------------------------------------------------------------------------


async def test_tokens_and_inbox_survive_a_restart(make_client: ClientFactory) -> None:
    first = await make_client()
    alice, bob, _ = await users(first)
    mark = await sync(first, bob)
    await send(first, alice, {bob.user_id: {"BOB1": {"n": 1}}})
    got = await sync(first, bob, since=mark["next_batch"])
    assert contents(got) == [{"n": 1}]
    second = await make_client()
    # Not yet acknowledged: the old token gets it again from the new process.
    assert contents(await sync(second, bob, since=mark["next_batch"])) == [{"n": 1}]
    await send(second, alice, {bob.user_id: {"BOB1": {"n": 2}}})
    body = await sync(second, bob, since=got["next_batch"])
    assert contents(body) == [{"n": 2}]
    assert await inbox_size(second, bob) == 1


# --- devices going away -------------------------------------------------------------------------


async def test_deleting_a_device_drops_its_inbox(client: MatrixTestClient) -> None:
    alice, bob, bob2 = await users(client)
    await send(client, alice, {bob.user_id: {"*": {"n": 1}}})
    devices = "/_matrix/client/v3/devices/BOB2"
    challenge = await client.request("DELETE", devices, token=bob.token, expect=401)
    await client.request("DELETE", devices, token=bob.token,
                         json={"auth": password_auth(bob.user_id, challenge["session"])})
    assert await inbox_size(client, bob2) == 0
    assert await inbox_size(client, bob) == 1
    # A new login reusing the device ID starts with an empty inbox.
    again = await login_device(client.hs, bob.user_id, device_id="BOB2")
    assert events(await sync(client, again)) == []


async def test_deactivation_drops_every_inbox(client: MatrixTestClient) -> None:
    alice, bob, bob2 = await users(client)
    await send(client, alice, {bob.user_id: {"*": {"n": 1}}})
    url = "/_matrix/client/v3/account/deactivate"
    challenge = await client.request("POST", url, token=bob.token, json={}, expect=401)
    await client.request("POST", url, token=bob.token,
                         json={"auth": password_auth(bob.user_id, challenge["session"])})
    assert await inbox_size(client, bob) == 0
    assert await inbox_size(client, bob2) == 0


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "errcode"), [
    (b"", "M_NOT_JSON"),
    (b"{not json", "M_NOT_JSON"),
    (b"[]", "M_BAD_JSON"),
    (b"{}", "M_MISSING_PARAM"),
    (b'{"messages": []}', "M_BAD_JSON"),
    (b'{"messages": "x"}', "M_BAD_JSON"),
    (b'{"messages": {"@bob:test.local": []}}', "M_BAD_JSON"),
    (b'{"messages": {"@bob:test.local": {"BOB1": "text"}}}', "M_BAD_JSON"),
    (b'{"messages": {"@bob:test.local": {"BOB1": ["x"]}}}', "M_BAD_JSON"),
    (b'{"messages": {"bob": {"BOB1": {}}}}', "M_INVALID_PARAM"),
    (b'{"messages": {"@bob": {"BOB1": {}}}}', "M_INVALID_PARAM"),
    (b'{"messages": {"@bob:test.local": {"BOB1": {"a": "\\ud800"}}}}', "M_BAD_JSON"),
])
async def test_bad_bodies(client: MatrixTestClient, body: bytes, errcode: str) -> None:
    alice, bob, _ = await users(client)
    resp = await client.request("PUT", send_url(), token=alice.token, data=body, expect=400)
    assert resp["errcode"] == errcode
    assert events(await sync(client, bob)) == []


async def test_rejected_request_does_not_use_up_the_txn_id(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    await client.request("PUT", send_url("t1"), token=alice.token, data=b'{"messages": []}', expect=400)
    await send(client, alice, {bob.user_id: {"BOB1": {"n": 1}}}, txn_id="t1")
    assert contents(await sync(client, bob)) == [{"n": 1}]


async def test_empty_messages_is_fine(client: MatrixTestClient) -> None:
    alice, _, _ = await users(client)
    await send(client, alice, {})


async def test_event_type_too_long(client: MatrixTestClient) -> None:
    alice, bob, _ = await users(client)
    resp = await client.request("PUT", send_url(event_type="m." + "x" * 300), token=alice.token,
                                json={"messages": {bob.user_id: {"BOB1": {}}}}, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"


async def test_needs_a_token(client: MatrixTestClient) -> None:
    resp = await client.request("PUT", send_url(), json={"messages": {}}, expect=401)
    assert resp["errcode"] == "M_MISSING_TOKEN"


@pytest.mark.parametrize("url", [
    f"/_matrix/client/v3/sendToDevice/{TYPE}/a%00b",
    "/_matrix/client/v3/sendToDevice/m.a%00b/txn",
])
async def test_unstorable_path_parts(client: MatrixTestClient, url: str) -> None:
    alice, bob, _ = await users(client)
    resp = await client.request("PUT", url, token=alice.token,
                                json={"messages": {bob.user_id: {"BOB1": {}}}}, expect=400)
    assert resp["errcode"] == "M_INVALID_PARAM"
