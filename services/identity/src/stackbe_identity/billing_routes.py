"""A tenant's own StackBE plan: ``GET /v1/billing`` and ``POST /v1/billing/checkout``."""

from __future__ import annotations

from typing import Any

from litestar import get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from nats.aio.client import Client as NATS

from stackbe_common import bus
from stackbe_common.access import tenant_of
from stackbe_common.logging import get_logger
from stackbe_common.web import Caller, Json, parse
from stackbe_events import rpc

from . import billing
from . import schemas as s
from .deps import Deps

DepsT = NamedDependency[Deps]
log = get_logger(__name__)


def endpoint_counter(nc: NATS) -> Any:
    async def count(tenant_id: str) -> int | None:
        try:
            q = rpc.CountEndpoints(tenant_id=tenant_id)
            found = await bus.request(nc, rpc.COUNT_ENDPOINTS, q, rpc.EndpointCount, 1.0)
        except Exception as exc:  # shown as unknown, the rest of the page still answers
            log.warning("billing.endpoints_uncounted", error=repr(exc))
            return None
        return found.count

    return count


@get("/v1/billing", summary="The tenant's StackBE plan, its usage and the plans it can move to")
async def get_billing(deps: DepsT, caller: Caller, state: State) -> s.TenantBilling:
    """Takes no request connection: it waits on other services (and maybe on identity's
    worker enrolling the tenant) holding none."""
    tenant_id = tenant_of(caller)
    return await billing.summary(deps.billing, state.pool, tenant_id, endpoint_counter(state.nc))


@post("/v1/billing/checkout", status_code=201, summary="Start a checkout for a StackBE plan")
async def billing_checkout(
    deps: DepsT, caller: Caller, state: State, data: Json[s.BillingCheckout]
) -> dict[str, Any]:
    tenant_id = tenant_of(caller, write=True)
    body = parse(data, s.BillingCheckout)
    return await billing.checkout(deps.billing, state.pool, tenant_id, body)


BILLING_ROUTES: list[Any] = [get_billing, billing_checkout]
