from __future__ import annotations

import base64
import secrets

import pytest

from stackbe_common.crypto import DecryptionError, Keyring


def key(kid: str) -> str:
    return f"{kid}:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def test_sealed_data_opens_with_the_same_context_only():
    ring = Keyring.parse(key("k1"))
    sealed = ring.encrypt(b"sbt_secret", b"scope:key")
    assert b"sbt_secret" not in sealed
    assert ring.decrypt(sealed, b"scope:key") == b"sbt_secret"
    with pytest.raises(DecryptionError):
        ring.decrypt(sealed, b"other:key")


def test_a_rotated_keyring_still_opens_data_sealed_under_the_old_key():
    old = key("k1")
    sealed = Keyring.parse(old).encrypt(b"payload")
    rotated = Keyring.parse(f"{key('k2')},{old}")
    assert rotated.decrypt(sealed) == b"payload"
    assert rotated.encrypt(b"x")[1:3] == b"k2"


def test_tampered_or_foreign_ciphertext_is_refused():
    ring = Keyring.parse(key("k1"))
    sealed = bytearray(ring.encrypt(b"payload"))
    sealed[-1] ^= 1
    with pytest.raises(DecryptionError):
        ring.decrypt(bytes(sealed))
    with pytest.raises(DecryptionError, match="unknown encryption key"):
        Keyring.parse(key("k9")).decrypt(ring.encrypt(b"payload"))


@pytest.mark.parametrize("bad", ["", "nokey", "k1:short", ":" + "A" * 43])
def test_a_malformed_key_setting_is_refused(bad: str):
    with pytest.raises(ValueError, match="STACKBE_ENCRYPTION_KEY"):
        Keyring.parse(bad)
