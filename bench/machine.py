"""Facts about the machine a bench ran on, and the memory of the platform's processes."""

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


def memory(children: dict[str, Any]) -> dict[str, float]:
    """RSS in MB of each process the platform runs (``identity``, ``identity-worker``...)."""
    return {name: group_rss_mb(child.pid) for name, child in children.items() if child.pid}
