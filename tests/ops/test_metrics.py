"""GET /_hearth/metrics: request counters and latency per endpoint, database pool
gauges and process memory, in Prometheus text format, on both engines."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pytest_aiohttp import AiohttpClient

from hearth.app import build_app
from hearth.homeserver import Homeserver
from hearth.metrics import Metrics
from tests.helpers.homeserver import MatrixTestClient


async def _scrape(client: MatrixTestClient) -> list[Sample]:
    resp = await client.http.get("/_hearth/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    text = await resp.text()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _value(samples: list[Sample], name: str, **labels: str) -> float | None:
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


async def test_counts_requests_per_endpoint_method_and_status(client: MatrixTestClient) -> None:
    for _ in range(3):
        await client.request("GET", "/_matrix/client/versions")
    samples = await _scrape(client)
    assert _value(samples, "hearth_http_requests_total",
                  endpoint="/_matrix/client/versions", method="GET", status="200") == 3


async def test_records_latency_per_endpoint(client: MatrixTestClient) -> None:
    await client.request("GET", "/_matrix/client/versions")
    await client.request("GET", "/_matrix/client/versions")
    samples = await _scrape(client)
    assert _value(samples, "hearth_http_request_seconds_count",
                  endpoint="/_matrix/client/versions", method="GET") == 2
    total = _value(samples, "hearth_http_request_seconds_sum", endpoint="/_matrix/client/versions")
    assert total is not None and total > 0
    inf = _value(samples, "hearth_http_request_seconds_bucket",
                 endpoint="/_matrix/client/versions", le="+Inf")
    assert inf == 2


async def test_endpoint_label_is_the_route_template_not_the_path(
    hs: Homeserver, aiohttp_client: AiohttpClient,
) -> None:
    # One time series per route, whatever IDs appear in paths: a label per
    # user or room ID would grow without bound.
    async def item(request: web.Request) -> web.Response:
        return web.json_response({})

    app = build_app(hs)
    app.router.add_get("/_test/items/{item_id}", item)
    http = await aiohttp_client(app)
    for item_id in ("a", "b", "c"):
        assert (await http.get(f"/_test/items/{item_id}")).status == 200
    samples = await _scrape(MatrixTestClient(http, hs))
    assert _value(samples, "hearth_http_requests_total", endpoint="/_test/items/{item_id}") == 3
    assert not [s for s in samples if "/_test/items/a" in s.labels.get("endpoint", "")]


async def test_shows_database_pool_gauges(client: MatrixTestClient) -> None:
    await client.request("GET", "/_matrix/client/versions")
    samples = await _scrape(client)
    size = _value(samples, "hearth_db_pool_size")
    in_use = _value(samples, "hearth_db_pool_connections_in_use")
    idle = _value(samples, "hearth_db_pool_connections_idle")
    assert size is not None and size >= 1
    assert in_use is not None and in_use >= 0
    assert idle is not None and idle >= 0


async def test_pool_gauges_follow_checked_out_connections(client: MatrixTestClient) -> None:
    # The push worker catches up once at start, on a connection of its own:
    # let it finish so the only connection checked out is the one held here.
    await client.hs.push.settled(0)
    async with client.hs.db.read():
        held = await _scrape(client)
    released = await _scrape(client)
    in_use_held = _value(held, "hearth_db_pool_connections_in_use")
    in_use_released = _value(released, "hearth_db_pool_connections_in_use")
    assert in_use_held is not None and in_use_released is not None
    assert in_use_held == in_use_released + 1


async def test_shows_process_memory(client: MatrixTestClient) -> None:
    samples = await _scrape(client)
    rss = _value(samples, "process_resident_memory_bytes")
    assert rss is not None and rss > 1024 * 1024


def test_each_metrics_object_has_its_own_registry() -> None:
    # No process globals: two homeservers in one process (as in tests) never
    # double-register or mix their counters.
    a, b = Metrics(), Metrics()
    a.observe_request("GET", "/x", 200, 0.01)
    assert b"hearth_http_requests_total" in a.render()
    assert b'endpoint="/x"' not in b.render()


async def test_counts_unrecognized_request_with_its_404(client: MatrixTestClient) -> None:
    # The error middleware turns the router's 404 into M_UNRECOGNIZED; metrics
    # sit outside it, so the counted status is the one the client saw.
    body = await client.request("GET", "/_matrix/client/v3/no_such_endpoint", expect=404)
    assert body["errcode"] == "M_UNRECOGNIZED"
    samples = await _scrape(client)
    assert _value(samples, "hearth_http_requests_total", method="GET", status="404") == 1
    assert _value(samples, "hearth_http_requests_total", method="GET", status="200") is None


async def test_counts_not_json_with_its_400(client: MatrixTestClient) -> None:
    _, token = await client.user("alice")
    body = await client.request("POST", "/_matrix/client/v3/createRoom", token=token,
                                data=b"{not json", expect=400)
    assert body["errcode"] == "M_NOT_JSON"
    samples = await _scrape(client)
    assert _value(samples, "hearth_http_requests_total", method="POST",
                  endpoint="/_matrix/client/v3/createRoom", status="400") == 1
    assert _value(samples, "hearth_http_requests_total", method="POST",
                  endpoint="/_matrix/client/v3/createRoom", status="200") is None


async def test_counts_unhandled_error_as_500(hs: Homeserver, aiohttp_client: AiohttpClient) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app = build_app(hs)
    app.router.add_get("/_test/broken", broken)
    http = await aiohttp_client(app)
    resp = await http.get("/_test/broken")
    assert resp.status == 500
    assert (await resp.json())["errcode"] == "M_UNKNOWN"
    samples = await _scrape(MatrixTestClient(http, hs))
    assert _value(samples, "hearth_http_requests_total", endpoint="/_test/broken", status="500") == 1


def test_series_per_status_share_one_latency_histogram() -> None:
    # Counter children are remembered per (method, endpoint, status); the
    # latency histogram has no status label, so all three land in one series.
    metrics = Metrics()
    metrics.observe_request("GET", "/x", 200, 0.001)
    metrics.observe_request("GET", "/x", 200, 0.002)
    metrics.observe_request("GET", "/x", 404, 0.003)
    samples = [s for f in text_string_to_metric_families(metrics.render().decode()) for s in f.samples]
    assert _value(samples, "hearth_http_requests_total", endpoint="/x", method="GET", status="200") == 2
    assert _value(samples, "hearth_http_requests_total", endpoint="/x", method="GET", status="404") == 1
    assert _value(samples, "hearth_http_request_seconds_count", endpoint="/x", method="GET") == 3
