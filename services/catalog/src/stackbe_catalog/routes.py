"""HTTP routes of the catalog service. Each maps a request to one service call."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from stackbe_common.pagination import Page, page_params
from stackbe_common.web import Caller, Conn, Json, parse
from stackbe_events.catalog import Plan, Product

from . import plans, products
from . import schemas as s
from .deps import Deps

Limit = Annotated[int | None, QueryParameter(name="limit")]
After = Annotated[str | None, QueryParameter(name="startingAfter")]
ProductFilter = Annotated[str | None, QueryParameter(name="productId")]
StatusFilter = Annotated[s.PlanStatusFilter | None, QueryParameter(name="status")]
DepsT = NamedDependency[Deps]


# Products


@post("/v1/products", status_code=201, summary="Create a product")
async def create_product(
    conn: Conn, deps: DepsT, caller: Caller, data: Json[s.CreateProduct]
) -> Product:
    return await products.create_product(conn, deps.clock, caller, parse(data, s.CreateProduct))


@get("/v1/products", summary="List the app's products")
async def list_products(
    conn: Conn, caller: Caller, limit: Limit = None, starting_after: After = None
) -> Page[Product]:
    return await products.list_products(conn, caller, page_params(limit, starting_after))


@get("/v1/products/{product_id:str}", summary="Get a product")
async def get_product(conn: Conn, caller: Caller, product_id: FromPath[str]) -> Product:
    return await products.get_product(conn, caller, product_id)


@patch("/v1/products/{product_id:str}", summary="Update a product's name, description, metadata")
async def update_product(
    conn: Conn,
    deps: DepsT,
    caller: Caller,
    product_id: FromPath[str],
    data: Json[s.UpdateProduct],
) -> Product:
    body = parse(data, s.UpdateProduct)
    return await products.update_product(conn, deps.clock, caller, product_id, body)


# Plans


@post("/v1/plans", status_code=201, summary="Create a plan of a product")
async def create_plan(conn: Conn, deps: DepsT, caller: Caller, data: Json[s.CreatePlan]) -> Plan:
    return await plans.create_plan(conn, deps.clock, caller, parse(data, s.CreatePlan))


@get("/v1/plans", summary="List the app's plans, by product and status")
async def list_plans(
    conn: Conn,
    caller: Caller,
    limit: Limit = None,
    starting_after: After = None,
    product_id: ProductFilter = None,
    status: StatusFilter = None,
) -> Page[Plan]:
    params = page_params(limit, starting_after)
    return await plans.list_plans(conn, caller, params, product_id, status)


@get("/v1/plans/{plan_id:str}", summary="Get a plan")
async def get_plan(conn: Conn, caller: Caller, plan_id: FromPath[str]) -> Plan:
    return await plans.get_plan(conn, caller, plan_id)


@patch(
    "/v1/plans/{plan_id:str}",
    summary="Update a plan's name, entitlements or metadata (price, currency, period never)",
)
async def update_plan(
    conn: Conn, deps: DepsT, caller: Caller, plan_id: FromPath[str], data: Json[s.UpdatePlan]
) -> Plan:
    return await plans.update_plan(conn, deps.clock, caller, plan_id, plans.parse_plan_update(data))


@post("/v1/plans/{plan_id:str}/deprecate", status_code=200, summary="Stop new checkouts")
async def deprecate_plan(conn: Conn, deps: DepsT, caller: Caller, plan_id: FromPath[str]) -> Plan:
    return await plans.deprecate_plan(conn, deps.clock, caller, plan_id)


@post("/v1/plans/{plan_id:str}/archive", status_code=200, summary="Retire a plan")
async def archive_plan(conn: Conn, deps: DepsT, caller: Caller, plan_id: FromPath[str]) -> Plan:
    return await plans.archive_plan(conn, deps.clock, caller, plan_id)


ROUTES: list[Any] = [
    create_product,
    list_products,
    get_product,
    update_product,
    create_plan,
    list_plans,
    get_plan,
    update_plan,
    deprecate_plan,
    archive_plan,
]
