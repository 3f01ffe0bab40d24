"""Tenant-level figures per app: MRR per currency, subscriptions by status, and the new
and churned subscriptions of the last 30 days (by each app's clock).

MRR counts active and past_due subscriptions at their plan's price normalised to a month
(a yearly plan's price / 12, a weekly one's * 365 / 12 / 7), summed exactly, then
rounded half up to the minor unit once per currency.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

import asyncpg

from stackbe_common.access import tenant_of
from stackbe_common.scope import Scope

from . import repository as repo
from . import schemas as s
from .money import monthly_cents, round_half_up

__all__ = ["metrics"]

PAYING = ("active", "past_due")


async def metrics(conn: asyncpg.Connection, caller: Scope) -> s.Metrics:
    tenant_id = tenant_of(caller)
    mrr: dict[str, dict[str, Fraction]] = defaultdict(lambda: defaultdict(Fraction))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in await repo.live_by_plan(conn, tenant_id):
        counts[row["app_id"]][row["status"]] += row["n"]
        if row["status"] in PAYING:
            monthly = monthly_cents(row["price_cents"], row["interval"], row["interval_count"])
            mrr[row["app_id"]][row["currency"]] += monthly * row["n"]
    movement = {row["app_id"]: row for row in await repo.movement(conn, tenant_id)}
    apps = sorted(set(counts) | set(movement))
    return s.Metrics(
        data=[
            s.AppMetrics(
                app_id=app_id,
                mrr={c: round_half_up(v) for c, v in sorted(mrr[app_id].items())},
                active=counts[app_id]["active"],
                trialing=counts[app_id]["trialing"],
                past_due=counts[app_id]["past_due"],
                paused=counts[app_id]["paused"],
                incomplete=counts[app_id]["incomplete"],
                new_last_30_days=movement[app_id]["new"] if app_id in movement else 0,
                churned_last_30_days=movement[app_id]["churned"] if app_id in movement else 0,
            )
            for app_id in apps
        ]
    )
