"""Running the server: migrate, build, listen on every configured socket, stop cleanly.

SIGINT/SIGTERM stop accepting connections on every listener at once, let
in-flight requests finish (up to a grace period), then close the database.
Stopping all listeners before draining any of them matters with several
listeners: draining them one by one would keep the later ones accepting new
work while the first drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Callable, Iterable

from aiohttp import web

from hearth.app import build_app
from hearth.config import HearthConfig, ListenerConfig
from hearth.homeserver import Homeserver
from hearth.logging_setup import AccessLogger
from hearth.storage.migrations import upgrade_database

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0

# Builds the aiohttp app for one listener. `build_app` in production; tests pass
# their own to add routes (a slow handler, a failing one) without the product
# carrying debug routes.
AppFactory = Callable[[Homeserver, Iterable[str]], web.Application]


class ServeError(Exception):
    """The server could not start (e.g. a port is taken or a TLS file is unreadable)."""


def _ssl_context(listener: ListenerConfig) -> ssl.SSLContext | None:
    if listener.tls is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(str(listener.tls.certificate_path), str(listener.tls.private_key_path))
    except (OSError, ssl.SSLError) as e:
        raise ServeError(f"cannot load TLS certificate/key for port {listener.port}: {e}") from e
    return ctx


async def serve(config: HearthConfig, *, ready: asyncio.Event | None = None,
                stop: asyncio.Event | None = None, app_factory: AppFactory = build_app) -> None:
    """Serve until SIGINT/SIGTERM (or until `stop` is set), then shut down gracefully.

    `ready` is set once every listener accepts connections; `stop` lets an
    embedding program (or a test) ask for the same shutdown a signal gives.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    # Installed first, so a signal during migrations still means "stop cleanly"
    # rather than a KeyboardInterrupt traceback.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    hs: Homeserver | None = None
    try:
        await upgrade_database(config.database.url)
        hs = await Homeserver.start(config)
        for listener in config.listeners:
            runner = web.AppRunner(
                app_factory(hs, listener.resources), access_log_class=AccessLogger,
                shutdown_timeout=SHUTDOWN_GRACE_SECONDS, handle_signals=False,
            )
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, listener.bind_address, listener.port,
                               ssl_context=_ssl_context(listener), reuse_address=True)
            try:
                await site.start()
            except OSError as e:
                raise ServeError(f"cannot listen on {listener.bind_address}:{listener.port}: "
                                 f"{e.strerror or e}") from e
            scheme = "https" if listener.tls else "http"
            for address in runner.addresses:
                log.info("Listening on %s://%s (%s)", scheme, _format_address(address),
                         ", ".join(listener.resources))
        if ready is not None:
            ready.set()
        resuming = asyncio.create_task(_resume_deactivations(hs))
        if not stop.is_set():
            await stop.wait()
        resuming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await resuming
        log.info("Shutting down: no new connections; finishing requests in progress")
    finally:
        await _shutdown(runners)
        if hs is not None:
            await hs.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log.info("Stopped")


async def _resume_deactivations(hs: Homeserver) -> None:
    """Deactivations a crash cut short are finished in the background, not before serving."""
    try:
        await hs.deactivation.resume()
    except Exception:
        log.exception("Finishing interrupted deactivations failed; the next start tries again")


async def _shutdown(runners: list[web.AppRunner]) -> None:
    for runner in runners:
        for site in list(runner.sites):
            await site.stop()
    # Each cleanup waits (up to the grace period) for its in-flight requests.
    await asyncio.gather(*(runner.cleanup() for runner in runners))


def _format_address(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)
