"""Faults under traffic, on a platform of its own: its own Postgres cluster (the system's
binaries, so it can be restarted), its own NATS (restarted on the same port and store),
and every service as processes, running as the unprivileged service role.

Traffic: clients creating customers through the gateway, each request with an
``Idempotency-Key`` and retried until it is answered, as a careful client does. After
each fault: every customer exists exactly once, and its ``customer.created`` event
reached the app's webhook receiver under exactly one ``webhook-id``. A refused request
is refused cleanly: a documented JSON error, never a half-written customer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiohttp import web

from stackbe_common.devstack import Platform
from stackbe_common.devstack.postgres import SystemPostgres, postgres_binaries
from stackbe_common.infra import NatsServer, free_port, free_ports
from stackbe_common.testing.plugin import fresh_database

from .conftest import SERVICES, Tee, bearer, hook_receiver, new_app, new_tenant

CLIENTS = 4


@dataclass
class World:
    platform: Platform
    postgres: SystemPostgres
    nats: NatsServer
    database_url: str
    url: str
    app_key: str = ""
    hooks: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # cust -> ids
    deliveries: int = 0


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[SystemPostgres]:
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("no Postgres binaries (initdb, pg_ctl) to run a cluster of the test's own")
    directory = Path(tempfile.mkdtemp(prefix="stackbe-faults-pg-"))
    os.chmod(directory, 0o755)
    server = SystemPostgres(directory, binaries, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def own_nats() -> Iterator[NatsServer]:
    with tempfile.TemporaryDirectory(prefix="stackbe-faults-nats-") as tmp:
        server = NatsServer(Path(tmp) / "js", log_file=Path(tmp) / "nats.log").start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
async def world(
    own_postgres: SystemPostgres, own_nats: NatsServer, platform_log: Tee
) -> AsyncIterator[World]:
    server_url = f"postgresql://postgres@127.0.0.1:{own_postgres.port}/postgres"
    async with fresh_database(server_url, "stackbe_faults", as_service=True) as database_url:
        platform = Platform(services=list(SERVICES), output=platform_log)
        url = await asyncio.to_thread(
            platform.start,
            database_url,
            own_nats.url,
            ports=dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True)),
            env={"STACKBE_DEV": "false", "STACKBE_DATABASE_POOL_SIZE": "3"},
        )
        made = World(platform, own_postgres, own_nats, database_url, url)

        async def hook(request: web.Request) -> web.Response:
            body = await request.json()
            made.hooks[body["data"]["customer"]["id"]].add(request.headers["webhook-id"])
            made.deliveries += 1
            return web.Response(status=204)

        try:
            async with (
                hook_receiver(hook) as hooks_url,
                httpx.AsyncClient(base_url=url, timeout=30) as http,
            ):
                tenant_key = (await new_tenant(http))["apiKey"]
                _, made.app_key = await new_app(http, tenant_key)
                r = await http.post(
                    "/v1/webhooks/endpoints",
                    headers=bearer(made.app_key),
                    json={"url": hooks_url, "events": ["customer.created"]},
                )
                assert r.status_code == 201, r.text
                yield made
        finally:
            await asyncio.to_thread(platform.stop)


class Traffic:
    """Clients creating customers until stopped; each request retried with its key until
    it is answered 201. Every refusal on the way is kept, to check that it was clean."""

    def __init__(self, world: World, label: str) -> None:
        self.world, self.label = world, label
        self.made: dict[str, str] = {}  # externalId -> customer id
        self.refusals: list[str] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Traffic:
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(CLIENTS)]
        await asyncio.sleep(0.5)  # under way before the fault
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks), 180)

    async def _client(self, n: int) -> None:
        headers = bearer(self.world.app_key)
        async with httpx.AsyncClient(base_url=self.world.url, timeout=10) as http:
            i = 0
            while not self._stop.is_set():
                external = f"{self.label}-{n}-{i}"
                await self._create(http, headers, external)
                i += 1

    async def _create(
        self, http: httpx.AsyncClient, headers: dict[str, str], external: str
    ) -> None:
        body = {"email": f"{external}@example.com", "externalId": external}
        while True:
            try:
                r = await http.post(
                    "/v1/customers", headers={**headers, "Idempotency-Key": external}, json=body
                )
            except httpx.TransportError as exc:  # the gateway itself was away
                self.refusals.append(f"transport: {type(exc).__name__}")
                await asyncio.sleep(0.2)
                continue
            if r.status_code == 201:
                self.made[external] = r.json()["id"]
                return
            self.refusals.append(f"{r.status_code} {r.text[:200]}")
            await asyncio.sleep(0.2)


def _clean(refusals: list[str]) -> list[str]:
    """The refusals that were not clean: anything but a transport error (the gateway
    itself away) or a documented JSON error saying to try again (429, 502, 503, 504)."""
    bad = []
    for refusal in refusals:
        if refusal.startswith("transport: "):
            continue
        status, _, body = refusal.partition(" ")
        if not (status in ("429", "502", "503", "504") and '"code":' in body):
            bad.append(refusal)
    return bad


async def _settled(world: World, traffic: Traffic) -> None:
    """Every customer made exists once, and reached the receiver under one webhook-id."""
    assert _clean(traffic.refusals) == [], traffic.refusals[:5]
    made = set(traffic.made.values())
    assert len(made) == len(traffic.made) > 0  # one customer per request
    for _ in range(480):  # the events catch up (a bound against hanging)
        if made <= set(world.hooks):
            break
        await asyncio.sleep(0.25)
    missing = made - set(world.hooks)
    assert not missing, f"{len(missing)} customers' events never arrived"
    twice = {c: ids for c, ids in world.hooks.items() if c in made and len(ids) != 1}
    assert twice == {}, f"events made twice: {list(twice.items())[:3]}"
    conn = await asyncpg.connect(world.database_url)
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('stackbe.tenant_id', '*', true)")
            rows = await conn.fetch(
                "SELECT external_id, count(*) AS n FROM identity.customers"
                " WHERE external_id = ANY($1::text[]) GROUP BY external_id",
                list(traffic.made),
            )
    finally:
        await conn.close()
    assert {r["external_id"]: r["n"] for r in rows} == dict.fromkeys(traffic.made, 1)


async def _ready(url: str) -> int:
    async with httpx.AsyncClient(timeout=2) as http:
        with contextlib.suppress(httpx.TransportError):
            return (await http.get(url + "/ready")).status_code
    return 0


async def test_nats_stopped_for_30_seconds_then_restarted(world: World) -> None:
    async with Traffic(world, "nats") as traffic:
        await asyncio.to_thread(world.nats.stop)
        await asyncio.sleep(30)
        during = len(traffic.made)
        await asyncio.to_thread(world.nats.start)
        await asyncio.sleep(2)
    assert during > 0  # requests went on while NATS was away; their events waited
    await _settled(world, traffic)


async def test_postgres_restarted_under_traffic(world: World) -> None:
    identity = world.platform.env["STACKBE_IDENTITY_URL"]
    async with Traffic(world, "pg") as traffic:
        for _ in range(2):  # twice: more requests meet a restart in every state
            seen: list[int] = []
            await asyncio.to_thread(world.postgres.stop)
            for _ in range(40):  # the service says it is not ready while Postgres is away
                seen.append(await _ready(identity))
                if seen[-1] == 503:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(2)
            await asyncio.to_thread(world.postgres.start)
            for _ in range(120):  # ... and ready again once it is back
                seen.append(await _ready(identity))
                if seen[-1] == 200:
                    break
                await asyncio.sleep(0.25)
            assert 503 in seen and seen[-1] == 200, seen
            await asyncio.sleep(1)  # traffic flows again before the next restart
    assert any(r.startswith("503") for r in traffic.refusals), traffic.refusals[:8]
    await _settled(world, traffic)  # every refusal a documented 503: never a bare 500


async def test_kill_9_of_each_process_in_the_middle_of_work(world: World) -> None:
    names = [*(f"{s}-worker" for s in SERVICES), *SERVICES, "gateway"]
    async with Traffic(world, "kill") as traffic:
        for name in names:
            child = world.platform.process(name)
            await asyncio.to_thread(child.kill)
            await asyncio.sleep(0.3)
            child.start()
            await asyncio.to_thread(child.wait_healthy, 60)
            await asyncio.sleep(0.5)
    assert world.platform.exited_unexpectedly() is None
    await _settled(world, traffic)


async def test_a_crash_between_commit_and_publish_loses_no_event(world: World) -> None:
    """identity's worker (its outbox relay) is frozen, customers are committed with their
    events in the outbox, then the worker is killed and started again."""
    relay = world.platform.process("identity-worker")
    relay.signal(signal.SIGSTOP)
    try:
        async with Traffic(world, "crash") as traffic:
            await asyncio.sleep(2)
        conn = await asyncpg.connect(world.database_url)
        try:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM identity.outbox WHERE published_at IS NULL"
            )
        finally:
            await conn.close()
        assert waiting >= len(traffic.made) > 0  # committed, not yet published
    finally:
        await asyncio.to_thread(relay.kill)
    relay.start()
    await _settled(world, traffic)
