from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from stackbe_catalog.app import SCHEMA
from stackbe_catalog.responders import responders
from stackbe_common.bus import request
from stackbe_common.db import create_pool
from stackbe_common.infra import NatsServer
from stackbe_events import rpc
from stackbe_events.catalog import Plan

from .conftest import EXAMPLE_ENTITLEMENTS, new_app


@pytest.fixture(scope="module")
async def nc(catalog_db) -> AsyncIterator[nats.NATS]:
    """The catalog's responders on a nats-server of their own, as its worker runs them."""
    with tempfile.TemporaryDirectory(prefix="stackbe-catalog-rpc-") as tmp:
        server = NatsServer(Path(tmp) / "js").start()
        pool = await create_pool(catalog_db, SCHEMA, max_size=2)
        client = await nats.connect(server.url)
        started = responders(client, pool)
        for responder in started:
            await responder.start()
        try:
            yield client
        finally:
            for responder in started:
                await responder.stop()
            await client.close()
            await pool.close()
            server.stop()


async def test_a_plan_is_answered_to_its_own_app_only(api, nc):
    app, other = new_app(), new_app()
    plan = await api.plan(app, (await api.product(app))["id"])

    async def ask(tenant_id: str, app_id: str, plan_id: str) -> Plan | None:
        q = rpc.GetPlan(tenant_id=tenant_id, app_id=app_id, plan_id=plan_id)
        return await request(nc, rpc.GET_PLAN, q, Plan | None)

    found = await ask(app.tenant_id, app.id, plan["id"])
    assert found is not None and found.entitlements == EXAMPLE_ENTITLEMENTS
    assert (found.price_cents, found.status, found.version) == (2900, "active", 1)
    assert await ask(other.tenant_id, other.id, plan["id"]) is None
    assert await ask(app.tenant_id, app.id, "plan_nope") is None


async def test_an_apps_active_plans_are_answered_to_that_app_only(api, nc):
    app, other = new_app(), new_app()
    product = (await api.product(app))["id"]
    kept = await api.plan(app, product, name="Pro")
    old = await api.plan(app, product, name="Old")
    r = await api.call("POST", f"/v1/plans/{old['id']}/deprecate", app.key())
    assert r.status_code == 200, r.text

    def ask(tenant_id: str, app_id: str) -> rpc.ActivePlans:
        return rpc.ActivePlans(tenant_id=tenant_id, app_id=app_id)

    mine = await request(nc, rpc.ACTIVE_PLANS, ask(app.tenant_id, app.id), rpc.PlanList)
    theirs = await request(nc, rpc.ACTIVE_PLANS, ask(other.tenant_id, app.id), rpc.PlanList)

    assert [p.id for p in mine.plans] == [kept["id"]]
    assert theirs.plans == []
