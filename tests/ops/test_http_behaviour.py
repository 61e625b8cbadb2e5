"""Server behaviour that needs a handler the product does not have: a failing one
and a slow one. Tests add them to an app they build themselves; the product
carries no debug routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from hearth.app import build_app
from hearth.config import HearthConfig
from hearth.core.room_versions import KNOWN_ROOM_VERSIONS
from hearth.homeserver import Homeserver
from hearth.rooms.create import RoomSpec
from hearth.server import ServeError, serve
from tests.e2e.process import free_port
from tests.helpers.users import make_user


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals that must not reach the client")


async def test_unexpected_exception_is_500_m_unknown_and_logged(
    hs: Homeserver, aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture,
) -> None:
    app = build_app(hs)
    app.router.add_get("/_test/boom", _boom)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR):
        resp = await client.get("/_test/boom")
        body = await resp.json()
    assert resp.status == 500
    assert body == {"errcode": "M_UNKNOWN", "error": "Internal server error"}
    records = [r for r in caplog.records if "Unhandled error on GET /_test/boom" in r.getMessage()]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], RuntimeError)


def _config_on_free_port(hs_config: HearthConfig, **overrides: Any) -> HearthConfig:
    values = hs_config.model_dump()
    values["listeners"] = [{"bind_address": "127.0.0.1", "port": free_port(), "resources": ["client"]}]
    values.update(overrides)
    return HearthConfig.model_validate(values)


class SlowRoute:
    """A handler that holds its request open until the test lets it finish."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.finished = False

    async def handle(self, request: web.Request) -> web.Response:
        self.entered.set()
        await self.release.wait()
        self.finished = True
        return web.json_response({"done": True})

    def factory(self, hs: Homeserver, resources: Iterable[str]) -> web.Application:
        app = build_app(hs, resources)
        app.router.add_get("/_test/slow", self.handle)
        return app


async def _refuses_connections(port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return False


async def test_shutdown_finishes_the_request_in_flight(hs_config: HearthConfig) -> None:
    config = _config_on_free_port(hs_config)
    port = config.listeners[0].port
    slow = SlowRoute()
    ready, stop = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(serve(config, ready=ready, stop=stop, app_factory=slow.factory))
    await ready.wait()
    async with aiohttp.ClientSession() as session:
        in_flight = asyncio.create_task(session.get(f"http://127.0.0.1:{port}/_test/slow"))
        await slow.entered.wait()

        stop.set()
        # Shutdown begins: the listening socket closes while the request is held.
        while not await _refuses_connections(port):
            await asyncio.sleep(0.01)
        assert not server.done()
        assert not slow.finished

        slow.release.set()
        resp = await in_flight
        assert resp.status == 200
        assert await resp.json() == {"done": True}
    await server
    assert slow.finished


async def test_serve_returns_when_stopped_before_any_request(hs_config: HearthConfig) -> None:
    ready, stop = asyncio.Event(), asyncio.Event()
    config = _config_on_free_port(hs_config)
    server = asyncio.create_task(serve(config, ready=ready, stop=stop))
    await ready.wait()
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{config.listeners[0].port}/_matrix/client/versions"
        async with session.get(url) as resp:
            assert resp.status == 200
    stop.set()
    await server
    assert await _refuses_connections(config.listeners[0].port)


async def test_port_in_use_is_a_clear_error(hs_config: HearthConfig) -> None:
    config = _config_on_free_port(hs_config)
    port = config.listeners[0].port
    taken = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port, reuse_address=False)
    try:
        with pytest.raises(ServeError, match=f"cannot listen on 127.0.0.1:{port}"):
            await serve(config, stop=asyncio.Event())
    finally:
        taken.close()
        await taken.wait_closed()


async def test_unreadable_tls_files_are_a_clear_error(hs_config: HearthConfig, tmp_path: Any) -> None:
    config = _config_on_free_port(hs_config)
    values = config.model_dump()
    values["listeners"][0]["tls"] = {"certificate_path": str(tmp_path / "missing.pem"),
                                     "private_key_path": str(tmp_path / "missing.key")}
    with pytest.raises(ServeError, match="cannot load TLS certificate"):
        await serve(HearthConfig.model_validate(values), stop=asyncio.Event())



async def test_serve_finishes_a_deactivation_cut_short_by_a_crash(hs_config: HearthConfig) -> None:
    """A start picks up an account marked deactivated but still in a room, and makes it leave."""
    config = _config_on_free_port(hs_config)
    hs = await Homeserver.start(config)
    try:
        alice = await make_user(hs, "alice")
        bob = await make_user(hs, "bob")
        spec = RoomSpec(creator=alice.user_id, room_version=KNOWN_ROOM_VERSIONS["12"], preset="public_chat")
        room_id = await hs.room_creator.create(spec)
        await hs.membership.join(bob.user_id, room_id)
        async with hs.db.write() as conn:
            await hs.users.deactivate(conn, bob.user_id, erase=False)  # and then the crash
    finally:
        await hs.close()

    ready, stop = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(serve(config, ready=ready, stop=stop))
    try:
        await ready.wait()
        check = await Homeserver.start(config)
        try:
            for _ in range(500):
                if await check.room_store.rooms_for_user(bob.user_id, "join") == []:
                    break
                await asyncio.sleep(0.01)
            assert await check.room_store.rooms_for_user(bob.user_id, "join") == []
            assert await check.room_store.rooms_for_user(bob.user_id, "leave") == [room_id]
        finally:
            await check.close()
    finally:
        stop.set()
        await server
