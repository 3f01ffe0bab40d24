"""Dashboard sign-in end to end: magic link mailed over SMTP, confirm page, token, logout."""

from __future__ import annotations

import asyncio
import re
import time

from stackbe_common.testing.smtp import token_in

from .conftest import assert_error, bearer, new_tenant


async def sign_in(http, mailbox, email: str) -> dict:
    token = token_in(await mailbox.wait_for(email))
    page = await http.get("/v1/auth/confirm", params={"token": token})
    assert page.status_code == 200 and re.search(r"<form method=post", page.text)
    r = await http.post("/v1/auth/verify", json={"token": token})
    assert r.status_code == 200, r.text
    return r.json()


async def test_an_owner_signs_in_by_magic_link_and_logout_ends_the_session_at_once(http, mailbox):
    created = await new_tenant(http)
    pair = await sign_in(http, mailbox, created["ownerEmail"])
    token = pair["accessToken"]

    me = await http.get("/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["tenant"]["id"] == created["tenant"]["id"]
    assert me.json()["member"]["role"] == "owner"
    app = await http.post("/v1/apps", headers=bearer(token), json={"name": "From dashboard"})
    assert app.status_code == 201

    assert (await http.post("/v1/auth/logout", headers=bearer(token))).status_code == 204
    started = time.monotonic()
    while (await http.get("/v1/auth/me", headers=bearer(token))).status_code != 401:
        assert time.monotonic() - started < 1.0, "access token still accepted after logout"
        await asyncio.sleep(0.02)
    refreshed = await http.post("/v1/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert_error(refreshed, 401, "TOKEN_INVALID")


async def test_a_viewer_reads_but_cannot_write(http, mailbox):
    created = await new_tenant(http)
    email = f"viewer-{created['tenant']['id'][-6:]}@example.com"
    invited = await http.post(
        "/v1/members", headers=bearer(created["apiKey"]), json={"email": email, "role": "viewer"}
    )
    assert invited.status_code == 201
    token = (await sign_in(http, mailbox, email))["accessToken"]
    assert (await http.get("/v1/apps", headers=bearer(token))).status_code == 200
    r = await http.post("/v1/apps", headers=bearer(token), json={"name": "Nope"})
    assert_error(r, 403, "FORBIDDEN")
    listed = await http.get("/v1/apps", headers=bearer(created["apiKey"]))
    assert listed.json()["data"] == []


async def test_reusing_a_spent_refresh_token_ends_the_session_everywhere(http, mailbox):
    created = await new_tenant(http)
    first = await sign_in(http, mailbox, created["ownerEmail"])
    second = (
        await http.post("/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    ).json()
    assert (await http.get("/v1/auth/me", headers=bearer(second["accessToken"]))).status_code == 200
    reused = await http.post("/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert_error(reused, 401, "TOKEN_ALREADY_USED")
    started = time.monotonic()
    while (await http.get("/v1/auth/me", headers=bearer(second["accessToken"]))).status_code != 401:
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(0.02)
