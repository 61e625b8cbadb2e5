"""The `hearth` command line: generate-config, register-user and db upgrade.

Run in-process through `main(argv)` with the standard streams replaced
(fast); `hearth serve` runs as a real subprocess in tests/ops/.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from hearth.cli import main
from hearth.config import Argon2Config, HearthConfig, load_config
from hearth.signing_key import load_signing_key
from hearth.storage.db import Database
from hearth.storage.migrations import alembic_config
from hearth.storage.users import Account, UsersStore
from hearth.users.passwords import PasswordHasher
from tests.e2e.process import free_port
from tests.helpers.postgres import PostgresCluster


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(*args: str, input: str | None = None, catch_exceptions: bool = False) -> Result:
    """`hearth ARGS` in-process: its exit status and what it wrote (stdin is `input`)."""
    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO(input or "")
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse: usage errors, --help, --version
                code = e.code if isinstance(e.code, int) else 1
            except Exception:
                if not catch_exceptions:
                    raise
                code = 1
    finally:
        sys.stdin = saved_stdin
    return Result(code, out.getvalue(), err.getvalue())


def generate(data_dir: Path, *extra: str, server_name: str = "example.org") -> Path:
    result = run("generate-config", "--server-name", server_name, "--data-dir", str(data_dir), *extra)
    assert result.exit_code == 0, result.output
    path = data_dir / "hearth.yaml"
    assert result.stdout.strip() == str(path)
    return path


def cheap_hashing(config_path: Path) -> None:
    """Lower the argon2 cost in a generated config so user creation is fast."""
    raw = yaml.safe_load(config_path.read_text())
    raw["argon2"] = {"time_cost": 1, "memory_cost_kib": 8, "parallelism": 1}
    config_path.write_text(yaml.safe_dump(raw))


# --- generate-config ---------------------------------------------------------------


def test_generate_config_defaults(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = generate(data)
    config = load_config(path)
    assert config.server_name == "example.org"
    assert config.enable_registration is False
    assert config.registration_requires_token is False
    assert config.registration_shared_secret and len(config.registration_shared_secret) >= 32
    assert config.database.url == f"sqlite:///{(data / 'hearth.db').resolve()}"
    assert [(li.bind_address, li.port, li.tls) for li in config.listeners] == [("127.0.0.1", 8008, None)]
    assert config.public_baseurl == "http://127.0.0.1:8008/"
    assert config.data_dir == data.resolve()
    assert config.media_store_path == (data / "media").resolve()
    assert (data / "media").is_dir()
    # Secure defaults, not test-friendly ones.
    assert config.rate_limits.enabled is True
    assert config.argon2 == Argon2Config()


def test_generated_config_is_private_and_commented(tmp_path: Path) -> None:
    path = generate(tmp_path / "data")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text_ = path.read_text()
    comments = [line for line in text_.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 8
    assert "# Anyone may create an account when true." in text_


def test_generate_config_writes_a_loadable_signing_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = load_config(generate(data))
    assert config.signing_key_path == (data / "signing.key").resolve()
    assert stat.S_IMODE(config.signing_key_path.stat().st_mode) == 0o600
    key = load_signing_key(config.signing_key_path)
    assert key.alg == "ed25519"
    assert key.version.startswith("a_")


def test_each_config_gets_its_own_secret_and_key(tmp_path: Path) -> None:
    a = load_config(generate(tmp_path / "a"))
    b = load_config(generate(tmp_path / "b"))
    assert a.registration_shared_secret != b.registration_shared_secret
    assert load_signing_key(a.signing_key_path).encode() != load_signing_key(b.signing_key_path).encode()


def test_generate_config_enable_registration(tmp_path: Path) -> None:
    config = load_config(generate(tmp_path / "data", "--enable-registration"))
    assert config.enable_registration is True


def test_generate_config_listen(tmp_path: Path) -> None:
    config = load_config(generate(tmp_path / "data", "--listen", "127.0.0.2:8448"))
    assert [(li.bind_address, li.port) for li in config.listeners] == [("127.0.0.2", 8448)]
    assert config.public_baseurl == "http://127.0.0.2:8448/"
    assert config.client_base_url == "http://127.0.0.2:8448/"


def test_generate_config_listen_ipv6(tmp_path: Path) -> None:
    config = load_config(generate(tmp_path / "data", "--listen", "[::1]:8448"))
    assert [(li.bind_address, li.port) for li in config.listeners] == [("::1", 8448)]
    assert config.public_baseurl == "http://[::1]:8448/"


def test_generate_config_listen_on_all_interfaces_advertises_a_reachable_url(tmp_path: Path) -> None:
    config = load_config(generate(tmp_path / "data", "--listen", "0.0.0.0:8008"))
    assert config.listeners[0].bind_address == "0.0.0.0"
    assert config.public_baseurl == "http://localhost:8008/"


@pytest.mark.parametrize("bad", ["8008", "localhost", "host:port", ":"])
def test_generate_config_rejects_a_bad_listen_address(tmp_path: Path, bad: str) -> None:
    result = run("generate-config", "--server-name", "example.org", "--data-dir", str(tmp_path / "d"),
                 "--listen", bad)
    assert result.exit_code == 2
    assert "HOST:PORT" in result.output
    assert not (tmp_path / "d" / "hearth.yaml").exists()


def test_generate_config_database_url(tmp_path: Path) -> None:
    url = "postgresql://hearth:s3cret@db.internal:5433/hearth"
    config = load_config(generate(tmp_path / "data", "--database-url", url))
    assert config.database.url == url


def test_generate_config_keeps_awkward_values_exact(tmp_path: Path) -> None:
    # YAML would read an unquoted `#` as a comment and `: ` as a mapping.
    url = "postgresql://hearth:p#ss: w'rd\"@db:5432/hearth"
    data = tmp_path / "my data #1"
    config = load_config(generate(data, "--database-url", url, server_name="matrix.example.org:8448"))
    assert config.database.url == url
    assert config.data_dir == data.resolve()
    assert config.server_name == "matrix.example.org:8448"


def test_generate_config_refuses_to_overwrite(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = generate(data)
    before = path.read_text()
    key_before = (data / "signing.key").read_bytes()
    result = run("generate-config", "--server-name", "other.org", "--data-dir", str(data))
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert path.read_text() == before
    assert (data / "signing.key").read_bytes() == key_before


def test_generate_config_requires_server_name(tmp_path: Path) -> None:
    result = run("generate-config", "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 2
    assert "--server-name" in result.output


def test_generate_config_default_data_dir_is_hearth_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("generate-config", "--server-name", "example.org")
    assert result.exit_code == 0, result.output
    assert load_config(tmp_path / "hearth-data" / "hearth.yaml").data_dir == (tmp_path / "hearth-data")


# --- register-user -----------------------------------------------------------------


async def _account(config: HearthConfig, user_id: str) -> Account | None:
    db = Database.unpooled(config.database.url)
    try:
        return await UsersStore(db).get(user_id)
    finally:
        await db.close()


def account(config_path: Path, user_id: str) -> Account | None:
    return asyncio.run(_account(load_config(config_path), user_id))


def password_matches(config_path: Path, account_: Account, password: str) -> bool:
    async def check() -> bool:
        hasher = PasswordHasher(load_config(config_path).argon2)
        try:
            return await hasher.verify(account_.password_hash, password)
        finally:
            await hasher.close()
    return asyncio.run(check())


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = generate(tmp_path / "data")
    cheap_hashing(path)
    return path


def test_register_user_with_password(config_path: Path) -> None:
    result = run("register-user", "--config", str(config_path), "alice", "--password", "wonderland")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Created @alice:example.org"
    acc = account(config_path, "@alice:example.org")
    assert acc is not None and not acc.is_admin and not acc.deactivated
    assert password_matches(config_path, acc, "wonderland")
    assert not password_matches(config_path, acc, "not-it")


def test_register_user_admin(config_path: Path) -> None:
    result = run("register-user", "--config", str(config_path), "root", "--password", "pw", "--admin")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Created @root:example.org (admin)"
    acc = account(config_path, "@root:example.org")
    assert acc is not None and acc.is_admin


def test_register_user_prompts_for_the_password(config_path: Path) -> None:
    result = run("register-user", "--config", str(config_path), "bob", input="hunter22\nhunter22\n")
    assert result.exit_code == 0, result.output
    assert "hunter22" not in result.stdout  # hidden input is not echoed
    acc = account(config_path, "@bob:example.org")
    assert acc is not None
    assert password_matches(config_path, acc, "hunter22")


def test_register_user_prompt_asks_again_on_mismatch(config_path: Path) -> None:
    result = run("register-user", "--config", str(config_path), "carol",
                 input="first-try\nsecond-try\nfinal-pw\nfinal-pw\n")
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    acc = account(config_path, "@carol:example.org")
    assert acc is not None and password_matches(config_path, acc, "final-pw")


def test_register_user_without_a_password_on_stdin_creates_nothing(config_path: Path) -> None:
    assert run("db", "upgrade", "--config", str(config_path)).exit_code == 0
    result = run("register-user", "--config", str(config_path), "dave", input="")
    assert result.exit_code != 0
    assert account(config_path, "@dave:example.org") is None


def test_register_user_prompted_in_a_real_process(config_path: Path) -> None:
    # No terminal at all (as in a script): the password is read from stdin.
    result = subprocess.run(
        [sys.executable, "-m", "hearth.cli", "register-user", "--config", str(config_path), "erin"],
        input="piped-pw\npiped-pw\n", capture_output=True, text=True, timeout=120,
        start_new_session=True,  # no controlling terminal
    )
    assert result.returncode == 0, result.stderr
    assert "Created @erin:example.org" in result.stdout
    acc = account(config_path, "@erin:example.org")
    assert acc is not None and password_matches(config_path, acc, "piped-pw")


def test_register_user_lowercases_the_username(config_path: Path) -> None:
    result = run("register-user", "--config", str(config_path), "Frank", "--password", "pw")
    assert result.exit_code == 0, result.output
    assert account(config_path, "@frank:example.org") is not None


def test_register_user_taken(config_path: Path) -> None:
    assert run("register-user", "--config", str(config_path), "gina", "--password", "pw").exit_code == 0
    result = run("register-user", "--config", str(config_path), "gina", "--password", "pw2")
    assert result.exit_code == 1
    assert "M_USER_IN_USE" in result.output
    acc = account(config_path, "@gina:example.org")
    assert acc is not None and password_matches(config_path, acc, "pw")


@pytest.mark.parametrize("bad", ["has space", "émile", "semi;colon"])
def test_register_user_invalid_username(config_path: Path, bad: str) -> None:
    result = run("register-user", "--config", str(config_path), bad, "--password", "pw")
    assert result.exit_code == 1
    assert "M_INVALID_USERNAME" in result.output


def test_register_user_missing_config(tmp_path: Path) -> None:
    result = run("register-user", "--config", str(tmp_path / "nope.yaml"), "x", "--password", "pw")
    assert result.exit_code == 1
    assert "cannot read" in result.output


# --- db upgrade --------------------------------------------------------------------


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def _schema(url: str) -> tuple[set[str], list[str]]:
    db = Database.unpooled(url)
    try:
        async with db.read() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            versions = [r[0] for r in await conn.execute(text("SELECT version_num FROM alembic_version"))]
        return tables, versions
    finally:
        await db.close()


def schema(url: str) -> tuple[set[str], list[str]]:
    return asyncio.run(_schema(url))


def assert_upgraded(url: str) -> None:
    tables, versions = schema(url)
    assert {"users", "devices", "access_tokens", "alembic_version"} <= tables
    assert versions == [head_revision()]


def test_db_upgrade_sqlite(tmp_path: Path) -> None:
    path = generate(tmp_path / "data")
    url = load_config(path).database.url
    result = run("db", "upgrade", "--config", str(path))
    assert result.exit_code == 0, result.output
    assert "Database is up to date" in result.output
    assert_upgraded(url)
    # Running it again is a no-op, not an error.
    assert run("db", "upgrade", "--config", str(path)).exit_code == 0
    assert_upgraded(url)


def _psql(cluster: PostgresCluster, sql: str, dbname: str = "postgres") -> str:
    return subprocess.run(
        [str(cluster.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
         "-d", dbname, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
        check=True, capture_output=True, text=True,
    ).stdout


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> Any:
    cluster: PostgresCluster | None = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip("PostgreSQL binaries not installed (they are required in CI)")
    return cluster


def test_db_upgrade_postgresql(tmp_path: Path, pg: PostgresCluster) -> None:
    name = f"hearth_cli_upgrade_{os.getpid()}"
    _psql(pg, f"CREATE DATABASE {name}")
    try:
        path = generate(tmp_path / "data", "--database-url", pg.url(name))
        result = run("db", "upgrade", "--config", str(path))
        assert result.exit_code == 0, result.output
        assert_upgraded(pg.url(name))
        assert _psql(pg, "SELECT version_num FROM alembic_version", dbname=name).strip() == head_revision()
        assert run("db", "upgrade", "--config", str(path)).exit_code == 0
        assert_upgraded(pg.url(name))
        # And the server's own tooling works on it: register-user writes there.
        cheap_hashing(path)
        assert run("register-user", "--config", str(path), "pgadmin", "--password", "pw", "--admin"
                   ).exit_code == 0
        acc = account(path, "@pgadmin:example.org")
        assert acc is not None and acc.is_admin
    finally:
        _psql(pg, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_db_upgrade_unreachable_postgresql_fails(tmp_path: Path) -> None:
    path = generate(tmp_path / "data", "--database-url", f"postgresql://nobody@127.0.0.1:{free_port()}/x")
    result = run("db", "upgrade", "--config", str(path), catch_exceptions=True)
    assert result.exit_code != 0
