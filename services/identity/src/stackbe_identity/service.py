"""Tenants, members, apps and API keys. Functions take the request's connection and never
commit; events go out through the outbox in the same transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from stackbe_common import apikeys, outbox
from stackbe_common.errors import AppNotFound, InvalidInput
from stackbe_common.ids import has_prefix, new_id
from stackbe_common.pagination import Page, PageParams, page_of
from stackbe_common.scope import Scope
from stackbe_events import Event
from stackbe_events import identity as ev

from . import repository as repo
from . import schemas as s
from .access import tenant_of
from .deps import Deps
from .errors import (
    ApiKeyNotFound,
    AppArchived,
    LastOwner,
    MemberExists,
    MemberNotFound,
    OwnerRoleRequired,
    SignupClosed,
    TenantNotFound,
)

MAX_KEY_LIFETIME = timedelta(days=3653)

E = TypeVar("E", bound=Event)
T = TypeVar("T")


def event(cls: type[E], deps: Deps, tenant_id: str, app_id: str | None = None, **fields: Any) -> E:
    return cls(
        id=new_id("evt"), occurred_at=deps.clock.now(), tenant_id=tenant_id, app_id=app_id, **fields
    )


# Conversions from rows


def tenant_out(row: asyncpg.Record) -> s.Tenant:
    return s.Tenant(id=row["id"], name=row["name"], created_at=row["created_at"])


def member_out(row: asyncpg.Record) -> s.Member:
    return s.Member(
        id=row["id"],
        tenant_id=row["tenant_id"],
        email=row["email"],
        role=row["role"],
        created_at=row["created_at"],
    )


def key_out(row: asyncpg.Record) -> s.ApiKey:
    return s.ApiKey(
        id=row["id"],
        name=row["name"],
        hint=row["hint"],
        app_id=row["app_id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


# Tenants


async def create_tenant(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, data: s.CreateTenant
) -> tuple[s.CreatedTenant, asyncpg.Record]:
    """Create a tenant, its owner and its first tenant key; returns the owner row too."""
    if deps.settings.signup == "closed" and not (
        caller.principal.kind == "tenant_key"
        and caller.tenant_id is not None
        and caller.tenant_id == deps.settings.platform_tenant_id
    ):
        raise SignupClosed()
    email = normalise_email(data.owner_email)
    tenant = await repo.insert_tenant(conn, new_id("ten"), data.name.strip(), email)
    owner = await repo.insert_member(conn, new_id("mem"), tenant["id"], email, "owner")
    key, key_row = await _insert_key(conn, tenant["id"], None, "Default key", None)
    await outbox.record(
        conn,
        event(ev.TenantCreated, deps, tenant["id"], name=tenant["name"], owner_email=email),
        event(ev.MemberAdded, deps, tenant["id"], member_id=owner["id"], email=email, role="owner"),
        _key_created(deps, key_row),
    )
    return s.CreatedTenant(tenant=tenant_out(tenant), api_key=key), owner


async def get_tenant(conn: asyncpg.Connection, caller: Scope) -> s.Tenant:
    row = await repo.get_tenant(conn, tenant_of(caller))
    if row is None:
        raise TenantNotFound()
    return tenant_out(row)


def normalise_email(email: str) -> str:
    return email.strip().lower()


# Members


async def invite_member(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, data: s.InviteMember
) -> asyncpg.Record:
    tenant_id = tenant_of(caller, write=True)
    if data.role == "owner" and caller.role != "owner":
        raise OwnerRoleRequired()
    email = normalise_email(data.email)
    try:
        async with conn.transaction():  # a savepoint, so the conflict leaves the request usable
            row = await repo.insert_member(conn, new_id("mem"), tenant_id, email, data.role)
    except asyncpg.UniqueViolationError as exc:
        raise MemberExists() from exc
    await outbox.record(
        conn,
        event(ev.MemberAdded, deps, tenant_id, member_id=row["id"], email=email, role=row["role"]),
    )
    return row


async def list_members(
    conn: asyncpg.Connection, caller: Scope, params: PageParams
) -> Page[s.Member]:
    rows = await repo.list_members(conn, tenant_of(caller), params.starting_after, params.limit + 1)
    return page_of(rows, params, member_out)


async def _member_row(conn: asyncpg.Connection, tenant_id: str, member_id: str) -> asyncpg.Record:
    row = (
        await repo.get_member(conn, tenant_id, member_id) if has_prefix(member_id, "mem") else None
    )
    if row is None:
        raise MemberNotFound()
    return row


async def get_member(conn: asyncpg.Connection, caller: Scope, member_id: str) -> s.Member:
    return member_out(await _member_row(conn, tenant_of(caller), member_id))


async def change_member_role(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, member_id: str, data: s.UpdateMember
) -> s.Member:
    tenant_id = tenant_of(caller, write=True)
    owners = {r["id"] for r in await repo.lock_owners(conn, tenant_id)}
    current = await _member_row(conn, tenant_id, member_id)
    if (data.role == "owner" or current["role"] == "owner") and caller.role != "owner":
        raise OwnerRoleRequired()
    if current["role"] == "owner" and data.role != "owner" and owners == {member_id}:
        raise LastOwner()
    row = await repo.update_member_role(conn, tenant_id, member_id, data.role)
    if row is None:  # removed by a concurrent request since it was read
        raise MemberNotFound()
    if row["role"] != current["role"]:
        await outbox.record(
            conn, event(ev.MemberUpdated, deps, tenant_id, member_id=member_id, role=row["role"])
        )
    return member_out(row)


async def remove_member(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, member_id: str
) -> s.Member:
    tenant_id = tenant_of(caller, write=True)
    owners = {r["id"] for r in await repo.lock_owners(conn, tenant_id)}
    current = await _member_row(conn, tenant_id, member_id)
    if current["role"] == "owner":
        if caller.role != "owner":
            raise OwnerRoleRequired()
        if owners == {member_id}:
            raise LastOwner()
    row = await repo.delete_member(conn, tenant_id, member_id)
    if row is None:  # removed by a concurrent request since it was read
        raise MemberNotFound()
    await outbox.record(conn, event(ev.MemberRemoved, deps, tenant_id, member_id=member_id))
    return member_out(row)


# Apps (their use cases are in apps.py; API keys below need these too)


async def app_row(conn: asyncpg.Connection, tenant_id: str, app_id: str) -> asyncpg.Record:
    row = await repo.get_app(conn, tenant_id, app_id) if has_prefix(app_id, "app") else None
    if row is None:
        raise AppNotFound()
    return row


async def live_app_row(conn: asyncpg.Connection, tenant_id: str, app_id: str) -> asyncpg.Record:
    row = await app_row(conn, tenant_id, app_id)
    if row["archived_at"] is not None:
        raise AppArchived()
    return row


# API keys (tenant keys when app_id is None, else that app's keys)


def _key_created(deps: Deps, row: asyncpg.Record) -> ev.ApiKeyCreated:
    return event(
        ev.ApiKeyCreated,
        deps,
        row["tenant_id"],
        row["app_id"],
        key_id=row["id"],
        kind="app" if row["app_id"] else "tenant",
        name=row["name"],
        hint=row["hint"],
        expires_at=row["expires_at"],
    )


async def _insert_key(
    conn: asyncpg.Connection,
    tenant_id: str,
    app_id: str | None,
    name: str,
    expires_at: datetime | None,
) -> tuple[str, asyncpg.Record]:
    key = apikeys.generate_key(apikeys.APP_PREFIX if app_id else apikeys.TENANT_PREFIX)
    row = await repo.insert_api_key(
        conn,
        new_id("key"),
        tenant_id,
        app_id,
        name,
        apikeys.hash_key(key),
        apikeys.hint(key),
        expires_at,
    )
    return key, row


async def create_api_key(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, app_id: str | None, data: s.CreateApiKey
) -> s.CreatedApiKey:
    tenant_id = tenant_of(caller, write=True)
    if app_id is not None:
        await live_app_row(conn, tenant_id, app_id)
    now = deps.clock.now()
    if data.expires_at is not None and not now < data.expires_at <= now + MAX_KEY_LIFETIME:
        raise InvalidInput("expiresAt must be in the future and within 10 years", field="expiresAt")
    key, row = await _insert_key(conn, tenant_id, app_id, data.name.strip(), data.expires_at)
    await outbox.record(conn, _key_created(deps, row))
    out = key_out(row)
    return s.CreatedApiKey(key=key, **{f: getattr(out, f) for f in out.__struct_fields__})


async def list_api_keys(
    conn: asyncpg.Connection, caller: Scope, app_id: str | None, params: PageParams
) -> Page[s.ApiKey]:
    tenant_id = tenant_of(caller)
    if app_id is not None:
        await app_row(conn, tenant_id, app_id)
    rows = await repo.list_api_keys(
        conn, tenant_id, app_id, params.starting_after, params.limit + 1
    )
    return page_of(rows, params, key_out)


async def revoke_api_key(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, app_id: str | None, key_id: str
) -> s.ApiKey:
    tenant_id = tenant_of(caller, write=True)
    if app_id is not None:
        await app_row(conn, tenant_id, app_id)
    row = None
    if has_prefix(key_id, "key"):
        row = await repo.revoke_api_key(conn, tenant_id, app_id, key_id, deps.clock.now())
    if row is None:
        raise ApiKeyNotFound()
    await outbox.record(
        conn,
        event(
            ev.ApiKeyRevoked,
            deps,
            tenant_id,
            app_id,
            key_id=key_id,
            kind="app" if app_id else "tenant",
            key_hash=row["key_hash"],
        ),
    )
    return key_out(row)
