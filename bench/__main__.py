"""``make bench`` (``uv run python -m bench``): how fast StackBE answers on this machine.

It finds or starts Postgres and NATS (as ``make dev`` does), starts the platform on a
fresh ``stackbe_bench`` database and the floors beside it, seeds an app, then drives load
from separate processes (wrk, hey) and prints every figure as a ratio to its floor,
measured in the same run. Results also go to ``.stackbe/bench/results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from stackbe_common.devstack.backends import find_or_start_nats
from stackbe_common.devstack.postgres import find_or_start_postgres
from stackbe_common.devstack.runner import Platform
from stackbe_common.infra import free_ports, wait_for_port
from stackbe_common.logging import configure_logging

from . import load
from .scenario import Seeded, freshness, seed

HOME = Path(os.environ.get("STACKBE_DEV_DIR") or ".stackbe").resolve() / "bench"
DATABASE = "stackbe_bench"


def say(message: str) -> None:
    print(f"bench | {message}", flush=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="length of each load run")
    parser.add_argument("--rate", type=int, default=1000, help="the fixed rate, requests/s")
    parser.add_argument("--changes", type=int, default=200, help="subscription changes timed")
    parser.add_argument("--customers", type=int, default=50, help="subscribed customers seeded")
    return parser.parse_args()


def _granian(factory: str, port: int, env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--no-ws"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", factory]
    return subprocess.Popen(argv, env={**os.environ, **env}, stdout=log, stderr=log)


async def _fresh_database(server_url: str) -> str:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    return server_url.rsplit("/", 1)[0] + f"/{DATABASE}"


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}" if floor else "n/a"


def report(results: dict[str, Any]) -> str:
    s, f = results["saturation"], results["fixed_rate"]
    fresh = results["freshness"]
    rows = [
        (
            "checks/s, saturated (gateway)",
            f"{s['check']:.0f}",
            f"{s['floor']:.0f}",
            _ratio(s["check"], s["floor"]),
            ">= 0.80",
        ),
        (
            f"p99 at {f['rate']} req/s, ms",
            f"{f['check']['p99_ms']:.2f}",
            f"{f['floor']['p99_ms']:.2f}",
            _ratio(f["check"]["p99_ms"], f["floor"]["p99_ms"]),
            "<= 1.50",
        ),
        (
            f"p50 at {f['rate']} req/s, ms",
            f"{f['check']['p50_ms']:.2f}",
            f"{f['floor']['p50_ms']:.2f}",
            _ratio(f["check"]["p50_ms"], f["floor"]["p50_ms"]),
            "",
        ),
        (
            f"change -> check, p50 / p99 ms ({fresh['changes']})",
            f"{fresh['p50_ms']:.1f} / {fresh['p99_ms']:.1f}",
            "",
            "",
            "p99 <= 100",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'':{width}}  {'StackBE':>13}  {'floor':>8}  {'ratio':>6}  target"]
    lines += [f"{a:{width}}  {b:>13}  {c:>8}  {d:>6}  {e}" for a, b, c, d, e in rows]
    return "\n".join(lines)


def main() -> int:
    args = _arguments()
    configure_logging("bench", json=False, level="WARNING")
    HOME.mkdir(parents=True, exist_ok=True)
    log = (HOME / "processes.log").open("wb")
    say(f"process output goes to {HOME / 'processes.log'}")
    load.ensure_tools(say)
    postgres = find_or_start_postgres(
        os.environ.get("STACKBE_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres",
        HOME.parent / "postgres",
    )
    nats = find_or_start_nats(
        os.environ.get("STACKBE_NATS_URL") or "nats://127.0.0.1:4222", HOME.parent / "nats"
    )
    platform = Platform(output=open(HOME / "platform.log", "w"))  # noqa: SIM115
    floors: list[subprocess.Popen[bytes]] = []
    try:
        database_url = asyncio.run(_fresh_database(postgres.url))
        say(f"starting the platform on {database_url}")
        gateway_port, hello_port, proxy_port, *ports = free_ports(3 + len(platform.services))
        url = platform.start(
            database_url,
            nats.url,
            gateway_port,
            # Load from one address would meet the per-credential limits meant for tenants.
            env={"STACKBE_RATE_LIMIT_PER_MINUTE": "100000000", "STACKBE_DEV": "false"},
            ports=dict(zip(platform.services, ports, strict=True)),
        )
        floors.append(_granian("bench.floor:hello", hello_port, {}, log))
        upstream = {"BENCH_UPSTREAM": f"http://127.0.0.1:{hello_port}"}
        floors.append(_granian("bench.floor:proxy", proxy_port, upstream, log))
        for port in (hello_port, proxy_port):
            wait_for_port("127.0.0.1", port, timeout=30)
        say(f"seeding {args.customers} subscribed customers through {url}")
        seeded: Seeded = asyncio.run(seed(url, args.customers))
        results = measure(args, url, f"http://127.0.0.1:{proxy_port}", seeded)
    finally:
        for process in floors:
            process.terminate()
            process.wait(timeout=10)
        platform.stop()
        nats.stop()
        postgres.stop()
    (HOME / "results.json").write_text(json.dumps(results, indent=2))
    print()
    print(report(results))
    print(f"\nresults: {HOME / 'results.json'}")
    return 0


def measure(args: argparse.Namespace, url: str, floor: str, seeded: Seeded) -> dict[str, Any]:
    check = f"{url}{seeded.check_path}"
    floor_check = f"{floor}{seeded.check_path}"
    auth = {"Authorization": f"Bearer {seeded.app_key}"}
    say("warming up")
    load.saturate(floor_check, {}, 2)
    load.saturate(check, auth, 2)
    say(f"saturation: the floor, then the check through the gateway ({args.seconds} s each)")
    saturation = {"floor": load.saturate(floor_check, {}, args.seconds)}
    saturation["check"] = load.saturate(check, auth, args.seconds)
    say(f"fixed rate {args.rate}/s: the floor, then the check ({args.seconds} s each)")
    floor_fixed = load.fixed_rate(floor_check, {}, args.rate, args.seconds)
    check_fixed = load.fixed_rate(check, auth, args.rate, args.seconds)
    say(f"freshness: {args.changes} subscription changes, each until a check reflects it")
    started = time.monotonic()
    fresh = asyncio.run(freshness(url, seeded, args.changes))
    say(f"freshness done in {time.monotonic() - started:.1f} s")
    return {
        "saturation": saturation,
        "fixed_rate": {
            "rate": args.rate,
            "floor": floor_fixed.__dict__,
            "check": check_fixed.__dict__,
        },
        "freshness": fresh,
        "machine": {"cpus": os.cpu_count()},
    }


if __name__ == "__main__":
    sys.exit(main())
