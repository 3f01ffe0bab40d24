"""The scope a gateway vouches for, carried to services in a signed, short-lived header.

Format: ``base64url(json payload) "." base64url(HMAC-SHA256(secret, payload))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Literal

import msgspec

from .errors import Unauthorized

__all__ = ["HEADER", "Principal", "Scope", "ScopeRejected", "sign_scope", "verify_scope"]

HEADER = "x-stackbe-scope"
TTL_SECONDS = 30

PrincipalKind = Literal["anonymous", "tenant_key", "app_key", "member", "customer", "service"]
Role = Literal["owner", "admin", "viewer"]


class Principal(msgspec.Struct, frozen=True, rename="camel"):
    kind: PrincipalKind
    id: str | None = None


class Scope(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    principal: Principal
    tenant_id: str | None = None
    app_id: str | None = None
    role: Role | None = None
    request_id: str | None = None
    client_ip: str | None = None
    session_id: str | None = None  # a dashboard token's refresh family (``sid`` claim)

    @property
    def is_anonymous(self) -> bool:
        return self.principal.kind == "anonymous"


class _Signed(msgspec.Struct, frozen=True):
    s: Scope
    exp: float


class ScopeRejected(Unauthorized):
    default_message = "Request did not come through the StackBE gateway"


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Signed)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()


def sign_scope(scope: Scope, secret: bytes, now: float | None = None) -> str:
    now = time.time() if now is None else now
    payload = _encoder.encode(_Signed(s=scope, exp=now + TTL_SECONDS))
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def verify_scope(header: str | None, secret: bytes, now: float | None = None) -> Scope:
    """Return the scope, or raise ``ScopeRejected`` for a missing, forged or stale header."""
    if not header:
        raise ScopeRejected("Missing scope header")
    try:
        payload_b64, mac_b64 = header.split(".", 1)
        payload, mac = _unb64(payload_b64), _unb64(mac_b64)
    except ValueError as exc:
        raise ScopeRejected("Malformed scope header") from exc
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise ScopeRejected("Forged scope header")
    try:
        signed = _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise ScopeRejected("Malformed scope header") from exc
    if signed.exp < (time.time() if now is None else now):
        raise ScopeRejected("Stale scope header")
    return signed.s
