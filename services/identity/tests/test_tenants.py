from __future__ import annotations

from stackbe_common.apikeys import hash_key, is_well_formed

from .conftest import anonymous


async def test_creating_a_tenant_returns_it_with_its_first_tenant_key(api, db, mailbox):
    r = await api.call(
        "POST", "/v1/tenants", json={"name": "Acme", "ownerEmail": "Owner@Example.com"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["tenant"]["id"].startswith("ten_") and body["tenant"]["name"] == "Acme"
    assert body["apiKey"].startswith("sbt_") and is_well_formed(body["apiKey"])
    stored = await db.fetchrow(
        "SELECT key_hash, hint FROM api_keys WHERE tenant_id = $1", body["tenant"]["id"]
    )
    assert stored["key_hash"] == hash_key(body["apiKey"])
    assert body["apiKey"] not in stored["hint"]
    mail = await mailbox.wait_for("owner@example.com")
    assert "/v1/auth/confirm?token=" in mail.get_payload(decode=True).decode()


async def test_tenant_creation_records_its_events_in_the_outbox(api, db):
    tenant = await api.new_tenant()
    subjects = [
        r["subject"]
        for r in await db.fetch(
            "SELECT subject FROM outbox"
            " WHERE convert_from(payload, 'UTF8') LIKE '%' || $1 || '%' ORDER BY id",
            tenant.id,
        )
    ]
    assert subjects == [
        "stackbe.identity.tenant.created.v1",
        "stackbe.identity.member.added.v1",
        "stackbe.identity.api_key.created.v1",
    ]


async def test_tenant_me_needs_a_tenant_credential(api):
    tenant = await api.new_tenant("Me Inc")
    r = await api.call("GET", "/v1/tenants/me", tenant.scope())
    assert r.status_code == 200 and r.json()["name"] == "Me Inc"
    r = await api.call("GET", "/v1/tenants/me", anonymous())
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"
