"""The hosted checkout in a real browser (Debian's Chromium through Playwright) on the
real platform: paying with the keyboard, the success page, the cancel page, the app's
branding, and a phone-width layout. Each step leaves a screenshot in
``test-artifacts/pages/``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from playwright.async_api import Browser, expect

from stackbe_common.testing.browser import screenshot

from .conftest import bearer, new_app, new_tenant

ACCENT = "#c2255c"


@pytest.fixture
async def shop() -> AsyncIterator[str]:
    """The app's own site, where checkout sends the customer back."""

    async def done(request: web.Request) -> web.Response:
        return web.Response(
            text=f"<h1>Welcome back ({request.path})</h1>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", done)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def open_checkout(http: httpx.AsyncClient, gateway_url: str, shop: str) -> dict[str, Any]:
    """A branded app, a plan and a customer's checkout; the session with its page's URL
    on the gateway."""
    tenant_key = (await new_tenant(http))["apiKey"]
    app_id, key = await new_app(http, tenant_key)
    r = await http.patch(
        f"/v1/apps/{app_id}",
        headers=bearer(tenant_key),
        json={"name": "Acme <Cloud>", "brandColor": ACCENT},
    )
    assert r.status_code == 200, r.text
    product = (await http.post("/v1/products", headers=bearer(key), json={"name": "Cloud"})).json()
    plan = await http.post(
        "/v1/plans",
        headers=bearer(key),
        json={
            "productId": product["id"],
            "name": "Pro",
            "priceCents": 2900,
            "currency": "USD",
            "interval": "month",
            "entitlements": {"projects": 10},
        },
    )
    customer = await http.post(
        "/v1/customers", headers=bearer(key), json={"email": "b@example.com"}
    )
    session = await http.post(
        "/v1/checkout/session",
        headers=bearer(key),
        json={
            "customerId": customer.json()["id"],
            "planId": plan.json()["id"],
            "successUrl": f"{shop}/done",
            "cancelUrl": f"{shop}/pricing",
        },
    )
    assert session.status_code == 201, session.text
    body = session.json()
    body["page"] = gateway_url + "/" + body["url"].split("/", 3)[3]
    body["key"] = key
    return body


async def test_a_customer_pays_the_hosted_checkout_with_the_keyboard(
    http: httpx.AsyncClient, gateway_url: str, chromium: Browser, shop: str, artifacts_dir: Path
) -> None:
    session = await open_checkout(http, gateway_url, shop)
    page = await chromium.new_page()
    try:
        await page.goto(session["page"])
        await expect(page.get_by_role("heading", name="Subscribe to Pro")).to_be_visible()
        await expect(page.locator("header")).to_have_text("Acme <Cloud>")  # escaped, shown
        pay = page.get_by_role("button", name="Pay 29.00 USD")
        await expect(pay).to_have_css("background-color", "rgb(194, 37, 92)")
        await screenshot(page, artifacts_dir, "checkout-open")

        await page.keyboard.press("Tab")  # the first stop is the Pay button
        await expect(pay).to_be_focused()
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{shop}/done")
        await screenshot(page, artifacts_dir, "checkout-returned")

        await page.goto(session["page"])
        await expect(page.get_by_role("heading", name="You are subscribed to Pro")).to_be_visible()
        await screenshot(page, artifacts_dir, "checkout-success")
    finally:
        await page.close()
    current = await http.get(
        f"/v1/checkout/session/{session['id']}", headers=bearer(session["key"])
    )
    assert current.json()["status"] == "completed"


async def test_cancel_leads_back_to_the_app_and_the_page_fits_a_phone(
    http: httpx.AsyncClient, gateway_url: str, chromium: Browser, shop: str, artifacts_dir: Path
) -> None:
    session = await open_checkout(http, gateway_url, shop)
    page = await chromium.new_page(viewport={"width": 375, "height": 740})
    try:
        await page.goto(session["page"])
        fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, "the checkout page scrolls sideways on a phone"
        await screenshot(page, artifacts_dir, "checkout-phone")

        await page.get_by_role("link", name="Cancel").click()
        await expect(page.get_by_role("heading", name="Checkout canceled")).to_be_visible()
        await screenshot(page, artifacts_dir, "checkout-canceled")
        await page.get_by_role("link", name="Return to the app").click()
        await page.wait_for_url(f"{shop}/pricing")
    finally:
        await page.close()
    current = await http.get(
        f"/v1/checkout/session/{session['id']}", headers=bearer(session["key"])
    )
    assert current.json()["status"] == "open"
