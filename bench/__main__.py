"""``make bench`` (``uv run python -m bench``): how fast StackBE is on this machine.

It finds or starts Postgres and NATS (as ``make dev`` does), starts the platform on a
fresh ``stackbe_bench`` database with the floors beside it, seeds a tenant (10 apps,
10,000 subscribed customers over four plans, some with usage), then drives load from
separate processes (wrk, hey) and prints every figure beside its target, as a ratio to a
floor measured in the same run where the target is one. Results go to
``bench/results/`` (JSON, with the machine's facts) and to the table in
``docs/benchmarks.md``. ``--quick`` runs a small version for a smoke test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from stackbe_common.devstack.backends import find_or_start_nats
from stackbe_common.devstack.postgres import find_or_start_postgres
from stackbe_common.devstack.runner import Platform
from stackbe_common.infra import free_ports, wait_for_port
from stackbe_common.logging import configure_logging

from . import load, machine, report, scenario
from .scenario import METERED, Seeded

ROOT = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.get("STACKBE_DEV_DIR") or ROOT / ".stackbe").resolve() / "bench"
RESULTS = ROOT / "bench" / "results"
DATABASE = "stackbe_bench"


def say(message: str) -> None:
    print(f"bench | {message}", flush=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="length of each load run")
    parser.add_argument("--rate", type=int, default=1000, help="the fixed rate, requests/s")
    parser.add_argument("--changes", type=int, default=200, help="subscription changes timed")
    parser.add_argument("--customers", type=int, default=10_000, help="subscribed customers")
    parser.add_argument("--apps", type=int, default=10, help="apps of the bench tenant")
    parser.add_argument("--quick", action="store_true", help="a small run, for a smoke test")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.changes, args.customers, args.apps = 3, 40, 200, 2
    return args


def _granian(factory: str, port: int, env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--no-ws"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", factory]
    return subprocess.Popen(argv, env={**os.environ, **env}, stdout=log, stderr=log, cwd=ROOT)


async def _fresh_database(server_url: str) -> str:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    return server_url.rsplit("/", 1)[0] + f"/{DATABASE}"


def main() -> int:
    args = _arguments()
    configure_logging("bench", json=False, level="WARNING")
    HOME.mkdir(parents=True, exist_ok=True)
    log = (HOME / "processes.log").open("wb")
    say(f"process output goes to {HOME}")
    load.ensure_tools(say)
    started = time.monotonic()
    postgres = find_or_start_postgres(
        os.environ.get("STACKBE_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres",
        HOME.parent / "postgres",
    )
    nats = find_or_start_nats(
        os.environ.get("STACKBE_NATS_URL") or "nats://127.0.0.1:4222", HOME.parent / "nats"
    )
    platform = Platform(output=open(HOME / "platform.log", "w"))  # noqa: SIM115
    helpers: list[subprocess.Popen[bytes]] = []
    try:
        database_url = asyncio.run(_fresh_database(postgres.url))
        say(f"starting the platform on {database_url}")
        gateway_port, hello_port, proxy_port, receiver_port, *ports = free_ports(
            4 + len(platform.services)
        )
        url = platform.start(
            database_url,
            nats.url,
            gateway_port,
            # Load from one address would meet the per-credential limits meant for tenants.
            env={
                "STACKBE_RATE_LIMIT_PER_MINUTE": "100000000",
                "STACKBE_DEV": "false",
                "STACKBE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            },
            ports=dict(zip(platform.services, ports, strict=True)),
        )
        helpers.append(_granian("bench.floor:hello", hello_port, {}, log))
        upstream = {"BENCH_UPSTREAM": f"http://127.0.0.1:{hello_port}"}
        helpers.append(_granian("bench.floor:proxy", proxy_port, upstream, log))
        helpers.append(
            subprocess.Popen(
                [sys.executable, "-m", "bench.receiver", str(receiver_port)],
                stdout=log,
                stderr=log,
                cwd=ROOT,
            )
        )
        for port in (hello_port, proxy_port, receiver_port):
            wait_for_port("127.0.0.1", port, timeout=30)
        say(f"seeding {args.customers} subscribed customers in {args.apps} apps through {url}")
        seeded = asyncio.run(scenario.seed(url, args.customers, args.apps, say))
        results: dict[str, Any] = {"memory_idle_mb": machine.memory(platform.group.children)}
        results |= measure(
            args,
            url,
            f"http://127.0.0.1:{proxy_port}",
            f"http://127.0.0.1:{receiver_port}",
            seeded,
            lambda: machine.cpu(platform.group.children, DATABASE),
        )
        results["memory_after_mb"] = machine.memory(platform.group.children)
    finally:
        for process in helpers:
            process.terminate()
            process.wait(timeout=10)
        platform.stop()
        nats.stop()
        postgres.stop()
    results["run"] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started),
        "arguments": vars(args),
        "machine": machine.facts(),
    }
    table = report.table(results)
    print()
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "quick.json" if args.quick else "latest.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2) + "\n")
    if not args.quick and not args.no_docs:
        report.update_docs(ROOT / "docs" / "benchmarks.md", results)
        say("docs/benchmarks.md updated")
    say(f"results: {RESULTS / name} ({results['run']['seconds']} s)")
    return 0


def _cpu_per_request(
    cpu: Callable[[], dict[str, float]], run: Callable[[], float], seconds: float
) -> tuple[float, dict[str, float]]:
    """``run``'s rate, and the CPU each process spent per request meanwhile, in µs."""
    before = cpu()
    rate = run()
    after = cpu()
    requests = rate * seconds
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    return rate, {name: round(t / requests * 1e6) for name, t in used.items() if requests}


def measure(
    args: argparse.Namespace,
    url: str,
    floor: str,
    receiver: str,
    seeded: Seeded,
    cpu: Callable[[], dict[str, float]],
) -> dict[str, Any]:
    check = f"{url}{seeded.check_path()}"
    floor_check = f"{floor}{seeded.check_path()}"
    app_key = {"Authorization": f"Bearer {seeded.app_key}"}
    tenant_key = {"Authorization": f"Bearer {seeded.tenant_key}", "X-StackBE-App": seeded.app_id}
    say("warming up")
    load.saturate(floor_check, {}, 2)
    load.saturate(check, app_key, 2)
    load.saturate(check, tenant_key, 2)
    say(f"saturation, {args.seconds} s each: the proxy floor, the check (app key, tenant key)")
    floor_rate = load.saturate(floor_check, {}, args.seconds)
    checks, check_cpu = _cpu_per_request(
        cpu, lambda: load.saturate(check, app_key, args.seconds), args.seconds
    )
    saturation = {
        "floor": floor_rate,
        "check": checks,
        "check_tenant_key": load.saturate(check, tenant_key, args.seconds),
    }
    say(f"fixed rate {args.rate}/s, {args.seconds} s each: the floor, then the check")
    fixed = {
        "rate": args.rate,
        "floor": load.fixed_rate(floor_check, {}, args.rate, args.seconds).__dict__,
        "check": load.fixed_rate(check, app_key, args.rate, args.seconds).__dict__,
    }
    usage = _usage(url, seeded, app_key, max(1000, args.seconds * 2000), cpu)
    say(f"freshness: {args.changes} subscription changes, each until a check shows it")
    fresh = asyncio.run(scenario.freshness(url, seeded, args.changes))
    say("revocation: 20 warm keys revoked, each until the gateway refuses it")
    revoked = asyncio.run(scenario.revocation(url, seeded, 20))
    say("checkout to access: 50 sandbox checkouts, each until the check says yes")
    checkout = asyncio.run(scenario.checkout_to_active(url, seeded, 50))
    say("webhooks: the aiohttp floor, first-attempt latency, then a plan change's burst")
    webhooks: dict[str, Any] = {
        "floor": asyncio.run(scenario.aiohttp_floor(receiver, 5000)),
        "latency": asyncio.run(scenario.webhook_latency(url, seeded, receiver, 200)),
    }
    cpu_before = cpu()
    webhooks["burst"] = asyncio.run(scenario.webhook_burst(url, seeded, receiver))
    cpu_after = cpu()
    delivered = max(webhooks["burst"]["delivered"], 1)
    burst_cpu = {
        name: round((cpu_after[name] - cpu_before.get(name, 0.0)) / delivered * 1e6)
        for name in cpu_after
    }
    return {
        "saturation": saturation,
        "cpu_us_per_request": {
            "check": check_cpu,
            "usage": usage.pop("cpu"),
            "webhook": burst_cpu,
        },
        "fixed_rate": fixed,
        "usage": usage,
        "freshness": fresh,
        "revocation": revoked,
        "checkout_to_access": checkout,
        "webhooks": webhooks,
    }


def _usage(
    url: str,
    seeded: Seeded,
    headers: dict[str, str],
    count: int,
    cpu: Callable[[], dict[str, float]],
) -> dict[str, Any]:
    """Enforced usage for 8 customers at once, 4 clients each; the count StackBE keeps for
    each must be exactly the calls it accepted."""
    customers = [seeded.pro_customer(n) for n in range(1, 9)]
    each = max(4, count // len(customers) // 4 * 4)  # hey sends count // workers each
    say(f"usage: {each * len(customers)} enforced POST /v1/usage over 8 customers, exact counts")

    async def used() -> list[int]:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            api = scenario.Client(session, url, seeded.app_key)
            found = []
            for customer in customers:
                listed = await api.get(f"/v1/usage?customerId={customer}")
                found.append(
                    next((u["currentUsage"] for u in listed["data"] if u["metric"] == METERED), 0)
                )
            return found

    before = asyncio.run(used())
    bodies = [
        json.dumps({"customerId": c, "metric": METERED, "quantity": 1, "enforce": True})
        for c in customers
    ]
    cpu_before = cpu()
    rate, posted = load.post_counts(f"{url}/v1/usage", headers, bodies, each, 4)
    cpu_after = cpu()
    after = asyncio.run(used())
    counted = [a - b for a, b in zip(after, before, strict=True)]
    codes: dict[str, int] = {}
    for p in posted:
        for code, n in p.codes.items():
            codes[code] = codes.get(code, 0) + n
    ok = sum(p.ok for p in posted)
    return {
        "rate": rate,
        "sent": each * len(customers),
        "ok": ok,
        "codes": codes,
        "counted": sum(counted),
        "exact": all(c == p.ok for c, p in zip(counted, posted, strict=True)),
        "cpu": {
            name: round((cpu_after[name] - cpu_before.get(name, 0.0)) / max(ok, 1) * 1e6)
            for name in cpu_after
        },
    }


if __name__ == "__main__":
    sys.exit(main())
