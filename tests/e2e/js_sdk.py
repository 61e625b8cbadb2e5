"""matrix-js-sdk as a real client: installs it with npm and drives it from Python.

`tests/e2e/js/driver.mjs` holds the SDK's MatrixClients in one Node process and
speaks a line protocol (one JSON object a line) on stdin/stdout; `JsDriver` is
the Python end. The npm packages are pinned by `tests/e2e/js/package-lock.json`
and installed with `npm ci` the first time a test needs them.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

JS_DIR = Path(__file__).parent / "js"
DRIVER = JS_DIR / "driver.mjs"
NPM_CI_TIMEOUT_SECONDS = 900.0
# driver.mjs fills in what Node 18 and 20 lack; older ones miss too much (fetch, ...).
MIN_NODE_MAJOR = 18
# Generous guards so a broken server fails the test instead of hanging it;
# nothing asserts on how long a step took.
REPLY_TIMEOUT_SECONDS = 180.0


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    """Outside CI a machine without Node may skip these tests; CI must run them."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def _pinned_version() -> str:
    return str(json.loads((JS_DIR / "package.json").read_text())["dependencies"]["matrix-js-sdk"])


def _installed_version() -> str | None:
    manifest = JS_DIR / "node_modules" / "matrix-js-sdk" / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["version"])


def ensure_js_sdk() -> str:
    """Node's path, after `npm ci` has installed the pinned SDK if it was missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed for the matrix-js-sdk tests (scripts/test installs them)")
        raise AssertionError("unreachable")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < MIN_NODE_MAJOR:
        _unavailable(f"the matrix-js-sdk tests need Node {MIN_NODE_MAJOR} or newer, found {version}")
    if _installed_version() != _pinned_version():
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True,
                              text=True, timeout=NPM_CI_TIMEOUT_SECONDS, check=False)
        if proc.returncode != 0:
            _unavailable(f"npm ci in {JS_DIR} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        if _installed_version() != _pinned_version():
            raise AssertionError(f"npm ci did not install matrix-js-sdk {_pinned_version()}")
    return node


class JsError(AssertionError):
    """The driver could not do what was asked; carries the SDK's error and Hearth's answer."""

    def __init__(self, op: str, reply: dict[str, Any]) -> None:
        self.reply = reply
        self.errcode = reply.get("errcode")
        self.http_status = reply.get("httpStatus")
        super().__init__(f"{op} failed: {reply.get('error')}\n  errcode={self.errcode} "
                         f"status={self.http_status} data={json.dumps(reply.get('data'))}")


@dataclass
class JsDriver:
    """The Python end of the line protocol; one request at a time, answers in order."""

    proc: subprocess.Popen[str]
    stderr_path: Path
    _lines: queue.Queue[str | None]
    _next_id: int = 1

    @classmethod
    def start(cls, node: str, workdir: Path) -> JsDriver:
        stderr_path = workdir / "js-sdk.stderr"
        with stderr_path.open("w") as stderr:
            proc = subprocess.Popen([node, str(DRIVER)], cwd=JS_DIR, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1)
        lines: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        driver = cls(proc, stderr_path, lines)
        hello = driver._read(0)
        assert hello.get("ok"), hello
        return driver

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def request(self, op: str, **args: Any) -> Any:
        """Run one op in the driver and return its result; raise `JsError` if it failed."""
        request_id = self._next_id
        self._next_id += 1
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": request_id, "op": op, **args}) + "\n")
        self.proc.stdin.flush()
        reply = self._read(request_id)
        if not reply["ok"]:
            raise JsError(op, reply)
        return reply["result"]

    def _read(self, request_id: int) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=REPLY_TIMEOUT_SECONDS)
        except queue.Empty:
            raise AssertionError(f"no reply from the js-sdk driver; stderr:\n"
                                 f"{self.stderr()[-5000:]}") from None
        if line is None:
            raise AssertionError(f"the js-sdk driver exited ({self.proc.poll()}); stderr:\n"
                                 f"{self.stderr()[-5000:]}")
        reply: dict[str, Any] = json.loads(line)
        assert reply["id"] == request_id, reply
        return reply

    def close(self) -> None:
        """Close stdin (the driver stops its clients and exits); kill it if it does not."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)
