"""Running the server: migrate, build, listen on every configured socket, stop cleanly.

SIGINT/SIGTERM stop accepting connections, let in-flight requests finish (up to
a grace period), then close the database.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl

from aiohttp import web

from hearth.app import build_app
from hearth.config import HearthConfig, ListenerConfig
from hearth.homeserver import Homeserver
from hearth.logging_setup import AccessLogger
from hearth.storage.migrations import upgrade_database

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0


def _ssl_context(listener: ListenerConfig) -> ssl.SSLContext | None:
    if listener.tls is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(listener.tls.certificate_path), str(listener.tls.private_key_path))
    return ctx


async def serve(config: HearthConfig, *, ready: asyncio.Event | None = None) -> None:
    await upgrade_database(config.database.url)
    hs = await Homeserver.start(config)
    runners: list[web.AppRunner] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for listener in config.listeners:
            runner = web.AppRunner(
                build_app(hs, listener.resources), access_log_class=AccessLogger,
                shutdown_timeout=SHUTDOWN_GRACE_SECONDS, handle_signals=False,
            )
            await runner.setup()
            site = web.TCPSite(runner, listener.bind_address, listener.port,
                               ssl_context=_ssl_context(listener), reuse_address=True)
            await site.start()
            runners.append(runner)
            scheme = "https" if listener.tls else "http"
            log.info("Listening on %s://%s:%d (%s)", scheme, listener.bind_address, listener.port,
                     ", ".join(listener.resources))
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("Shutting down")
    finally:
        for runner in runners:
            await runner.cleanup()
        await hs.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
