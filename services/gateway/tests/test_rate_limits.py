"""Requests per credential per minute, with X-RateLimit-* headers on every response."""

from __future__ import annotations

from typing import Any

import httpx

from stackbe_common.apikeys import generate_key
from stackbe_gateway.ratelimit import RateLimiter

from .support import FakeIdentity, bearer


def _limit_headers(response: httpx.Response) -> tuple[int, int, int]:
    return (
        int(response.headers["x-ratelimit-limit"]),
        int(response.headers["x-ratelimit-remaining"]),
        int(response.headers["x-ratelimit-reset"]),
    )


async def test_every_response_carries_rate_limit_headers(
    make_gateway: Any, identity: FakeIdentity
) -> None:
    key, _ = identity.add_key(identity.tenant())
    async with make_gateway(
        rate_limit_per_minute=50, anonymous_rate_limit_per_minute=20
    ) as gateway:
        ok = await gateway.get("/v1/tenants/me", headers=bearer(key))
        not_found = await gateway.get("/v1/nothing-here", headers=bearer(key))
        refused = await gateway.get("/v1/tenants/me", headers=bearer("sbt_typo"))
        anonymous = await gateway.get("/.well-known/jwks.json")

    assert _limit_headers(ok)[:2] == (50, 49)
    assert _limit_headers(not_found)[:2] == (50, 48)
    assert _limit_headers(refused)[:2] == (20, 19)
    assert _limit_headers(anonymous)[:2] == (20, 18)
    assert all(1 <= _limit_headers(r)[2] <= 60 for r in (ok, not_found, refused, anonymous))


async def test_a_key_over_its_limit_is_rate_limited_with_retry_after(
    make_gateway: Any, identity: FakeIdentity
) -> None:
    key, _ = identity.add_key(identity.tenant())
    other, _ = identity.add_key(identity.tenant())
    async with make_gateway(rate_limit_per_minute=3) as gateway:
        allowed = [await gateway.get("/v1/tenants/me", headers=bearer(key)) for _ in range(3)]
        limited = await gateway.get("/v1/tenants/me", headers=bearer(key))
        someone_else = await gateway.get("/v1/tenants/me", headers=bearer(other))

    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert _limit_headers(limited)[:2] == (3, 0)
    assert someone_else.status_code == 200


async def test_anonymous_callers_are_limited_by_address(
    make_gateway: Any, identity: FakeIdentity
) -> None:
    async with make_gateway(anonymous_rate_limit_per_minute=2) as gateway:
        statuses = [(await gateway.get("/.well-known/jwks.json")).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


async def test_failed_credentials_spend_the_address_budget(
    make_gateway: Any, identity: FakeIdentity
) -> None:
    async with make_gateway(anonymous_rate_limit_per_minute=2) as gateway:
        statuses = [
            (await gateway.get("/v1/tenants/me", headers=bearer(generate_key("sbt_")))).status_code
            for _ in range(3)
        ]

    assert statuses == [401, 401, 429]


async def test_member_tokens_use_the_credential_limit(
    make_gateway: Any, identity: FakeIdentity
) -> None:
    token = identity.token()
    async with make_gateway(
        rate_limit_per_minute=2, anonymous_rate_limit_per_minute=100
    ) as gateway:
        statuses = [
            (await gateway.get("/v1/members", headers=bearer(token))).status_code for _ in range(3)
        ]

    assert statuses == [200, 200, 429]


def test_a_new_minute_starts_a_fresh_window() -> None:
    now = [120.0]
    limiter = RateLimiter(clock=lambda: now[0])

    assert [limiter.hit("k", 2).allowed for _ in range(3)] == [True, True, False]
    now[0] = 179.5
    refused = limiter.hit("k", 2)
    assert (refused.allowed, refused.remaining, refused.reset) == (False, 0, 1)
    now[0] = 180.0
    fresh = limiter.hit("k", 2)
    assert (fresh.allowed, fresh.remaining, fresh.reset) == (True, 1, 60)
