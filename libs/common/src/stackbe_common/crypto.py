"""Secrets at rest: AES-256-GCM under ``STACKBE_ENCRYPTION_KEY``.

The key setting is ``kid:base64url(32 bytes)``, comma-separated; the first encrypts, all
decrypt, so keys rotate by putting a new one first. Each ciphertext names its key id.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["DecryptionError", "Keyring", "parse_keyed_secrets"]


class DecryptionError(Exception):
    """The ciphertext names an unknown key or fails authentication."""


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_keyed_secrets(value: str, setting: str, size: int = 32) -> list[tuple[str, bytes]]:
    """``kid:base64url(bytes),...`` -> [(kid, bytes)]; the first is the active one."""
    found = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        kid, _, secret = item.partition(":")
        try:
            raw = _unb64(secret)
        except ValueError:
            raw = b""
        if not kid or len(kid) > 64 or len(raw) != size:
            raise ValueError(f"{setting} must be kid:base64url({size} bytes), comma-separated")
        found.append((kid, raw))
    if not found:
        raise ValueError(f"{setting} is empty")
    return found


@dataclass(frozen=True)
class Keyring:
    keys: tuple[tuple[str, AESGCM], ...]

    @classmethod
    def parse(cls, value: str) -> Keyring:
        secrets = parse_keyed_secrets(value, "STACKBE_ENCRYPTION_KEY")
        return cls(tuple((kid, AESGCM(raw)) for kid, raw in secrets))

    def encrypt(self, plaintext: bytes, context: bytes = b"") -> bytes:
        """``len(kid) | kid | nonce | ciphertext+tag``; ``context`` is bound as associated data."""
        kid, aead = self.keys[0]
        nonce = os.urandom(12)
        return bytes([len(kid)]) + kid.encode() + nonce + aead.encrypt(nonce, plaintext, context)

    def decrypt(self, blob: bytes, context: bytes = b"") -> bytes:
        size = blob[0] if blob else 0
        kid = blob[1 : 1 + size].decode(errors="replace")
        nonce, sealed = blob[1 + size : 13 + size], blob[13 + size :]
        for candidate, aead in self.keys:
            if candidate == kid:
                try:
                    return aead.decrypt(nonce, sealed, context)
                except Exception as exc:
                    raise DecryptionError("ciphertext failed authentication") from exc
        raise DecryptionError(f"unknown encryption key id {kid!r}")
