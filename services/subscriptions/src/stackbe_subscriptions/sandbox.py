"""The sandbox payment gateway: every app's gateway until it connects a real one.

Charges succeed or fail by the customer's payment behavior (``succeed`` unless set),
checkouts complete through a hosted page or an API call, and each app has a test clock
that only moves forward. Advancing it runs every transition due up to the new time, in
order, before answering.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

import asyncpg

from stackbe_common.access import app_of
from stackbe_common.currencies import format_amount
from stackbe_common.errors import InvalidInput
from stackbe_common.pages import Brand, csrf_token, page
from stackbe_common.scope import Scope

from . import repository as repo
from . import schemas as s
from .deps import Deps
from .errors import ClockNotAvailable, ClockTooFar
from .lifecycle import app_now, run_due_until
from .subscriptions import billing_for

__all__ = [
    "advance_clock",
    "brand_of",
    "canceled_page",
    "checkout_page",
    "get_clock",
    "result_page",
    "run_app_until",
    "set_behavior",
]


async def _sandbox_app(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, write: bool
) -> tuple[str, str]:
    tenant_id, app_id = app_of(caller, write=write)
    assert deps.lookups is not None
    if (await deps.lookups.app(conn, tenant_id, app_id)).gateway != "sandbox":
        raise ClockNotAvailable()
    return tenant_id, app_id


async def get_clock(conn: asyncpg.Connection, deps: Deps, caller: Scope) -> s.Clock:
    _, app_id = await _sandbox_app(conn, deps, caller, write=False)
    offset = await repo.clock_offset_us(conn, app_id)
    return s.Clock(
        now=deps.clock.now() + timedelta(microseconds=offset), advanced_seconds=offset // 1_000_000
    )


async def run_app_until(
    conn: asyncpg.Connection, deps: Deps, tenant_id: str, app_id: str, until: datetime
) -> int:
    """Run the app's due actions up to ``until``, one at a time, earliest first; return
    how many ran."""
    make = billing_for(conn, deps)
    ran = 0
    while (row := await repo.next_due_of_app(conn, tenant_id, app_id, until)) is not None:
        await run_due_until(conn, row, row["next_action_at"], make)
        ran += 1
    return ran


async def advance_clock(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, data: s.AdvanceClock
) -> s.Clock:
    tenant_id, app_id = await _sandbox_app(conn, deps, caller, write=True)
    if (data.to is None) == (data.seconds is None):
        raise InvalidInput("Give exactly one of to and seconds", field="to")
    offset = await repo.lock_clock(conn, tenant_id, app_id)  # one advance per app at a time
    now = deps.clock.now() + timedelta(microseconds=offset)
    target = data.to if data.to is not None else now + timedelta(seconds=data.seconds or 0)
    if target <= now:
        raise InvalidInput(f"to must be later than the clock's now ({now.isoformat()})", field="to")
    if target - now > timedelta(seconds=s.FIVE_YEARS):
        raise ClockTooFar(
            f"to may be at most five years after the clock's now ({now.isoformat()})", field="to"
        )
    moved = target - now
    added = (moved.days * 86_400 + moved.seconds) * 1_000_000 + moved.microseconds
    await repo.set_clock_offset(conn, tenant_id, app_id, offset + added)
    await run_app_until(conn, deps, tenant_id, app_id, target)
    return s.Clock(now=target, advanced_seconds=(offset + added) // 1_000_000)


async def set_behavior(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, customer_id: str, data: s.PaymentBehavior
) -> s.CustomerBehavior:
    tenant_id, app_id = await _sandbox_app(conn, deps, caller, write=True)
    assert deps.lookups is not None
    customer_id = await deps.lookups.customer(conn, tenant_id, app_id, customer_id=customer_id)
    await repo.set_behavior(conn, tenant_id, app_id, customer_id, data.behavior)
    return s.CustomerBehavior(customer_id=customer_id, behavior=data.behavior)


CSRF_PURPOSE = "checkout"


async def brand_of(conn: asyncpg.Connection, deps: Deps, session: asyncpg.Record) -> Brand:
    assert deps.lookups is not None
    app = await deps.lookups.app(conn, session["tenant_id"], session["app_id"])
    return Brand(app.name, app.brand_color, app.logo_url)


async def checkout_page(conn: asyncpg.Connection, deps: Deps, session: asyncpg.Record) -> str:
    """The hosted checkout: what is bought, for how much, and a Pay button; once paid, the
    success page."""
    assert deps.lookups is not None
    plan = await deps.lookups.plan(
        conn, session["tenant_id"], session["app_id"], session["plan_id"]
    )
    brand = await brand_of(conn, deps, session)
    now = await app_now(conn, deps, session["app_id"])
    price = format_amount(plan.price_cents, plan.currency)
    every = plan.interval if plan.interval_count == 1 else f"{plan.interval_count} {plan.interval}s"
    declined = ""
    if session["status"] == "completed":
        sub = await repo.get_subscription(
            conn, session["tenant_id"], session["app_id"], session["subscription_id"]
        )
        status = sub["status"] if sub is not None else "canceled"
        if status == "canceled":
            return result_page(
                "Checkout expired", "Start again from the app.", session["cancel_url"], brand=brand
            )
        if status != "incomplete":
            assert sub is not None
            return success_page(plan.name, price, every, sub, session["success_url"], brand)
        declined = "<p role=alert>The last payment was declined. You can try again.</p>"
    elif session["expires_at"] <= now:
        return result_page(
            "Checkout expired", "Start again from the app.", session["cancel_url"], brand=brand
        )
    trial = (
        f"<dt>Trial</dt><dd>{plan.trial_days} days free, then {escape(price)}</dd>"
        if plan.trial_days
        else ""
    )
    session_id = escape(session["id"], quote=True)
    token = csrf_token(deps.settings.secret, CSRF_PURPOSE, session["id"])
    return page(
        f"Subscribe to {plan.name}",
        f"<h1>Subscribe to {escape(plan.name)}</h1>"
        f"<dl><dt>Price</dt><dd>{escape(price)} every {escape(every)}</dd>{trial}</dl>{declined}"
        "<p class=note>This is a sandbox checkout: no real money moves.</p>"
        f'<form method=post action="/checkout/{session_id}">'
        f'<input type=hidden name=csrf value="{token}">'
        f"<div class=actions><button type=submit>Pay {escape(price)}</button>"
        f'<a href="/checkout/{session_id}/cancel">Cancel</a></div></form>',
        brand,
    )


def success_page(
    plan: str, price: str, every: str, sub: asyncpg.Record, back: str, brand: Brand
) -> str:
    status = "Trial started" if sub["status"] == "trialing" else "Payment received"
    until = sub["trial_end"] if sub["status"] == "trialing" else sub["current_period_end"]
    renews = f"<dt>Renews</dt><dd>{until:%d %B %Y}</dd>" if until else ""
    return page(
        "Subscribed",
        f"<h1>You are subscribed to {escape(plan)}</h1>"
        f"<dl><dt>Status</dt><dd>{status}</dd><dt>Price</dt>"
        f"<dd>{escape(price)} every {escape(every)}</dd>{renews}</dl>"
        f'<div class=actions><a class=button href="{escape(back, quote=True)}">'
        "Continue</a></div>",
        brand,
    )


def canceled_page(session: asyncpg.Record, brand: Brand) -> str:
    again = escape(f"/checkout/{session['id']}", quote=True)
    return page(
        "Checkout canceled",
        "<h1>Checkout canceled</h1><p>Nothing was charged.</p>"
        f'<div class=actions><a class=button href="{escape(session["cancel_url"], quote=True)}">'
        f'Return to the app</a><a href="{again}">Back to checkout</a></div>',
        brand,
    )


def result_page(
    title: str,
    message: str,
    link: str | None = None,
    label: str = "Return to the app",
    brand: Brand | None = None,
) -> str:
    back = f'<p><a href="{escape(link, quote=True)}">{escape(label)}</a></p>' if link else ""
    return page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>{back}", brand)
