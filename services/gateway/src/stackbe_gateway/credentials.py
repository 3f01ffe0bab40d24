"""Credential -> caller: API keys and dashboard tokens become the scope the gateway vouches for.

Everything a warm request needs is in this process's memory: a key's hash maps to its
resolved scope, a (tenant, app) pair to whether the app is live, a token to its verified
claims. A miss asks identity once over NATS request-reply (concurrent misses for the same
credential share the one request). Unknown key hashes and foreign apps are remembered as
misses too: a hash nobody holds cannot become valid later. Cached entries live
``ttl`` seconds; ``revocation.py`` drops them at once when identity says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from stackbe_common.apikeys import hash_key, is_well_formed
from stackbe_common.bus import RemoteError, request
from stackbe_common.logging import get_logger
from stackbe_common.scope import Principal, Scope
from stackbe_events import (
    ApiKeyRevoked,
    AppArchived,
    MemberRemoved,
    MemberSignedOut,
    MemberUpdated,
)
from stackbe_events.rpc import (
    JWKS,
    RESOLVE_APP,
    RESOLVE_KEY,
    GetJwks,
    Jwks,
    ResolveApp,
    ResolvedApp,
    ResolvedKey,
    ResolveKey,
)

from .errors import AppNotFound, IdentityUnavailable, InvalidCredential, TokenExpired
from .tokens import CustomerClaims, TokenVerifier

__all__ = ["ANONYMOUS", "Caller", "Credentials", "ask_identity"]

log = get_logger(__name__)

K = TypeVar("K")
V = TypeVar("V")

POSITIVE_TTL = 60.0
NEGATIVE_TTL = 600.0
MAX_ENTRIES = 100_000
# Access tokens live 15 minutes; a removal older than this can no longer matter.
MEMBER_TOMBSTONE_SECONDS = 3600.0


class Caller:
    """A resolved credential: the scope to forward and the bucket it is rate-limited in."""

    __slots__ = ("rate_key", "scope")

    def __init__(self, scope: Scope, rate_key: str | None = None) -> None:
        self.scope, self.rate_key = scope, rate_key

    def in_app(self, app_id: str) -> Caller:
        return Caller(msgspec.structs.replace(self.scope, app_id=app_id), self.rate_key)


ANONYMOUS = Caller(Scope(principal=Principal(kind="anonymous")))


class _Entry(Generic[V]):
    __slots__ = ("fresh_until", "value")

    def __init__(self, value: V, fresh_until: float) -> None:
        self.value, self.fresh_until = value, fresh_until


class _Cache(Generic[K, V]):
    """A dict with a freshness deadline per entry and a size cap (oldest out first)."""

    def __init__(self, clock: Callable[[], float], max_entries: int = MAX_ENTRIES) -> None:
        self._clock, self._max = clock, max_entries
        self.entries: dict[K, _Entry[V]] = {}

    def get(self, key: K) -> _Entry[V] | None:
        entry = self.entries.get(key)
        if entry is not None and entry.fresh_until <= self._clock():
            return None
        return entry

    def put(self, key: K, value: V, ttl: float) -> None:
        self.entries.pop(key, None)
        if len(self.entries) >= self._max:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = _Entry(value, self._clock() + ttl)


class _Key:
    """A live API key as cached: its caller, its id (for last use) and its expiry."""

    __slots__ = ("caller", "expires_at", "key_id")

    def __init__(self, caller: Caller, key_id: str, expires_at: float | None) -> None:
        self.caller, self.key_id, self.expires_at = caller, key_id, expires_at


async def ask_identity(nc: NATS, subject: str, payload: msgspec.Struct, result_type: Any) -> Any:
    """One request-reply round trip to identity; any failure is a 503, never a 401."""
    try:
        return await request(nc, subject, payload, result_type)
    except (TimeoutError, NatsError, RemoteError, msgspec.MsgspecError) as exc:
        log.warning("identity.unavailable", subject=subject, error=repr(exc))
        raise IdentityUnavailable from exc


def _bearer(authorization: bytes) -> str:
    scheme, _, credential = authorization.decode("latin-1").strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise InvalidCredential("Use 'Authorization: Bearer <API key or access token>'")
    return credential


def _valid_app_id(app_id: str) -> bool:
    return (
        app_id.startswith("app_")
        and len(app_id) <= 64
        and app_id.isascii()
        and app_id.isprintable()
    )


class Credentials:
    def __init__(
        self,
        nc: NATS,
        *,
        ttl: float = POSITIVE_TTL,
        verifier: TokenVerifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._nc, self._ttl, self._clock = nc, ttl, clock
        self.verifier = verifier or TokenVerifier(self.fetch_jwks, clock=clock)
        self._keys: _Cache[str, _Key | None] = _Cache(clock)
        self._apps: _Cache[tuple[str, str], bool] = _Cache(clock)
        self._key_lookups: dict[str, asyncio.Task[_Key | None]] = {}
        self._archived_apps: dict[str, None] = {}
        self._removed_members: dict[str, float] = {}
        self._changed_members: dict[str, float] = {}
        self._ended_sessions: dict[str, float] = {}
        self._generation = 0  # bumped by every invalidation; guards lookups in flight
        self._used: dict[str, float] = {}

    async def fetch_jwks(self) -> Jwks:
        jwks: Jwks = await ask_identity(self._nc, JWKS, GetJwks(), Jwks)
        return jwks

    async def authenticate(self, authorization: bytes | None) -> Caller:
        """The caller a request's credential names; raises a StackBE error otherwise."""
        if authorization is None:
            return ANONYMOUS
        credential = _bearer(authorization)
        if credential.startswith(("sbt_", "sba_")):
            return await self._resolve_key(credential)
        return await self._resolve_token(credential)

    async def with_app(self, caller: Caller, app: bytes) -> Caller:
        """The caller narrowed to the app named in ``X-StackBE-App``; ``AppNotFound`` if not
        theirs. Anonymous and customer callers cannot widen their scope: the header is ignored.
        """
        app_id = app.decode("latin-1").strip()
        kind, tenant_id = caller.scope.principal.kind, caller.scope.tenant_id
        if kind == "app_key":
            if app_id != caller.scope.app_id:
                raise AppNotFound
            return caller
        if kind not in ("tenant_key", "member") or tenant_id is None:
            return caller
        if not _valid_app_id(app_id) or app_id in self._archived_apps:
            raise AppNotFound
        entry = self._apps.get((tenant_id, app_id))
        live = entry.value if entry is not None else await self._fetch_app(tenant_id, app_id)
        if not live:
            raise AppNotFound
        return caller.in_app(app_id)

    def take_used(self) -> dict[str, float]:
        """Last use per key id since the previous call (reported to identity in batches)."""
        used, self._used = self._used, {}
        return used

    def restore_used(self, used: dict[str, float]) -> None:
        for key_id, at in used.items():
            self._used[key_id] = max(at, self._used.get(key_id, at))

    # API keys ---------------------------------------------------------------------------

    async def _resolve_key(self, key: str) -> Caller:
        key_hash = hash_key(key)
        entry = self._keys.get(key_hash)  # only well-formed keys are ever cached
        if entry is not None:
            found = entry.value
        elif not is_well_formed(key):  # a mistyped key never costs a lookup
            raise InvalidCredential("This is not a valid StackBE API key")
        else:
            found = await self._lookup_key(key_hash)
        if found is None:
            raise InvalidCredential("Unknown or revoked API key")
        now = self._clock()
        if found.expires_at is not None and found.expires_at <= now:
            raise InvalidCredential("This API key has expired")
        self._used[found.key_id] = now
        return found.caller

    async def _lookup_key(self, key_hash: str) -> _Key | None:
        task = self._key_lookups.get(key_hash)
        if task is None:
            task = asyncio.create_task(self._fetch_key(key_hash))
            self._key_lookups[key_hash] = task
            task.add_done_callback(lambda _: self._key_lookups.pop(key_hash, None))
        return await asyncio.shield(task)

    async def _fetch_key(self, key_hash: str) -> _Key | None:
        generation = self._generation
        resolved: ResolvedKey | None = await ask_identity(
            self._nc, RESOLVE_KEY, ResolveKey(key_hash=key_hash), ResolvedKey | None
        )
        found = None if resolved is None else _key_of(resolved)
        if generation != self._generation:
            # Something was revoked while we asked; trust the tombstones over the reply.
            current = self._keys.entries.get(key_hash)
            revoked = current is not None and current.value is None
            archived = resolved is not None and resolved.app_id in self._archived_apps
            return None if revoked or archived else found
        self._keys.put(key_hash, found, self._ttl if found is not None else NEGATIVE_TTL)
        return found

    # Dashboard tokens ---------------------------------------------------------------------

    async def _resolve_token(self, token: str) -> Caller:
        claims = await self.verifier.verify(token)
        if isinstance(claims, CustomerClaims):
            if claims.session_id is not None and claims.session_id in self._ended_sessions:
                raise InvalidCredential("This session has ended; sign in again")
            if claims.app_id in self._archived_apps:
                raise InvalidCredential("The app of this session is archived")
            customer = Scope(
                principal=Principal(kind="customer", id=claims.customer_id),
                tenant_id=claims.tenant_id,
                app_id=claims.app_id,
                session_id=claims.session_id,
            )
            return Caller(customer, rate_key=f"cust:{claims.customer_id}")
        removed = self._removed_members.get(claims.member_id)
        if removed is not None and claims.issued_at <= removed:
            raise InvalidCredential("This member no longer belongs to the tenant")
        if claims.session_id is not None and claims.session_id in self._ended_sessions:
            raise InvalidCredential("This session has ended; sign in again")
        changed = self._changed_members.get(claims.member_id)
        if changed is not None and claims.issued_at <= changed:
            raise TokenExpired("The member's role changed; refresh the access token")
        scope = Scope(
            principal=Principal(kind="member", id=claims.member_id),
            tenant_id=claims.tenant_id,
            role=claims.role,
            session_id=claims.session_id,
        )
        return Caller(scope, rate_key=f"mem:{claims.member_id}")

    # Apps ---------------------------------------------------------------------------------

    async def _fetch_app(self, tenant_id: str, app_id: str) -> bool:
        generation = self._generation
        resolved: ResolvedApp | None = await ask_identity(
            self._nc,
            RESOLVE_APP,
            ResolveApp(tenant_id=tenant_id, app_id=app_id),
            ResolvedApp | None,
        )
        live = resolved is not None and resolved.tenant_id == tenant_id
        if generation != self._generation:
            return live and app_id not in self._archived_apps
        self._apps.put((tenant_id, app_id), live, self._ttl if live else NEGATIVE_TTL)
        return live

    # Invalidation (called by revocation.py) -----------------------------------------------

    def key_revoked(self, event: ApiKeyRevoked) -> None:
        self._generation += 1
        self._keys.put(event.key_hash, None, NEGATIVE_TTL)
        log.info("key.dropped", key_id=event.key_id)

    def app_archived(self, event: AppArchived) -> None:
        app_id = event.app_id
        if app_id is None:
            log.warning("app_archived.without_app_id", event_id=event.id)
            return
        self._generation += 1
        if len(self._archived_apps) >= MAX_ENTRIES:
            self._archived_apps.pop(next(iter(self._archived_apps)))
        self._archived_apps[app_id] = None
        for key_hash, entry in list(self._keys.entries.items()):
            if entry.value is not None and entry.value.caller.scope.app_id == app_id:
                del self._keys.entries[key_hash]
        for pair in [pair for pair in self._apps.entries if pair[1] == app_id]:
            del self._apps.entries[pair]
        log.info("app.dropped", app_id=app_id)

    def member_removed(self, event: MemberRemoved) -> None:
        self._remember(self._removed_members, event.member_id, event.occurred_at.timestamp())

    def member_signed_out(self, event: MemberSignedOut) -> None:
        self._remember(self._ended_sessions, event.session_id, event.occurred_at.timestamp())

    def member_updated(self, event: MemberUpdated) -> None:
        self._remember(self._changed_members, event.member_id, event.occurred_at.timestamp())

    def flush(self) -> None:
        """Forget every positive cache entry; misses and tombstones stay (they are facts)."""
        self._generation += 1
        for key_hash in [h for h, e in self._keys.entries.items() if e.value is not None]:
            del self._keys.entries[key_hash]
        self._apps.entries.clear()
        log.info("credentials.flushed")

    def _remember(self, tombstones: dict[str, float], member_id: str, at: float) -> None:
        tombstones[member_id] = max(at, tombstones.get(member_id, at))
        cutoff = self._clock() - MEMBER_TOMBSTONE_SECONDS
        while tombstones and next(iter(tombstones.values())) < cutoff:
            tombstones.pop(next(iter(tombstones)))


def _key_of(resolved: ResolvedKey) -> _Key:
    is_app = resolved.kind == "app"
    scope = Scope(
        principal=Principal(kind="app_key" if is_app else "tenant_key", id=resolved.key_id),
        tenant_id=resolved.tenant_id,
        app_id=resolved.app_id if is_app else None,
        role=None if is_app else "admin",
    )
    caller = Caller(scope, rate_key=f"key:{resolved.key_id}")
    expires = resolved.expires_at.timestamp() if resolved.expires_at is not None else None
    return _Key(caller, resolved.key_id, expires)
