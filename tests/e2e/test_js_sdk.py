"""matrix-js-sdk end to end: two users, each a real `MatrixClient` running the
SDK's own sync loop (no crypto), against a real `hearth serve`.

The SDK is what most Matrix clients (Element and its forks) build on, so these
tests check Hearth through its eyes: messages, typing, read receipts, room
names, invites and leaves, unread counts, all as the SDK reports them (its
events and its room model), not as raw JSON. The long-poll test uses a plain
`fetch` of /sync to check that it returns for the message and not before.

Every wait has a generous timeout so a broken server fails instead of hanging;
order is checked with the driver's event counter (`seq`), never with clocks.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.js_sdk import JsDriver, ensure_js_sdk
from tests.e2e.process import HearthProcess, http_json

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
_names = itertools.count()


@dataclass
class Account:
    user_id: str
    access_token: str
    device_id: str


def register(server: HearthProcess, prefix: str) -> Account:
    """A fresh account through the spec's UIA dance (first 401, then m.login.dummy)."""
    url = server.base_url + "/_matrix/client/v3/register"
    body: dict[str, Any] = {"username": f"{prefix}{os.getpid()}_{next(_names)}", "password": PASSWORD,
                            "initial_device_display_name": "matrix-js-sdk e2e"}
    status, challenge = http_json("POST", url, body=body)
    assert status == 401, challenge
    status, done = http_json("POST", url, body={**body, "auth": {"type": "m.login.dummy",
                                                                  "session": challenge["session"]}})
    assert status == 200, done
    return Account(done["user_id"], done["access_token"], done["device_id"])


@dataclass
class SdkUser:
    """One MatrixClient inside the driver, addressed by `name`."""

    js: JsDriver
    name: str
    account: Account

    @property
    def user_id(self) -> str:
        return self.account.user_id

    def call(self, method: str, *args: Any) -> dict[str, Any]:
        """`client[method](...args)`; returns {"issued", "done", "value"}."""
        result: dict[str, Any] = self.js.request("call", name=self.name, method=method, args=list(args))
        return result

    def wait(self, kind: str, after: int = 0, **match: Any) -> dict[str, Any]:
        """The first SDK event of `kind` numbered after `after` whose fields include `match`."""
        entry: dict[str, Any] = self.js.request("waitFor", name=self.name, kind=kind, match=match,
                                                after=after)
        return entry

    def log(self, kind: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.js.request("log", name=self.name, kind=kind)
        return entries

    def room(self, room_id: str) -> dict[str, Any]:
        snapshot: dict[str, Any] | None = self.js.request("room", name=self.name, roomId=room_id)
        assert snapshot is not None, f"{self.name}'s SDK has no room {room_id}"
        return snapshot

    def create_room(self, **options: Any) -> str:
        return str(self.call("createRoom", {"preset": "private_chat", **options})["value"]["room_id"])

    def read(self, room_id: str, event_id: str) -> int:
        """`sendReadReceipt` for an event this SDK holds; returns the seq the request was issued at."""
        sent = self.js.request("readReceipt", name=self.name, roomId=room_id, eventId=event_id)
        return int(sent["issued"])

    def send_text(self, room_id: str, body: str) -> tuple[str, int]:
        """Send a message; returns its event id and the seq at which the send was issued."""
        sent = self.call("sendTextMessage", room_id, body)
        return str(sent["value"]["event_id"]), int(sent["issued"])


@dataclass
class People:
    """Makes registered, started SDK users for one test and checks their sync loops after it."""

    js: JsDriver
    server: HearthProcess
    made: list[SdkUser] = field(default_factory=list)

    def new(self, name: str) -> SdkUser:
        account = register(self.server, name)
        self.js.request("login", name=name, baseUrl=self.server.base_url, userId=account.user_id,
                        accessToken=account.access_token, deviceId=account.device_id)
        user = SdkUser(self.js, name, account)
        self.js.request("start", name=name)
        self.made.append(user)
        return user

    def sync_failures(self) -> dict[str, list[dict[str, Any]]]:
        """Every time a sync loop hit an error (the SDK then retries, hiding it from the test)."""
        failures = {u.name: [e for e in u.log("sync") if e["state"] in ("ERROR", "RECONNECTING")]
                    for u in self.made}
        return {name: entries for name, entries in failures.items() if entries}


@pytest.fixture(scope="session")
def node() -> str:
    return ensure_js_sdk()


@pytest.fixture
def people(node: str, hearth_server: HearthProcess, tmp_path: Path) -> Iterator[People]:
    js = JsDriver.start(node, tmp_path)
    made = People(js, hearth_server)
    try:
        yield made
        failures = made.sync_failures()
        assert not failures, f"the SDK's sync loop failed: {json.dumps(failures)}\n{js.stderr()[-5000:]}"
    finally:
        js.close()


def shared_room(alice: SdkUser, bob: SdkUser, **create: Any) -> str:
    """A room alice creates and invites bob to, which bob joins; both SDKs have seen the join."""
    room_id = alice.create_room(**create)
    alice.call("invite", room_id, bob.user_id)
    bob.wait("myMembership", roomId=room_id, membership="invite")
    bob.call("joinRoom", room_id)
    alice.wait("membership", roomId=room_id, userId=bob.user_id, membership="join")
    bob.wait("myMembership", roomId=room_id, membership="join")
    return room_id


def test_messages_reach_the_other_user(people: People) -> None:
    alice, bob = people.new("alice"), people.new("bob")
    room_id = shared_room(alice, bob)

    hello, _ = alice.send_text(room_id, "hello bob")
    seen = bob.wait("timeline", roomId=room_id, eventId=hello)
    assert seen["live"] and not seen["toStartOfTimeline"]
    assert (seen["sender"], seen["type"]) == (alice.user_id, "m.room.message")
    assert seen["content"] == {"msgtype": "m.text", "body": "hello bob"}

    reply, _ = bob.send_text(room_id, "hi alice")
    seen = alice.wait("timeline", roomId=room_id, eventId=reply)
    assert (seen["sender"], seen["content"]["body"]) == (bob.user_id, "hi alice")

    # Both SDKs hold the same conversation, in the same order.
    for user in (alice, bob):
        ids = [e["eventId"] for e in user.room(room_id)["timeline"]]
        assert ids.index(hello) < ids.index(reply), ids


def test_typing_notifications(people: People) -> None:
    alice, bob = people.new("alice"), people.new("bob")
    room_id = shared_room(alice, bob)

    started = alice.call("sendTyping", room_id, True, 30000)
    assert bob.wait("typing", after=started["issued"], roomId=room_id, userId=alice.user_id, typing=True)
    stopped = alice.call("sendTyping", room_id, False)
    assert bob.wait("typing", after=stopped["issued"], roomId=room_id, userId=alice.user_id, typing=False)

    started = bob.call("sendTyping", room_id, True, 30000)
    assert alice.wait("typing", after=started["issued"], roomId=room_id, userId=bob.user_id, typing=True)


def test_read_receipts(people: People) -> None:
    alice, bob = people.new("alice"), people.new("bob")
    room_id = shared_room(alice, bob)
    first, _ = alice.send_text(room_id, "one")
    second, _ = alice.send_text(room_id, "two")
    bob.wait("timeline", roomId=room_id, eventId=second)

    issued = bob.read(room_id, first)
    seen = alice.wait("receipt", after=issued, roomId=room_id, userId=bob.user_id, eventId=first)
    assert seen["receiptType"] == "m.read"
    assert alice.room(room_id)["readUpTo"][bob.user_id] == first

    issued = bob.read(room_id, second)
    alice.wait("receipt", after=issued, roomId=room_id, userId=bob.user_id, eventId=second)
    assert alice.room(room_id)["readUpTo"][bob.user_id] == second


def test_room_name_changes(people: People) -> None:
    alice, bob = people.new("alice"), people.new("bob")
    room_id = shared_room(alice, bob, name="Before")
    assert bob.room(room_id)["name"] == "Before"

    renamed = alice.call("setRoomName", room_id, "After")
    seen = bob.wait("name", after=renamed["issued"], roomId=room_id, name="After")
    assert seen["name"] == "After"
    state = bob.wait("timeline", roomId=room_id, eventId=renamed["value"]["event_id"])
    assert (state["type"], state["stateKey"], state["content"]) == ("m.room.name", "", {"name": "After"})
    alice.wait("name", after=renamed["issued"], roomId=room_id, name="After")
    assert alice.room(room_id)["name"] == bob.room(room_id)["name"] == "After"


def test_invite_join_and_leave(people: People) -> None:
    alice, bob = people.new("alice"), people.new("bob")
    room_id = alice.create_room(name="Invitation")

    invited = alice.call("invite", room_id, bob.user_id)
    mine = bob.wait("myMembership", after=invited["issued"], roomId=room_id, membership="invite")
    assert mine["prevMembership"] is None
    assert bob.room(room_id)["name"] == "Invitation"  # from the invite's stripped state
    alice.wait("membership", after=invited["issued"], roomId=room_id, userId=bob.user_id, membership="invite")

    joined = bob.call("joinRoom", room_id)
    alice.wait("membership", after=joined["issued"], roomId=room_id, userId=bob.user_id, membership="join")
    mine = bob.wait("myMembership", after=joined["issued"], roomId=room_id, membership="join")
    assert mine["prevMembership"] == "invite"
    members = bob.room(room_id)["members"]
    assert members == {alice.user_id: "join", bob.user_id: "join"}

    left = bob.call("leave", room_id)
    seen = alice.wait("membership", after=left["issued"], roomId=room_id, userId=bob.user_id,
                      membership="leave")
    assert seen["oldMembership"] == "join"
    bob.wait("myMembership", after=left["issued"], roomId=room_id, membership="leave")
    assert alice.room(room_id)["members"][bob.user_id] == "leave"
    assert bob.room(room_id)["myMembership"] == "leave"


def test_unread_counts_rise_and_clear_with_read_receipts(people: People) -> None:
    alice, bob = people.new("alice"), people.new("bob")
    room_id = shared_room(alice, bob)
    assert bob.room(room_id)["unread"]["total"] == 0

    first, issued = alice.send_text(room_id, "one")
    bob.wait("unread", after=issued, roomId=room_id, threadId=None, total=1)
    second, issued = alice.send_text(room_id, "two")
    bob.wait("unread", after=issued, roomId=room_id, threadId=None, total=2)
    bob.wait("timeline", roomId=room_id, eventId=second)
    # The sender's own messages never count for her: her counts come with the
    # sync that brings her message back, before the SDK swaps in the server's copy.
    alice.wait("localEcho", roomId=room_id, eventId=second, status=None)
    assert alice.room(room_id)["unread"] == {"total": 0, "highlight": 0}

    # Reading up to the first message leaves one unread; reading the second clears it.
    issued = bob.read(room_id, first)
    bob.wait("unread", after=issued, roomId=room_id, threadId=None, total=1)
    issued = bob.read(room_id, second)
    bob.wait("unread", after=issued, roomId=room_id, threadId=None, total=0)
    assert bob.room(room_id)["unread"] == {"total": 0, "highlight": 0}

    # A mention counts as a highlight too, and clears the same way.
    mention = alice.call("sendMessage", room_id, {"msgtype": "m.text", "body": f"{bob.user_id}: look",
                                                  "m.mentions": {"user_ids": [bob.user_id]}})
    bob.wait("unread", after=mention["issued"], roomId=room_id, threadId=None, total=1, highlight=1)
    mentioned = mention["value"]["event_id"]
    bob.wait("timeline", roomId=room_id, eventId=mentioned)
    issued = bob.read(room_id, mentioned)
    bob.wait("unread", after=issued, roomId=room_id, threadId=None, total=0, highlight=0)


# Only the timeline: typing, receipts, presence and account data must not end the wait.
TIMELINE_ONLY = json.dumps({
    "presence": {"types": []},
    "account_data": {"types": []},
    "room": {"ephemeral": {"types": []}, "account_data": {"types": []}, "state": {"types": []}},
})


def test_long_poll_returns_when_a_message_arrives(people: People) -> None:
    alice, bob = people.new("alice"), people.new("bob")
    room_id = shared_room(alice, bob)
    elsewhere = alice.create_room()

    now = bob.js.request("rawSyncStart", name=bob.name, params={"filter": TIMELINE_ONLY, "timeout": 0})
    first = bob.js.request("rawSyncResult", handle=now["handle"])
    assert first["status"] == 200, first
    since = first["body"]["next_batch"]

    poll = bob.js.request("rawSyncStart", name=bob.name,
                          params={"filter": TIMELINE_ONLY, "since": since, "timeout": 600_000})
    # News bob may not see must not end the wait: alice typing in the shared room
    # (filtered out) and a message in a room he is not in. Alice's own sync loop
    # bringing back her message means the server has woken long-polls for both.
    alice.call("sendTyping", room_id, True, 30000)
    unseen, _ = alice.send_text(elsewhere, "not for bob")
    alice.wait("localEcho", roomId=elsewhere, eventId=unseen, status=None)
    assert bob.js.request("rawSyncPending", handle=poll["handle"])["pending"]

    message, issued = alice.send_text(room_id, "wake up")
    result = bob.js.request("rawSyncResult", handle=poll["handle"])
    assert result["status"] == 200, result
    assert result["returned"] > issued, "the long-poll returned before the message was sent"
    body = result["body"]
    timeline = body["rooms"]["join"][room_id]["timeline"]["events"]
    assert [e["event_id"] for e in timeline] == [message]
    assert elsewhere not in body["rooms"].get("join", {})
    assert body["next_batch"] != since
