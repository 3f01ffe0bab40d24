"""The one-call answer and usage metering.

Checks read only the replica's cache (Postgres on a cold miss). Usage is recorded in
Postgres in one statement that adds the quantity only when, with ``enforce``, the total
stays within the limit, so concurrent calls can never go over it; the new count is then
broadcast to every replica's cache.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import msgspec
from nats.aio.client import Client as NATS

from stackbe_common import outbox
from stackbe_common.access import app_of
from stackbe_common.errors import InvalidInput
from stackbe_common.ids import has_prefix, new_id
from stackbe_common.scope import Scope
from stackbe_common.uow import UnitOfWork
from stackbe_events.entitlements import CustomerEntitlements, UsageLimitReached

from . import schemas as s
from .cache import USAGE_SUBJECT, Cache, UsageRecorded
from .errors import MetricNotFound, NoActiveSubscription, UsageLimitExceeded
from .rules import UNLIMITED, check, has_access, limit_of

__all__ = ["check_feature", "check_usage", "entitlements_of", "list_usage", "record_usage"]

NOBODY = CustomerEntitlements(customer_id="", app_id="")


def _now() -> datetime:
    return datetime.now(UTC)


async def _customer(
    cache: Cache, app_id: str, customer_id: str | None, external_id: str | None
) -> str | None:
    if (customer_id is None) == (external_id is None):
        raise InvalidInput("Give exactly one of customerId and externalId", field="customerId")
    if customer_id is not None:
        if not has_prefix(customer_id, "cust"):
            raise InvalidInput("customerId must be a customer id (cust_...)", field="customerId")
        return customer_id
    assert external_id is not None
    return await cache.customer_of(app_id, external_id)


async def _projection(
    cache: Cache, caller: Scope, customer_id: str | None, external_id: str | None
) -> CustomerEntitlements:
    """The caller's app's customer's projection; an unknown customer, or another app's,
    is a customer without a subscription (the answer never tells them apart)."""
    _, app_id = app_of(caller)
    found = await _customer(cache, app_id, customer_id, external_id)
    projection = None if found is None else await cache.projection(found)
    if projection is None or projection.app_id != app_id:
        return msgspec.structs.replace(NOBODY, customer_id=found or "", app_id=app_id)
    return projection


async def entitlements_of(
    cache: Cache, caller: Scope, customer_id: str | None, external_id: str | None
) -> s.Entitlements:
    p = await _projection(cache, caller, customer_id, external_id)
    return s.Entitlements(
        customer_id=p.customer_id,
        plan_id=p.plan_id,
        plan_name=p.plan_name,
        status=p.status,
        entitlements=p.entitlements if has_access(p, _now()) else {},
        current_period_end=p.current_period_end,
    )


async def check_feature(
    cache: Cache,
    caller: Scope,
    feature: str,
    customer_id: str | None,
    external_id: str | None,
    quantity: int | None,
    value: str | None,
) -> s.Check:
    if quantity is not None and quantity < 0:
        raise InvalidInput("quantity must be a whole number of 0 or more", field="quantity")
    p = await _projection(cache, caller, customer_id, external_id)
    used = cache.used(p.customer_id, feature, p.current_period_start)
    verdict = check(
        p, feature, _now(), used=used, quantity=1 if quantity is None else quantity, value=value
    )
    return s.Check(
        feature=feature,
        has_access=verdict.has_access,
        value=verdict.value,
        reason=verdict.reason,
        remaining=verdict.remaining,
    )


def _usage(metric: str, p: CustomerEntitlements, used: int, allowed: bool) -> s.Usage:
    limit = limit_of(p.entitlements, metric)
    remaining = None if limit is None or limit == UNLIMITED else max(0, limit - used)
    return s.Usage(
        metric=metric,
        current_usage=used,
        limit=limit,
        remaining=remaining,
        allowed=allowed,
        period_start=p.current_period_start,
        period_end=p.current_period_end,
    )


_ADD = """
INSERT INTO usage AS u (customer_id, metric, period_start, tenant_id, app_id, period_end, used)
SELECT $1, $2, $3, $4, $5, $6, $7::bigint
WHERE NOT $8::boolean OR $9::bigint = -1 OR $7::bigint <= $9::bigint
ON CONFLICT (customer_id, metric, period_start) DO UPDATE SET used = u.used + excluded.used
WHERE NOT $8::boolean OR $9::bigint = -1 OR u.used + excluded.used <= $9::bigint
RETURNING used
"""

_REACHED = """
UPDATE usage SET limit_reached_at = now()
WHERE customer_id = $1 AND metric = $2 AND period_start = $3 AND limit_reached_at IS NULL
RETURNING 1
"""


async def record_usage(
    conn: asyncpg.Connection,
    uow: UnitOfWork,
    cache: Cache,
    nc: NATS,
    caller: Scope,
    data: s.RecordUsage,
) -> s.Usage:
    tenant_id, app_id = app_of(caller, write=True)
    p = await _projection(cache, caller, data.customer_id, data.external_id)
    if not has_access(p, _now()) or p.current_period_start is None:
        raise NoActiveSubscription()
    limit = limit_of(p.entitlements, data.metric)
    if limit is None:
        raise MetricNotFound(f"The customer's plan has no integer entitlement {data.metric!r}")
    used = await conn.fetchval(
        _ADD,
        p.customer_id,
        data.metric,
        p.current_period_start,
        tenant_id,
        app_id,
        p.current_period_end,
        data.quantity,
        data.enforce,
        limit,
    )
    if used is None:
        now_used = await conn.fetchval(
            "SELECT coalesce(max(used), 0) FROM usage"
            " WHERE customer_id = $1 AND metric = $2 AND period_start = $3",
            p.customer_id,
            data.metric,
            p.current_period_start,
        )
        raise UsageLimitExceeded(
            f"{data.metric}: {now_used} used of {limit}; {data.quantity} more would exceed it"
        )
    if (
        limit != UNLIMITED
        and used >= limit
        and await conn.fetchval(_REACHED, p.customer_id, data.metric, p.current_period_start)
    ):
        await outbox.record(
            conn,
            UsageLimitReached(
                id=new_id("evt"),
                occurred_at=_now(),
                tenant_id=tenant_id,
                app_id=app_id,
                customer_id=p.customer_id,
                metric=data.metric,
                limit=limit,
                current_usage=used,
                period_start=p.current_period_start,
                period_end=p.current_period_end,
            ),
        )
    seen = UsageRecorded(p.customer_id, data.metric, p.current_period_start, used)

    async def tell_replicas() -> None:  # once committed: this replica, then the others
        cache.count(seen.customer_id, seen.metric, seen.period_start, seen.used)
        await nc.publish(USAGE_SUBJECT, msgspec.json.encode(seen))

    uow.after_commit(tell_replicas)
    return _usage(data.metric, p, used, limit == UNLIMITED or used <= limit)


async def list_usage(
    conn: asyncpg.Connection,
    cache: Cache,
    caller: Scope,
    customer_id: str | None,
    external_id: str | None,
) -> s.UsageList:
    p = await _projection(cache, caller, customer_id, external_id)
    counted: dict[str, int] = {}
    if p.current_period_start is not None:
        rows = await conn.fetch(
            "SELECT metric, used FROM usage WHERE customer_id = $1 AND period_start = $2"
            " ORDER BY metric",
            p.customer_id,
            p.current_period_start,
        )
        counted = {row["metric"]: row["used"] for row in rows}
    metered = [k for k in p.entitlements if limit_of(p.entitlements, k) is not None]
    metrics = sorted(set(metered) | set(counted))
    return s.UsageList(
        customer_id=p.customer_id,
        period_start=p.current_period_start,
        period_end=p.current_period_end,
        data=[_usage(m, p, counted.get(m, 0), _within(p, m, counted.get(m, 0))) for m in metrics],
    )


def _within(p: CustomerEntitlements, metric: str, used: int) -> bool:
    limit = limit_of(p.entitlements, metric)
    return limit is not None and (limit == UNLIMITED or used <= limit)


async def check_usage(
    cache: Cache,
    caller: Scope,
    metric: str,
    customer_id: str | None,
    external_id: str | None,
    quantity: int | None,
) -> s.UsageCheck:
    if quantity is not None and quantity < 1:
        raise InvalidInput("quantity must be a whole number of 1 or more", field="quantity")
    p = await _projection(cache, caller, customer_id, external_id)
    used = cache.used(p.customer_id, metric, p.current_period_start)
    verdict = check(p, metric, _now(), used=used, quantity=quantity or 1)
    limit = limit_of(p.entitlements, metric)
    allowed = verdict.has_access and limit is not None
    remaining = None if limit is None or limit == UNLIMITED else max(0, limit - used)
    return s.UsageCheck(
        allowed=allowed, remaining=remaining if verdict.reason != "NO_ACTIVE_SUBSCRIPTION" else None
    )
