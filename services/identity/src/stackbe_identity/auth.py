"""Dashboard sign-in: magic links, Ed25519 access tokens, rotating refresh tokens.

A magic link opens a confirmation page and only its POST spends the token, so mail
scanners that follow links cannot burn it. Refresh tokens rotate on every use; using a
spent one again revokes its whole family (the token was copied).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from urllib.parse import urlencode

import asyncpg

from stackbe_common import outbox
from stackbe_common.errors import RateLimited, TokenExpired
from stackbe_common.ids import new_id
from stackbe_common.logging import get_logger
from stackbe_common.scope import Scope
from stackbe_common.uow import UnitOfWork
from stackbe_events.identity import MemberSignedOut

from . import repository as repo
from . import schemas as s
from . import signin_repository as signins
from .access import member_of
from .deps import Deps
from .errors import MemberNotFound, TenantNotFound, TokenAlreadyUsed, TokenInvalid
from .service import event, member_out, normalise_email, tenant_out
from .tokens import hash_secret, new_secret

log = get_logger(__name__)


async def send_login_link(
    conn: asyncpg.Connection,
    deps: Deps,
    uow: UnitOfWork,
    member: asyncpg.Record,
    *,
    invited: bool = False,
) -> None:
    """Store a one-time link for the member and mail it once the transaction commits."""
    send = await _issue_link(conn, deps, member, invited=invited)
    uow.after_commit(send)


async def _issue_link(
    conn: asyncpg.Connection, deps: Deps, member: asyncpg.Record, *, invited: bool = False
) -> Callable[[], Awaitable[None]]:
    """Store a one-time link for the member; return the mailing of it, to run after commit."""
    token = new_secret()
    expires = deps.clock.now() + timedelta(seconds=deps.settings.magic_link_seconds)
    await signins.insert_magic_link(conn, hash_secret(token), member["id"], expires)
    link = f"{deps.settings.public_url}/v1/auth/confirm?{urlencode({'token': token})}"
    minutes = deps.settings.magic_link_seconds // 60
    subject = "You are invited to StackBE" if invited else "Your StackBE sign-in link"
    text = (
        f"Open this link to sign in to StackBE:\n\n{link}\n\n"
        f"It works once and expires in {minutes} minutes. "
        "If you did not ask for it, ignore this message.\n"
    )
    email = member["email"]
    return lambda: deps.mailer.send(email, subject, text, link=link)


async def request_magic_link(
    conn: asyncpg.Connection, deps: Deps, uow: UnitOfWork, caller: Scope, data: s.RequestMagicLink
) -> None:
    """Limits per email and IP, then the same work for known and unknown emails: whether the
    email belongs to a member is only looked at after the answer, in the background."""
    email = normalise_email(data.email)
    since = deps.clock.now() - timedelta(hours=1)
    by_email, by_ip = await signins.count_recent_sends(conn, email, caller.client_ip, since)
    if caller.client_ip is not None and by_ip >= deps.settings.magic_links_per_ip_per_hour:
        raise RateLimited("Too many sign-in links requested from this address", retry_after=3600)
    await signins.insert_send(conn, email, caller.client_ip)
    if by_email < deps.settings.magic_links_per_email_per_hour:
        pool, tenant_id = uow.pool, data.tenant_id
        uow.after_commit(lambda: _send_link_if_member(pool, deps, email, tenant_id))


async def _send_link_if_member(
    pool: asyncpg.Pool, deps: Deps, email: str, tenant_id: str | None
) -> None:
    try:
        async with pool.acquire() as conn, conn.transaction():
            member = await repo.find_member_for_login(conn, email, tenant_id)
            if member is None:
                return
            send = await _issue_link(conn, deps, member)
        await send()
    except (OSError, asyncpg.PostgresError) as exc:
        log.error("magic_link.not_sent", error=repr(exc))


async def verify_magic_link(conn: asyncpg.Connection, deps: Deps, token: str) -> s.TokenPair:
    token_hash = hash_secret(token)
    link = await signins.lock_magic_link(conn, token_hash)
    now = deps.clock.now()
    if link is None:
        raise TokenInvalid()
    if link["used_at"] is not None:
        raise TokenAlreadyUsed()
    if link["expires_at"] <= now:
        raise TokenExpired()
    await signins.spend_magic_link(conn, token_hash, now)
    member = await repo.get_member_by_id(conn, link["member_id"])
    if member is None:
        raise TokenInvalid()
    return await _start_session(conn, deps, member, new_id("sess"))


async def _start_session(
    conn: asyncpg.Connection, deps: Deps, member: asyncpg.Record, family_id: str
) -> s.TokenPair:
    now = deps.clock.now()
    refresh = new_secret()
    await signins.insert_refresh_token(
        conn,
        hash_secret(refresh),
        family_id,
        member["id"],
        member["tenant_id"],
        now + timedelta(days=deps.settings.refresh_token_days),
    )
    ttl = timedelta(seconds=deps.settings.access_token_seconds)
    access = deps.keys.issue_access_token(
        member_id=member["id"],
        tenant_id=member["tenant_id"],
        role=member["role"],
        session_id=family_id,
        now=now,
        ttl=ttl,
    )
    return s.TokenPair(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(ttl.total_seconds()),
        member=member_out(member),
    )


async def refresh_session(
    conn: asyncpg.Connection, deps: Deps, uow: UnitOfWork, data: s.RefreshTokens
) -> s.TokenPair:
    token_hash = hash_secret(data.refresh_token)
    found = await signins.get_refresh_token(conn, token_hash)
    if found is None:
        raise TokenInvalid()
    # One refresh, logout or revocation of a family at a time: a logout racing this
    # refresh then also revokes the token this refresh issues.
    await signins.lock_family(conn, found["family_id"])
    row = await signins.lock_refresh_token(conn, token_hash)
    now = deps.clock.now()
    if row is None or row["revoked_at"] is not None:
        raise TokenInvalid()
    if row["used_at"] is not None:
        await signins.revoke_family(conn, row["family_id"], now)
        await outbox.record(
            conn,
            event(
                MemberSignedOut,
                deps,
                row["tenant_id"],
                member_id=row["member_id"],
                session_id=row["family_id"],
            ),
        )
        uow.commit_even_on_error()
        raise TokenAlreadyUsed("Refresh token reused; every session of its family is revoked")
    if row["expires_at"] <= now:
        raise TokenExpired()
    await signins.spend_refresh_token(conn, token_hash, now)
    member = await repo.get_member_by_id(conn, row["member_id"])
    if member is None:
        raise TokenInvalid()
    return await _start_session(conn, deps, member, row["family_id"])


async def logout(conn: asyncpg.Connection, deps: Deps, caller: Scope) -> None:
    tenant_id, member_id = member_of(caller)
    if caller.session_id:
        await signins.lock_family(conn, caller.session_id)
        await signins.revoke_family(conn, caller.session_id, deps.clock.now())
        await outbox.record(
            conn,
            event(
                MemberSignedOut, deps, tenant_id, member_id=member_id, session_id=caller.session_id
            ),
        )


async def me(conn: asyncpg.Connection, caller: Scope) -> s.Me:
    tenant_id, member_id = member_of(caller)
    member = await repo.get_member(conn, tenant_id, member_id)
    tenant = await repo.get_tenant(conn, tenant_id)
    if member is None:
        raise MemberNotFound()
    if tenant is None:
        raise TenantNotFound()
    return s.Me(member=member_out(member), tenant=tenant_out(tenant))
