"""``python -m stackbe_identity.bootstrap [--plans FILE]``: StackBE becomes a tenant of
itself. Idempotent: run it after every deploy, or after editing the plans file.

1. The platform tenant "StackBE", its app "StackBE Billing" and that app's key, once
   (the key is kept sealed in identity's schema and printed the first time only).
2. Through the public API, as any app would: the product "StackBE" and the plans of the
   plans file (``config/billing-plans.toml``), matched by their ``code``.

Needs the platform running: the gateway at ``STACKBE_GATEWAY_URL`` (else
``STACKBE_PUBLIC_URL``), and identity's settings (database, encryption key).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec

from stackbe_common import outbox
from stackbe_common.clock import SystemClock
from stackbe_common.config import load_or_exit
from stackbe_common.db import create_pool
from stackbe_common.ids import new_id
from stackbe_common.logging import configure_logging
from stackbe_common.scope import Principal, Scope
from stackbe_events import identity as ev

from . import apps, service
from . import repository as repo
from . import schemas as s
from .app import SCHEMA, build_deps
from .config import IdentitySettings

__all__ = ["PlanSpec", "load_plans", "main"]

DEFAULT_PLANS = Path("config/billing-plans.toml")
IMMUTABLE = ("priceCents", "currency", "interval", "intervalCount", "trialDays")


class PlanSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: str
    name: str
    price_cents: int
    currency: str
    interval: str
    entitlements: dict[str, Any]
    interval_count: int = 1
    trial_days: int = 0
    default: bool = False

    def body(self, product_id: str) -> dict[str, Any]:
        return {
            "productId": product_id,
            "name": self.name,
            "priceCents": self.price_cents,
            "currency": self.currency.upper(),
            "interval": self.interval,
            "intervalCount": self.interval_count,
            "trialDays": self.trial_days,
            "entitlements": self.entitlements,
            "metadata": self.metadata(),
        }

    def metadata(self) -> dict[str, Any]:
        return {"code": self.code, "default": True} if self.default else {"code": self.code}


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    plans: list[PlanSpec]


def load_plans(path: Path) -> list[PlanSpec]:
    """The plans file, checked: unique codes, exactly one default, and it is free."""
    try:
        raw = tomllib.loads(path.read_text())
        plans = msgspec.convert(raw, _File).plans
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise SystemExit(f"bootstrap: {path}: {exc}") from None
    codes = [p.code for p in plans]
    if len(set(codes)) != len(codes):
        raise SystemExit(f"bootstrap: {path}: each plan needs its own code")
    defaults = [p for p in plans if p.default]
    if len(defaults) != 1 or defaults[0].price_cents != 0:
        raise SystemExit(f"bootstrap: {path}: exactly one plan must be the default, and free")
    return plans


def say(message: str) -> None:
    print(f"bootstrap | {message}", flush=True)


async def _platform(settings: IdentitySettings, owner_email: str) -> tuple[str, str | None]:
    """StackBE Billing's app key (made the first time; then also returned for printing)."""
    pool = await create_pool(settings.database_url, SCHEMA, max_size=2)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE platform_billing IN EXCLUSIVE MODE")
            row = await conn.fetchrow("SELECT app_key FROM platform_billing")
            if row is not None:
                return settings.keyring.decrypt(row["app_key"], b"platform_billing").decode(), None
            deps = build_deps(settings, SystemClock())
            tenant = await repo.insert_tenant(conn, new_id("ten"), "StackBE", owner_email)
            owner = await repo.insert_member(
                conn, new_id("mem"), tenant["id"], owner_email, "owner"
            )
            await outbox.record(  # the tenant is known like any other
                conn,
                service.event(
                    ev.TenantCreated, deps, tenant["id"], name="StackBE", owner_email=owner_email
                ),
                service.event(
                    ev.MemberAdded,
                    deps,
                    tenant["id"],
                    member_id=owner["id"],
                    email=owner_email,
                    role="owner",
                ),
            )
            caller = Scope(
                principal=Principal(kind="tenant_key", id="bootstrap"),
                tenant_id=tenant["id"],
                role="admin",
            )
            app = await apps.create_app(conn, deps, caller, s.CreateApp(name="StackBE Billing"))
            key = await service.create_api_key(
                conn, deps, caller, app.id, s.CreateApiKey(name="StackBE Billing (identity)")
            )
            sealed = settings.keyring.encrypt(key.key.encode(), b"platform_billing")
            await conn.execute(
                "INSERT INTO platform_billing (platform_tenant_id, app_id, app_key)"
                " VALUES ($1, $2, $3)",
                tenant["id"],
                app.id,
                sealed,
            )
            say(f"created the tenant StackBE ({tenant['id']}, owner {owner_email})")
            say(f"created the app StackBE Billing ({app.id})")
            return key.key, key.key
    finally:
        await pool.close()


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str, key: str) -> None:
        self.session, self.base = session, base.rstrip("/")
        self.headers = {"Authorization": f"Bearer {key}"}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(
            method, self.base + path, json=body, headers=self.headers
        ) as r:
            answer = await r.json(content_type=None)
            if r.status >= 300:
                raise SystemExit(f"bootstrap: {method} {path}: {r.status} {answer}")
            return answer

    async def wait_until_ready(self, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                async with self.session.get(self.base + "/ready") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"bootstrap: the gateway at {self.base} is not ready")
            await asyncio.sleep(0.5)


def _same(a: Any, b: Any) -> bool:
    return msgspec.json.encode(a, order="sorted") == msgspec.json.encode(b, order="sorted")


async def sync_catalog(api: Api, plans: list[PlanSpec]) -> int:
    """The product and the plans of the file; how many changes were made."""
    changes = 0
    products = (await api.call("GET", "/v1/products?limit=100"))["data"]
    product = next((p for p in products if p["metadata"].get("code") == "stackbe"), None)
    if product is None:
        product = await api.call(
            "POST", "/v1/products", {"name": "StackBE", "metadata": {"code": "stackbe"}}
        )
        say(f"created the product StackBE ({product['id']})")
        changes += 1
    live: dict[str, Any] = {}
    for plan in (await api.call("GET", "/v1/plans?status=active&limit=100"))["data"]:
        code = plan["metadata"].get("code")
        if plan["productId"] != product["id"] or not code:
            continue
        if code in live:  # two live plans with one code: keep the first made
            await api.call("POST", f"/v1/plans/{plan['id']}/deprecate")
            say(f"plan {code}: a second live plan {plan['id']} deprecated")
            changes += 1
            continue
        live[code] = plan
    for spec in plans:
        wanted, current = spec.body(product["id"]), live.pop(spec.code, None)
        if current is not None and any(current[f] != wanted[f] for f in IMMUTABLE):
            made = await api.call("POST", "/v1/plans", wanted)
            await api.call("POST", f"/v1/plans/{current['id']}/deprecate")
            say(f"plan {spec.code}: new price or period, {made['id']} replaces {current['id']}")
            changes += 1
        elif current is None:
            made = await api.call("POST", "/v1/plans", wanted)
            say(f"plan {spec.code}: created {made['id']}")
            changes += 1
        else:
            patch = {
                k: wanted[k]
                for k in ("name", "entitlements", "metadata")
                if not _same(current[k], wanted[k])
            }
            if patch:
                await api.call("PATCH", f"/v1/plans/{current['id']}", patch)
                say(f"plan {spec.code}: updated {', '.join(sorted(patch))} of {current['id']}")
                changes += 1
            else:
                say(f"plan {spec.code}: unchanged ({current['id']})")
    for code, plan in live.items():
        await api.call("POST", f"/v1/plans/{plan['id']}/deprecate")
        say(f"plan {code}: not in the file any more, {plan['id']} deprecated")
        changes += 1
    return changes


async def bootstrap(settings: IdentitySettings, plans: list[PlanSpec], owner_email: str) -> int:
    # One bootstrap at a time: a second waits, then finds the first one's work done.
    lock = await asyncpg.connect(settings.database_url)
    try:
        await lock.execute("SELECT pg_advisory_lock(hashtext('stackbe.bootstrap'))")
        key, new_key = await _platform(settings, owner_email)
        if new_key is not None:
            say(
                f"StackBE Billing app key (shown once, keep it to manage tenants' plans): {new_key}"
            )
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            api = Api(session, settings.gateway_url or settings.public_url, key)
            await api.wait_until_ready()
            changes = await sync_catalog(api, plans)
    finally:
        await lock.close()  # the session lock goes with the connection
    say("done" if changes or new_key else "nothing changed")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stackbe_identity.bootstrap")
    parser.add_argument(
        "--plans",
        type=Path,
        default=Path(os.environ.get("STACKBE_BILLING_PLANS") or DEFAULT_PLANS),
        help="the plans file (default: config/billing-plans.toml, or STACKBE_BILLING_PLANS)",
    )
    parser.add_argument(
        "--owner-email",
        default=os.environ.get("STACKBE_PLATFORM_OWNER_EMAIL") or "owner@stackbe.localhost",
        help="the platform tenant's owner, the first time",
    )
    args = parser.parse_args(argv)
    settings = load_or_exit(IdentitySettings)
    configure_logging("bootstrap", json=settings.log_json, level="WARNING")
    plans = load_plans(args.plans)
    return asyncio.run(bootstrap(settings, plans, args.owner_email.strip().lower()))


if __name__ == "__main__":
    sys.exit(main())
