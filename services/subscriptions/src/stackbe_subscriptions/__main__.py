"""``python -m stackbe_subscriptions serve|worker|migrate|reconcile``."""

import argparse
from pathlib import Path

import msgspec

from stackbe_common import bus
from stackbe_common.clock import SystemClock
from stackbe_common.db import create_pool
from stackbe_common.service import Command, ServiceSettings, ServiceSpec, main

from .config import SubscriptionsSettings
from .deps import Deps
from .readmodels import Lookups
from .reconcile import reconcile
from .stripe_api import StripeHttp
from .worker import run_worker


async def run_reconcile(settings: ServiceSettings, args: argparse.Namespace) -> None:
    """Repair drift from Stripe now, for one connection or all; print what was done."""
    assert isinstance(settings, SubscriptionsSettings)
    pool = await create_pool(settings.database_url, "subscriptions", max_size=2)
    nc = await bus.connect(settings.nats_url, "stackbe-subscriptions-reconcile")
    http = StripeHttp(settings.stripe_api_base, settings.stripe_timeout_seconds)
    lookups = Lookups(nc, settings.rpc_timeout_seconds)
    try:
        deps = Deps(settings=settings, clock=SystemClock(), lookups=lookups, stripe=http)
        for done in await reconcile(pool, deps, args.gateway):
            print(msgspec.json.encode(done).decode(), flush=True)
    finally:
        await http.close()
        await nc.close()
        await pool.close()


SPEC = ServiceSpec(
    name="subscriptions",
    settings=SubscriptionsSettings,
    app_factory="stackbe_subscriptions.app:asgi",
    worker=run_worker,
    migrations=Path(__file__).parent / "migrations",
    commands=(
        Command(
            name="reconcile",
            help="compare Stripe's subscriptions with StackBE's and repair drift",
            run=run_reconcile,
            options=(("--gateway", "only this connection (gw_...)"),),
        ),
    ),
)

if __name__ == "__main__":
    main(SPEC)
