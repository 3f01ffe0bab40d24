"""How long after revoking an API key the gateway refuses it, on real processes.

    uv run python scripts/measure_revocation.py [--keys 100]

Starts identity and the gateway on free ports against a throw-away database on
``STACKBE_DATABASE_URL``'s server (default the local one) and ``STACKBE_NATS_URL``,
revokes keys one by one, and times from the DELETE's response to the first 401.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import secrets
import statistics
import time
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx

from stackbe_common.devstack import Platform
from stackbe_common.infra import free_port


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(url: str, keys: int) -> tuple[list[float], list[float]]:
    async with httpx.AsyncClient(base_url=url) as http:
        tenant = (
            await http.post("/v1/tenants", json={"name": "Measure", "ownerEmail": "m@example.com"})
        ).json()
        admin = {"Authorization": f"Bearer {tenant['apiKey']}"}
        revocations, warm = [], []
        for i in range(keys):
            key = (await http.post("/v1/api-keys", headers=admin, json={"name": "k"})).json()
            auth = {"Authorization": f"Bearer {key['key']}"}
            assert (await http.get("/v1/tenants/me", headers=auth)).status_code == 200
            await http.delete(f"/v1/api-keys/{key['id']}", headers=admin)
            started = time.perf_counter()
            # Polling is the measurement: the first 401 is the moment the gateway knows.
            while (await http.get("/v1/tenants/me", headers=auth)).status_code != 401:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            revocations.append((time.perf_counter() - started) * 1000)
            print(f"\rrevoked {i + 1}/{keys}", end="", flush=True)
        print()
        for _ in range(500):
            started = time.perf_counter()
            await http.get("/v1/tenants/me", headers=admin)
            warm.append((time.perf_counter() - started) * 1000)
        return revocations, warm


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100)
    args = parser.parse_args()
    server = os.environ.get("STACKBE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    nats_url = os.environ.get("STACKBE_NATS_URL", "nats://127.0.0.1:4222")
    name = f"stackbe_measure_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    platform = Platform(services=["identity"], output=io.StringIO())
    try:
        database = urlunparse(urlparse(server)._replace(path=f"/{name}"))
        print("starting identity and the gateway ...", flush=True)
        url = await asyncio.to_thread(
            platform.start, database, nats_url, ports={"identity": free_port()}
        )
        revocations, warm = await measure(url, args.keys)
    finally:
        await asyncio.to_thread(platform.stop)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
    print(
        f"revoked key -> 401, over {len(revocations)} keys (ms): "
        f"p50 {statistics.median(revocations):.1f}, p99 {percentile(revocations, 0.99):.1f}, "
        f"max {max(revocations):.1f}"
    )
    print(
        f"warm tenant-key request through the gateway, one at a time (ms): "
        f"p50 {statistics.median(warm):.2f}, p99 {percentile(warm, 0.99):.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
