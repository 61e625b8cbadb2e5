"""The `hearth` command: serve, generate-config, register-user, db upgrade.

Parsed with the standard library's argparse, which the server imports anyway
(aiohttp does): a command-line framework would stay imported, and resident
(about 0.8 MiB), for the whole life of every server process.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hearth import __version__
from hearth.config import ConfigError, HearthConfig, generate_config_text, load_config
from hearth.logging_setup import configure_logging
from hearth.signing_key import create_signing_key_file

DEFAULT_DATA_DIR = Path("hearth-data")
CONFIG_NAME = "hearth.yaml"

log = logging.getLogger("hearth")


class CliError(Exception):
    """A failure reported as `Error: ...` with exit status 1 (2 for misuse)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


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
        raise argparse.ArgumentTypeError("expected HOST:PORT, e.g. 127.0.0.1:8008")
    return host.strip("[]"), int(port)


def _listen(value: str) -> str:
    _parse_listen(value)
    return value


def write_config(*, server_name: str, data_dir: Path, listen: str = "127.0.0.1:8008",
                 database_url: str | None = None, enable_registration: bool = False) -> Path:
    """Write hearth.yaml and a signing key into `data_dir`; refuse to overwrite."""
    host, port = _parse_listen(listen)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CONFIG_NAME
    if path.exists():
        raise CliError(f"{path} already exists; not overwriting it")
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
        raise CliError(f"{path} already exists; not overwriting it") from None
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def _load(config_path: Path | None) -> HearthConfig:
    path = config_path or DEFAULT_DATA_DIR / CONFIG_NAME
    try:
        return load_config(path)
    except ConfigError as e:
        raise CliError(str(e)) from e


def main(argv: Sequence[str] | None = None) -> int:
    """Hearth, a Matrix homeserver: run one command, return its exit status."""
    args = _parser().parse_args(argv)  # misuse: a usage message and exit status 2
    command: Callable[[argparse.Namespace], None] = args.command
    try:
        command(args)
    except CliError as e:
        print(f"Error: {e}", file=sys.stderr)
        return e.status
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hearth", description="Hearth, a Matrix homeserver.")
    parser.add_argument("--version", action="version", version=f"hearth {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    serve_cmd = commands.add_parser("serve", help="Run the homeserver until Ctrl-C or SIGTERM.")
    serve_cmd.add_argument("--config", type=Path, dest="config_path",
                           help="Config file. Without one, a quick-start server is set up in ./hearth-data.")
    serve_cmd.add_argument("--listen", type=_listen, metavar="HOST:PORT",
                           help="Where a new quick-start server listens (default 127.0.0.1:8008). Only used "
                                "when ./hearth-data is created; edit `listeners` in the config after that.")
    serve_cmd.set_defaults(command=lambda a: serve(a.config_path, a.listen))

    generate = commands.add_parser("generate-config", help="Write a commented hearth.yaml and a signing key.")
    generate.add_argument("--server-name", required=True,
                          help="The domain of your user IDs, e.g. example.org.")
    generate.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                          help=f"(default: {DEFAULT_DATA_DIR})")
    generate.add_argument("--listen", type=_listen, default="127.0.0.1:8008",
                          help="HOST:PORT to listen on (default: 127.0.0.1:8008).")
    generate.add_argument("--database-url", help="postgresql://... (default: SQLite in the data dir).")
    generate.add_argument("--enable-registration", action="store_true", help="Let anyone create an account.")
    generate.set_defaults(command=generate_config)

    register = commands.add_parser("register-user", help="Create an account directly in the database.")
    register.add_argument("--config", type=Path, dest="config_path")
    register.add_argument("username")
    register.add_argument("--password", help="Prompted for when not given.")
    register.add_argument("--admin", action="store_true", help="Make the user a server admin.")
    register.set_defaults(command=register_user)

    db = commands.add_parser("db", help="Database maintenance.")
    db_commands = db.add_subparsers(title="commands", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser("upgrade", help="Apply pending schema migrations.")
    upgrade.add_argument("--config", type=Path, dest="config_path")
    upgrade.set_defaults(command=db_upgrade)
    return parser


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
            print(f"Created a quick-start configuration in {config_path}")
        elif listen is not None:
            raise CliError(f"--listen only applies when creating a quick-start server; "
                           f"edit `listeners` in {config_path} instead", status=2)
    elif listen is not None:
        raise CliError("--listen cannot be used with --config; edit `listeners` in the config", status=2)
    config = _load(config_path)
    configure_logging(config.logging)
    if config.enable_registration and not config.registration_requires_token:
        log.warning("Registration is open: anyone who can reach this server can create an account")
    print(f"Hearth for {config.server_name}: clients connect to {config.client_base_url}", flush=True)
    try:
        _run(_serve_then_collect(config))
    except ServeError as e:
        raise CliError(str(e)) from None


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


def generate_config(args: argparse.Namespace) -> None:
    path = write_config(server_name=args.server_name, data_dir=args.data_dir, listen=args.listen,
                        database_url=args.database_url, enable_registration=args.enable_registration)
    print(path)


def register_user(args: argparse.Namespace) -> None:
    config = _load(args.config_path)
    password = args.password
    if password is None:
        # Read from the terminal when there is one and from stdin otherwise, so
        # scripts can pipe the password in without it showing in `ps`.
        password = _prompt_password()
    if not password:
        raise CliError("The password must not be empty")
    _run(_register_user(config, args.username, password, args.admin))


def _prompt_password() -> str:
    while True:
        first = _read_secret("Password: ")
        if first == _read_secret("Repeat for confirmation: "):
            return first
        print("Error: The two entered values do not match.", file=sys.stderr)


def _read_secret(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    print(prompt, end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:
        raise CliError("no password given (end of input)")
    return line.rstrip("\r\n")


async def _register_user(config: HearthConfig, username: str, password: str, admin: bool) -> None:
    from hearth.errors import MatrixError
    from hearth.homeserver import Homeserver
    from hearth.storage.migrations import upgrade_database

    await upgrade_database(config.database.url)
    hs = await Homeserver.start(config)
    try:
        user_id = await hs.accounts.create_account(username.lower(), password, admin=admin)
    except MatrixError as e:
        raise CliError(f"{e.errcode}: {e.error}") from None
    finally:
        await hs.close()
    print(f"Created {user_id}{' (admin)' if admin else ''}")


def db_upgrade(args: argparse.Namespace) -> None:
    from hearth.storage.migrations import upgrade_database

    config = _load(args.config_path)
    _run(upgrade_database(config.database.url))
    print("Database is up to date")


if __name__ == "__main__":
    sys.exit(main())
