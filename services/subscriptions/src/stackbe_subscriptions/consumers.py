"""What the worker does with others' messages beyond the read models: a Stripe price for
each new plan of an app on Stripe, and the gateway question identity asks before it
moves an app onto a connection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import msgspec
from nats.aio.client import Client as NATS

from stackbe_common.bus import Responder
from stackbe_common.errors import AppNotFound, Unavailable
from stackbe_events import Event, rpc
from stackbe_events.catalog import PlanCreated

from . import gateway_repository as grepo
from . import repository as repo
from .deps import Deps
from .gateways import open_account
from .readmodels import CATALOG_HANDLERS, on_plan
from .stripe_sync import ensure_price

__all__ = ["catalog_handlers", "responders"]

QUEUE = "subscriptions"
_get_gateway = msgspec.json.Decoder(rpc.GetGateway)


def catalog_handlers(deps: Deps) -> Mapping[type[Event], Any]:
    async def on_plan_created(conn: asyncpg.Connection, event: PlanCreated) -> None:
        """A plan made in a Stripe app gets its Stripe Product and Price now, so the
        first checkout does not wait for them (a checkout makes them too if this has
        not run yet). Whether the app is on Stripe is asked of identity, falling back
        to the read model when identity does not answer. A Stripe error naks the event,
        and it is tried again."""
        await on_plan(conn, event)
        if event.plan.status != "active":
            return
        assert deps.lookups is not None
        try:  # identity's word: the app's own event may still be on its way
            app = await deps.lookups.app(conn, event.tenant_id, event.plan.app_id, fresh=True)
            gateway_id = app.gateway_id
        except Unavailable:
            row = await repo.get_app(conn, event.tenant_id, event.plan.app_id)
            gateway_id = None if row is None else row["gateway_id"]
        except AppNotFound:
            return
        if gateway_id is None:
            return
        account = await open_account(conn, deps, gateway_id)
        await ensure_price(conn, deps, account, event.tenant_id, event.plan)

    return {**CATALOG_HANDLERS, PlanCreated: on_plan_created}


def responders(nc: NATS, pool: asyncpg.Pool) -> list[Responder]:
    async def get_gateway(data: bytes) -> rpc.FoundGateway | None:
        q = _get_gateway.decode(data)
        async with pool.acquire() as conn, conn.transaction():
            row = await grepo.get_gateway(conn, q.tenant_id, q.gateway_id, lock=True)
            if row is not None and q.app_id is not None:
                await grepo.claim_gateway(conn, q.gateway_id, q.app_id)
        return None if row is None else rpc.FoundGateway(gateway_id=row["id"], type=row["type"])

    return [Responder(nc, rpc.GET_GATEWAY, QUEUE, get_gateway)]
