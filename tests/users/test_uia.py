"""The UIA engine on real stores: flows, stage failures, session binding, expiry, tokens."""

from __future__ import annotations

from typing import Any

import pytest

from hearth.errors import MatrixError
from hearth.homeserver import Homeserver
from hearth.users.uia import UIARequired, UIAResult
from tests.helpers.clock import FakeClock

DUMMY = [["m.login.dummy"]]
PASSWORD = [["m.login.password"]]
TOKEN = [["m.login.registration_token"]]


async def _required(hs: Homeserver, auth: Any, **kw: Any) -> UIARequired:
    with pytest.raises(UIARequired) as exc:
        await hs.uia.authenticate(auth, **kw)
    return exc.value


async def _alice(hs: Homeserver) -> str:
    return await hs.accounts.create_account("alice", "secret password")


async def test_no_auth_gives_flows_and_a_session(hs: Homeserver) -> None:
    err = await _required(hs, None, purpose="register", flows=DUMMY)
    body = err.to_json()
    assert err.status == 401
    assert body["flows"] == [{"stages": ["m.login.dummy"]}]
    assert body["params"] == {}
    assert body["completed"] == []
    assert isinstance(body["session"], str) and body["session"]
    assert "errcode" not in body


async def test_dummy_without_session_completes_at_once(hs: Homeserver) -> None:
    result = await hs.uia.authenticate({"type": "m.login.dummy"}, purpose="register", flows=DUMMY)
    assert isinstance(result, UIAResult)
    assert result.completed == ["m.login.dummy"]


async def test_dummy_with_session_completes_and_consumes_it(hs: Homeserver) -> None:
    session = (await _required(hs, None, purpose="register", flows=DUMMY)).session_id
    result = await hs.uia.authenticate({"type": "m.login.dummy", "session": session},
                                       purpose="register", flows=DUMMY)
    assert result.session_id == session
    with pytest.raises(MatrixError) as exc:
        await hs.uia.authenticate({"type": "m.login.dummy", "session": session},
                                  purpose="register", flows=DUMMY)
    assert exc.value.errcode == "M_UNKNOWN"


async def test_session_only_reports_progress(hs: Homeserver) -> None:
    session = (await _required(hs, None, purpose="register", flows=DUMMY)).session_id
    err = await _required(hs, {"session": session}, purpose="register", flows=DUMMY)
    assert err.session_id == session
    assert "errcode" not in err.to_json()


async def test_unknown_stage_type_is_reported_in_the_401(hs: Homeserver) -> None:
    body = (await _required(hs, {"type": "m.login.recaptcha"}, purpose="register", flows=DUMMY)).to_json()
    assert body["errcode"] == "M_UNRECOGNIZED"
    assert body["completed"] == []
    assert body["session"]


async def test_password_stage_accepts_the_right_password(hs: Homeserver) -> None:
    alice = await _alice(hs)
    auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "secret password"}
    result = await hs.uia.authenticate(auth, purpose="delete_device:X", flows=PASSWORD, user_id=alice)
    assert result.authenticated_user == alice


async def test_password_stage_accepts_legacy_user_and_full_id(hs: Homeserver) -> None:
    alice = await _alice(hs)
    for auth in ({"type": "m.login.password", "user": "ALICE", "password": "secret password"},
                 {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": alice},
                  "password": "secret password"}):
        result = await hs.uia.authenticate(auth, purpose="p", flows=PASSWORD, user_id=alice)
        assert result.authenticated_user == alice


async def test_wrong_password_is_forbidden_with_a_session_to_retry(hs: Homeserver) -> None:
    alice = await _alice(hs)
    auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "wrong"}
    err = await _required(hs, auth, purpose="p", flows=PASSWORD, user_id=alice)
    body = err.to_json()
    assert body["errcode"] == "M_FORBIDDEN"
    assert body["completed"] == []
    retry = {**auth, "password": "secret password", "session": err.session_id}
    result = await hs.uia.authenticate(retry, purpose="p", flows=PASSWORD, user_id=alice)
    assert result.session_id == err.session_id


async def test_another_users_password_is_forbidden(hs: Homeserver) -> None:
    alice = await _alice(hs)
    await hs.accounts.create_account("bob", "bob password")
    auth = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"},
            "password": "bob password"}
    body = (await _required(hs, auth, purpose="p", flows=PASSWORD, user_id=alice)).to_json()
    assert body["errcode"] == "M_FORBIDDEN"


async def test_session_cannot_be_replayed_for_another_purpose(hs: Homeserver) -> None:
    alice = await _alice(hs)
    session = (await _required(hs, None, purpose="delete_device:A", flows=PASSWORD, user_id=alice)).session_id
    auth = {"type": "m.login.password", "user": "alice", "password": "secret password", "session": session}
    with pytest.raises(MatrixError) as exc:
        await hs.uia.authenticate(auth, purpose="delete_device:B", flows=PASSWORD, user_id=alice)
    assert exc.value.errcode == "M_FORBIDDEN"
    # The session still works for what it was started for.
    result = await hs.uia.authenticate(auth, purpose="delete_device:A", flows=PASSWORD, user_id=alice)
    assert result.authenticated_user == alice


async def test_session_cannot_be_replayed_for_another_user(hs: Homeserver) -> None:
    alice = await _alice(hs)
    bob = await hs.accounts.create_account("bob", "bob password")
    session = (await _required(hs, None, purpose="p", flows=PASSWORD, user_id=alice)).session_id
    auth = {"type": "m.login.password", "user": "bob", "password": "bob password", "session": session}
    with pytest.raises(MatrixError) as exc:
        await hs.uia.authenticate(auth, purpose="p", flows=PASSWORD, user_id=bob)
    assert exc.value.errcode == "M_FORBIDDEN"


async def test_sessions_expire(hs: Homeserver, fake_clock: FakeClock) -> None:
    session = (await _required(hs, None, purpose="register", flows=DUMMY)).session_id
    fake_clock.advance(hs.config.uia_session_timeout_ms + 1)
    with pytest.raises(MatrixError) as exc:
        await hs.uia.authenticate({"type": "m.login.dummy", "session": session},
                                  purpose="register", flows=DUMMY)
    assert exc.value.errcode == "M_UNKNOWN"


async def test_multi_stage_flow_records_progress(hs: Homeserver) -> None:
    alice = await _alice(hs)
    flows = [["m.login.password", "m.login.dummy"]]
    auth = {"type": "m.login.password", "user": "alice", "password": "secret password"}
    err = await _required(hs, auth, purpose="p", flows=flows, user_id=alice)
    assert err.to_json()["completed"] == ["m.login.password"]
    assert "errcode" not in err.to_json()
    result = await hs.uia.authenticate({"type": "m.login.dummy", "session": err.session_id},
                                       purpose="p", flows=flows, user_id=alice)
    assert result.completed == ["m.login.password", "m.login.dummy"]
    assert result.authenticated_user == alice


async def test_registration_token_stage_reserves_a_use(hs: Homeserver) -> None:
    await hs.registration_tokens.create("abcd", uses_allowed=1, expiry_ts=None)
    result = await hs.uia.authenticate({"type": "m.login.registration_token", "token": "abcd"},
                                       purpose="register", flows=TOKEN)
    assert result.registration_token == "abcd"
    token = await hs.registration_tokens.get("abcd")
    assert token is not None and token.pending == 1
    # The only use is pending, so a second registration is refused.
    body = (await _required(hs, {"type": "m.login.registration_token", "token": "abcd"},
                            purpose="register", flows=TOKEN)).to_json()
    assert body["errcode"] == "M_UNAUTHORIZED"


async def test_unknown_or_malformed_token_is_refused(hs: Homeserver) -> None:
    for token in ("nope", "bad token!", 7):
        body = (await _required(hs, {"type": "m.login.registration_token", "token": token},
                                purpose="register", flows=TOKEN)).to_json()
        assert body["errcode"] == "M_UNAUTHORIZED"


async def test_expired_session_gives_its_token_use_back(hs: Homeserver, fake_clock: FakeClock) -> None:
    await hs.registration_tokens.create("abcd", uses_allowed=1, expiry_ts=None)
    flows = [["m.login.registration_token", "m.login.dummy"]]
    await _required(hs, {"type": "m.login.registration_token", "token": "abcd"}, purpose="register",
                    flows=flows)
    token = await hs.registration_tokens.get("abcd")
    assert token is not None and token.pending == 1
    fake_clock.advance(hs.config.uia_session_timeout_ms + 1)
    assert await hs.uia.sweep_expired() == 1
    token = await hs.registration_tokens.get("abcd")
    assert token is not None and token.pending == 0
