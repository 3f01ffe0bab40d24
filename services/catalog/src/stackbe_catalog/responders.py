"""What the catalog worker answers over NATS: a plan by id, for a service whose read
model has not seen the plan's event yet (a checkout right after the plan was made), and
an app's active plans (the customer portal's choices)."""

from __future__ import annotations

import asyncpg
import msgspec
from nats.aio.client import Client as NATS

from stackbe_common.bus import Responder
from stackbe_events import rpc
from stackbe_events.catalog import Plan

from . import repository as repo
from .plans import plan_out

QUEUE = "catalog"

_get_plan = msgspec.json.Decoder(rpc.GetPlan)
_active_plans = msgspec.json.Decoder(rpc.ActivePlans)


def responders(nc: NATS, pool: asyncpg.Pool) -> list[Responder]:
    async def get_plan(data: bytes) -> Plan | None:
        q = _get_plan.decode(data)
        async with pool.acquire() as conn:
            row = await repo.get_owned(conn, "plans", q.tenant_id, q.app_id, q.plan_id)
        return None if row is None else plan_out(row)

    async def active_plans(data: bytes) -> rpc.PlanList:
        q = _active_plans.decode(data)
        async with pool.acquire() as conn:
            rows = await repo.list_plans(conn, q.tenant_id, q.app_id, None, "active", None, 100)
        return rpc.PlanList(plans=[plan_out(row) for row in rows])

    return [
        Responder(nc, rpc.GET_PLAN, QUEUE, get_plan),
        Responder(nc, rpc.ACTIVE_PLANS, QUEUE, active_plans),
    ]
