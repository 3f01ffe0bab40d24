"""Per-request facts every gateway response needs: the request id and the client address."""

from __future__ import annotations

from typing import Any

from litestar.types import Scope as ASGIScope

from stackbe_common.ids import new_id

__all__ = ["REQUEST_ID_HEADER", "client_ip", "header", "request_id"]

REQUEST_ID_HEADER = b"x-request-id"
_STATE_KEY = "stackbe.request_id"
_MAX_REQUEST_ID = 200


def header(headers: Any, name: bytes) -> bytes | None:
    """The first value of a (lower-case) header in ASGI headers."""
    for key, value in headers:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def _sane(raw: bytes | None) -> str | None:
    """A client's request id if it is short and printable ASCII, so logs stay clean."""
    if raw is None or not 0 < len(raw) <= _MAX_REQUEST_ID:
        return None
    if not all(0x21 <= c <= 0x7E for c in raw):
        return None
    return raw.decode("ascii")


def request_id(scope: ASGIScope) -> str:
    """The request id for this request: the client's if sane, else a new ``req_`` id."""
    state: dict[str, Any] = scope.setdefault("state", {})
    found = state.get(_STATE_KEY)
    if found is None:
        found = _sane(header(scope["headers"], REQUEST_ID_HEADER)) or new_id("req")
        state[_STATE_KEY] = found
    return found


def client_ip(scope: ASGIScope, trusted_proxy_hops: int) -> str:
    """The caller's address: the socket peer, or X-Forwarded-For behind trusted proxies."""
    peer = scope.get("client")
    address = peer[0] if peer else "unknown"
    if trusted_proxy_hops <= 0:
        return address
    # Every X-Forwarded-For line, in order: a proxy may add its own line after a client's.
    forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for")
    hops = [part.strip() for part in forwarded.decode("latin-1").split(",") if part.strip()]
    # Each trusted proxy appended one entry; the one before them came from the client.
    # Fewer entries than trusted proxies means the chain is not what was configured.
    if len(hops) >= trusted_proxy_hops:
        return hops[-trusted_proxy_hops]
    return address
