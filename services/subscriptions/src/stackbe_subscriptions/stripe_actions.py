"""Cancel, reactivate, pause, resume and change plan on a subscription Stripe runs.

Each is checked by the same rules as on the sandbox, then asked of Stripe with an
idempotency key made of the subscription, its version and the request, so a retried
request asks Stripe once. Stripe answers with the subscription as it now is, and that is
what StackBE writes (``stripe_sync.apply``); the webhook events that follow find it
already written and change nothing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import asyncpg

from stackbe_common.errors import InvalidInput

from . import gateway_repository as grepo
from . import machine
from . import schemas as s
from .deps import Deps
from .errors import PlanDeprecated, StripeFailed, SubscriptionCanceled, SubscriptionNotPaused
from .gateways import open_account
from .lifecycle import sub_of, terms_of
from .stripe_sync import apply, ensure_price

__all__ = ["StripeAction", "run"]


class StripeAction:
    """What to ask of Stripe: update ``params``, or ``cancel_now``; ``name`` keys it."""

    def __init__(self, name: str, params: dict[str, Any] | None = None) -> None:
        self.name, self.params = name, params

    @classmethod
    def cancel(cls, row: asyncpg.Record, data: s.CancelSubscription, now: datetime) -> StripeAction:
        machine.cancel(sub_of(row), now, data.at_period_end)
        if not data.at_period_end:
            return cls("cancel")
        return cls("cancel-at-period-end", {"cancel_at_period_end": True})

    @classmethod
    def reactivate(cls, row: asyncpg.Record) -> StripeAction:
        machine.reactivate(sub_of(row))
        return cls("reactivate", {"cancel_at_period_end": False})

    @classmethod
    def pause(cls, row: asyncpg.Record, data: s.PauseSubscription, now: datetime) -> StripeAction:
        machine.pause(sub_of(row), now, data.resumes_at)
        pause: dict[str, Any] = {"behavior": "void"}
        if data.resumes_at is not None:
            pause["resumes_at"] = int(data.resumes_at.timestamp())
        return cls("pause", {"pause_collection": pause})

    @classmethod
    def resume(cls, row: asyncpg.Record) -> StripeAction:
        status = sub_of(row).status
        if status == "canceled":
            raise SubscriptionCanceled()
        if status != "paused":
            raise SubscriptionNotPaused()
        return cls("resume", {"pause_collection": ""})


async def change_plan(
    conn: asyncpg.Connection, deps: Deps, row: asyncpg.Record, data: s.ChangePlan
) -> StripeAction:
    """A Stripe subscription moves to the new plan's price at once, prorated as asked
    (Stripe's default: prorations on the next invoice)."""
    if data.effective == "period_end":
        raise InvalidInput(
            "A subscription that Stripe runs changes plan at once; omit effective or "
            "give 'immediately'",
            field="effective",
        )
    assert deps.lookups is not None
    tenant_id, app_id = row["tenant_id"], row["app_id"]
    new = await deps.lookups.plan(conn, tenant_id, app_id, data.plan_id)
    if new.status != "active":
        raise PlanDeprecated(f"The plan is {new.status} and takes no new subscriptions")
    old = await deps.lookups.plan(conn, tenant_id, app_id, row["plan_id"])
    machine.refuse_change(sub_of(row), terms_of(old), terms_of(new))
    account = await open_account(conn, deps, row["gateway_id"])
    price = await ensure_price(conn, deps, account, tenant_id, new)
    theirs = await account.subscription(row["stripe_subscription_id"])
    item = theirs["items"]["data"][0]["id"]
    params = {
        "items": [{"id": item, "price": price}],
        "proration_behavior": data.proration or "create_prorations",
    }
    return StripeAction(f"change-{new.id}", params)


async def run(
    conn: asyncpg.Connection, deps: Deps, row: asyncpg.Record, action: StripeAction
) -> asyncpg.Record:
    """Ask Stripe (the caller holds the subscription's lock) and write its answer."""
    gateway = await grepo.gateway_by_id(conn, row["gateway_id"])
    account = await open_account(conn, deps, row["gateway_id"])
    stripe_id = row["stripe_subscription_id"]
    asked = hashlib.sha256(json.dumps(action.params, sort_keys=True).encode()).hexdigest()[:16]
    key = f"stackbe-{action.name}-{row['id']}-v{row['version']}-{asked}"
    if action.params is None:
        theirs = await account.cancel_subscription(stripe_id, key)
    elif action.name == "resume" and (await account.subscription(stripe_id))["status"] == "paused":
        theirs = await account.resume_subscription(stripe_id, key)  # Stripe paused it itself
    else:
        theirs = await account.update_subscription(stripe_id, action.params, key)
    applied = await apply(conn, deps, gateway, theirs)
    if applied is None:  # Stripe made the change; its state follows with its events
        raise StripeFailed("Stripe made the change, but its subscription no longer maps to a plan")
    return applied
