"""Test users made directly through the services, plus UIA request bodies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hearth.homeserver import Homeserver

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class UserSession:
    user_id: str
    device_id: str
    token: str


async def make_user(hs: Homeserver, localpart: str, *, password: str = PASSWORD,
                    device_id: str | None = None) -> UserSession:
    """An account with one logged-in device."""
    user_id = await hs.accounts.create_account(localpart, password)
    return await login_device(hs, user_id, device_id=device_id)


async def login_device(hs: Homeserver, user_id: str, *, device_id: str | None = None,
                       display_name: str | None = None) -> UserSession:
    """Another session (device) for an existing account."""
    issued = await hs.sessions.issue(user_id, device_id=device_id, display_name=display_name,
                                     with_refresh=False)
    return UserSession(user_id, issued.device_id, issued.access_token)


def password_auth(user_id: str, session: str | None, password: str = PASSWORD) -> dict[str, Any]:
    """The `auth` object of a UIA m.login.password stage."""
    auth: dict[str, Any] = {"type": "m.login.password", "password": password,
                            "identifier": {"type": "m.id.user", "user": user_id}}
    if session is not None:
        auth["session"] = session
    return auth
