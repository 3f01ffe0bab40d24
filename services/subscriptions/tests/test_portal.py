"""The customer portal, on the real service: one-time links, the sign-in cookie, CSRF on
every form, and one app's customer kept out of another app's portal."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from stackbe_common.ids import new_id
from stackbe_common.scope import Principal, Scope
from stackbe_events.identity import AppCreated, AppUpdated
from stackbe_subscriptions import portal, readmodels

from .conftest import Api, App

ANONYMOUS = Scope(principal=Principal(kind="anonymous"), client_ip="203.0.113.7")
BACK = "https://shop.example/account"


async def announce(app: App, kind: type[Any] = AppUpdated, **settings: Any) -> None:
    """The app as identity announces it (a sandbox app with a 7-day grace period)."""
    event = kind(
        id=new_id("evt"),
        occurred_at=datetime.now(UTC),
        tenant_id=app.tenant_id,
        app_id=app.id,
        name="Shop",
        grace_period_days=7,
        gateway="sandbox",
        **settings,
    )
    await readmodels.on_app(app.db, event)


async def allow_back(app: App) -> None:
    """The app lists BACK among its allowedRedirectUrls."""
    await announce(app, allowed_redirect_urls=[BACK])


async def signed_in(api: Api, app: App, customer: str) -> tuple[str, httpx.Response]:
    """Open a portal session's link: the cookie it sets, and the answer."""
    made = await api.ok(
        "POST", "/v1/portal/sessions", app.key(), json={"customerId": customer, "returnUrl": BACK}
    )
    path = "/" + made["url"].split("/", 3)[3]
    entered = await api.call("GET", path, ANONYMOUS, follow_redirects=False)
    found = re.search(r"stackbe_portal=([^;]+)", entered.headers.get("set-cookie", ""))
    return (found.group(1) if found else ""), entered


async def page(api: Api, path: str, cookie: str, **kw: Any) -> httpx.Response:
    return await api.call(
        "GET", path, ANONYMOUS, headers={"cookie": f"stackbe_portal={cookie}"}, **kw
    )


async def post(api: Api, path: str, cookie: str, form: dict[str, str]) -> httpx.Response:
    return await api.call(
        "POST",
        path,
        ANONYMOUS,
        headers={"cookie": f"stackbe_portal={cookie}"},
        data=form,
        follow_redirects=False,
    )


def csrf_of(html: str) -> str:
    found = re.search(r'name=csrf value="([^"]+)"', html)
    assert found, "no form on the page"
    return found.group(1)


async def test_a_portal_link_signs_in_once_with_a_safe_cookie(api: Api, app: App) -> None:
    await allow_back(app)
    await app.plan("Pro", 2900)
    sub = await api.subscribe(app, "Pro")

    cookie, entered = await signed_in(api, app, sub["customerId"])
    home = await page(api, f"/portal/{app.id}", cookie)

    assert entered.status_code == 303 and entered.headers["location"] == f"/portal/{app.id}"
    flags = entered.headers["set-cookie"].lower()
    for flag in (
        "httponly",
        "samesite=lax",
        "secure",
        "max-age=",
        f"path=/portal/{app.id}".lower(),
    ):
        assert flag in flags
    assert home.status_code == 200
    assert "Pro" in home.text and "29.00 USD every month" in home.text and "Active" in home.text
    assert "projects: 10" in home.text and f'href="{BACK}"' in home.text
    assert "29.00 USD" in home.text and "succeeded" in home.text  # the first payment


async def test_a_spent_expired_or_foreign_link_and_a_missing_cookie_sign_nobody_in(
    api: Api, app: App, db: asyncpg.Connection
) -> None:
    await app.plan("Pro", 2900)
    sub = await api.subscribe(app, "Pro")
    made = await api.ok(
        "POST", "/v1/portal/sessions", app.key(), json={"customerId": sub["customerId"]}
    )
    path = "/" + made["url"].split("/", 3)[3]
    first = await api.call("GET", path, ANONYMOUS, follow_redirects=False)
    again = await api.call("GET", path, ANONYMOUS, follow_redirects=False)
    other = new_id("app")
    foreign = await api.call("GET", path.replace(app.id, other), ANONYMOUS, follow_redirects=False)
    bare = await api.call("GET", f"/portal/{app.id}", ANONYMOUS, follow_redirects=False)

    assert first.status_code == 303
    assert again.status_code == 400 and "set-cookie" not in again.headers
    assert foreign.status_code == 400
    assert bare.status_code == 303 and bare.headers["location"] == f"/portal/{app.id}/login"


async def test_a_return_url_the_app_does_not_allow_is_refused_and_nothing_is_made(
    api: Api, app: App, db: asyncpg.Connection
) -> None:
    customer = await app.customer()
    r = await api.call(
        "POST",
        "/v1/portal/sessions",
        app.key(),
        json={"customerId": customer, "returnUrl": "https://evil.example/"},
    )
    unknown = await api.call(
        "POST", "/v1/portal/sessions", app.key(), json={"customerId": new_id("cust")}
    )

    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        400,
        "VALIDATION_ERROR",
        "returnUrl",
    )
    assert unknown.status_code in (404, 503)
    count = await db.fetchval("SELECT count(*) FROM portal_links WHERE app_id = $1", app.id)
    assert count == 0


async def test_forms_without_their_token_are_refused_and_change_nothing(api: Api, app: App) -> None:
    await allow_back(app)
    await app.plan("Pro", 2900)
    await app.plan("Team", 9900)
    sub = await api.subscribe(app, "Pro")
    cookie, _ = await signed_in(api, app, sub["customerId"])
    other_cookie, _ = await signed_in(api, app, sub["customerId"])
    theirs = csrf_of((await page(api, f"/portal/{app.id}", other_cookie)).text)

    refused = [
        await post(api, f"/portal/{app.id}/cancel", cookie, {}),
        await post(api, f"/portal/{app.id}/cancel", cookie, {"csrf": "x" * 32}),
        await post(api, f"/portal/{app.id}/cancel", cookie, {"csrf": theirs}),
        await post(api, f"/portal/{app.id}/change-plan", cookie, {"plan": app.plans["Team"]}),
    ]

    for r in refused:
        assert r.status_code == 403 and "Nothing changed" in r.text
    after = await api.sub(app, sub["id"])
    assert (after["cancelAtPeriodEnd"], after["planId"]) == (False, app.plans["Pro"])


async def test_cancel_reactivate_and_an_upgrade_with_its_proration_shown_first(
    api: Api, app: App
) -> None:
    await allow_back(app)
    await app.plan("Pro", 3000)
    await app.plan("Team", 9000)
    sub = await api.subscribe(app, "Pro")
    cookie, _ = await signed_in(api, app, sub["customerId"])
    home = await page(api, f"/portal/{app.id}", cookie)
    token = csrf_of(home.text)

    canceled = await post(api, f"/portal/{app.id}/cancel", cookie, {"csrf": token})
    ending = await page(api, f"/portal/{app.id}?done=canceled", cookie)
    kept = await post(api, f"/portal/{app.id}/reactivate", cookie, {"csrf": token})
    review = await page(api, f"/portal/{app.id}/change?plan={app.plans['Team']}", cookie)
    moved = await post(
        api, f"/portal/{app.id}/change-plan", cookie, {"csrf": token, "plan": app.plans["Team"]}
    )

    assert canceled.status_code == 303 and canceled.headers["location"].endswith("done=canceled")
    assert "will end at the end of the current period" in ending.text
    assert "Keep my subscription" in ending.text
    assert kept.status_code == 303
    assert review.status_code == 200
    charged = re.search(r"charged ([0-9.]+ USD) now", review.text)
    assert charged, review.text
    assert moved.status_code == 303 and moved.headers["location"].endswith("done=changed")
    after = await api.sub(app, sub["id"])
    assert (after["planId"], after["cancelAtPeriodEnd"]) == (app.plans["Team"], False)
    payments = await api.payments(app, sub["id"])
    proration = [p for p in payments if p["kind"] == "proration"]
    assert [f"{p['amountCents'] / 100:.2f} USD" for p in proration] == [charged.group(1)]


async def test_a_customer_of_one_app_cannot_see_or_act_in_another_apps_portal(
    api: Api, app: App, db: asyncpg.Connection
) -> None:
    await allow_back(app)
    await app.plan("Pro", 2900)
    sub = await api.subscribe(app, "Pro")
    cookie, _ = await signed_in(api, app, sub["customerId"])
    token = csrf_of((await page(api, f"/portal/{app.id}", cookie)).text)
    other = App(tenant_id=app.tenant_id, id=new_id("app"), db=db)
    await announce(other, AppCreated)
    await other.plan("Pro", 2900)
    theirs = await api.subscribe(other, "Pro")

    seen = await page(api, f"/portal/{other.id}", cookie, follow_redirects=False)
    acted = await post(api, f"/portal/{other.id}/cancel", cookie, {"csrf": token})

    assert seen.status_code == 303 and seen.headers["location"].endswith("/login")
    assert acted.status_code == 401
    assert (await api.sub(other, theirs["id"]))["cancelAtPeriodEnd"] is False


async def test_the_sign_in_form_refuses_a_post_without_its_token_or_with_a_bad_email(
    api: Api, app: App
) -> None:
    form = await api.call("GET", f"/portal/{app.id}/login", ANONYMOUS)
    nonce = re.search(r"stackbe_portal_form=([^;]+)", form.headers["set-cookie"]).group(1)
    token = csrf_of(form.text)
    with_nonce = {"cookie": f"stackbe_portal_form={nonce}"}

    bare = await api.call(
        "POST", f"/portal/{app.id}/login", ANONYMOUS, data={"email": "a@example.com"}
    )
    no_cookie = await api.call(
        "POST", f"/portal/{app.id}/login", ANONYMOUS, data={"email": "a@example.com", "csrf": token}
    )
    bad_email = await api.call(
        "POST",
        f"/portal/{app.id}/login",
        ANONYMOUS,
        headers=with_nonce,
        data={"email": "not an email", "csrf": token},
    )
    confirm = await api.call(
        "POST", f"/portal/{app.id}/confirm", ANONYMOUS, data={"token": "x" * 43}
    )
    shown = await api.call("GET", f"/portal/{app.id}/confirm?token={'y' * 43}", ANONYMOUS)
    elsewhere = await api.call(  # the page's token, but posted from a browser without its cookie
        "POST",
        f"/portal/{app.id}/confirm",
        ANONYMOUS,
        data={"token": "y" * 43, "csrf": csrf_of(shown.text)},
    )

    assert form.status_code == 200 and "label for=email" in form.text
    assert bare.status_code == 403 and no_cookie.status_code == 403
    assert bad_email.status_code == 400 and "valid email" in bad_email.text
    assert confirm.status_code == 403 and "set-cookie" not in confirm.headers
    assert elsewhere.status_code == 403 and "set-cookie" not in elsewhere.headers


async def test_pause_and_resume_only_when_the_app_offers_them(api: Api, app: App) -> None:
    await allow_back(app)
    await app.plan("Pro", 2900)
    sub = await api.subscribe(app, "Pro")
    cookie, _ = await signed_in(api, app, sub["customerId"])
    home = await page(api, f"/portal/{app.id}", cookie)
    token = csrf_of(home.text)

    refused = await post(api, f"/portal/{app.id}/pause", cookie, {"csrf": token})
    assert ">Pause<" not in home.text
    assert refused.status_code == 403 and (await api.sub(app, sub["id"]))["status"] == "active"

    await announce(app, portal_pause_enabled=True)
    offered = await page(api, f"/portal/{app.id}", cookie)
    paused = await post(api, f"/portal/{app.id}/pause", cookie, {"csrf": token})
    while_paused = await page(api, f"/portal/{app.id}?done=paused", cookie)
    resumed = await post(api, f"/portal/{app.id}/resume", cookie, {"csrf": token})

    assert ">Pause<" in offered.text
    assert paused.status_code == 303 and "Paused" in while_paused.text
    assert ">Resume<" in while_paused.text
    assert resumed.status_code == 303
    assert (await api.sub(app, sub["id"]))["status"] == "active"


async def test_links_and_sign_ins_a_day_past_expiry_are_pruned(db: asyncpg.Connection) -> None:
    tenant_id, app_id, customer_id = new_id("ten"), new_id("app"), new_id("cust")
    now = datetime.now(UTC)
    ages = {"old": now - timedelta(days=2), "recent": now - timedelta(hours=2), "live": now}
    ids = {label: new_id("pts") for label in ages}
    for label, expires in ages.items():
        for table, secret in (("portal_links", "token_hash"), ("portal_logins", "cookie_hash")):
            await db.execute(
                f"INSERT INTO {table} (id, tenant_id, app_id, customer_id, {secret},"
                " expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                ids[label],
                tenant_id,
                app_id,
                customer_id,
                ids[label].encode(),
                expires,
            )
    await portal.prune_expired(db)
    for table in ("portal_links", "portal_logins"):
        rows = await db.fetch(f"SELECT id FROM {table} WHERE app_id = $1", app_id)
        assert {r["id"] for r in rows} == {ids["recent"], ids["live"]}, table
