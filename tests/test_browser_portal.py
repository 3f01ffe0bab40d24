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

from .conftest import bearer, new_app, new_tenant

BACK = "https://shop.example/account"


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
