"""Dashboard tokens: Ed25519 access JWTs with a JWKS, and opaque one-time secrets.

Signing keys come from ``STACKBE_JWT_SIGNING_KEYS`` as ``kid:base64url(32-byte seed)``,
comma-separated; the first signs, all verify, so keys can rotate.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from stackbe_common.crypto import parse_keyed_secrets
from stackbe_events.rpc import DASHBOARD_TOKEN_AUDIENCE, DASHBOARD_TOKEN_ISSUER

__all__ = [
    "AUDIENCE",
    "ISSUER",
    "SigningKeys",
    "hash_secret",
    "new_secret",
]

ISSUER = DASHBOARD_TOKEN_ISSUER
AUDIENCE = DASHBOARD_TOKEN_AUDIENCE


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKeys:
    keys: tuple[tuple[str, Ed25519PrivateKey], ...]

    @classmethod
    def parse(cls, value: str) -> SigningKeys:
        secrets = parse_keyed_secrets(value, "STACKBE_JWT_SIGNING_KEYS")
        return cls(tuple((kid, Ed25519PrivateKey.from_private_bytes(raw)) for kid, raw in secrets))

    def jwks(self) -> list[dict[str, str]]:
        return [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "kid": kid,
                "alg": "EdDSA",
                "use": "sig",
                "x": _b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)),
            }
            for kid, key in self.keys
        ]

    def issue_access_token(
        self,
        *,
        member_id: str,
        tenant_id: str,
        role: str,
        session_id: str,
        now: datetime,
        ttl: timedelta,
    ) -> str:
        kid, key = self.keys[0]
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": member_id,
            "tid": tenant_id,
            "role": role,
            "sid": session_id,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": secrets.token_urlsafe(12),  # each token its own, even in one second
        }
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})

    def issue_customer_token(
        self,
        *,
        customer_id: str,
        tenant_id: str,
        app_id: str,
        session_id: str,
        now: datetime,
        ttl: timedelta,
    ) -> str:
        """A customer session: its audience is the app, so another app's gateway scope
        never accepts it."""
        kid, key = self.keys[0]
        claims = {
            "iss": ISSUER,
            "aud": app_id,
            "kind": "customer",
            "sub": customer_id,
            "tid": tenant_id,
            "sid": session_id,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": secrets.token_urlsafe(12),  # each token its own, even in one second
        }
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


def new_secret() -> str:
    """A 256-bit random token for magic links and refresh tokens."""
    return secrets.token_urlsafe(32)


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
