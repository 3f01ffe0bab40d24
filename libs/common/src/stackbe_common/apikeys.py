"""API key format: ``<prefix><32 base62 random><6 base62 CRC32 of the rest>``.

The checksum lets a scanner (and the gateway) recognise a key offline and reject a
mistyped one without a lookup. Only SHA-256 of a key is ever stored.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib

__all__ = ["APP_PREFIX", "TENANT_PREFIX", "generate_key", "hash_key", "hint", "is_well_formed"]

TENANT_PREFIX = "sbt_"
APP_PREFIX = "sba_"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_LEN = 32
_CHECK_LEN = 6


def _base62(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        value, rem = divmod(value, 62)
        out.append(_BASE62[rem])
    return "".join(reversed(out))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECK_LEN)


def generate_key(prefix: str) -> str:
    body = prefix + "".join(secrets.choice(_BASE62) for _ in range(_RANDOM_LEN))
    return body + _checksum(body)


def is_well_formed(key: str) -> bool:
    """Prefix, length, alphabet and checksum all hold; no lookup needed."""
    if not key.startswith((TENANT_PREFIX, APP_PREFIX)):
        return False
    if len(key) != len(TENANT_PREFIX) + _RANDOM_LEN + _CHECK_LEN:
        return False
    body, check = key[:-_CHECK_LEN], key[-_CHECK_LEN:]
    if any(c not in _BASE62 for c in key[len(TENANT_PREFIX) :]):
        return False
    return secrets.compare_digest(check, _checksum(body))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def hint(key: str) -> str:
    """What a list may show of a key: its prefix and last four characters."""
    return f"{key[:4]}...{key[-4:]}"
