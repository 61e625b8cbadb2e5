"""Logging: plain or JSON lines, and an access log that never shows secrets."""

from __future__ import annotations

import json
import logging
import re
import sys

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from hearth.config import LoggingConfig

# Query parameters whose values are secrets (the deprecated access_token, and
# login tokens); their values are replaced before a URL is logged.
_SECRET_QUERY = re.compile(r"((?:^|[?&])(?:access_token|login_token|token)=)[^&]*", re.IGNORECASE)


def redact_url(path_qs: str) -> str:
    return _SECRET_QUERY.sub(r"\1<redacted>", path_qs)


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


def configure_logging(config: LoggingConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.level)


class AccessLogger(AbstractAccessLogger):
    """One line per request: address, method, path (secrets redacted), status, time."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %d %.1fms",
            request.remote, request.method, redact_url(request.path_qs), response.status, time * 1000,
        )
