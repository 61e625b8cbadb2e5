"""/versions, well-known documents, and the HTTP layer's error mapping and CORS."""

from __future__ import annotations

from tests.helpers.homeserver import MatrixTestClient


async def test_versions_lists_spec_versions(client: MatrixTestClient) -> None:
    body = await client.request("GET", "/_matrix/client/versions")
    assert "v1.1" in body["versions"]
    assert isinstance(body["unstable_features"], dict)


async def test_client_wellknown_points_at_base_url(client: MatrixTestClient) -> None:
    body = await client.request("GET", "/.well-known/matrix/client")
    assert body["m.homeserver"]["base_url"].startswith("http")


async def test_server_wellknown_is_404_when_not_delegated(client: MatrixTestClient) -> None:
    body = await client.request("GET", "/.well-known/matrix/server", expect=404)
    assert body["errcode"] == "M_NOT_FOUND"


async def test_unknown_endpoint_is_unrecognized(client: MatrixTestClient) -> None:
    body = await client.request("GET", "/_matrix/client/v3/no/such/thing", expect=404)
    assert body["errcode"] == "M_UNRECOGNIZED"


async def test_wrong_method_is_405_unrecognized(client: MatrixTestClient) -> None:
    body = await client.request("DELETE", "/_matrix/client/versions", expect=405)
    assert body["errcode"] == "M_UNRECOGNIZED"


async def test_options_preflight_answers_with_cors_headers(client: MatrixTestClient) -> None:
    resp = await client.http.options("/_matrix/client/v3/login")
    assert resp.status in (200, 204)
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
    for method in ("GET", "POST", "PUT", "DELETE", "OPTIONS"):
        assert method in resp.headers["Access-Control-Allow-Methods"]


async def test_normal_responses_carry_cors_headers(client: MatrixTestClient) -> None:
    resp = await client.http.get("/_matrix/client/versions")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_error_responses_carry_cors_headers(client: MatrixTestClient) -> None:
    resp = await client.http.get("/_matrix/client/v3/nothing-here")
    assert resp.status == 404
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
