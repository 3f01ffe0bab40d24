"""Prefixed, time-sortable identifiers (``cust_01j9...``): 48-bit ms time + 80 random bits."""

from __future__ import annotations

import os
import time

__all__ = ["has_prefix", "new_id", "new_key_id"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_last = [0, 0]  # the last (ms, random) this process used


def new_id(prefix: str, now_ms: int | None = None) -> str:
    """Return ``<prefix>_<26 chars>``; in one process, each id sorts after the one before."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    if ms <= _last[0]:
        ms, rand = _last[0], _last[1] + 1  # same millisecond: count up, stay sortable
    else:
        rand = int.from_bytes(os.urandom(10), "big") >> 1
    _last[0], _last[1] = ms, rand
    return f"{prefix}_{_encode(ms, 10)}{_encode(rand, 16)}"


def new_key_id(prefix: str) -> str:
    """An id that is also a key (a hosted checkout's address): the same shape as
    ``new_id``, but 80 fresh random bits every time, so no id tells another."""
    ms = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_encode(ms, 10)}{_encode(rand, 16)}"


def has_prefix(value: str, prefix: str) -> bool:
    """Whether ``value`` looks like an id of this prefix (no lookup)."""
    body = value.removeprefix(prefix + "_")
    return body != value and len(body) == 26 and all(c in _ALPHABET for c in body)
