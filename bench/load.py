"""Load generators from Debian's packages: ``wrk`` for saturation throughput, ``hey`` for
latency at a fixed rate. Installed with apt-get when missing (as root)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass

__all__ = ["Fixed", "Posted", "ensure_tools", "fixed_rate", "post_counts", "saturate"]


def ensure_tools(say: object = print) -> None:
    missing = [tool for tool in ("wrk", "hey") if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(
            f"bench needs {' and '.join(missing)}: apt-get install {' '.join(missing)}"
        )
    say(f"installing {' '.join(missing)} from Debian's packages...")  # type: ignore[operator]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def _headers(headers: dict[str, str], flag: str) -> list[str]:
    return [part for name, value in headers.items() for part in (flag, f"{name}: {value}")]


def saturate(url: str, headers: dict[str, str], seconds: int, connections: int = 64) -> float:
    """Requests per second that ``wrk`` sustains (2 threads); non-2xx answers fail the run."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", *_headers(headers, "-H"), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors from {url}:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no throughput in wrk's output:\n{out}")
    return float(match.group(1))


@dataclass(frozen=True)
class Fixed:
    rate: float  # achieved requests per second
    p50_ms: float
    p99_ms: float


def fixed_rate(url: str, headers: dict[str, str], rate: int, seconds: int) -> Fixed:
    """Latency at ``rate`` requests per second (``hey``: 10 workers at rate/10 each)."""
    workers = 10
    out = subprocess.run(
        [
            "hey",
            "-z",
            f"{seconds}s",
            "-c",
            str(workers),
            "-q",
            str(rate // workers),
            *_headers(headers, "-H"),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    codes = re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)
    if any(not code.startswith("2") for code, _ in codes):
        raise RuntimeError(f"hey saw errors from {url}:\n{out}")

    def pct(p: int) -> float:
        match = re.search(rf"\s{p}%% in ([\d.]+) secs".replace("%%", "%"), out)
        if match is None:
            raise RuntimeError(f"no {p}th percentile in hey's output:\n{out}")
        return float(match.group(1)) * 1000

    achieved = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return Fixed(float(achieved.group(1)) if achieved else 0.0, pct(50), pct(99))


@dataclass(frozen=True)
class Posted:
    rate: float  # requests per second over the whole run
    ok: int  # 2xx answers
    codes: dict[str, int]


def post_counts(
    url: str, headers: dict[str, str], bodies: list[str], count: int, workers: int
) -> tuple[float, list[Posted]]:
    """For each body, ``count`` POSTs by ``workers`` clients (one ``hey -n`` each, all at
    once): every request is sent and answered, so the server's counts can be checked
    exactly. The overall rate, and each body's outcome."""
    started = time.perf_counter()
    runs = [
        subprocess.Popen(
            [
                "hey",
                "-n",
                str(count),
                "-c",
                str(workers),
                "-m",
                "POST",
                "-T",
                "application/json",
                "-d",
                body,
                *_headers(headers, "-H"),
                url,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for body in bodies
    ]
    outs = [run.communicate()[0] for run in runs]
    elapsed = time.perf_counter() - started
    posted = [_posted(out) for out in outs]
    return sum(p.ok for p in posted) / elapsed, posted


def _posted(out: str) -> Posted:
    codes = {code: int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    errors = re.search(r"Error distribution:\n((?:\s+\[\d+\].*\n?)+)", out)
    if errors:  # requests that got no HTTP answer at all (connection errors, timeouts)
        for n, what in re.findall(r"\[(\d+)\]\s+(.*)", errors.group(1)):
            codes[f"error: {what.strip()[:120]}"] = int(n)
    achieved = re.search(r"Requests/sec:\s+([\d.]+)", out)
    ok = sum(n for code, n in codes.items() if code.startswith("2"))
    return Posted(float(achieved.group(1)) if achieved else 0.0, ok, codes)
