"""Building test homeservers and talking to them as a client would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from hearth.config import Argon2Config, HearthConfig, RateLimitsConfig
from hearth.homeserver import Homeserver
from hearth.signing_key import create_signing_key_file

SERVER_NAME = "test.local"


def make_config(tmp_path: Path, database_url: str, **overrides: Any) -> HearthConfig:
    key_path = tmp_path / "signing.key"
    if not key_path.exists():
        create_signing_key_file(key_path)
    values: dict[str, Any] = dict(
        server_name=SERVER_NAME,
        signing_key_path=key_path,
        data_dir=tmp_path,
        media_store_path=tmp_path / "media",
        database={"url": database_url},
        enable_registration=True,
        registration_shared_secret="test-shared-secret",
        # Cheap hashing keeps tests fast; the cost is a config knob.
        argon2=Argon2Config(time_cost=1, memory_cost_kib=8, parallelism=1),
        rate_limits=RateLimitsConfig(enabled=False),
    )
    values.update(overrides)
    return HearthConfig.model_validate(values)


class MatrixTestClient:
    """An aiohttp test client with Matrix shortcuts (register, authenticated calls)."""

    def __init__(self, http: TestClient, hs: Homeserver) -> None:
        self.http = http
        self.hs = hs
        self._txn = 0

    async def request(self, method: str, path: str, *, token: str | None = None, json: Any = None,
                      data: Any = None, headers: dict[str, str] | None = None,
                      expect: int | None = 200) -> Any:
        """Send a request and return the decoded JSON body (asserting the status)."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        resp = await self.http.request(method, path, json=json, data=data, headers=hdrs)
        body = await resp.json(content_type=None)
        if expect is not None:
            assert resp.status == expect, f"{method} {path}: {resp.status} {body}"
        return body

    async def register(self, username: str, password: str = "correct horse battery", **extra: Any
                       ) -> dict[str, Any]:
        """Register with the dummy stage; returns the /register response body."""
        body = {"username": username, "password": password, "auth": {"type": "m.login.dummy"}, **extra}
        return await self.request("POST", "/_matrix/client/v3/register", json=body)  # type: ignore[no-any-return]

    async def login(self, username: str, password: str = "correct horse battery", **extra: Any
                    ) -> dict[str, Any]:
        body = {"type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": username}, "password": password, **extra}
        return await self.request("POST", "/_matrix/client/v3/login", json=body)  # type: ignore[no-any-return]

    async def user(self, username: str) -> tuple[str, str]:
        """Register `username`; returns (user_id, access_token)."""
        body = await self.register(username)
        return body["user_id"], body["access_token"]

    async def create_room(self, token: str, **body: Any) -> str:
        resp = await self.request("POST", "/_matrix/client/v3/createRoom", token=token, json=body)
        return resp["room_id"]  # type: ignore[no-any-return]

    async def send_message(self, token: str, room_id: str, body: str = "hello", *,
                           event_type: str = "m.room.message", content: dict[str, Any] | None = None,
                           txn_id: str | None = None) -> str:
        self._txn += 1
        resp = await self.request(
            "PUT", f"/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{txn_id or f't{self._txn}'}",
            token=token, json=content if content is not None else {"msgtype": "m.text", "body": body})
        return resp["event_id"]  # type: ignore[no-any-return]

    async def send_state(self, token: str, room_id: str, event_type: str, content: dict[str, Any],
                         state_key: str = "") -> str:
        resp = await self.request("PUT", f"/_matrix/client/v3/rooms/{room_id}/state/{event_type}/{state_key}",
                                  token=token, json=content)
        return resp["event_id"]  # type: ignore[no-any-return]
