"""Test clients for servers with non-default config (closed registration, tiny rate limits...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_aiohttp import AiohttpClient

from hearth.app import build_app
from hearth.homeserver import Homeserver
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient, make_config


class ClientFactory:
    """`await factory(enable_registration=False)` gives a client of a server so configured."""

    def __init__(self, aiohttp_client: AiohttpClient, tmp_path: Path, database_url: str,
                 clock: FakeClock) -> None:
        self._aiohttp_client = aiohttp_client
        self._tmp_path = tmp_path
        self._database_url = database_url
        self._clock = clock
        self._servers: list[Homeserver] = []

    async def __call__(self, **overrides: Any) -> MatrixTestClient:
        config = make_config(self._tmp_path, self._database_url, **overrides)
        hs = await Homeserver.start(config, clock=self._clock)
        self._servers.append(hs)
        return MatrixTestClient(await self._aiohttp_client(build_app(hs)), hs)

    async def close(self) -> None:
        for hs in self._servers:
            await hs.close()
