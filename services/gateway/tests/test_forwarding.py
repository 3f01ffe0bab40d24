"""Routing and forwarding: what reaches the service, what never does, and upstream failures."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx

from stackbe_common.infra import free_port
from stackbe_common.scope import verify_scope
from stackbe_gateway.proxy import RouteTable
from stackbe_gateway.routes import ROUTES

from .support import FakeIdentity, Upstream, bearer, header_of

MIB = 1024 * 1024


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["statusCode"], body["code"]) == (status, code)
    assert body["requestId"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text


async def test_an_unknown_path_is_not_found_with_the_stackbe_error_body(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    for path in ("/v2/tenants", "/v1/tenantsfoo", "/v1", "/", "/schema/openapi.json"):
        _error(await gateway.get(path), 404, "NOT_FOUND")
    assert upstream.requests == []


async def test_encoded_dot_segments_and_slashes_are_never_forwarded(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    # (plain ../ segments are normalised by httpx itself; test_process sends them raw)
    for path in (
        "/v1/tenants/%2e%2e/health",
        "/v1/tenants/..%2fmetrics",
        "/v1/tenants/%2E./schema",
        "/v1/apps/a%5C..%5Cb",
    ):
        _error(await gateway.get(path), 404, "NOT_FOUND")
    assert upstream.requests == []


async def test_routes_match_whole_segments_longest_prefix_first() -> None:
    table = RouteTable(
        {"/v1/apps": "identity", "/v1/apps/special": "catalog", "/.well-known/": "identity"},
        {"identity": "http://i", "catalog": "http://c/"},
    )

    assert table.match("/v1/apps") == ("identity", "http://i")
    assert table.match("/v1/apps/app_1/api-keys") == ("identity", "http://i")
    assert table.match("/v1/apps/special/x") == ("catalog", "http://c")
    assert table.match("/.well-known/jwks.json") == ("identity", "http://i")
    assert table.match("/v1/appsx") is None
    assert table.match("/v1") is None


async def test_the_public_jwks_is_forwarded_anonymously(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    response = await gateway.get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert upstream.requests[-1]["path"] == "/.well-known/jwks.json"


async def test_a_client_request_id_is_kept_and_an_insane_one_replaced(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    kept = await gateway.get("/.well-known/jwks.json", headers={"X-Request-Id": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    assert header_of(upstream.requests[-1], "x-request-id") == "abc-123"

    for insane in ("x" * 201, "has space", "tab\there"):
        response = await gateway.get("/.well-known/jwks.json", headers={"X-Request-Id": insane})
        assert response.headers["x-request-id"].startswith("req_")

    generated = await gateway.get("/.well-known/jwks.json")
    assert generated.headers["x-request-id"].startswith("req_")
    assert header_of(upstream.requests[-1], "x-request-id") == generated.headers["x-request-id"]


async def test_hop_by_hop_headers_are_not_forwarded(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    await gateway.get(
        "/.well-known/jwks.json",
        headers={
            "Connection": "keep-alive, X-Private-Hop",
            "X-Private-Hop": "1",
            "TE": "trailers",
            "Upgrade": "websocket",
            "Proxy-Authorization": "secret",
            "X-Kept": "yes",
        },
    )

    names = {k.lower() for k, _ in upstream.requests[-1]["headers"]}
    assert names.isdisjoint({"x-private-hop", "te", "upgrade", "proxy-authorization"})
    assert "x-kept" in names
    assert header_of(upstream.requests[-1], "x-forwarded-for") == "203.0.113.7"


async def test_the_upstream_status_headers_and_body_come_back_unchanged(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    key, _ = identity.add_key(identity.tenant())

    response = await gateway.post(
        "/v1/apps", content=b"hello", headers={**bearer(key), "X-Echo-Status": "409"}
    )

    assert response.status_code == 409
    assert response.headers["x-upstream"] == "echo"
    assert base64.b64decode(response.json()["body"]) == b"hello"
    assert len(response.headers.get_list("x-request-id")) == 1


async def test_a_large_response_is_streamed_back_whole(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    key, _ = identity.add_key(identity.tenant())
    body = bytes(range(256)) * 3000  # about 750 KiB, above the buffered size

    response = await gateway.put("/v1/apps/app_x", content=body, headers=bearer(key))

    assert response.status_code == 200
    assert base64.b64decode(response.json()["body"]) == body


async def test_a_body_over_one_mebibyte_is_refused_and_never_forwarded(
    gateway: httpx.AsyncClient, identity: FakeIdentity, upstream: Upstream
) -> None:
    key, _ = identity.add_key(identity.tenant())

    response = await gateway.post("/v1/apps", content=b"x" * (MIB + 1), headers=bearer(key))

    _error(response, 413, "PAYLOAD_TOO_LARGE")
    assert upstream.requests == []


async def test_a_streamed_body_is_cut_off_once_it_passes_one_mebibyte(
    gateway: httpx.AsyncClient, identity: FakeIdentity, upstream: Upstream
) -> None:
    key, _ = identity.add_key(identity.tenant())

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 64 * 1024

    response = await gateway.post("/v1/apps", content=chunks(), headers=bearer(key))

    _error(response, 413, "PAYLOAD_TOO_LARGE")
    assert upstream.requests == []


async def test_a_body_of_exactly_one_mebibyte_is_forwarded(
    gateway: httpx.AsyncClient, identity: FakeIdentity, upstream: Upstream
) -> None:
    key, _ = identity.add_key(identity.tenant())

    response = await gateway.post("/v1/apps", content=b"z" * MIB, headers=bearer(key))

    assert response.status_code == 200
    assert len(base64.b64decode(upstream.requests[-1]["body"])) == MIB


async def test_an_unreachable_upstream_is_service_unavailable_without_a_trace(
    make_gateway: Any, identity: FakeIdentity
) -> None:
    key, _ = identity.add_key(identity.tenant())
    down = f"http://127.0.0.1:{free_port()}"

    async with make_gateway(upstreams=dict.fromkeys(ROUTES.values(), down)) as gateway:
        response = await gateway.get("/v1/tenants/me", headers=bearer(key))

    _error(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers["x-ratelimit-limit"]


async def test_behind_a_trusted_proxy_the_client_address_comes_from_x_forwarded_for(
    make_gateway: Any, upstream: Upstream, settings: Any
) -> None:
    async with make_gateway(trusted_proxy_hops=1) as gateway:
        await gateway.get(
            "/.well-known/jwks.json",
            headers={"X-Forwarded-For": "10.9.9.9, 198.51.100.4", "X-Forwarded-Proto": "https"},
        )
    seen = upstream.requests[-1]
    assert header_of(seen, "x-forwarded-for") == "198.51.100.4"
    assert header_of(seen, "x-forwarded-proto") == "https"
    scope = verify_scope(header_of(seen, "x-stackbe-scope"), settings.secret)
    assert scope.client_ip == "198.51.100.4"


async def test_a_forged_forwarded_for_line_before_the_proxys_own_line_is_not_believed(
    make_gateway: Any, upstream: Upstream, settings: Any
) -> None:
    # The client sends its own X-Forwarded-For; the trusted proxy adds a second line.
    async with make_gateway(trusted_proxy_hops=1) as gateway:
        await gateway.get(
            "/.well-known/jwks.json",
            headers=[("X-Forwarded-For", "192.0.2.99"), ("X-Forwarded-For", "198.51.100.4")],
        )
    scope = verify_scope(header_of(upstream.requests[-1], "x-stackbe-scope"), settings.secret)
    assert scope.client_ip == "198.51.100.4"


async def test_a_chain_shorter_than_the_trusted_proxies_falls_back_to_the_socket_peer(
    make_gateway: Any, upstream: Upstream, settings: Any
) -> None:
    async with make_gateway(trusted_proxy_hops=2) as gateway:
        await gateway.get("/.well-known/jwks.json", headers={"X-Forwarded-For": "192.0.2.99"})
    scope = verify_scope(header_of(upstream.requests[-1], "x-stackbe-scope"), settings.secret)
    assert scope.client_ip == "203.0.113.7"


async def test_without_trusted_proxies_a_client_cannot_choose_its_address(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    await gateway.get("/.well-known/jwks.json", headers={"X-Forwarded-For": "198.51.100.4"})

    assert header_of(upstream.requests[-1], "x-forwarded-for") == "203.0.113.7"
