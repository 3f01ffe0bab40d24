"""Dashboard access tokens: EdDSA JWTs signed by identity, verified against its JWKS.

The algorithm is pinned to EdDSA, and ``exp``, ``iat``, ``iss``, ``aud`` and ``sub`` are
required. Public keys come from identity over NATS; they are fetched at start, every
few minutes, and again when a token names a key id we do not hold (at most once per
``refetch_interval`` so garbage tokens cannot turn into a flood of requests). A verified
token is remembered until it expires, so a warm request does no signature check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import jwt

from stackbe_common.logging import get_logger
from stackbe_common.scope import Role
from stackbe_events.rpc import DASHBOARD_TOKEN_AUDIENCE, DASHBOARD_TOKEN_ISSUER, Jwks

from .errors import InvalidCredential, TokenExpired

__all__ = ["AUDIENCE", "ISSUER", "CustomerClaims", "MemberClaims", "TokenVerifier"]

log = get_logger(__name__)

ISSUER = DASHBOARD_TOKEN_ISSUER
AUDIENCE = DASHBOARD_TOKEN_AUDIENCE
ALGORITHMS = ["EdDSA"]
LEEWAY_SECONDS = 5
_ROLES = frozenset({"owner", "admin", "viewer"})
_REQUIRED = ["exp", "iat", "iss", "aud", "sub"]


class MemberClaims:
    """What the gateway takes from a verified access token."""

    __slots__ = ("expires_at", "issued_at", "member_id", "role", "session_id", "tenant_id")

    def __init__(
        self,
        member_id: str,
        tenant_id: str,
        role: Role,
        issued_at: float,
        expires_at: float,
        session_id: str | None = None,
    ) -> None:
        self.member_id, self.tenant_id, self.role = member_id, tenant_id, role
        self.issued_at, self.expires_at = issued_at, expires_at
        self.session_id = session_id  # the refresh family (``sid``); identity's logout uses it


class CustomerClaims:
    """What the gateway takes from a verified customer session token (audience: its app)."""

    __slots__ = ("app_id", "customer_id", "expires_at", "issued_at", "session_id", "tenant_id")

    def __init__(
        self,
        customer_id: str,
        tenant_id: str,
        app_id: str,
        issued_at: float,
        expires_at: float,
        session_id: str | None,
    ) -> None:
        self.customer_id, self.tenant_id, self.app_id = customer_id, tenant_id, app_id
        self.issued_at, self.expires_at, self.session_id = issued_at, expires_at, session_id


def _customer_claims_of(payload: dict[str, Any], app_id: str) -> CustomerClaims:
    sub, tid, sid = payload.get("sub"), payload.get("tid"), payload.get("sid")
    if not (
        payload.get("kind") == "customer"
        and isinstance(sub, str)
        and sub.startswith("cust_")
        and isinstance(tid, str)
        and tid.startswith("ten_")
    ):
        raise InvalidCredential("The session token does not name a customer")
    return CustomerClaims(
        sub,
        tid,
        app_id,
        float(payload["iat"]),
        float(payload["exp"]),
        sid if isinstance(sid, str) else None,
    )


def _claims_of(payload: dict[str, Any]) -> MemberClaims | CustomerClaims:
    """Dashboard tokens carry the dashboard audience; customer tokens their app's id."""
    audience = payload.get("aud")
    if isinstance(audience, str) and audience.startswith("app_") and audience != AUDIENCE:
        return _customer_claims_of(payload, audience)
    if audience != AUDIENCE:
        raise InvalidCredential("The access token is for another audience")
    sub, tid, role = payload.get("sub"), payload.get("tid"), payload.get("role")
    if not (
        isinstance(sub, str)
        and sub.startswith("mem_")
        and isinstance(tid, str)
        and tid.startswith("ten_")
        and role in _ROLES
    ):
        raise InvalidCredential("The access token does not name a member")
    sid = payload.get("sid")
    return MemberClaims(
        sub,
        tid,
        cast(Role, role),
        float(payload["iat"]),
        float(payload["exp"]),
        sid if isinstance(sid, str) else None,
    )


def _keys_of(jwks: Jwks) -> dict[str, jwt.PyJWK]:
    keys: dict[str, jwt.PyJWK] = {}
    for data in jwks.keys:
        kid = data.get("kid")
        if not kid or data.get("kty") != "OKP" or data.get("crv") != "Ed25519":
            continue
        try:
            keys[kid] = jwt.PyJWK(dict(data), algorithm="EdDSA")
        except jwt.PyJWTError:
            log.warning("jwks.key_skipped", kid=kid)
    return keys


class TokenVerifier:
    def __init__(
        self,
        fetch_jwks: Callable[[], Awaitable[Jwks]],
        *,
        refetch_interval: float = 10.0,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fetch_jwks, self._interval, self._clock = fetch_jwks, refetch_interval, clock
        self._max_cached = max_cached
        self._keys: dict[str, jwt.PyJWK] = {}
        self._verified: dict[str, MemberClaims | CustomerClaims] = {}
        self._last_refetch = float("-inf")
        self._inflight: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        """Fetch the key set now (start-up and the periodic refresh)."""
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._fetch())
            self._inflight.add_done_callback(self._clear_inflight)
        await asyncio.shield(self._inflight)

    async def _fetch(self) -> None:
        keys = _keys_of(await self._fetch_jwks())
        if not set(self._keys) <= set(keys):
            # A key was withdrawn: tokens it verified must be checked again (and fail).
            self._verified.clear()
        self._keys = keys
        log.debug("jwks.fetched", kids=sorted(keys))

    async def verify(self, token: str) -> MemberClaims | CustomerClaims:
        """The member a token names; ``TokenExpired`` or ``InvalidCredential`` otherwise."""
        claims = self._verified.get(token)
        if claims is not None:
            if claims.expires_at + LEEWAY_SECONDS <= self._clock():
                del self._verified[token]
                raise TokenExpired
            return claims
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidCredential("The access token is malformed") from exc
        kid = header.get("kid")
        if header.get("alg") not in ALGORITHMS or not isinstance(kid, str):
            raise InvalidCredential("The access token is not signed by StackBE")
        key = self._keys.get(kid) or await self._key_after_refetch(kid)
        if key is None:
            raise InvalidCredential("The access token is signed by an unknown key")
        try:
            payload = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                # The audience is checked in ``_claims_of``: the dashboard's, or an app's.
                options={"require": _REQUIRED, "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired("The access token has expired; refresh it") from exc
        except jwt.PyJWTError as exc:
            raise InvalidCredential("The access token is not valid") from exc
        claims = _claims_of(payload)
        if len(self._verified) >= self._max_cached:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = claims
        return claims

    async def _key_after_refetch(self, kid: str) -> jwt.PyJWK | None:
        if self._inflight is not None:  # a fetch is under way anyway (e.g. at start-up)
            await asyncio.shield(self._inflight)
            if kid in self._keys:
                return self._keys[kid]
        if time.monotonic() - self._last_refetch < self._interval:
            return None
        self._last_refetch = time.monotonic()
        await self.refresh()
        return self._keys.get(kid)

    def _clear_inflight(self, task: asyncio.Task[None]) -> None:
        self._inflight = None
        if task.cancelled() or task.exception() is not None:
            self._last_refetch = float("-inf")  # a failed fetch must not block the next one
