"""Test doubles at the network edge: a real echo upstream and a fake identity on real NATS.

Identity is a third party for the gateway: its NATS responders are stood up from dicts,
and its HTTP side is an echo server that reports exactly what the gateway forwarded.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import jwt
import msgspec
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.aio.client import Client as NATS

from stackbe_common.apikeys import generate_key, hash_key
from stackbe_common.bus import Responder
from stackbe_common.ids import new_id
from stackbe_common.infra import free_port
from stackbe_common.scope import HEADER as SCOPE_HEADER
from stackbe_common.scope import ScopeRejected, verify_scope
from stackbe_events.rpc import (
    JWKS,
    RESOLVE_APP,
    RESOLVE_KEY,
    Jwks,
    ResolveApp,
    ResolvedApp,
    ResolvedKey,
    ResolveKey,
)


class Upstream:
    """A real HTTP service that echoes each request and records what it received."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.requests: list[dict[str, Any]] = []
        self.openapi: dict[str, Any] = {"openapi": "3.1.0", "info": {}, "paths": {}}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._runner: web.AppRunner | None = None

    async def start(self) -> Upstream:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_get("/health", self._health)
        app.router.add_get("/schema/openapi.json", self._schema)
        app.router.add_route("*", "/{tail:.*}", self._echo)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _schema(self, request: web.Request) -> web.Response:
        try:  # like a real service edge: only signed requests
            verify_scope(request.headers.get(SCOPE_HEADER), self.secret)
        except ScopeRejected:
            return web.json_response({"code": "UNAUTHORIZED"}, status=401)
        return web.json_response(self.openapi)

    async def _echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen = {
            "method": request.method,
            "path": request.raw_path.split("?", 1)[0],
            "query": request.query_string,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body": base64.b64encode(body).decode(),
        }
        self.requests.append(seen)
        status = int(request.headers.get("x-echo-status", "200"))
        return web.json_response(seen, status=status, headers={"X-Upstream": "echo"})


def header_of(seen: dict[str, Any], name: str) -> str | None:
    values = [v for k, v in seen["headers"] if k.lower() == name.lower()]
    return values[0] if values else None


class FakeIdentity:
    """Identity's request-reply side, answered from dicts; counts the questions asked."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self.keys: dict[str, ResolvedKey] = {}
        self.apps: dict[tuple[str, str], ResolvedApp] = {}
        self.calls: Counter[str] = Counter()
        self.signing: dict[str, Ed25519PrivateKey] = {}
        self.published: dict[str, Ed25519PrivateKey] = {}
        self._responders: list[Responder] = []
        self.rotate_signing_key()

    async def start(self) -> FakeIdentity:
        for subject, handler in (
            (RESOLVE_KEY, self._resolve_key),
            (RESOLVE_APP, self._resolve_app),
            (JWKS, self._jwks),
        ):
            responder = Responder(self.nc, subject, "identity", handler)
            await responder.start()
            self._responders.append(responder)
        await self.nc.flush()
        return self

    async def stop(self) -> None:
        for responder in self._responders:
            await responder.stop()

    async def _resolve_key(self, data: bytes) -> ResolvedKey | None:
        self.calls[RESOLVE_KEY] += 1
        return self.keys.get(msgspec.json.decode(data, type=ResolveKey).key_hash)

    async def _resolve_app(self, data: bytes) -> ResolvedApp | None:
        self.calls[RESOLVE_APP] += 1
        ask = msgspec.json.decode(data, type=ResolveApp)
        return self.apps.get((ask.tenant_id, ask.app_id))

    async def _jwks(self, data: bytes) -> Jwks:
        self.calls[JWKS] += 1
        keys = []
        for kid, private in self.published.items():
            jwk = jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": "EdDSA", "use": "sig"})
        return Jwks(keys=keys)

    # What identity would hold -------------------------------------------------------------

    def tenant(self) -> str:
        return new_id("ten")

    def add_app(self, tenant_id: str) -> str:
        app_id = new_id("app")
        self.apps[(tenant_id, app_id)] = ResolvedApp(app_id=app_id, tenant_id=tenant_id)
        return app_id

    def add_key(
        self, tenant_id: str, app_id: str | None = None, expires_at: datetime | None = None
    ) -> tuple[str, ResolvedKey]:
        key = generate_key("sba_" if app_id else "sbt_")
        resolved = ResolvedKey(
            key_id=new_id("key"),
            kind="app" if app_id else "tenant",
            tenant_id=tenant_id,
            app_id=app_id,
            expires_at=expires_at,
        )
        self.keys[hash_key(key)] = resolved
        return key, resolved

    def rotate_signing_key(self) -> str:
        kid = new_id("kid")
        self.signing = {kid: Ed25519PrivateKey.generate()}
        self.published[kid] = self.signing[kid]
        return kid

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": "stackbe",
            "aud": "stackbe-dashboard",
            "sub": new_id("mem"),
            "tid": new_id("ten"),
            "role": "admin",
            "sid": new_id("fam"),
            "iat": now,
            "exp": now + 900,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, **overrides: Any) -> str:
        kid, private = next(iter(self.signing.items()))
        return jwt.encode(
            self.claims(**overrides), private, algorithm="EdDSA", headers={"kid": kid}
        )


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def utc(seconds_from_now: float) -> datetime:
    return datetime.fromtimestamp(time.time() + seconds_from_now, UTC)
