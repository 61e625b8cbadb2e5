"""A real `hearth serve` in a subprocess, for tests that need the whole program.

The server runs from the same interpreter as the tests (`python -m hearth.cli`),
on a free port of 127.0.0.1, with its config and data in a temporary folder.
Its stdout and stderr go to files (a pipe nobody reads would fill up and stall
the server), which tests read to check what it printed and logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hearth.cli import write_config

# Generous: a cold start imports the whole server. Exceeding it fails the test
# with the server's stderr; no test asserts on how long anything took.
START_DEADLINE_SECONDS = 60.0
STOP_DEADLINE_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_config(data_dir: Path, *, port: int, server_name: str = "e2e.test",
                database_url: str | None = None, **overrides: Any) -> Path:
    """A config as `hearth generate-config` writes it, with test-friendly overrides.

    Starting from the generated file (not a hand-written dict) means the e2e
    servers run the configuration real admins get. Overrides: open registration,
    cheap password hashing and no rate limits, plus whatever the test passes.
    """
    path = write_config(server_name=server_name, data_dir=data_dir, listen=f"127.0.0.1:{port}",
                        database_url=database_url, enable_registration=True)
    raw = yaml.safe_load(path.read_text())
    raw["argon2"] = {"time_cost": 1, "memory_cost_kib": 8, "parallelism": 1}
    raw["rate_limits"] = {"enabled": False}
    raw.update(overrides)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@dataclass
class HearthProcess:
    proc: subprocess.Popen[bytes]
    base_url: str
    stdout_path: Path
    stderr_path: Path

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send `sig` and wait for the process to exit; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"hearth did not exit after {sig.name}; stderr:\n{self.stderr()}") from None

    def kill(self) -> None:
        """Teardown safety net: make sure nothing outlives the test."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def get_json(self, path: str, *, base_url: str | None = None, headers: dict[str, str] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> tuple[int, Any]:
        return http_json("GET", (base_url or self.base_url) + path, headers=headers,
                         ssl_context=ssl_context)


def http_json(method: str, url: str, *, body: Any = None, headers: dict[str, str] | None = None,
              ssl_context: ssl.SSLContext | None = None, timeout: float = 30.0) -> tuple[int, Any]:
    """One blocking request; returns (status, decoded JSON or raw text)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ssl_context) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def start_hearth(args: list[str], *, cwd: Path, base_url: str, ready_path: str = "/_matrix/client/versions",
                 ssl_context: ssl.SSLContext | None = None, stdin: int | None = subprocess.DEVNULL
                 ) -> HearthProcess:
    """Run `hearth <args>` in `cwd` and wait until `base_url + ready_path` answers."""
    out, err = cwd / "hearth.stdout", cwd / "hearth.stderr"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with out.open("wb") as out_f, err.open("wb") as err_f:
        proc = subprocess.Popen([sys.executable, "-m", "hearth.cli", *args], cwd=cwd, stdin=stdin,
                                stdout=out_f, stderr=err_f, env=env)
    server = HearthProcess(proc, base_url.rstrip("/"), out, err)
    try:
        wait_until_answering(server, ready_path, ssl_context=ssl_context)
    except BaseException:
        server.kill()
        raise
    return server


def wait_until_answering(server: HearthProcess, path: str, *, ssl_context: ssl.SSLContext | None = None
                         ) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while True:
        code = server.proc.poll()
        if code is not None:
            raise AssertionError(f"hearth exited with {code} while starting; stderr:\n{server.stderr()}")
        with contextlib.suppress(OSError):
            status, _ = server.get_json(path, ssl_context=ssl_context)
            if status == 200:
                return
        if time.monotonic() > deadline:
            server.kill()
            raise AssertionError(f"hearth did not answer {path} in time; stderr:\n{server.stderr()}")
        time.sleep(0.05)
