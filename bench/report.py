"""The bench's one table: each figure, its floor and ratio where it has one, its target,
and whether the target was met; also written into docs/benchmarks.md."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

Row = tuple[str, str, str, str, str, str]  # figure, StackBE, floor, ratio, target, met


def _met(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "NOT MET")


def _ratio(value: float, floor: float) -> float:
    return value / floor if floor else 0.0


_REQUEST = ("gateway", "entitlements", "postgres")
_DELIVERY = ("entitlements-worker", "webhooks-worker", "postgres")


def _cpu_row(figure: str, r: dict[str, Any], run: str, names: tuple[str, ...] = _REQUEST) -> Row:
    """Where a request's CPU goes, in the processes that spend most of it."""
    spent = r.get("cpu_us_per_request", {}).get(run, {})
    shown = " / ".join(f"{spent.get(name, 0)}" for name in names)
    label = " / ".join(
        name.replace("-worker", " w.").replace("entitlements", "ent.") for name in names
    )
    return (f"{figure} ({label})", shown, "", "", "", "")


def rows(r: dict[str, Any]) -> list[Row]:
    s, f, u = r["saturation"], r["fixed_rate"], r["usage"]
    fresh, rev, wh = r["freshness"], r["revocation"], r["webhooks"]
    sat = _ratio(s["check"], s["floor"])
    p99 = _ratio(f["check"]["p99_ms"], f["floor"]["p99_ms"])
    p50 = _ratio(f["check"]["p50_ms"], f["floor"]["p50_ms"])
    tenant = _ratio(s["check_tenant_key"], s["check"])
    usage = _ratio(u["rate"], s["check"])
    delivery = _ratio(wh["burst"]["rate"], wh["floor"])
    lat = wh["latency"]
    out: list[Row] = [
        (
            "entitlement checks/s, saturated (app key)",
            f"{s['check']:.0f}",
            f"{s['floor']:.0f}",
            f"{sat:.2f}",
            ">= 0.80 x floor",
            _met(sat >= 0.8),
        ),
        (
            f"check p99 at {f['rate']}/s, ms",
            f"{f['check']['p99_ms']:.2f}",
            f"{f['floor']['p99_ms']:.2f}",
            f"{p99:.2f}",
            "<= 1.50 x floor",
            _met(p99 <= 1.5),
        ),
        (
            f"check p50 at {f['rate']}/s, ms",
            f"{f['check']['p50_ms']:.2f}",
            f"{f['floor']['p50_ms']:.2f}",
            f"{p50:.2f}",
            "",
            "",
        ),
        (
            "checks/s with a tenant key + X-StackBE-App",
            f"{s['check_tenant_key']:.0f}",
            f"{s['check']:.0f}",
            f"{tenant:.2f}",
            "(vs app key)",
            "",
        ),
        _cpu_row("CPU per check, µs", r, "check"),
        (
            "revoked key -> 401 at the gateway, p99 ms",
            f"{rev['until_401']['p99_ms']:.1f}",
            "",
            "",
            "< 1000",
            _met(rev["until_401"]["p99_ms"] < 1000),
        ),
        (
            "first request after revocation, p50 ms",
            f"{rev['refused_request']['p50_ms']:.2f}",
            "",
            "",
            "",
            "",
        ),
        (
            f"subscription change -> check, p50/p99 ms ({fresh['count']})",
            f"{fresh['p50_ms']:.1f} / {fresh['p99_ms']:.1f}",
            "",
            "",
            "p99 <= 100",
            _met(fresh["p99_ms"] <= 100 and fresh["count"] >= 200),
        ),
        (
            "enforced usage records/s",
            f"{u['rate']:.0f}",
            f"{s['check']:.0f}",
            f"{usage:.2f}",
            ">= 0.50 x checks",
            _met(usage >= 0.5),
        ),
        _cpu_row("CPU per usage record, µs", r, "usage"),
        (
            f"usage counted ({u['ok']} of {u['sent']} calls answered 200)",
            f"{u['counted']}",
            "",
            "",
            f"= {u['ok']}, all answered",
            _met(bool(u["exact"]) and u["ok"] == u["sent"]),
        ),
        (
            "webhook deliveries/s (plan change burst)",
            f"{wh['burst']['rate']:.0f}",
            f"{wh['floor']:.0f}",
            f"{delivery:.2f}",
            ">= 0.50 x aiohttp",
            _met(delivery >= 0.5 and wh["burst"]["delivered"] >= wh["burst"]["expected"]),
        ),
        _cpu_row("CPU per webhook, µs", r, "webhook", _DELIVERY),
        (
            f"webhook first attempt p50/p99 ms ({lat['delivered']}/{lat['sent']})",
            f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f}",
            "",
            "",
            "p99 <= 500",
            _met(lat["p99_ms"] <= 500 and lat["delivered"] == lat["sent"]),
        ),
        (
            "sandbox checkout -> access, p50/p99 ms",
            f"{r['checkout_to_access']['p50_ms']:.1f} / {r['checkout_to_access']['p99_ms']:.1f}",
            "",
            "",
            "",
            "",
        ),
    ]
    idle, after = r.get("memory_idle_mb", {}), r.get("memory_after_mb", {})
    for name in sorted(idle):
        out.append(
            (
                f"memory of {name}, MB",
                f"{idle[name]:.0f} -> {after.get(name, 0):.0f}",
                "",
                "",
                "idle -> after",
                "",
            )
        )
    return out


def _render(table: list[Row], line: Callable[[Row], str]) -> list[str]:
    return [line(row) for row in table]


def table(results: dict[str, Any]) -> str:
    header: Row = ("figure", "StackBE", "floor", "ratio", "target", "")
    body = rows(results)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(6)]

    def line(row: Row) -> str:
        return "  ".join(
            cell.ljust(w) if i in (0, 4, 5) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), *_render(body, line)])


def markdown(results: dict[str, Any]) -> str:
    m = results["run"]["machine"]
    lines = [
        f"Measured {results['run']['at']} in {results['run']['seconds']} s on "
        f"{m['cores']} cores, {m['memory_gb']} GB ({m['cpu'] or 'unknown CPU'}), Python "
        f"{m['python']}, granian {m['packages'].get('granian')}, "
        f"Litestar {m['packages'].get('litestar')}.",
        "",
        "| figure | StackBE | floor | ratio | target | |",
        "|---|---:|---:|---:|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    return "\n".join(lines)


def update_docs(path: Path, results: dict[str, Any]) -> None:
    text = path.read_text()
    block = f"{BEGIN}\n{markdown(results)}\n{END}"
    path.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), block, text, flags=re.S))
