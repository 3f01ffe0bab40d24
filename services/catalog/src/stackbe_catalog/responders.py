"""What the catalog worker answers over NATS: a plan by id, for a service whose read
model has not seen the plan's event yet (a checkout right after the plan was made)."""

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


def responders(nc: NATS, pool: asyncpg.Pool) -> list[Responder]:
    async def get_plan(data: bytes) -> Plan | None:
        q = _get_plan.decode(data)
        async with pool.acquire() as conn:
            row = await repo.get_owned(conn, "plans", q.tenant_id, q.app_id, q.plan_id)
        return None if row is None else plan_out(row)

    return [Responder(nc, rpc.GET_PLAN, QUEUE, get_plan)]
