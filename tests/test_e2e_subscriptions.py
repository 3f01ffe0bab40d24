"""Subscriptions through the gateway on real processes, driven by the sandbox test clock:
checkout, renewal, trials, dunning, cancel, reactivate, pause, resume, plan changes with
exact proration, and every step's event read back from JetStream."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime
from fractions import Fraction
from typing import Any

import httpx

from stackbe_events.subscriptions import Subscription

from .conftest import bearer, new_app, new_tenant, pay_hosted_checkout, read_events

DAY = 86_400


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def half_up(value: Fraction) -> int:
    return int(value + Fraction(1, 2))


class Shop:
    """One sandbox app seen through the gateway with its app key."""

    def __init__(self, http: httpx.AsyncClient, app_id: str, key: str) -> None:
        self.http, self.app_id, self.headers = http, app_id, bearer(key)
        self.plans: dict[str, str] = {}

    async def call(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        r = await self.http.request(method, path, headers=self.headers, **kw)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    async def catalog(self, **prices: tuple[int, str, int]) -> None:
        product = await self.call("POST", "/v1/products", 201, json={"name": "Cloud"})
        for name, (cents, interval, trial) in prices.items():
            plan = await self.call(
                "POST",
                "/v1/plans",
                201,
                json={
                    "productId": product["id"],
                    "name": name,
                    "priceCents": cents,
                    "currency": "USD",
                    "interval": interval,
                    "trialDays": trial,
                    "entitlements": {"projects": cents // 100},
                },
            )
            self.plans[name] = plan["id"]

    async def checkout(self, plan: str, email: str | None = None) -> dict[str, Any]:
        return await self.call(
            "POST",
            "/v1/checkout/session",
            201,
            json={
                "email": email or f"buyer-{secrets.token_hex(4)}@example.com",
                "planId": self.plans[plan],
                "successUrl": "https://shop.example/thanks",
                "cancelUrl": "https://shop.example/pricing",
            },
        )

    async def subscribe(self, plan: str) -> dict[str, Any]:
        session = await self.checkout(plan)
        done = await self.call("POST", f"/v1/sandbox/checkout/{session['id']}/complete", json={})
        return done["subscription"]

    async def advance(self, seconds: int | None = None, to: str | None = None) -> None:
        body = {"seconds": seconds} if seconds else {"to": to}
        await self.call("POST", "/v1/sandbox/clock/advance", json=body)

    async def sub(self, sub_id: str) -> dict[str, Any]:
        return await self.call("GET", f"/v1/subscriptions/{sub_id}")

    async def act(self, sub_id: str, action: str, status: int = 200, **body: Any) -> Any:
        return await self.call("POST", f"/v1/subscriptions/{sub_id}/{action}", status, json=body)

    async def payments(self, sub_id: str) -> list[tuple[int, str, str]]:
        page = await self.call("GET", f"/v1/payments?subscriptionId={sub_id}&limit=100")
        return [(p["amountCents"], p["kind"], p["status"]) for p in page["data"]]


async def shop(http: httpx.AsyncClient) -> Shop:
    tenant_key = (await new_tenant(http))["apiKey"]
    app_id, key = await new_app(http, tenant_key, gracePeriodDays=7)
    return Shop(http, app_id, key)


async def versions_seen(nats_url: str, sub_id: str, count: int) -> list[tuple[str, int, str]]:
    events = await read_events(
        nats_url,
        "subscriptions",
        lambda e: (
            isinstance(getattr(e, "subscription", None), Subscription)
            and e.subscription.id == sub_id
        ),
        count,
    )
    return [
        (e.subject.split(".")[3], e.subscription.version, e.subscription.status)  # type: ignore[attr-defined]
        for e in events
    ]


async def test_a_hosted_checkout_pays_renews_a_month_later_and_every_step_is_an_event(
    http, gateway_url, nats_url
):
    s = await shop(http)
    await s.catalog(Pro=(2900, "month", 0))
    session = await s.checkout("Pro")
    assert session["url"].endswith(f"/checkout/{session['id']}") and session["status"] == "open"

    async with httpx.AsyncClient(base_url=gateway_url) as browser:  # no credentials
        page = await browser.get(f"/checkout/{session['id']}")
        assert page.status_code == 200 and "29.00 USD" in page.text and "Pay" in page.text
        paid = await pay_hosted_checkout(browser, f"/checkout/{session['id']}")
    assert paid.status_code == 303 and paid.headers["location"] == "https://shop.example/thanks"

    seen = await s.call("GET", f"/v1/checkout/session/{session['id']}")
    assert seen["status"] == "completed"
    sub_id = seen["subscriptionId"]
    first = await s.sub(sub_id)
    assert first["status"] == "active"
    current = await s.call(
        "GET", f"/v1/subscriptions/current?customerId={first['customerId']}&expand=plan"
    )
    assert current["id"] == sub_id and current["plan"]["priceCents"] == 2900

    await s.advance(to=first["currentPeriodEnd"])
    renewed = await s.sub(sub_id)
    assert renewed["status"] == "active"
    assert renewed["currentPeriodStart"] == first["currentPeriodEnd"]
    assert await s.payments(sub_id) == [
        (2900, "initial", "succeeded"),
        (2900, "renewal", "succeeded"),
    ]
    assert await versions_seen(nats_url, sub_id, 2) == [
        ("created", 1, "active"),
        ("updated", 2, "active"),
    ]


async def test_a_trial_is_charged_at_its_end_and_a_failing_card_ends_in_cancellation(
    http, nats_url
):
    s = await shop(http)
    await s.catalog(Trial=(1500, "month", 14), Basic=(1000, "month", 0))
    trial = await s.subscribe("Trial")
    assert trial["status"] == "trialing" and await s.payments(trial["id"]) == []
    await s.advance(to=trial["trialEnd"])
    after = await s.sub(trial["id"])
    assert after["status"] == "active" and after["currentPeriodStart"] == trial["trialEnd"]
    assert await s.payments(trial["id"]) == [(1500, "renewal", "succeeded")]

    dunned = await s.subscribe("Basic")
    customer = dunned["customerId"]
    await s.call(
        "POST", f"/v1/sandbox/customers/{customer}/payment-behavior", json={"behavior": "fail"}
    )
    await s.advance(to=dunned["currentPeriodEnd"])
    past_due = await s.sub(dunned["id"])
    assert past_due["status"] == "past_due"
    failed_at = moment(dunned["currentPeriodEnd"])
    assert (moment(past_due["graceEndsAt"]) - failed_at).days == 7
    await s.advance(seconds=8 * DAY)
    ended = await s.sub(dunned["id"])
    assert ended["status"] == "canceled" and ended["canceledAt"] == past_due["graceEndsAt"]
    page = await s.call("GET", f"/v1/payments?subscriptionId={dunned['id']}")
    tries = [(p["kind"], p["status"], moment(p["createdAt"]) - failed_at) for p in page["data"]]
    assert [(k, st, d.days) for k, st, d in tries[1:]] == [
        ("renewal", "failed", 0),
        ("retry", "failed", 1),
        ("retry", "failed", 3),
        ("retry", "failed", 5),
    ]
    assert await versions_seen(nats_url, dunned["id"], 6) == [
        ("created", 1, "active"),
        ("updated", 2, "past_due"),
        ("updated", 3, "past_due"),
        ("updated", 4, "past_due"),
        ("updated", 5, "past_due"),
        ("canceled", 6, "canceled"),
    ]


async def test_cancel_at_period_end_reactivate_pause_and_resume(http, nats_url):
    s = await shop(http)
    await s.catalog(Pro=(2000, "month", 0))
    sub = await s.subscribe("Pro")
    canceling = await s.act(sub["id"], "cancel", atPeriodEnd=True)
    assert canceling["status"] == "active" and canceling["cancelAtPeriodEnd"] is True
    reactivated = await s.act(sub["id"], "reactivate")
    assert reactivated["cancelAtPeriodEnd"] is False
    await s.act(sub["id"], "cancel", atPeriodEnd=True)
    await s.advance(seconds=10 * DAY)
    assert (await s.sub(sub["id"]))["status"] == "active"  # still active until the end
    await s.advance(to=sub["currentPeriodEnd"])
    ended = await s.sub(sub["id"])
    assert ended["status"] == "canceled" and ended["canceledAt"] == sub["currentPeriodEnd"]
    assert await s.payments(sub["id"]) == [(2000, "initial", "succeeded")]  # no renewal

    paused_sub = await s.subscribe("Pro")
    paused = await s.act(paused_sub["id"], "pause")
    assert paused["status"] == "paused" and paused["pausedAt"]
    await s.advance(seconds=40 * DAY)
    assert (await s.sub(paused_sub["id"]))["status"] == "paused"  # not billed while paused
    resumed = await s.act(paused_sub["id"], "resume")
    assert resumed["status"] == "active" and resumed["currentPeriodStart"] > sub["currentPeriodEnd"]
    assert [k for _, k, _ in await s.payments(paused_sub["id"])] == ["initial", "resume"]
    assert [v[:2] for v in await versions_seen(nats_url, paused_sub["id"], 3)] == [
        ("created", 1),
        ("paused", 2),
        ("resumed", 3),
    ]


async def test_upgrade_now_and_downgrade_at_period_end_with_exact_proration(http):
    s = await shop(http)
    await s.catalog(Basic=(1000, "month", 0), Pro=(3000, "month", 0))
    sub = await s.subscribe("Basic")
    start, end = moment(sub["currentPeriodStart"]), moment(sub["currentPeriodEnd"])
    middle = start + (end - start) / 3
    await s.advance(to=middle.isoformat())

    upgraded = await s.act(sub["id"], "change-plan", planId=s.plans["Pro"])
    assert upgraded["planId"] == s.plans["Pro"]
    assert upgraded["currentPeriodEnd"] == sub["currentPeriodEnd"]  # same period
    micros = lambda d: d.days * DAY * 10**6 + d.seconds * 10**6 + d.microseconds  # noqa: E731
    left = Fraction(micros(end - middle), micros(end - start))
    expected = half_up(3000 * left) - half_up(1000 * left)
    payments = await s.payments(sub["id"])
    assert payments[-1] == (expected, "proration", "succeeded")
    assert expected == 1333  # two thirds of the 2000 difference, to the cent

    downgraded = await s.act(sub["id"], "change-plan", planId=s.plans["Basic"])
    assert (
        downgraded["planId"] == s.plans["Pro"] and downgraded["pendingPlanId"] == s.plans["Basic"]
    )
    assert len(await s.payments(sub["id"])) == 2  # nothing charged or refunded now
    await s.advance(to=sub["currentPeriodEnd"])
    renewed = await s.sub(sub["id"])
    assert renewed["planId"] == s.plans["Basic"] and renewed["pendingPlanId"] is None
    assert (await s.payments(sub["id"]))[-1] == (1000, "renewal", "succeeded")


async def test_an_app_cannot_check_out_another_apps_plan_or_customer(http):
    tenant_key = (await new_tenant(http))["apiKey"]
    mine, their = [Shop(http, *await new_app(http, tenant_key)) for _ in range(2)]
    await mine.catalog(Pro=(900, "month", 0))
    await their.catalog(Pro=(900, "month", 0))
    sub = await mine.subscribe("Pro")
    body = {"successUrl": "https://a.example/ok", "cancelUrl": "https://a.example/no"}

    r = await their.http.post(
        "/v1/checkout/session",
        headers=their.headers,
        json={**body, "email": "x@example.com", "planId": mine.plans["Pro"]},
    )
    assert (r.status_code, r.json()["code"]) == (404, "PLAN_NOT_FOUND")
    r = await their.http.post(
        "/v1/checkout/session",
        headers=their.headers,
        json={**body, "customerId": sub["customerId"], "planId": their.plans["Pro"]},
    )
    assert (r.status_code, r.json()["code"]) == (404, "CUSTOMER_NOT_FOUND")
    r = await their.http.get(f"/v1/subscriptions/{sub['id']}", headers=their.headers)
    assert (r.status_code, r.json()["code"]) == (404, "SUBSCRIPTION_NOT_FOUND")


async def test_simultaneous_completions_and_checkouts_never_make_two_live_subscriptions(http):
    s = await shop(http)
    await s.catalog(Pro=(900, "month", 0))

    async def complete_at_once(*sessions: dict[str, Any]) -> list[httpx.Response]:
        return list(
            await asyncio.gather(
                *(
                    s.http.post(
                        f"/v1/sandbox/checkout/{c['id']}/complete", headers=s.headers, json={}
                    )
                    for c in sessions
                )
            )
        )

    once = await s.checkout("Pro")
    same = await complete_at_once(*[once] * 4)
    assert {r.status_code for r in same} == {200}
    assert len({r.json()["subscription"]["id"] for r in same}) == 1

    email = f"racer-{secrets.token_hex(4)}@example.com"
    rivals = [await s.checkout("Pro", email) for _ in range(3)]
    assert len({c["customerId"] for c in rivals}) == 1
    answers = await complete_at_once(*rivals)
    assert sorted(r.status_code for r in answers) == [200, 409, 409]
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"SUBSCRIPTION_EXISTS"}
    live = await s.call("GET", f"/v1/subscriptions?customerId={rivals[0]['customerId']}")
    assert [x["status"] for x in live["data"]] == ["active"]
    assert len(await s.payments(live["data"][0]["id"])) == 1
