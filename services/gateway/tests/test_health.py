"""The gateway's own endpoints: health, readiness, metrics, and its own errors."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

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
    await gateway.get("/no-such-path")  # not a forwarded path: the Litestar app answers

    response = await gateway.get("/metrics")

    assert response.status_code == 200
    assert 'stackbe_gateway_forwarded_total{service="identity",status="200"}' in response.text
    assert 'stackbe_gateway_requests_total{status="200"}' in response.text
    assert 'app_name="stackbe_gateway"' in response.text


async def _forwarded_requests(gateway: httpx.AsyncClient) -> dict[str, float]:
    """``stackbe_gateway_requests_total`` by status, and the duration histogram's count."""
    text = (await gateway.get("/metrics")).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "stackbe_gateway_requests_total":
                found[sample.labels["status"]] = sample.value
            elif sample.name == "stackbe_gateway_request_duration_seconds_count":
                found["timed"] = sample.value
    return found


async def test_forwarded_requests_are_counted_by_the_status_answered(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    before = await _forwarded_requests(gateway)

    ok = await gateway.get("/.well-known/jwks.json", headers={"X-Request-Id": "fwd-1"})
    refused = await gateway.get("/v1/apps", headers={"Authorization": "Bearer sk_nonsense"})
    own = await gateway.get("/health")

    after = await _forwarded_requests(gateway)
    assert (ok.status_code, refused.status_code, own.status_code) == (200, 401, 200)
    assert ok.headers["x-request-id"] == "fwd-1"
    assert refused.headers["x-request-id"] == refused.json()["requestId"]
    assert after.get("200", 0) - before.get("200", 0) == 1  # /health is not a forwarded path
    assert after.get("401", 0) - before.get("401", 0) == 1
    assert after["timed"] - before.get("timed", 0) == 2


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
