"""`hearth serve` with no config: the quick start an admin tries first.

One server for the module, started in an empty folder the way the README says;
the last test stops it with SIGTERM.
"""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.config import load_config
from tests.e2e.process import HearthProcess, free_port, start_hearth


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("quickstart")


@pytest.fixture(scope="module")
def quickstart(workdir: Path) -> Iterator[HearthProcess]:
    assert list(workdir.iterdir()) == []
    port = free_port()
    server = start_hearth(["serve", "--listen", f"127.0.0.1:{port}"], cwd=workdir,
                          base_url=f"http://127.0.0.1:{port}")
    yield server
    server.kill()


def test_creates_data_dir_with_config_key_and_sqlite_db(quickstart: HearthProcess, workdir: Path) -> None:
    data = workdir / "hearth-data"
    assert (data / "hearth.yaml").is_file()
    assert (data / "signing.key").is_file()
    assert (data / "hearth.db").is_file()
    assert stat.S_IMODE((data / "hearth.yaml").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "signing.key").stat().st_mode) == 0o600
    config = load_config(data / "hearth.yaml")
    assert config.database.url == f"sqlite:///{(data / 'hearth.db').resolve()}"
    assert config.registration_shared_secret


def test_registration_is_open_with_a_warning(quickstart: HearthProcess, workdir: Path) -> None:
    config = load_config(workdir / "hearth-data" / "hearth.yaml")
    assert config.enable_registration is True
    warnings = [line for line in quickstart.stderr().splitlines() if "WARNING" in line]
    assert any("Registration is open" in line for line in warnings), quickstart.stderr()


def test_prints_the_client_url(quickstart: HearthProcess) -> None:
    out = quickstart.stdout()
    assert "Created a quick-start configuration" in out
    assert f"clients connect to {quickstart.base_url}/" in out


def test_answers_client_versions(quickstart: HearthProcess) -> None:
    status, body = quickstart.get_json("/_matrix/client/versions")
    assert status == 200
    assert "v1.1" in body["versions"]


def test_second_start_reuses_the_data_dir_and_rejects_listen(quickstart: HearthProcess, workdir: Path
                                                              ) -> None:
    # The quick-start config already exists: --listen would be silently ignored,
    # so it is refused instead (before anything binds a socket).
    result = subprocess.run([sys.executable, "-m", "hearth.cli", "serve", "--listen", "127.0.0.1:1"],
                            cwd=workdir, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--listen only applies when creating" in result.stderr


def test_sigterm_stops_cleanly_with_exit_code_0(quickstart: HearthProcess) -> None:
    assert quickstart.stop(signal.SIGTERM) == 0
    err = quickstart.stderr()
    assert "Shutting down" in err
    assert "Stopped" in err
    assert "Traceback" not in err
