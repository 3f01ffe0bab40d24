from __future__ import annotations

import pytest

from stackbe_common.apikeys import APP_PREFIX, TENANT_PREFIX, generate_key, hash_key, is_well_formed
from stackbe_common.ids import has_prefix, new_id


@pytest.mark.parametrize("prefix", [TENANT_PREFIX, APP_PREFIX])
def test_generated_keys_carry_prefix_and_valid_checksum(prefix: str):
    key = generate_key(prefix)
    assert key.startswith(prefix) and len(key) == 42
    assert is_well_formed(key)


def test_key_checksum_rejects_every_single_character_typo():
    key = generate_key(TENANT_PREFIX)
    for i in range(len(TENANT_PREFIX), len(key)):
        replacement = "A" if key[i] != "A" else "B"
        typo = key[:i] + replacement + key[i + 1 :]
        assert not is_well_formed(typo), typo


def test_key_checksum_rejects_swapped_neighbours():
    key = generate_key(APP_PREFIX)
    for i in range(len(APP_PREFIX), len(key) - 1):
        if key[i] != key[i + 1]:
            swapped = key[:i] + key[i + 1] + key[i] + key[i + 2 :]
            assert not is_well_formed(swapped)


@pytest.mark.parametrize("bad", ["", "sbt_", "sbx_" + "a" * 38, "sbt_short", "sbt_" + "!" * 38])
def test_malformed_keys_are_not_well_formed(bad: str):
    assert not is_well_formed(bad)


def test_keys_are_hashed_not_kept():
    key = generate_key(TENANT_PREFIX)
    assert hash_key(key) != key and len(hash_key(key)) == 64


def test_ids_are_prefixed_and_sort_by_time():
    first = new_id("cust", now_ms=1_700_000_000_000)
    later = new_id("cust", now_ms=1_700_000_000_001)
    assert first < later
    assert has_prefix(first, "cust") and not has_prefix(first, "sub")
    assert len({new_id("evt") for _ in range(1000)}) == 1000
