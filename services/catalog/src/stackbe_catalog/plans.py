"""An app's plans: create, read, update what may change, deprecate and archive.

Price, currency and billing period never change: a different price is a new plan, so
what existing subscribers were sold stays what they pay. Name, entitlements and metadata
may change, and an entitlement change reaches every subscriber through ``plan.updated``.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from stackbe_common import outbox
from stackbe_common.access import app_of
from stackbe_common.clock import Clock
from stackbe_common.currencies import is_currency
from stackbe_common.errors import InvalidInput
from stackbe_common.ids import has_prefix, new_id
from stackbe_common.pagination import Page, PageParams, page_of
from stackbe_common.scope import Scope
from stackbe_common.web import parse
from stackbe_events.catalog import (
    GatewayMappings,
    Interval,
    Plan,
    PlanArchived,
    PlanCreated,
    PlanDeprecated,
    PlanUpdated,
)

from . import repository as repo
from . import schemas as s
from .entitlements import validate_entitlements
from .errors import PlanArchived as PlanIsArchived
from .errors import PlanImmutableField, PlanInUse
from .products import fact, given, owned_row, same
from .usage import subscriptions_using

__all__ = [
    "MAX_PERIOD",
    "archive_plan",
    "create_plan",
    "deprecate_plan",
    "get_plan",
    "list_plans",
    "parse_plan_update",
    "plan_out",
    "update_plan",
]

# The longest billing period, per interval: three years, as payment gateways allow.
MAX_PERIOD: dict[Interval, int] = {"day": 365, "week": 156, "month": 36, "year": 3}


def plan_out(row: asyncpg.Record) -> Plan:
    return Plan(
        id=row["id"],
        app_id=row["app_id"],
        product_id=row["product_id"],
        name=row["name"],
        price_cents=row["price_cents"],
        currency=row["currency"],
        interval=row["interval"],
        interval_count=row["interval_count"],
        trial_days=row["trial_days"],
        entitlements=row["entitlements"],
        status=row["status"],
        metadata=row["metadata"],
        gateway_mappings=msgspec.convert(row["gateway_mappings"], GatewayMappings),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _currency(code: str) -> str:
    upper = code.upper()
    if not is_currency(upper):
        raise InvalidInput(
            f"{code!r} is not a circulating ISO 4217 currency code (such as USD or EUR)",
            field="currency",
        )
    return upper


def _period(interval: Interval, count: int) -> None:
    longest = MAX_PERIOD[interval]
    if count > longest:
        raise InvalidInput(
            f"intervalCount {count} with interval {interval!r} is longer than three years; "
            f"at most {longest}",
            field="intervalCount",
        )


def _mappings(given: s.GatewayMappingsIn | None) -> GatewayMappings:
    if given is None or given.stripe is None:
        return GatewayMappings()
    return msgspec.convert(msgspec.to_builtins(given), GatewayMappings)


async def create_plan(
    conn: asyncpg.Connection, clock: Clock, caller: Scope, data: s.CreatePlan
) -> Plan:
    tenant_id, app_id = app_of(caller, write=True)
    currency = _currency(data.currency)
    _period(data.interval, data.interval_count)
    entitlements = validate_entitlements(data.entitlements)
    await owned_row(conn, "products", tenant_id, app_id, data.product_id, lock=True)
    row = await repo.insert_plan(
        conn,
        new_id("plan"),
        tenant_id,
        app_id,
        data.product_id,
        data.name.strip(),
        data.price_cents,
        currency,
        data.interval,
        data.interval_count,
        data.trial_days,
        entitlements,
        data.metadata,
        _mappings(data.gateway_mappings),
    )
    plan = plan_out(row)
    await outbox.record(conn, fact(PlanCreated, clock, row, plan=plan))
    return plan


async def get_plan(conn: asyncpg.Connection, caller: Scope, plan_id: str) -> Plan:
    tenant_id, app_id = app_of(caller)
    return plan_out(await owned_row(conn, "plans", tenant_id, app_id, plan_id))


async def list_plans(
    conn: asyncpg.Connection,
    caller: Scope,
    params: PageParams,
    product_id: str | None,
    status: str | None,
) -> Page[Plan]:
    tenant_id, app_id = app_of(caller)
    if product_id and not has_prefix(product_id, "prod"):
        raise InvalidInput("productId must be a product id (prod_...)", field="productId")
    rows = await repo.list_plans(
        conn,
        tenant_id,
        app_id,
        product_id or None,
        status or None,
        params.starting_after,
        params.limit + 1,
    )
    return page_of(rows, params, plan_out)


def parse_plan_update(raw: Any) -> s.UpdatePlan:
    """A PATCH body, refusing the fields that never change with ``PLAN_IMMUTABLE_FIELD``."""
    if isinstance(raw, dict):
        for name in s.IMMUTABLE_PLAN_FIELDS:
            if name in raw:
                raise PlanImmutableField(
                    f"{name} cannot change on an existing plan: create a new plan with the new "
                    "value and deprecate this one; subscribers keep what they bought",
                    field=name,
                )
        if "status" in raw:
            raise PlanImmutableField(
                "status changes through POST /v1/plans/{id}/deprecate or /archive",
                field="status",
            )
    return parse(raw, s.UpdatePlan)


async def update_plan(
    conn: asyncpg.Connection, clock: Clock, caller: Scope, plan_id: str, data: s.UpdatePlan
) -> Plan:
    tenant_id, app_id = app_of(caller, write=True)
    entitlements = (
        data.entitlements
        if isinstance(data.entitlements, msgspec.UnsetType)
        else validate_entitlements(data.entitlements)
    )
    current = await owned_row(conn, "plans", tenant_id, app_id, plan_id, lock=True)
    name = given(data.name, current["name"]).strip()
    entitlements = given(entitlements, current["entitlements"])
    metadata = given(data.metadata, current["metadata"])
    unchanged = (
        name == current["name"]
        and msgspec.json.encode(entitlements) == msgspec.json.encode(current["entitlements"])
        and same(metadata, current["metadata"])
    )
    if unchanged:
        return plan_out(current)  # no new version, no event
    row = await repo.update_plan(conn, tenant_id, app_id, plan_id, name, entitlements, metadata)
    plan = plan_out(row)
    await outbox.record(conn, fact(PlanUpdated, clock, row, plan=plan))
    return plan


async def deprecate_plan(
    conn: asyncpg.Connection, clock: Clock, caller: Scope, plan_id: str
) -> Plan:
    """No new checkouts from now on; existing subscriptions continue. Repeating is a no-op."""
    tenant_id, app_id = app_of(caller, write=True)
    current = await owned_row(conn, "plans", tenant_id, app_id, plan_id, lock=True)
    if current["status"] == "archived":
        raise PlanIsArchived("An archived plan cannot be deprecated")
    if current["status"] == "deprecated":
        return plan_out(current)
    row = await repo.set_plan_status(conn, tenant_id, app_id, plan_id, "deprecated")
    plan = plan_out(row)
    await outbox.record(conn, fact(PlanDeprecated, clock, row, plan=plan))
    return plan


async def archive_plan(conn: asyncpg.Connection, clock: Clock, caller: Scope, plan_id: str) -> Plan:
    """Retire the plan: hidden from ``status=active`` lists, no checkouts; refused while
    a live subscription uses it. Repeating is a no-op."""
    tenant_id, app_id = app_of(caller, write=True)
    current = await owned_row(conn, "plans", tenant_id, app_id, plan_id, lock=True)
    if current["status"] == "archived":
        return plan_out(current)
    using = await subscriptions_using(conn, tenant_id, app_id, plan_id)
    if using:
        raise PlanInUse(
            f"{using} live subscription(s) use this plan: deprecate it to stop new checkouts,"
            " and archive it once they have moved or ended"
        )
    row = await repo.set_plan_status(conn, tenant_id, app_id, plan_id, "archived")
    plan = plan_out(row)
    await outbox.record(conn, fact(PlanArchived, clock, row, plan=plan))
    return plan
