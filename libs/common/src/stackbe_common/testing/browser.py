"""A real browser for page tests: Debian's Chromium (``/usr/bin/chromium``, or
``STACKBE_CHROMIUM``) driven headless through Playwright. ``.ci/run`` installs Chromium
when it is missing; without it the page tests fail and say how to install it."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

__all__ = ["chromium", "chromium_path", "screenshot"]


def chromium_path() -> str:
    found = os.environ.get("STACKBE_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("Chromium is not installed: apt-get install chromium (as .ci/run does)")
    return found


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: Page, artifacts: Path, name: str) -> Path:
    """A full-page screenshot kept as a test artifact (``test-artifacts/pages/``)."""
    folder = artifacts / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
