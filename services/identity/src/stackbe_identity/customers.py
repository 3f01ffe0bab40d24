"""Customers of an app: create, read, update, look up by email or externalId.

Email and externalId are unique per app (the same person may be a customer of two apps);
emails are stored lower-cased. Every change records the whole customer as an event.
"""

from __future__ import annotations

from typing import TypeVar

import asyncpg
import msgspec

from stackbe_common import outbox
from stackbe_common.ids import has_prefix, new_id
from stackbe_common.pagination import Page, PageParams, page_of
from stackbe_common.scope import Scope
from stackbe_events.identity import CustomerCreated, CustomerUpdated

from . import customer_repository as customers_repo
from . import schemas as s
from .access import app_of
from .deps import Deps
from .errors import CustomerExists, CustomerNotFound
from .service import event, normalise_email

_CONFLICTS = {
    "customers_app_email_key": "A customer with this email already exists in the app",
    "customers_app_external_id_key": "A customer with this externalId already exists in the app",
}


T = TypeVar("T")


def _given(value: T | msgspec.UnsetType, stored: T) -> T:
    """The new value when the request names the field, else the stored one."""
    return stored if isinstance(value, msgspec.UnsetType) else value


def customer_out(row: asyncpg.Record) -> s.Customer:
    return s.Customer(
        id=row["id"],
        app_id=row["app_id"],
        email=row["email"],
        name=row["name"],
        external_id=row["external_id"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def fact_of(
    cls: type[CustomerCreated] | type[CustomerUpdated], deps: Deps, row: asyncpg.Record
) -> CustomerCreated | CustomerUpdated:
    return event(
        cls,
        deps,
        row["tenant_id"],
        row["app_id"],
        customer_id=row["id"],
        email=row["email"],
        name=row["name"],
        external_id=row["external_id"],
        metadata=row["metadata"],
    )


def _exists(exc: asyncpg.UniqueViolationError) -> CustomerExists:
    message = _CONFLICTS.get(exc.constraint_name or "")
    return CustomerExists(message)


async def create_customer(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, data: s.CreateCustomer
) -> s.Customer:
    tenant_id, app_id = app_of(caller, write=True)
    try:
        async with conn.transaction():  # a savepoint: a conflict leaves the request usable
            row = await customers_repo.insert_customer(
                conn,
                new_id("cust"),
                tenant_id,
                app_id,
                normalise_email(data.email),
                data.name.strip() if data.name else None,
                data.external_id,
                data.metadata,
            )
    except asyncpg.UniqueViolationError as exc:
        raise _exists(exc) from exc
    await outbox.record(conn, fact_of(CustomerCreated, deps, row))
    return customer_out(row)


async def find_or_create_by_email(
    conn: asyncpg.Connection, deps: Deps, tenant_id: str, app_id: str, email: str
) -> tuple[asyncpg.Record, bool]:
    """(the app's customer with this email, whether it was created now). Two callers
    racing on one new email get the same customer."""
    email = normalise_email(email)
    found = await customers_repo.find_customer_by_email(conn, tenant_id, app_id, email)
    if found is not None:
        return found, False
    try:
        async with conn.transaction():
            row = await customers_repo.insert_customer(
                conn, new_id("cust"), tenant_id, app_id, email, None, None, {}
            )
    except asyncpg.UniqueViolationError:
        found = await customers_repo.find_customer_by_email(conn, tenant_id, app_id, email)
        if found is None:
            raise
        return found, False
    await outbox.record(conn, fact_of(CustomerCreated, deps, row))
    return row, True


async def _customer_row(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, customer_id: str
) -> asyncpg.Record:
    row = None
    if has_prefix(customer_id, "cust"):
        row = await customers_repo.get_customer(conn, tenant_id, app_id, customer_id)
    if row is None:
        raise CustomerNotFound()
    return row


async def get_customer(conn: asyncpg.Connection, caller: Scope, customer_id: str) -> s.Customer:
    tenant_id, app_id = app_of(caller)
    return customer_out(await _customer_row(conn, tenant_id, app_id, customer_id))


async def list_customers(
    conn: asyncpg.Connection,
    caller: Scope,
    params: PageParams,
    email: str | None,
    external_id: str | None,
) -> Page[s.Customer]:
    tenant_id, app_id = app_of(caller)
    rows = await customers_repo.list_customers(
        conn,
        tenant_id,
        app_id,
        normalise_email(email) if email else None,
        external_id or None,
        params.starting_after,
        params.limit + 1,
    )
    return page_of(rows, params, customer_out)


async def update_customer(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, customer_id: str, data: s.UpdateCustomer
) -> s.Customer:
    tenant_id, app_id = app_of(caller, write=True)
    current = await _customer_row(conn, tenant_id, app_id, customer_id)
    email = normalise_email(_given(data.email, current["email"]))
    name = _given(data.name, current["name"])
    try:
        async with conn.transaction():
            row = await customers_repo.update_customer(
                conn,
                tenant_id,
                app_id,
                customer_id,
                email,
                name.strip() if name else None,
                _given(data.external_id, current["external_id"]),
                _given(data.metadata, current["metadata"]),
            )
    except asyncpg.UniqueViolationError as exc:
        raise _exists(exc) from exc
    if row is None:
        raise CustomerNotFound()
    if any(row[f] != current[f] for f in ("email", "name", "external_id", "metadata")):
        await outbox.record(conn, fact_of(CustomerUpdated, deps, row))
    return customer_out(row)
