"""Facts about the machine a bench ran on, and the memory and CPU time of the platform's
processes."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("litestar", "granian", "aiohttp", "asyncpg", "nats-py", "msgspec", "stackbe-common")


def facts() -> dict[str, Any]:
    meminfo = (
        Path("/proc/meminfo").read_text().splitlines() if Path("/proc/meminfo").exists() else []
    )
    total_kb = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    cpu = ""
    if Path("/proc/cpuinfo").exists():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(total_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in PACKAGES},
        "tools": {t: _tool_version(t) for t in ("wrk", "hey")},
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _tool_version(tool: str) -> str | None:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", tool], capture_output=True, text=True
        )
    except FileNotFoundError:
        return None
    return out.stdout.strip() or None


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in a process group (a service and its workers)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid:  # field 5 of stat: the process group
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return round(total / 1024, 1)


def _cpu_ticks(proc: Path) -> tuple[int, int]:
    """(process group, user + system clock ticks) of one process."""
    stat = (proc / "stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[2]), int(fields[11]) + int(fields[12])


def cpu(children: dict[str, Any], database: str) -> dict[str, float]:
    """CPU seconds used so far by each process group the platform runs, and by the
    Postgres backends serving ``database`` (as ``postgres``)."""
    groups = {child.pid: name for name, child in children.items() if child.pid}
    ticks: dict[str, int] = dict.fromkeys([*groups.values(), "postgres"], 0)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            group, used = _cpu_ticks(proc)
            if group in groups:
                ticks[groups[group]] += used
            elif f" {database} " in (proc / "cmdline").read_text().replace("\0", " "):
                ticks["postgres"] += used  # "postgres: user database host(port) state"
        except (OSError, ValueError, IndexError):
            continue
    per_second = os.sysconf("SC_CLK_TCK")
    return {name: n / per_second for name, n in ticks.items()}


def memory(children: dict[str, Any]) -> dict[str, float]:
    """RSS in MB of each process the platform runs (``identity``, ``identity-worker``...)."""
    return {name: group_rss_mb(child.pid) for name, child in children.items() if child.pid}
