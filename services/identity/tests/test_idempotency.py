"""Idempotency-Key: effects happen once; a replay is the first answer, byte for byte."""

from __future__ import annotations

import asyncio
import secrets

import pytest

APP_CREATED = "stackbe.identity.app.created.v1"


def new_key() -> str:
    return f"idem-{secrets.token_hex(8)}"


async def create_app(api, scope, key: str, body: dict | None = None, **kwargs):
    return await api.call(
        "POST",
        "/v1/apps",
        scope,
        json=body or {"name": "Shop"},
        headers={"Idempotency-Key": key},
        **kwargs,
    )


async def apps_of(db, tenant_id: str) -> list[str]:
    return [
        r["id"]
        for r in await db.fetch("SELECT id FROM apps WHERE tenant_id = $1 ORDER BY id", tenant_id)
    ]


async def events_of(db, tenant_id: str, subject: str) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM outbox WHERE subject = $1"
        " AND strpos(convert_from(payload, 'UTF8'), $2) > 0",
        subject,
        tenant_id,
    )


async def stored_replies(db, tenant_id: str, key: str) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE scope_key LIKE $1 || ':%' AND key = $2",
        tenant_id,
        key,
    )


async def test_a_replay_is_the_first_response_byte_for_byte_and_creates_nothing(api, db):
    tenant = await api.new_tenant()
    key = new_key()
    first = await create_app(api, tenant.scope(), key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    second = await create_app(api, tenant.scope(), key)
    assert second.status_code == 201
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == first.headers["content-type"]
    assert await apps_of(db, tenant.id) == [first.json()["id"]]
    assert await events_of(db, tenant.id, APP_CREATED) == 1
    assert await stored_replies(db, tenant.id, key) == 1


async def test_a_replay_answers_even_after_the_app_has_changed(api, db):
    tenant = await api.new_tenant()
    key = new_key()
    first = await create_app(api, tenant.scope(), key)
    app_id = first.json()["id"]
    await api.call("PATCH", f"/v1/apps/{app_id}", tenant.scope(), json={"name": "Renamed"})
    again = await create_app(api, tenant.scope(), key)
    assert again.content == first.content and again.json()["name"] == "Shop"
    assert await apps_of(db, tenant.id) == [app_id]


async def test_the_same_key_with_a_different_body_is_409_and_creates_nothing(api, db):
    tenant = await api.new_tenant()
    key = new_key()
    first = await create_app(api, tenant.scope(), key, {"name": "Shop"})
    assert first.status_code == 201
    for body in ({"name": "Other"}, {"name": "Shop", "gracePeriodDays": 3}):
        r = await create_app(api, tenant.scope(), key, body)
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
        assert "idempotent-replayed" not in r.headers
    assert await apps_of(db, tenant.id) == [first.json()["id"]]
    assert await events_of(db, tenant.id, APP_CREATED) == 1
    # The stored answer is untouched: the original request still replays.
    again = await create_app(api, tenant.scope(), key, {"name": "Shop"})
    assert again.content == first.content


async def test_the_same_key_on_another_endpoint_is_409(api, db):
    tenant = await api.new_tenant()
    key = new_key()
    await create_app(api, tenant.scope(), key, {"name": "Shop"})
    keys_before = await db.fetchval("SELECT count(*) FROM api_keys WHERE tenant_id = $1", tenant.id)
    r = await api.call(
        "POST",
        "/v1/api-keys",
        tenant.scope(),
        json={"name": "Shop"},
        headers={"Idempotency-Key": key},
    )
    assert r.status_code == 409 and r.json()["code"] == "IDEMPOTENCY_KEY_REUSED", r.text
    assert (
        await db.fetchval("SELECT count(*) FROM api_keys WHERE tenant_id = $1", tenant.id)
        == keys_before
    )


async def test_the_same_key_in_another_tenant_is_independent(api, db):
    first, second = await api.new_tenant(), await api.new_tenant()
    key = new_key()
    a = await create_app(api, first.scope(), key)
    b = await create_app(api, second.scope(), key)
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]
    assert b.json()["tenantId"] == second.id
    assert await apps_of(db, first.id) == [a.json()["id"]]
    assert await apps_of(db, second.id) == [b.json()["id"]]
    # A different body in the other tenant is no reuse either.
    c = await create_app(api, second.scope(), new_key(), {"name": "Other"})
    assert c.status_code == 201


async def test_concurrent_requests_with_one_key_create_one_app(api, db):
    tenant = await api.new_tenant()
    key = new_key()
    responses = await asyncio.gather(*(create_app(api, tenant.scope(), key) for _ in range(5)))
    assert [r.status_code for r in responses] == [201] * 5
    assert len({r.content for r in responses}) == 1
    replayed = [r.headers.get("idempotent-replayed") for r in responses]
    assert replayed.count("true") == 4 and replayed.count(None) == 1
    assert await apps_of(db, tenant.id) == [responses[0].json()["id"]]
    assert await events_of(db, tenant.id, APP_CREATED) == 1


async def test_a_failed_request_is_not_stored_so_a_corrected_retry_succeeds(api, db):
    tenant = await api.new_tenant()
    key = new_key()
    bad = await create_app(api, tenant.scope(), key, {"name": ""})
    assert bad.status_code == 400 and bad.json()["code"] == "VALIDATION_ERROR"
    assert await stored_replies(db, tenant.id, key) == 0
    same_again = await create_app(api, tenant.scope(), key, {"name": ""})
    assert same_again.status_code == 400 and "idempotent-replayed" not in same_again.headers
    good = await create_app(api, tenant.scope(), key, {"name": "Shop"})
    assert good.status_code == 201, good.text
    assert "idempotent-replayed" not in good.headers
    assert await apps_of(db, tenant.id) == [good.json()["id"]]
    replay = await create_app(api, tenant.scope(), key, {"name": "Shop"})
    assert replay.content == good.content and replay.headers["idempotent-replayed"] == "true"


async def test_a_refused_request_is_not_stored_either(api, db):
    tenant = await api.new_tenant()
    app = (await create_app(api, tenant.scope(), new_key())).json()
    await api.call("DELETE", f"/v1/apps/{app['id']}", tenant.scope())
    key = new_key()
    path = f"/v1/apps/{app['id']}/api-keys"
    r = await api.call(
        "POST", path, tenant.scope(), json={"name": "k"}, headers={"Idempotency-Key": key}
    )
    assert r.status_code == 409 and r.json()["code"] == "APP_ARCHIVED"
    assert await stored_replies(db, tenant.id, key) == 0


async def test_an_invitation_replayed_sends_one_mail(api, db, mailbox):
    tenant = await api.new_tenant()
    email = f"once-{secrets.token_hex(4)}@example.com"
    key = new_key()
    responses = [
        await api.call(
            "POST",
            "/v1/members",
            tenant.scope(),
            json={"email": email},
            headers={"Idempotency-Key": key},
        )
        for _ in range(3)
    ]
    assert [r.status_code for r in responses] == [201] * 3
    assert len({r.content for r in responses}) == 1
    await mailbox.wait_for(email)
    await asyncio.sleep(0.2)
    assert len(mailbox.to(email)) == 1
    assert (
        await db.fetchval(
            "SELECT count(*) FROM members WHERE tenant_id = $1 AND email = $2", tenant.id, email
        )
        == 1
    )


@pytest.mark.parametrize("kind", ["tenant", "app"])
async def test_a_replayed_key_creation_creates_one_key_and_one_event(api, db, kind):
    tenant = await api.new_tenant()
    path = "/v1/api-keys"
    if kind == "app":
        path = f"/v1/apps/{(await create_app(api, tenant.scope(), new_key())).json()['id']}"
        path += "/api-keys"
    key = new_key()
    first = await api.call(
        "POST", path, tenant.scope(), json={"name": "CI"}, headers={"Idempotency-Key": key}
    )
    second = await api.call(
        "POST", path, tenant.scope(), json={"name": "CI"}, headers={"Idempotency-Key": key}
    )
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    key_id = first.json()["id"]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM api_keys WHERE tenant_id = $1 AND name = 'CI'", tenant.id
        )
        == 1
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = 'stackbe.identity.api_key.created.v1'"
            " AND strpos(convert_from(payload, 'UTF8'), $1) > 0",
            key_id,
        )
        == 1
    )


@pytest.mark.parametrize("path", ["/v1/api-keys", "/v1/tenants"])
async def test_a_new_api_key_is_never_stored_in_plain_text_for_replays(api, db, path):
    tenant = await api.new_tenant()
    body = (
        {"name": "CI"}
        if path == "/v1/api-keys"
        else {"name": "Acme", "ownerEmail": f"o-{secrets.token_hex(4)}@example.com"}
    )
    r = await api.call(
        "POST", path, tenant.scope(), json=body, headers={"Idempotency-Key": new_key()}
    )
    assert r.status_code == 201, r.text
    secret = r.json().get("key") or r.json()["apiKey"]
    stored = await db.fetchval(
        "SELECT count(*) FROM idempotency_keys"
        " WHERE position(convert_to($1, 'UTF8') IN sealed_response) > 0",
        secret,
    )
    assert stored == 0
