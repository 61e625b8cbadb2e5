"""A real `hearth serve --config ...` for the end-to-end tests, one per module.

The config is the one `hearth generate-config` writes, with open registration,
cheap password hashing and no rate limits; the database is SQLite in the
module's temporary folder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.e2e.nio_client import Clients
from tests.e2e.process import HearthProcess, free_port, make_config, start_hearth

SERVER_NAME = "e2e.test"


@pytest.fixture(scope="module")
def hearth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthProcess]:
    root = tmp_path_factory.mktemp("e2e")
    port = free_port()
    config = make_config(root / "data", port=port, server_name=SERVER_NAME)
    server = start_hearth(["serve", "--config", str(config)], cwd=root, base_url=f"http://127.0.0.1:{port}")
    yield server
    server.kill()


@pytest.fixture
async def clients(hearth_server: HearthProcess) -> AsyncIterator[Clients]:
    """matrix-nio clients against the module's server, closed after the test."""
    made = Clients(hearth_server.base_url)
    yield made
    await made.close()
