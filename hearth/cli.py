"""The `hearth` command: serve, generate-config, register-user, db upgrade."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from pathlib import Path

import click

from hearth.config import ConfigError, HearthConfig, generate_config_text, load_config
from hearth.logging_setup import configure_logging
from hearth.signing_key import create_signing_key_file

DEFAULT_DATA_DIR = Path("hearth-data")
CONFIG_NAME = "hearth.yaml"

log = logging.getLogger("hearth")


def _run(coro: object) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]
    else:
        uvloop.run(coro)  # type: ignore[arg-type]


def _parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter("expected HOST:PORT, e.g. 127.0.0.1:8008")
    return host.strip("[]"), int(port)


def write_config(*, server_name: str, data_dir: Path, listen: str = "127.0.0.1:8008",
                 database_url: str | None = None, enable_registration: bool = False) -> Path:
    """Write hearth.yaml and a signing key into `data_dir`; refuse to overwrite."""
    host, port = _parse_listen(listen)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CONFIG_NAME
    if path.exists():
        raise click.ClickException(f"{path} already exists; not overwriting it")
    (data_dir / "media").mkdir(exist_ok=True)
    key_path = data_dir / "signing.key"
    if not key_path.exists():
        create_signing_key_file(key_path)
    text = generate_config_text(
        server_name=server_name, data_dir=data_dir, listen_host=host, listen_port=port,
        database_url=database_url, enable_registration=enable_registration,
    )
    # Created 0600 in one step (and exclusively): the file holds the shared
    # secret, so it must never exist world-readable, even for a moment.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"{path} already exists; not overwriting it") from None
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def _load(config_path: Path | None) -> HearthConfig:
    path = config_path or DEFAULT_DATA_DIR / CONFIG_NAME
    try:
        return load_config(path)
    except ConfigError as e:
        raise click.ClickException(str(e)) from e


@click.group()
@click.version_option(package_name="hearth")
def main() -> None:
    """Hearth, a Matrix homeserver."""


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Config file. Without one, a quick-start server is set up in ./hearth-data.")
@click.option("--listen", default=None, metavar="HOST:PORT",
              help="Where a new quick-start server listens (default 127.0.0.1:8008). "
                   "Only used when ./hearth-data is created; edit `listeners` in the config after that.")
def serve(config_path: Path | None, listen: str | None) -> None:
    """Run the homeserver until Ctrl-C or SIGTERM."""
    # Starting allocates ~150,000 long-lived objects (modules, classes, tables,
    # routes) and almost no garbage, yet the cyclic collector ran ~200 times
    # over them: ~5% of the start's instructions. It stays off until every listener is
    # up (see _serve_then_collect).
    gc.disable()
    try:
        _serve(config_path, listen)
    finally:
        gc.enable()


def _serve(config_path: Path | None, listen: str | None) -> None:
    from hearth.server import ServeError

    if config_path is None:
        config_path = DEFAULT_DATA_DIR / CONFIG_NAME
        if not config_path.exists():
            listen = listen or "127.0.0.1:8008"
            _host, port = _parse_listen(listen)
            write_config(server_name=f"localhost:{port}", data_dir=DEFAULT_DATA_DIR, listen=listen,
                         enable_registration=True)
            click.echo(f"Created a quick-start configuration in {config_path}")
        elif listen is not None:
            raise click.UsageError(f"--listen only applies when creating a quick-start server; "
                                   f"edit `listeners` in {config_path} instead")
    elif listen is not None:
        raise click.UsageError("--listen cannot be used with --config; edit `listeners` in the config")
    config = _load(config_path)
    configure_logging(config.logging)
    if config.enable_registration and not config.registration_requires_token:
        log.warning("Registration is open: anyone who can reach this server can create an account")
    click.echo(f"Hearth for {config.server_name}: clients connect to {config.client_base_url}")
    try:
        _run(_serve_then_collect(config))
    except ServeError as e:
        raise click.ClickException(str(e)) from None


async def _serve_then_collect(config: HearthConfig) -> None:
    """Serve; once listening, collect the start's garbage, freeze the rest, resume GC.

    Frozen objects are left out of every later collection, so full collections
    under load walk only what the server allocated since.
    """
    from hearth.server import serve as serve_forever

    ready = asyncio.Event()

    async def resume_gc() -> None:
        await ready.wait()
        gc.collect()
        gc.freeze()
        gc.enable()

    resume = asyncio.create_task(resume_gc())
    try:
        await serve_forever(config, ready=ready)
    finally:
        resume.cancel()


@main.command("generate-config")
@click.option("--server-name", required=True, help="The domain of your user IDs, e.g. example.org.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True)
@click.option("--listen", default="127.0.0.1:8008", show_default=True, help="HOST:PORT to listen on.")
@click.option("--database-url", default=None, help="postgresql://... (default: SQLite in the data dir).")
@click.option("--enable-registration", is_flag=True, help="Let anyone create an account.")
def generate_config(server_name: str, data_dir: Path, listen: str, database_url: str | None,
                    enable_registration: bool) -> None:
    """Write a commented hearth.yaml and a signing key."""
    path = write_config(server_name=server_name, data_dir=data_dir, listen=listen,
                        database_url=database_url, enable_registration=enable_registration)
    click.echo(str(path))


@main.command("register-user")
@click.option("--config", "config_path", type=click.Path(path_type=Path))
@click.argument("username")
@click.option("--password", default=None, help="Prompted for when not given.")
@click.option("--admin", is_flag=True, help="Make the user a server admin.")
def register_user(config_path: Path | None, username: str, password: str | None, admin: bool) -> None:
    """Create an account directly in the database."""
    config = _load(config_path)
    if password is None:
        # click's prompt reads the terminal when there is one and stdin otherwise,
        # so scripts can pipe the password in without it showing in `ps`.
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.ClickException("The password must not be empty")
    _run(_register_user(config, username, password, admin))


async def _register_user(config: HearthConfig, username: str, password: str, admin: bool) -> None:
    from hearth.errors import MatrixError
    from hearth.homeserver import Homeserver
    from hearth.storage.migrations import upgrade_database

    await upgrade_database(config.database.url)
    hs = await Homeserver.start(config)
    try:
        user_id = await hs.accounts.create_account(username.lower(), password, admin=admin)
    except MatrixError as e:
        raise click.ClickException(f"{e.errcode}: {e.error}") from None
    finally:
        await hs.close()
    click.echo(f"Created {user_id}{' (admin)' if admin else ''}")


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.option("--config", "config_path", type=click.Path(path_type=Path))
def db_upgrade(config_path: Path | None) -> None:
    """Apply pending schema migrations."""
    from hearth.storage.migrations import upgrade_database

    config = _load(config_path)
    _run(upgrade_database(config.database.url))
    click.echo("Database is up to date")


if __name__ == "__main__":
    sys.exit(main())
