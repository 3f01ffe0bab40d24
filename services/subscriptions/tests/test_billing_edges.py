"""Edges of billing: refunds never exceed what was paid, late payments, cancelling while
past_due, pausing rules, the hosted page's declines, and the clock's limits."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

from stackbe_common.scope import Principal, Scope
from stackbe_events.identity import AppUpdated
from stackbe_subscriptions import readmodels

from .conftest import _event, subjects
from .transitions import (
    DAY,
    act,
    acted,
    advance_to,
    behave,
    catalog,
    checkout,
    pays,
    subscribe,
    ts,
)

ANONYMOUS = Scope(principal=Principal(kind="anonymous"), client_ip="203.0.113.9")


async def test_switching_without_proration_then_back_refunds_nothing_unpaid(api, app):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Basic")
    for _ in range(3):
        await acted(
            api, app, sub["id"], "change-plan", {"planId": app.plans["Pro"], "proration": "none"}
        )
        await acted(
            api,
            app,
            sub["id"],
            "change-plan",
            {"planId": app.plans["Basic"], "effective": "immediately"},
        )
    payments = pays(await api.payments(app, sub["id"]))
    assert payments == [(1000, "initial", "succeeded")]  # each way is worth 0: only 10.00 was paid


async def test_a_retry_paid_after_the_period_ended_starts_a_new_period_then(api, app, db):
    await app.plan("Daily", 100, "day")
    sub, customer = await subscribe(api, app, "Daily")
    await behave(api, app, customer, "fail")
    failed_at = ts(sub["currentPeriodEnd"])
    await advance_to(api, app, failed_at + 2 * DAY)  # renewal and the day-1 retry fail
    await behave(api, app, customer, "succeed")
    await advance_to(api, app, failed_at + 3 * DAY)  # the day-3 retry succeeds
    after = await api.sub(app, sub["id"])
    assert after["status"] == "active"
    assert ts(after["currentPeriodStart"]) == failed_at + 3 * DAY
    assert ts(after["currentPeriodEnd"]) == failed_at + 4 * DAY
    times = [ts(p["createdAt"]) for p in await api.payments(app, sub["id"])]
    assert times == sorted(times)  # nothing is dated before the payment that revived it
    rows = await db.fetch(
        "SELECT convert_from(payload, 'UTF8')::jsonb->>'occurredAt' AS at FROM outbox"
        " WHERE convert_from(payload, 'UTF8')::jsonb #>> '{subscription,id}' = $1 ORDER BY id",
        sub["id"],
    )
    moments = [ts(r["at"]) for r in rows]
    assert moments == sorted(moments)


async def test_a_past_due_subscription_set_to_cancel_ends_at_its_period_end(api, app):
    await app.plan("Weekly", 700, "week")
    sub, customer = await subscribe(api, app, "Weekly")
    await behave(api, app, customer, "fail")
    await advance_to(api, app, ts(sub["currentPeriodEnd"]))
    past_due = await acted(api, app, sub["id"], "cancel", {"atPeriodEnd": True})
    assert (past_due["status"], past_due["cancelAtPeriodEnd"]) == ("past_due", True)
    end = ts(past_due["currentPeriodEnd"])
    await advance_to(api, app, end + timedelta(days=10))
    ended = await api.sub(app, sub["id"])
    assert ended["status"] == "canceled"
    # The grace period (7 days) ended first here; with a longer one the period end would.
    assert ts(ended["canceledAt"]) <= end


async def test_a_subscription_set_to_cancel_cannot_be_paused(api, app):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Basic")
    await acted(api, app, sub["id"], "cancel", {"atPeriodEnd": True})
    r = await act(api, app, sub["id"], "pause")
    assert (r.status_code, r.json()["code"]) == (409, "SUBSCRIPTION_CANCELING")
    assert (await api.sub(app, sub["id"]))["status"] == "active"


async def test_a_pending_downgrade_applies_when_a_paused_subscription_resumes(api, app):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Pro")
    await acted(api, app, sub["id"], "change-plan", {"planId": app.plans["Basic"]})
    await acted(api, app, sub["id"], "pause")
    resumed = await acted(api, app, sub["id"], "resume")
    assert (resumed["planId"], resumed["pendingPlanId"]) == (app.plans["Basic"], None)
    assert pays(await api.payments(app, sub["id"]))[-1] == (1000, "resume", "succeeded")


async def test_a_pending_change_is_dropped_even_when_the_current_plan_is_deprecated(api, app):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Pro")
    await acted(api, app, sub["id"], "change-plan", {"planId": app.plans["Basic"]})
    await app.plan("Pro", 3000, status="deprecated", version=2, plan_id=app.plans["Pro"])
    kept = await acted(api, app, sub["id"], "change-plan", {"planId": app.plans["Pro"]})
    assert (kept["planId"], kept["pendingPlanId"]) == (app.plans["Pro"], None)


async def test_the_hosted_page_keeps_a_declined_payment_and_takes_a_second_try(api, app, db):
    await catalog(app)
    customer = await app.customer()
    session = await checkout(api, app, "Basic", customer)
    await behave(api, app, customer, "fail")
    declined = await pay_on_page(api, session["id"])
    assert declined.status_code == 402 and "declined" in declined.text
    sub_id = await db.fetchval(
        "SELECT subscription_id FROM checkout_sessions WHERE id = $1", session["id"]
    )
    assert (await api.sub(app, sub_id))["status"] == "incomplete"
    assert pays(await api.payments(app, sub_id)) == [(1000, "initial", "failed")]
    page = await api.call("GET", f"/checkout/{session['id']}", ANONYMOUS)
    assert page.status_code == 200 and "<button" in page.text and "declined" in page.text

    await behave(api, app, customer, "succeed")
    paid = await pay_on_page(api, session["id"])
    assert paid.status_code == 303, paid.text
    assert paid.headers["location"] == "https://shop.example/done"
    assert (await api.sub(app, sub_id))["status"] == "active"
    assert [verb for verb, _ in await subjects(db, sub_id)] == ["created", "updated"]


async def test_an_unpaid_checkout_whose_subscription_ended_is_expired(api, app):
    await catalog(app)
    customer = await app.customer()
    session = await checkout(api, app, "Basic", customer)
    token = await token_of(api, session["id"])  # the page as it was opened
    r = await api.call(
        "POST",
        f"/v1/sandbox/checkout/{session['id']}/complete",
        app.key(),
        json={"outcome": "failed"},
    )
    sub = r.json()["subscription"]
    await advance_to(api, app, ts(sub["createdAt"]) + timedelta(hours=24))
    again = await api.call(
        "POST", f"/v1/sandbox/checkout/{session['id']}/complete", app.key(), json={}
    )
    assert (again.status_code, again.json()["code"]) == (409, "CHECKOUT_SESSION_EXPIRED")
    page = await pay_on_page(api, session["id"], token)
    assert page.status_code == 409 and "location" not in page.headers


async def token_of(api, session_id: str) -> str:
    """The CSRF token in the hosted page's form ("" when the page shows no form)."""
    page = await api.call("GET", f"/checkout/{session_id}", ANONYMOUS)
    found = re.search(r'name=csrf value="([^"]+)"', page.text)
    return found.group(1) if found else ""


async def pay_on_page(api, session_id: str, token: str | None = None):
    """Press Pay on the hosted page: its form, with the token the page carries."""
    if token is None:
        token = await token_of(api, session_id)
    return await api.call(
        "POST",
        f"/checkout/{session_id}",
        ANONYMOUS,
        data={"csrf": token},
        follow_redirects=False,
    )


async def test_the_hosted_page_refuses_a_post_without_its_token_and_changes_nothing(api, app, db):
    await catalog(app)
    customer = await app.customer()
    session = await checkout(api, app, "Basic", customer)

    bare = await api.call("POST", f"/checkout/{session['id']}", ANONYMOUS, data={})
    forged = await pay_on_page(api, session["id"], token="x" * 32)
    other = await checkout(api, app, "Basic", await app.customer())
    borrowed = await token_of(api, other["id"])
    crossed = await pay_on_page(api, session["id"], token=borrowed)

    for refused in (bare, forged, crossed):
        assert refused.status_code == 403 and "expired" in refused.text
    row = await db.fetchrow("SELECT * FROM checkout_sessions WHERE id = $1", session["id"])
    assert (row["status"], row["subscription_id"]) == ("open", None)
    assert (
        await db.fetchval("SELECT count(*) FROM subscriptions WHERE customer_id = $1", customer)
        == 0
    )


async def test_cancel_on_the_hosted_page_says_nothing_was_charged_and_links_back(api, app):
    await catalog(app)
    session = await checkout(api, app, "Basic", await app.customer())

    page = await api.call("GET", f"/checkout/{session['id']}", ANONYMOUS)
    canceled = await api.call("GET", f"/checkout/{session['id']}/cancel", ANONYMOUS)

    assert f'href="/checkout/{session["id"]}/cancel"' in page.text
    assert canceled.status_code == 200 and "Nothing was charged" in canceled.text
    assert 'href="https://shop.example/cancel"' in canceled.text


async def test_the_clock_moves_at_most_five_years_at_once(api, app):
    r = await api.call(
        "POST", "/v1/sandbox/clock/advance", app.key(), json={"to": "9999-12-31T23:59:58Z"}
    )
    assert (r.status_code, r.json()["field"]) == (400, "to")
    assert (await api.ok("GET", "/v1/sandbox/clock", app.key()))["advancedSeconds"] == 0


async def test_checkout_sessions_are_not_guessable_from_each_other(api, app):
    await catalog(app)
    customer = await app.customer()
    ids = [(await checkout(api, app, "Basic", customer))["id"] for _ in range(5)]
    tails = [int.from_bytes(i[-16:].encode(), "big") for i in ids]
    assert all(abs(b - a) > 1 for a, b in itertools.pairwise(tails))


async def test_only_a_sandbox_apps_checkouts_are_completed_here(api, app, db):
    await catalog(app)
    customer = await app.customer()
    session = await checkout(api, app, "Basic", customer)
    moved = _event(
        AppUpdated, app.tenant_id, app.id, name="Shop", grace_period_days=7, gateway="stripe"
    )
    await readmodels.on_app(db, moved)
    r = await api.call("POST", f"/v1/sandbox/checkout/{session['id']}/complete", app.key(), json={})
    assert (r.status_code, r.json()["code"]) == (409, "SANDBOX_ONLY")
