from __future__ import annotations

import time

import pytest

from stackbe_common.scope import Principal, Scope, ScopeRejected, sign_scope, verify_scope

SECRET = b"s" * 32
SCOPE = Scope(principal=Principal(kind="app_key", id="key_1"), tenant_id="ten_1", app_id="app_1")


def test_a_signed_scope_round_trips():
    assert verify_scope(sign_scope(SCOPE, SECRET), SECRET) == SCOPE


def test_scope_verifier_rejects_a_missing_header():
    with pytest.raises(ScopeRejected, match="Missing"):
        verify_scope(None, SECRET)


def test_scope_verifier_rejects_a_header_signed_with_another_secret():
    with pytest.raises(ScopeRejected, match="Forged"):
        verify_scope(sign_scope(SCOPE, b"x" * 32), SECRET)


def test_scope_verifier_rejects_a_tampered_payload():
    forged = Scope(principal=SCOPE.principal, tenant_id="ten_other", app_id="app_1")
    payload, _ = sign_scope(forged, SECRET).split(".")
    _, mac = sign_scope(SCOPE, SECRET).split(".")
    with pytest.raises(ScopeRejected, match="Forged"):
        verify_scope(f"{payload}.{mac}", SECRET)


def test_scope_verifier_rejects_a_stale_header():
    old = sign_scope(SCOPE, SECRET, now=time.time() - 120)
    with pytest.raises(ScopeRejected, match="Stale"):
        verify_scope(old, SECRET)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "!!!.???"])
def test_scope_verifier_rejects_garbage(garbage: str):
    with pytest.raises(ScopeRejected):
        verify_scope(garbage, SECRET)
