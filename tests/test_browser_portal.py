"""The customer portal in a real browser (Debian's Chromium through Playwright) on the
real platform: the app opens it for its customer, who changes plan after seeing the
prorated amount, cancels at period end and changes their mind. Each step leaves a
screenshot in ``test-artifacts/pages/``."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.async_api import Browser, expect

from stackbe_common.testing.browser import screenshot
from stackbe_common.testing.smtp import Mailbox

from .conftest import bearer, new_app, new_tenant

BACK = "https://shop.example/account"


async def test_a_customer_signs_in_by_email_and_sees_their_subscription_on_a_phone(
    http: httpx.AsyncClient,
    gateway_url: str,
    chromium: Browser,
    mailbox: Mailbox,
    artifacts_dir: Path,
) -> None:
    tenant_key = (await new_tenant(http))["apiKey"]
    app_id, key = await new_app(http, tenant_key)
    product = (await http.post("/v1/products", headers=bearer(key), json={"name": "Cloud"})).json()
    plan = await http.post(
        "/v1/plans",
        headers=bearer(key),
        json={
            "productId": product["id"],
            "name": "Solo",
            "priceCents": 1200,
            "currency": "EUR",
            "interval": "month",
            "trialDays": 14,
            "entitlements": {"projects": 3},
        },
    )
    address = f"solo-{app_id[-6:]}@example.com"
    customer = await http.post("/v1/customers", headers=bearer(key), json={"email": address})
    session = await http.post(
        "/v1/checkout/session",
        headers=bearer(key),
        json={
            "customerId": customer.json()["id"],
            "planId": plan.json()["id"],
            "successUrl": BACK,
            "cancelUrl": BACK,
        },
    )
    await http.post(
        f"/v1/sandbox/checkout/{session.json()['id']}/complete", headers=bearer(key), json={}
    )

    page = await chromium.new_page(viewport={"width": 375, "height": 800})
    try:
        await page.goto(f"{gateway_url}/portal/{app_id}")  # signed out: the email form
        await expect(page.get_by_role("heading", name="Manage your subscription")).to_be_visible()
        await screenshot(page, artifacts_dir, "portal-sign-in")
        await page.get_by_label("Email").fill(address)
        await page.get_by_role("button", name="Email me a sign-in link").click()
        await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

        mail = await mailbox.wait_for(address)
        body = mail.get_payload(decode=True).decode()
        link = re.search(r"https?://\S+/portal/\S+/confirm\?token=\S+", body)
        assert link, body
        await page.goto(gateway_url + "/" + link.group(0).split("/", 3)[3])
        await screenshot(page, artifacts_dir, "portal-confirm")
        await page.get_by_role("button", name="Sign in").click()

        await expect(page.get_by_role("heading", name="Your subscription")).to_be_visible()
        await expect(page.get_by_text("Free trial until")).to_be_visible()
        await expect(page.get_by_text("projects: 3")).to_be_visible()
        fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, "the portal scrolls sideways on a phone"
        await screenshot(page, artifacts_dir, "portal-phone")
    finally:
        await page.close()


async def test_a_customer_changes_plan_cancels_and_reactivates_in_the_portal(
    http: httpx.AsyncClient, gateway_url: str, chromium: Browser, artifacts_dir: Path
) -> None:
    tenant_key = (await new_tenant(http))["apiKey"]
    _, key = await new_app(http, tenant_key, allowedRedirectUrls=[BACK])
    product = (await http.post("/v1/products", headers=bearer(key), json={"name": "Cloud"})).json()
    plans = {}
    for name, cents in (("Pro", 3000), ("Team", 9000)):
        made = await http.post(
            "/v1/plans",
            headers=bearer(key),
            json={
                "productId": product["id"],
                "name": name,
                "priceCents": cents,
                "currency": "USD",
                "interval": "month",
                "entitlements": {"projects": cents // 300, "support": name == "Team"},
            },
        )
        plans[name] = made.json()["id"]
    email = {"email": "c@example.com"}
    customer = (await http.post("/v1/customers", headers=bearer(key), json=email)).json()["id"]
    session = await http.post(
        "/v1/checkout/session",
        headers=bearer(key),
        json={
            "customerId": customer,
            "planId": plans["Pro"],
            "successUrl": BACK,
            "cancelUrl": BACK,
        },
    )
    done = await http.post(
        f"/v1/sandbox/checkout/{session.json()['id']}/complete", headers=bearer(key), json={}
    )
    sub_id = done.json()["subscription"]["id"]
    opened = await http.post(
        "/v1/portal/sessions",
        headers=bearer(key),
        json={"customerId": customer, "returnUrl": BACK},
    )
    assert opened.status_code == 201, opened.text
    url = gateway_url + "/" + opened.json()["url"].split("/", 3)[3]

    page = await chromium.new_page()
    try:
        await page.goto(url)
        await expect(page.get_by_role("heading", name="Your subscription")).to_be_visible()
        await expect(page.get_by_text("c@example.com")).to_be_visible()
        await expect(page.locator("dd", has_text="Pro")).to_be_visible()
        await screenshot(page, artifacts_dir, "portal-home")

        await page.get_by_label("New plan").select_option(plans["Team"])
        await page.get_by_role("button", name="Review the change").click()
        await expect(page.get_by_role("heading", name="Change to Team")).to_be_visible()
        text = await page.locator("main").inner_text()
        charged = re.search(r"charged ([0-9.]+) USD now", text)
        assert charged, text
        await screenshot(page, artifacts_dir, "portal-change-preview")
        await page.get_by_role("button", name="Confirm the change").click()
        await expect(page.get_by_role("status")).to_have_text("Your plan has changed.")
        await screenshot(page, artifacts_dir, "portal-changed")

        await page.get_by_role("button", name="Cancel at period end").click()
        await expect(page.get_by_role("status")).to_contain_text("will end")
        await screenshot(page, artifacts_dir, "portal-canceling")
        await page.get_by_role("button", name="Keep my subscription").click()
        await expect(page.get_by_role("status")).to_have_text(
            "Your subscription will renew as before."
        )
        await screenshot(page, artifacts_dir, "portal-reactivated")
        await expect(page.get_by_role("link", name="Return to")).to_have_attribute("href", BACK)
    finally:
        await page.close()

    sub = (await http.get(f"/v1/subscriptions/{sub_id}", headers=bearer(key))).json()
    assert (sub["planId"], sub["cancelAtPeriodEnd"]) == (plans["Team"], False)
    payments = (await http.get(f"/v1/payments?subscriptionId={sub_id}", headers=bearer(key))).json()
    prorations = [p["amountCents"] for p in payments["data"] if p["kind"] == "proration"]
    assert [f"{cents / 100:.2f}" for cents in prorations] == [charged.group(1)]
