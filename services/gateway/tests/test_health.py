"""The gateway's own endpoints: health, readiness, metrics, and its own errors."""

from __future__ import annotations

from typing import Any

import httpx

from stackbe_common.infra import free_port
from stackbe_gateway.routes import ROUTES

from .support import FakeIdentity, Upstream


async def test_health_answers_while_the_process_is_up(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"].startswith("req_")


async def test_ready_when_nats_and_every_upstream_answer(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/ready")

    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "checks": {"nats": True, **dict.fromkeys(sorted(set(ROUTES.values())), True)},
    }


async def test_not_ready_when_an_upstream_is_down(
    make_gateway: Any, identity: FakeIdentity, upstream: Upstream
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    upstreams = {**dict.fromkeys(ROUTES.values(), upstream.url), "identity": down}
    async with make_gateway(upstreams=upstreams) as gateway:
        response = await gateway.get("/ready")

    assert response.status_code == 503
    assert response.json()["checks"] == {
        "nats": True,
        **dict.fromkeys(ROUTES.values(), True),
        "identity": False,
    }


async def test_metrics_are_exposed_for_prometheus(gateway: httpx.AsyncClient) -> None:
    await gateway.get("/.well-known/jwks.json")

    response = await gateway.get("/metrics")

    assert response.status_code == 200
    assert 'stackbe_gateway_forwarded_total{service="identity",status="200"}' in response.text
    assert 'app_name="stackbe_gateway"' in response.text


async def test_the_gateways_own_errors_use_the_stackbe_body(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post("/health", headers={"X-Request-Id": "mine-1"})

    assert response.status_code == 405
    body = response.json()
    assert (body["statusCode"], body["code"], body["requestId"]) == (
        405,
        "METHOD_NOT_ALLOWED",
        "mine-1",
    )
    assert response.headers["x-request-id"] == "mine-1"
