"""The walking skeleton end to end: real gateway and identity processes over real NATS."""

from __future__ import annotations

import asyncio
import time

from .conftest import assert_error, bearer, new_tenant


async def test_tenant_key_app_key_revocation_round_trip(http):
    created = await new_tenant(http)
    tenant_key = created["apiKey"]
    me = await http.get("/v1/tenants/me", headers=bearer(tenant_key))
    assert me.status_code == 200 and me.json()["id"] == created["tenant"]["id"]

    app = await http.post("/v1/apps", headers=bearer(tenant_key), json={"name": "Shop"})
    assert app.status_code == 201, app.text
    app_id = app.json()["id"]
    key = await http.post(
        f"/v1/apps/{app_id}/api-keys", headers=bearer(tenant_key), json={"name": "backend"}
    )
    assert key.status_code == 201
    app_key, key_id = key.json()["key"], key.json()["id"]
    assert app_key.startswith("sba_")

    # The app key is a real credential: the gateway resolves it (tenant endpoints refuse it).
    before = await http.get("/v1/apps", headers=bearer(app_key))
    assert_error(before, 403, "FORBIDDEN")

    revoked = await http.delete(f"/v1/apps/{app_id}/api-keys/{key_id}", headers=bearer(tenant_key))
    assert revoked.status_code == 200 and revoked.json()["revokedAt"]
    started = time.monotonic()
    while True:
        r = await http.get("/v1/apps", headers=bearer(app_key))
        if r.status_code == 401:
            break
        assert time.monotonic() - started < 1.0, "revoked key still accepted after 1 s"
        await asyncio.sleep(0.02)
    assert_error(r, 401, "UNAUTHORIZED")


async def test_a_revoked_tenant_key_stops_working_within_one_second(http):
    created = await new_tenant(http)
    first = created["apiKey"]
    second = (
        await http.post("/v1/api-keys", headers=bearer(first), json={"name": "second"})
    ).json()
    assert (await http.get("/v1/tenants/me", headers=bearer(second["key"]))).status_code == 200
    r = await http.delete(f"/v1/api-keys/{second['id']}", headers=bearer(first))
    assert r.status_code == 200
    started = time.monotonic()
    while (await http.get("/v1/tenants/me", headers=bearer(second["key"]))).status_code != 401:
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(0.02)
    assert (await http.get("/v1/tenants/me", headers=bearer(first))).status_code == 200


async def test_archiving_an_app_stops_its_keys_within_one_second(http):
    tenant_key = (await new_tenant(http))["apiKey"]
    app_id = (await http.post("/v1/apps", headers=bearer(tenant_key), json={"name": "Old"})).json()[
        "id"
    ]
    app_key = (
        await http.post(
            f"/v1/apps/{app_id}/api-keys", headers=bearer(tenant_key), json={"name": "k"}
        )
    ).json()["key"]
    assert (await http.get("/v1/apps", headers=bearer(app_key))).status_code == 403
    assert (await http.delete(f"/v1/apps/{app_id}", headers=bearer(tenant_key))).status_code == 200
    started = time.monotonic()
    while (await http.get("/v1/apps", headers=bearer(app_key))).status_code != 401:
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(0.02)


async def test_tenant_credentials_name_an_app_of_their_own_tenant_only(http):
    mine = (await new_tenant(http))["apiKey"]
    theirs = (await new_tenant(http))["apiKey"]
    their_app = (
        await http.post("/v1/apps", headers=bearer(theirs), json={"name": "Theirs"})
    ).json()["id"]
    r = await http.get(
        f"/v1/apps/{their_app}", headers={**bearer(mine), "X-StackBE-App": their_app}
    )
    assert_error(r, 404, "APP_NOT_FOUND")
    r = await http.get(f"/v1/apps/{their_app}", headers=bearer(mine))
    assert_error(r, 404, "APP_NOT_FOUND")
