"""Log formats and the access log's redaction of secrets (unit level; the
real server's stderr is checked in test_listeners.py)."""

from __future__ import annotations

import io
import json
import logging
import sys
import warnings
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from hearth.config import LoggingConfig
from hearth.logging_setup import AccessLogger, JsonFormatter, PlainFormatter, configure_logging, redact_url


@pytest.mark.parametrize(("raw", "logged"), [
    ("/_matrix/client/v3/sync", "/_matrix/client/v3/sync"),
    ("/_matrix/client/v3/sync?since=s1&timeout=0", "/_matrix/client/v3/sync?since=s1&timeout=0"),
    ("/_matrix/client/v3/sync?access_token=syt_abc", "/_matrix/client/v3/sync?access_token=<redacted>"),
    ("/x?since=s1&access_token=syt_abc&timeout=0", "/x?since=s1&access_token=<redacted>&timeout=0"),
    ("/x?ACCESS_TOKEN=syt_abc", "/x?ACCESS_TOKEN=<redacted>"),
    ("/x?access%5Ftoken=syt_abc", "/x?access%5Ftoken=<redacted>"),
    ("/x?access%5ftoken=syt_abc", "/x?access%5ftoken=<redacted>"),
    ("/x?access_token=a&access_token=b", "/x?access_token=<redacted>&access_token=<redacted>"),
    ("/x?access_token=", "/x?access_token=<redacted>"),
    ("/login/sso/redirect?loginToken=lt", "/login/sso/redirect?loginToken=<redacted>"),
    ("/validity?token=regtoken", "/validity?token=<redacted>"),
    ("/x?client_secret=cs&sid=1", "/x?client_secret=<redacted>&sid=1"),
    ("/x?refresh_token=r", "/x?refresh_token=<redacted>"),
    # Names that merely end in "token" are not secrets (and pagination tokens
    # are what an admin needs to read a log).
    ("/messages?from=t1&next_token=abc", "/messages?from=t1&next_token=abc"),
    ("/x?access_token_hint=abc", "/x?access_token_hint=abc"),
])
def test_redact_url(raw: str, logged: str) -> None:
    assert redact_url(raw) == logged


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _access_log_line(path_qs: str, headers: dict[str, str] | None = None, status: int = 200) -> str:
    logger = logging.getLogger("test.access")
    handler = _ListHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        request = make_mocked_request("GET", path_qs, headers=headers or {})
        AccessLogger(logger, "").log(request, web.Response(status=status), 0.0123)
    finally:
        logger.removeHandler(handler)
    assert len(handler.messages) == 1
    return handler.messages[0]


def test_access_log_line_shape() -> None:
    line = _access_log_line("/_matrix/client/versions", status=404)
    assert line.split()[1:] == ["GET", "/_matrix/client/versions", "404", "12.3ms"]


def test_access_log_redacts_query_token_and_ignores_authorization() -> None:
    line = _access_log_line("/_matrix/client/v3/account/whoami?access_token=syt_query_secret",
                            headers={"Authorization": "Bearer syt_header_secret"})
    assert "syt_query_secret" not in line
    assert "syt_header_secret" not in line
    assert "/_matrix/client/v3/account/whoami?access_token=<redacted>" in line


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def _configure_into(buffer: io.StringIO, config: LoggingConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", buffer)
    configure_logging(config)


def test_json_format_emits_one_json_object_per_line(
    restore_root_logging: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    _configure_into(out, LoggingConfig(format="json", level="INFO"), monkeypatch)
    log = logging.getLogger("hearth.test")
    log.info("hello %s", "world")
    log.debug("not shown at INFO")
    log.warning("multi\nline ✓")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library deprecation", DeprecationWarning, stacklevel=1)
    lines = out.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["msg"] for r in records[:3]] == ["hello world", "multi\nline ✓", "failed"]
    assert records[0]["level"] == "INFO" and records[0]["logger"] == "hearth.test"
    assert isinstance(records[0]["ts"], float)
    assert "ValueError: boom" in records[2]["exc"]
    assert records[3]["logger"] == "py.warnings" and "a library deprecation" in records[3]["msg"]
    assert len(records) == 4


def test_plain_format_is_human_readable(restore_root_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    _configure_into(out, LoggingConfig(format="plain", level="WARNING"), monkeypatch)
    logging.getLogger("hearth.test").info("hidden")
    logging.getLogger("hearth.test").warning("shown")
    assert out.getvalue().rstrip().endswith("WARNING hearth.test: shown")
    assert "hidden" not in out.getvalue()


def test_json_formatter_keeps_non_ascii() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "caf\u00e9", None, None)
    assert json.loads(JsonFormatter().format(record))["msg"] == "caf\u00e9"


@pytest.mark.parametrize("created", [1_700_000_000.0, 1_700_000_000.9996, 1_700_000_001.0004, 86_399.5])
def test_plain_formatter_times_match_the_standard_formatter(created: float) -> None:
    # The per-second cache must not change a single character of the line,
    # including a second boundary crossed between two lines.
    plain, standard = PlainFormatter(), logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for t in (created - 1, created, created + 0.0004, created + 1):
        record = logging.LogRecord("hearth.test", logging.INFO, __file__, 1, "at %s", (t,), None)
        record.created, record.msecs = t, (t - int(t)) * 1000
        assert plain.format(record) == standard.format(record)


def test_access_log_record_names_its_logger_and_level() -> None:
    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    records: list[logging.LogRecord] = []
    logger = logging.getLogger("test.access.record")
    handler = Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        request = make_mocked_request("GET", "/_matrix/client/versions")
        AccessLogger(logger, "").log(request, web.Response(status=200), 0.001)
        logger.setLevel(logging.WARNING)
        AccessLogger(logger, "").log(request, web.Response(status=200), 0.001)
    finally:
        logger.removeHandler(handler)
    assert len(records) == 1  # nothing at WARNING
    assert (records[0].name, records[0].levelname) == ("test.access.record", "INFO")
    assert records[0].getMessage().split()[1:] == ["GET", "/_matrix/client/versions", "200", "1.0ms"]
