"""Invites that redeem an m.room.third_party_invite, with real ed25519 signatures."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from canonicaljson import encode_canonical_json
from nacl.signing import SigningKey
from unpaddedbase64 import encode_base64

from hearth.core.auth import AuthError
from hearth.core.room_versions import RoomVersion
from tests.helpers.auth_rooms import ALICE, BOB, CAROL, AuthRoom, versions

TOKEN = "sometoken"
IDENTITY_KEY = SigningKey(b"\x01" * 32)
OTHER_KEY = SigningKey(b"\x02" * 32)


def _sign(signed: dict[str, Any], key: SigningKey, key_id: str = "ed25519:0",
          server: str = "id.example") -> dict[str, Any]:
    message = encode_canonical_json({k: v for k, v in signed.items() if k not in ("signatures", "unsigned")})
    sig = encode_base64(key.sign(message).signature)
    signed = copy.deepcopy(signed)
    signed.setdefault("signatures", {}).setdefault(server, {})[key_id] = sig
    return signed


def _pub(key: SigningKey, urlsafe: bool = False) -> str:
    return encode_base64(bytes(key.verify_key), urlsafe=urlsafe)


def _room(rv: RoomVersion, invite_content: dict[str, Any] | None = None, sender: str = ALICE) -> AuthRoom:
    room = AuthRoom(rv)
    if invite_content is None:
        invite_content = {"display_name": "b...@example.com", "key_validity_url": "https://id.example/v",
                          "public_key": _pub(IDENTITY_KEY)}
    room.put(room.event("m.room.third_party_invite", sender, invite_content, state_key=TOKEN))
    return room


def _invite(room: AuthRoom, signed: Any, sender: str = ALICE, target: str = BOB) -> None:
    content = {"membership": "invite", "third_party_invite": {"display_name": "b", "signed": signed}}
    room.send("m.room.member", sender, content, state_key=target)


def _signed(mxid: str = BOB, token: str = TOKEN, key: SigningKey = IDENTITY_KEY, **kw: Any) -> dict[str, Any]:
    return _sign({"mxid": mxid, "token": token}, key, **kw)


@pytest.mark.parametrize("rv", versions())
def test_valid_signature_with_public_key(rv: RoomVersion) -> None:
    _invite(_room(rv), _signed())


@pytest.mark.parametrize("rv", versions())
def test_valid_signature_with_public_keys_list_urlsafe(rv: RoomVersion) -> None:
    room = _room(rv, {"display_name": "x", "key_validity_url": "https://id.example/v",
                      "public_key": _pub(OTHER_KEY),
                      "public_keys": [{"public_key": "!!!not base64"},
                                      {"public_key": _pub(IDENTITY_KEY, urlsafe=True)}]})
    _invite(room, _signed())


@pytest.mark.parametrize("rv", versions())
def test_unsigned_and_extra_fields(rv: RoomVersion) -> None:
    signed = _sign({"mxid": BOB, "token": TOKEN, "extra": [1, {"a": "b"}]}, IDENTITY_KEY)
    signed["unsigned"] = {"ignored": True}
    _invite(_room(rv), signed)


@pytest.mark.parametrize("rv", versions())
def test_third_party_invite_needs_no_membership(rv: RoomVersion) -> None:
    """The 3pid path allows without the sender-joined check (the invite's sender must match)."""
    room = _room(rv, sender=CAROL)
    _invite(room, _signed(), sender=CAROL)


@pytest.mark.parametrize("rv", versions())
@pytest.mark.parametrize(
    ("make_signed", "match"),
    [
        (lambda: _signed(key=OTHER_KEY), "no signature matches"),
        (lambda: {**_signed(), "mxid": CAROL}, "not the invited user"),
        (lambda: _signed(mxid=CAROL), "not the invited user"),
        (lambda: _signed(token="other"), "no m.room.third_party_invite"),
        (lambda: _signed(key_id="curve25519:0"), "no signature matches"),
        (lambda: {"mxid": BOB, "token": TOKEN}, "no signature matches"),
        (lambda: {"mxid": BOB, "token": TOKEN, "signatures": {"id.example": {"ed25519:0": "%%%"}}},
         "no signature matches"),
        (lambda: {"mxid": BOB, "token": TOKEN, "signatures": {"id.example": {"ed25519:0": "AAAA"}}},
         "no signature matches"),
        (lambda: {"mxid": BOB, "token": TOKEN, "signatures": "x"}, "no signature matches"),
        (lambda: {"mxid": BOB, "token": TOKEN, "signatures": {"id.example": ["x"]}},
         "no signature matches"),
        (lambda: {"token": TOKEN}, "no mxid or token"),
        (lambda: {"mxid": BOB}, "no mxid or token"),
        (lambda: {"mxid": BOB, "token": 5}, "no mxid or token"),
        (lambda: "signed", "no signed object"),
        (lambda: None, "no signed object"),
    ],
)
def test_rejections(rv: RoomVersion, make_signed: Any, match: str) -> None:
    with pytest.raises(AuthError, match=match):
        _invite(_room(rv), make_signed())


@pytest.mark.parametrize("rv", versions())
def test_tampered_signed_object_is_rejected(rv: RoomVersion) -> None:
    signed = _sign({"mxid": BOB, "token": TOKEN, "extra": 1}, IDENTITY_KEY)
    signed["extra"] = 2
    with pytest.raises(AuthError, match="no signature matches"):
        _invite(_room(rv), signed)


@pytest.mark.parametrize("rv", versions())
def test_sender_must_match_third_party_invite_sender(rv: RoomVersion) -> None:
    room = _room(rv)
    room.join(CAROL)
    with pytest.raises(AuthError, match="did not send"):
        _invite(room, _signed(), sender=CAROL)


@pytest.mark.parametrize("rv", versions())
def test_banned_target_is_rejected(rv: RoomVersion) -> None:
    room = _room(rv)
    room.member(BOB, "ban", sender=ALICE)
    with pytest.raises(AuthError, match="banned"):
        _invite(room, _signed())


@pytest.mark.parametrize("rv", versions())
@pytest.mark.parametrize("content", [
    {"display_name": "x"},
    {"public_key": 5, "public_keys": "nope"},
    {"public_key": "AAAA", "public_keys": [5, {"public_key": 7}]},
])
def test_invite_without_usable_keys_is_rejected(rv: RoomVersion, content: dict[str, Any]) -> None:
    with pytest.raises(AuthError, match="no signature matches"):
        _invite(_room(rv, content), _signed())


@pytest.mark.parametrize("rv", versions())
def test_third_party_invite_not_a_dict(rv: RoomVersion) -> None:
    room = _room(rv)
    with pytest.raises(AuthError, match="no signed object"):
        room.send("m.room.member", ALICE, {"membership": "invite", "third_party_invite": "x"},
                  state_key=BOB)
