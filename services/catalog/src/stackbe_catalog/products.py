"""An app's products: create, read, update. Functions take the request's connection and
never commit; each change records the whole product as an event in the same transaction."""

from __future__ import annotations

from typing import Any, TypeVar

import asyncpg
import msgspec

from stackbe_common import outbox
from stackbe_common.access import app_of
from stackbe_common.clock import Clock
from stackbe_common.errors import NotFound
from stackbe_common.ids import has_prefix, new_id
from stackbe_common.pagination import Page, PageParams, page_of
from stackbe_common.scope import Scope
from stackbe_events import Event
from stackbe_events.catalog import Product, ProductCreated, ProductUpdated

from . import repository as repo
from . import schemas as s
from .errors import PlanNotFound, ProductNotFound

__all__ = [
    "create_product",
    "fact",
    "get_product",
    "given",
    "list_products",
    "owned_row",
    "same",
    "update_product",
]

T = TypeVar("T")
E = TypeVar("E", bound=Event)


def given(value: T | msgspec.UnsetType, stored: T) -> T:
    """The new value when the request names the field, else the stored one."""
    return stored if isinstance(value, msgspec.UnsetType) else value


def same(a: Any, b: Any) -> bool:
    """Equal as JSON: ``true`` is not ``1``, and key order does not matter."""
    return msgspec.json.encode(a, order="sorted") == msgspec.json.encode(b, order="sorted")


def fact(cls: type[E], clock: Clock, row: asyncpg.Record, **body: Any) -> E:
    """An event about the product or plan in ``row``."""
    return cls(
        id=new_id("evt"),
        occurred_at=clock.now(),
        tenant_id=row["tenant_id"],
        app_id=row["app_id"],
        **body,
    )


def product_out(row: asyncpg.Record) -> Product:
    return Product(
        id=row["id"],
        app_id=row["app_id"],
        name=row["name"],
        description=row["description"],
        metadata=row["metadata"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_OWNED: dict[repo.Table, tuple[str, type[NotFound]]] = {
    "products": ("prod", ProductNotFound),
    "plans": ("plan", PlanNotFound),
}


async def owned_row(
    conn: asyncpg.Connection,
    table: repo.Table,
    tenant_id: str,
    app_id: str,
    object_id: str,
    *,
    lock: bool = False,
) -> asyncpg.Record:
    """The app's product or plan, or its not-found error (also when another app owns it)."""
    prefix, missing = _OWNED[table]
    row = None
    if has_prefix(object_id, prefix):
        row = await repo.get_owned(conn, table, tenant_id, app_id, object_id, lock=lock)
    if row is None:
        raise missing()
    return row


async def create_product(
    conn: asyncpg.Connection, clock: Clock, caller: Scope, data: s.CreateProduct
) -> Product:
    tenant_id, app_id = app_of(caller, write=True)
    row = await repo.insert_product(
        conn,
        new_id("prod"),
        tenant_id,
        app_id,
        data.name.strip(),
        data.description,
        data.metadata,
    )
    product = product_out(row)
    await outbox.record(conn, fact(ProductCreated, clock, row, product=product))
    return product


async def get_product(conn: asyncpg.Connection, caller: Scope, product_id: str) -> Product:
    tenant_id, app_id = app_of(caller)
    return product_out(await owned_row(conn, "products", tenant_id, app_id, product_id))


async def list_products(
    conn: asyncpg.Connection, caller: Scope, params: PageParams
) -> Page[Product]:
    tenant_id, app_id = app_of(caller)
    rows = await repo.list_products(
        conn, tenant_id, app_id, params.starting_after, params.limit + 1
    )
    return page_of(rows, params, product_out)


async def update_product(
    conn: asyncpg.Connection, clock: Clock, caller: Scope, product_id: str, data: s.UpdateProduct
) -> Product:
    tenant_id, app_id = app_of(caller, write=True)
    current = await owned_row(conn, "products", tenant_id, app_id, product_id, lock=True)
    name = given(data.name, current["name"]).strip()
    description = given(data.description, current["description"])
    metadata = given(data.metadata, current["metadata"])
    if (name, description) == (current["name"], current["description"]) and same(
        metadata, current["metadata"]
    ):
        return product_out(current)  # nothing changed: no new version, no event
    row = await repo.update_product(
        conn, tenant_id, app_id, product_id, name, description, metadata
    )
    product = product_out(row)
    await outbox.record(conn, fact(ProductUpdated, clock, row, product=product))
    return product
