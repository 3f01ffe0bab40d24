"""HTTP routes of the entitlements service. Checks take no database connection: they
answer from the replica's cache."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from stackbe_common.web import Caller, Conn, Json, Uow, parse

from . import access
from . import schemas as s
from .deps import Deps

CustomerQ = Annotated[str | None, QueryParameter(name="customerId")]
ExternalQ = Annotated[str | None, QueryParameter(name="externalId")]
QuantityQ = Annotated[int | None, QueryParameter(name="quantity")]
ValueQ = Annotated[str | None, QueryParameter(name="value")]
DepsT = NamedDependency[Deps]


@get("/v1/entitlements", summary="Everything the customer may use now")
async def get_entitlements(
    deps: DepsT, caller: Caller, customer_id: CustomerQ = None, external_id: ExternalQ = None
) -> s.Entitlements:
    cache, _ = deps.ready
    return await access.entitlements_of(cache, caller, customer_id, external_id)


@get("/v1/entitlements/check/{feature:str}", summary="Does the customer have access?")
async def check(
    deps: DepsT,
    caller: Caller,
    feature: FromPath[str],
    customer_id: CustomerQ = None,
    external_id: ExternalQ = None,
    quantity: QuantityQ = None,
    value: ValueQ = None,
) -> s.Check:
    cache, _ = deps.ready
    return await access.check_feature(
        cache, caller, feature, customer_id, external_id, quantity, value
    )


@post("/v1/usage", status_code=200, summary="Record usage of a metric (enforce: never over)")
async def record_usage(
    conn: Conn, deps: DepsT, uow: Uow, caller: Caller, data: Json[s.RecordUsage]
) -> s.Usage:
    cache, nc = deps.ready
    return await access.record_usage(conn, uow, cache, nc, caller, parse(data, s.RecordUsage))


@get("/v1/usage", summary="Every metric's usage this billing period")
async def list_usage(
    conn: Conn,
    deps: DepsT,
    caller: Caller,
    customer_id: CustomerQ = None,
    external_id: ExternalQ = None,
) -> s.UsageList:
    cache, _ = deps.ready
    return await access.list_usage(conn, cache, caller, customer_id, external_id)


@get("/v1/usage/check/{metric:str}", summary="May the customer use this much more?")
async def check_usage(
    deps: DepsT,
    caller: Caller,
    metric: FromPath[str],
    customer_id: CustomerQ = None,
    external_id: ExternalQ = None,
    quantity: QuantityQ = None,
) -> s.UsageCheck:
    cache, _ = deps.ready
    return await access.check_usage(cache, caller, metric, customer_id, external_id, quantity)


ROUTES: list[Any] = [get_entitlements, check, record_usage, list_usage, check_usage]
