"""Listener configuration on a real `hearth serve`: HTTPS, a metrics-only socket,
JSON logs, and an access log that never shows an access token.

One server for the module, configured as an admin would for a small deployment:
the client API over TLS on one port, Prometheus metrics on another, JSON logs.
The last test stops it with SIGINT (Ctrl-C).
"""

from __future__ import annotations

import json
import signal
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.process import HearthProcess, free_port, http_json, make_config, start_hearth
from tests.ops.tls import _with_openssl, client_context, make_self_signed_cert

QUERY_SECRET = "syt_querysecret_DO_NOT_LOG"
ENCODED_SECRET = "syt_encodedsecret_DO_NOT_LOG"
HEADER_SECRET = "syt_headersecret_DO_NOT_LOG"


@dataclass
class Deployment:
    server: HearthProcess
    https_url: str
    metrics_url: str
    tls: ssl.SSLContext
    cert_path: Path


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("listeners")
    cert, key = make_self_signed_cert(root)
    https_port, metrics_port = free_port(), free_port()
    config = make_config(
        root / "data", port=https_port,
        listeners=[
            {"bind_address": "127.0.0.1", "port": https_port, "resources": ["client", "admin"],
             "tls": {"certificate_path": str(cert), "private_key_path": str(key)}},
            {"bind_address": "127.0.0.1", "port": metrics_port, "resources": ["metrics"]},
        ],
        public_baseurl=None,
        logging={"level": "INFO", "format": "json"},
    )
    tls = client_context(cert)
    server = start_hearth(["serve", "--config", str(config)], cwd=root,
                          base_url=f"https://127.0.0.1:{https_port}", ssl_context=tls)
    yield Deployment(server, f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{metrics_port}", tls, cert)
    server.kill()


def _log_records(server: HearthProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in server.stderr().splitlines() if line.strip()]


def _wait_for_log(server: HearthProcess, needle: str) -> None:
    """Access log lines are written just after the response; wait until it is there."""
    deadline = time.monotonic() + 30
    while needle not in server.stderr():
        assert time.monotonic() < deadline, f"{needle!r} never logged; stderr:\n{server.stderr()}"
        time.sleep(0.02)


def test_client_api_is_served_over_https(deployment: Deployment) -> None:
    status, body = http_json("GET", deployment.https_url + "/_matrix/client/versions",
                             ssl_context=deployment.tls)
    assert status == 200
    assert "versions" in body


def test_the_certificate_served_is_the_configured_one(deployment: Deployment) -> None:
    host, port = "127.0.0.1", int(deployment.https_url.rsplit(":", 1)[1])
    served = ssl.get_server_certificate((host, port))
    assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(deployment.cert_path.read_text())


def test_plain_http_on_the_tls_port_gets_no_matrix_answer(deployment: Deployment) -> None:
    plain = deployment.https_url.replace("https://", "http://") + "/_matrix/client/versions"
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(plain, timeout=10).read()


def test_prints_the_https_client_url(deployment: Deployment) -> None:
    assert f"clients connect to {deployment.https_url}/" in deployment.server.stdout()


def test_metrics_listener_serves_metrics(deployment: Deployment) -> None:
    with urllib.request.urlopen(deployment.metrics_url + "/_hearth/metrics", timeout=30) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    assert "hearth_http_requests_total" in text
    assert "process_resident_memory_bytes" in text


def test_metrics_listener_404s_client_paths(deployment: Deployment) -> None:
    status, body = http_json("GET", deployment.metrics_url + "/_matrix/client/versions")
    assert (status, body["errcode"]) == (404, "M_UNRECOGNIZED")
    status, body = http_json("GET", deployment.metrics_url + "/_synapse/admin/v1/register")
    assert (status, body["errcode"]) == (404, "M_UNRECOGNIZED")


def test_client_listener_does_not_serve_metrics(deployment: Deployment) -> None:
    status, body = http_json("GET", deployment.https_url + "/_hearth/metrics", ssl_context=deployment.tls)
    assert (status, body["errcode"]) == (404, "M_UNRECOGNIZED")


def test_access_log_never_contains_access_tokens(deployment: Deployment) -> None:
    server = deployment.server
    url = deployment.https_url + "/_matrix/client/versions"
    status, _ = http_json("GET", f"{url}?access_token={QUERY_SECRET}&x=1",
                          headers={"Authorization": f"Bearer {HEADER_SECRET}"}, ssl_context=deployment.tls)
    assert status == 200
    # Percent-encoded parameter names reach the handler decoded, so they
    # authenticate too; the log must treat them the same way.
    status, _ = http_json("GET", f"{url}?access%5Ftoken={ENCODED_SECRET}&marker=encoded",
                          ssl_context=deployment.tls)
    assert status == 200
    _wait_for_log(server, "marker=encoded")
    err = server.stderr()
    for secret in (QUERY_SECRET, ENCODED_SECRET, HEADER_SECRET):
        assert secret not in err
    access = [r["msg"] for r in _log_records(server) if r["logger"] == "aiohttp.access"]
    assert any("/_matrix/client/versions?access_token=<redacted>&x=1" in str(m) for m in access), access
    assert any("access%5Ftoken=<redacted>&marker=encoded" in str(m) for m in access), access


def test_logs_are_json_lines(deployment: Deployment) -> None:
    records = _log_records(deployment.server)  # raises if any line is not JSON
    assert records
    for record in records:
        assert {"ts", "level", "logger", "msg"} <= record.keys()
    messages = [str(r["msg"]) for r in records]
    assert any(m.startswith("Listening on https://127.0.0.1:") for m in messages)
    assert any(m.startswith("Listening on http://127.0.0.1:") and "(metrics)" in m for m in messages)


def test_sigint_stops_cleanly_with_exit_code_0(deployment: Deployment) -> None:
    assert deployment.server.stop(signal.SIGINT) == 0
    records = _log_records(deployment.server)
    assert records[-1]["msg"] == "Stopped"
    assert not [r for r in records if r["level"] in ("ERROR", "CRITICAL")]


def test_openssl_fallback_makes_a_usable_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    _with_openssl(cert, key)
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
