"""Secrets at rest: AES-256-GCM under ``STACKBE_ENCRYPTION_KEY``.

The key setting is ``kid:base64url(32 bytes)``, comma-separated; the first encrypts, all
decrypt, so keys rotate by putting a new one first. Each ciphertext names its key id.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Keyring", "DecryptionError"]


class DecryptionError(Exception):
    """The ciphertext names an unknown key or fails authentication."""


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Keyring:
    keys: tuple[tuple[str, AESGCM], ...]

    @classmethod
    def parse(cls, value: str) -> Keyring:
        keys = []
        for item in filter(None, (part.strip() for part in value.split(","))):
            kid, _, secret = item.partition(":")
            try:
                raw = _unb64(secret)
            except ValueError:
                raw = b""
            if not kid or len(raw) != 32 or len(kid) > 255:
                raise ValueError("STACKBE_ENCRYPTION_KEY must be kid:base64url(32 bytes)")
            keys.append((kid, AESGCM(raw)))
        if not keys:
            raise ValueError("STACKBE_ENCRYPTION_KEY is empty")
        return cls(tuple(keys))

    def encrypt(self, plaintext: bytes, context: bytes = b"") -> bytes:
        """``len(kid) | kid | nonce | ciphertext+tag``; ``context`` is bound as associated data."""
        kid, aead = self.keys[0]
        nonce = os.urandom(12)
        return bytes([len(kid)]) + kid.encode() + nonce + aead.encrypt(nonce, plaintext, context)

    def decrypt(self, blob: bytes, context: bytes = b"") -> bytes:
        size = blob[0] if blob else 0
        kid = blob[1:1 + size].decode(errors="replace")
        nonce, sealed = blob[1 + size:13 + size], blob[13 + size:]
        for candidate, aead in self.keys:
            if candidate == kid:
                try:
                    return aead.decrypt(nonce, sealed, context)
                except Exception as exc:
                    raise DecryptionError("ciphertext failed authentication") from exc
        raise DecryptionError(f"unknown encryption key id {kid!r}")
