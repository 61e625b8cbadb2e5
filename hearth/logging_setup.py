"""Logging: plain or JSON lines, and an access log that never shows secrets."""

from __future__ import annotations

import json
import logging
import sys
import time
from urllib.parse import unquote_plus

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from hearth.config import LoggingConfig

# Query parameters whose values are secrets: the deprecated `?access_token=`,
# login tokens (SSO's `loginToken`), registration tokens and 3PID client
# secrets. Their values are replaced before a URL is logged.
SECRET_QUERY_PARAMS = frozenset({
    "access_token", "login_token", "logintoken", "token", "refresh_token", "client_secret",
})


def redact_url(path_qs: str) -> str:
    """`path_qs` with the value of every secret query parameter replaced.

    Names are compared after percent-decoding, because the server decodes them
    too: `?access%5Ftoken=...` authenticates exactly like `?access_token=...`,
    so it must be redacted exactly like it.
    """
    path, sep, query = path_qs.partition("?")
    if not sep:
        return path_qs
    parts = []
    for part in query.split("&"):
        name, eq, _value = part.partition("=")
        if eq and unquote_plus(name).lower() in SECRET_QUERY_PARAMS:
            part = f"{name}=<redacted>"
        parts.append(part)
    return f"{path}?{'&'.join(parts)}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """`<time> <level> <logger>: <message>`, formatting the time once per second.

    `time.strftime` on every line was a sixth of the access log's cost under
    load; lines within one second share the same text up to the milliseconds.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, text = self._second
        if int(record.created) != second:
            text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = (int(record.created), text)
        return f"{text},{int(record.msecs):03d}"


def configure_logging(config: LoggingConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.level)
    # Python warnings (deprecations in libraries) go through the same format, so
    # a JSON log stays one JSON object per line.
    logging.captureWarnings(True)


class AccessLogger(AbstractAccessLogger):
    """One line per request: address, method, path (secrets redacted), status, time."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        # The record is made here rather than by `logger.info`, which would walk
        # the stack for the caller's file and line (no format shows them) on
        # every request: a tenth of the access log's cost.
        args = (request.remote, request.method, redact_url(request.path_qs), response.status, time * 1000)
        logger.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, "%s %s %s %d %.1fms",
                                        args, None, "log"))
