"""Members, apps and API keys: what a tenant may do with its own resources."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from stackbe_common.apikeys import hash_key, is_well_formed

KEY_CREATED = "stackbe.identity.api_key.created.v1"
KEY_REVOKED = "stackbe.identity.api_key.revoked.v1"


def new_email(tag: str = "member") -> str:
    return f"{tag}-{secrets.token_hex(4)}@example.com"


async def events_mentioning(db, needle: str) -> list[tuple[str, dict]]:
    """(subject, payload) of every outbox event whose JSON payload contains ``needle``."""
    rows = await db.fetch(
        "SELECT subject, convert_from(payload, 'UTF8') AS body FROM outbox"
        " WHERE strpos(convert_from(payload, 'UTF8'), $1) > 0 ORDER BY id",
        needle,
    )
    return [(r["subject"], json.loads(r["body"])) for r in rows]


async def invite(api, tenant, email: str, role: str = "viewer", scope=None) -> dict:
    r = await api.call(
        "POST", "/v1/members", scope or tenant.scope(), json={"email": email, "role": role}
    )
    assert r.status_code == 201, r.text
    return r.json()


async def create_app(api, tenant, name: str = "Shop", **fields) -> dict:
    r = await api.call("POST", "/v1/apps", tenant.scope(), json={"name": name, **fields})
    assert r.status_code == 201, r.text
    return r.json()


async def role_of(db, member_id: str) -> str | None:
    return await db.fetchval("SELECT role FROM members WHERE id = $1", member_id)


async def owner_count(db, tenant_id: str) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM members WHERE tenant_id = $1 AND role = 'owner'", tenant_id
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def keys_path(app_id: str | None) -> str:
    return f"/v1/apps/{app_id}/api-keys" if app_id else "/v1/api-keys"


async def key_owner(api, tenant, kind: str) -> str | None:
    """The app id a key of this kind hangs off: None for a tenant key, a new app otherwise."""
    return (await create_app(api, tenant))["id"] if kind == "app" else None


# Members


async def test_inviting_a_member_answers_201_and_mails_an_invitation(api, db, mailbox):
    tenant = await api.new_tenant()
    email = new_email("invited")
    r = await api.call(
        "POST", "/v1/members", tenant.scope(), json={"email": email.upper(), "role": "admin"}
    )
    assert r.status_code == 201, r.text
    member = r.json()
    assert member["id"].startswith("mem_")
    assert member["tenantId"] == tenant.id
    assert member["email"] == email and member["role"] == "admin"
    row = await db.fetchrow(
        "SELECT tenant_id, email, role FROM members WHERE id = $1", member["id"]
    )
    assert dict(row) == {"tenant_id": tenant.id, "email": email, "role": "admin"}
    mail = await mailbox.wait_for(email)
    assert mail["Subject"] == "You are invited to StackBE"
    assert "/v1/auth/confirm?token=" in mail.get_payload(decode=True).decode()
    [(subject, payload)] = await events_mentioning(db, member["id"])
    assert subject == "stackbe.identity.member.added.v1"
    assert payload["tenantId"] == tenant.id and payload["role"] == "admin"


async def test_an_invited_member_is_a_viewer_unless_a_role_is_given(api):
    tenant = await api.new_tenant()
    r = await api.call("POST", "/v1/members", tenant.scope(), json={"email": new_email()})
    assert r.status_code == 201 and r.json()["role"] == "viewer"


async def test_inviting_an_email_already_in_the_tenant_is_409_member_exists(api, db, mailbox):
    tenant = await api.new_tenant()
    email = new_email("twice")
    first = await invite(api, tenant, email)
    await mailbox.wait_for(email)
    for again in (email, email.upper(), tenant.owner_email):
        r = await api.call(
            "POST", "/v1/members", tenant.scope(), json={"email": again, "role": "admin"}
        )
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "MEMBER_EXISTS"
    rows = await db.fetch(
        "SELECT id, role FROM members WHERE tenant_id = $1 AND email = $2", tenant.id, email
    )
    assert [dict(r) for r in rows] == [{"id": first["id"], "role": "viewer"}]
    added = [
        s for s, p in await events_mentioning(db, email) if s == "stackbe.identity.member.added.v1"
    ]
    assert len(added) == 1
    await asyncio.sleep(0.2)
    assert len(mailbox.to(email)) == 1


async def test_the_same_email_may_be_a_member_of_two_tenants(api, db):
    first, second = await api.new_tenant(), await api.new_tenant()
    email = new_email("shared")
    a = await invite(api, first, email, "admin")
    b = await invite(api, second, email, "viewer")
    assert a["id"] != b["id"]
    rows = await db.fetch("SELECT tenant_id, role FROM members WHERE email = $1 ORDER BY id", email)
    assert [tuple(r) for r in rows] == [(first.id, "admin"), (second.id, "viewer")]


async def test_an_admin_changes_a_members_role(api, db):
    tenant = await api.new_tenant()
    member = await invite(api, tenant, new_email())
    r = await api.call(
        "PATCH", f"/v1/members/{member['id']}", tenant.scope("admin"), json={"role": "admin"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "admin" and r.json()["id"] == member["id"]
    assert await role_of(db, member["id"]) == "admin"
    got = await api.call("GET", f"/v1/members/{member['id']}", tenant.scope())
    assert got.json()["role"] == "admin"
    subjects = [s for s, _ in await events_mentioning(db, member["id"])]
    assert subjects == ["stackbe.identity.member.added.v1", "stackbe.identity.member.updated.v1"]


async def test_only_an_owner_may_grant_the_owner_role(api, db):
    tenant = await api.new_tenant()
    member = await invite(api, tenant, new_email())
    admin = await invite(api, tenant, new_email("admin"), "admin")
    for scope in (tenant.scope("admin"), tenant.member(admin["id"], "admin")):
        r = await api.call(
            "POST",
            "/v1/members",
            scope,
            json={"email": new_email("would-be-owner"), "role": "owner"},
        )
        assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN", r.text
        r = await api.call("PATCH", f"/v1/members/{member['id']}", scope, json={"role": "owner"})
        assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN", r.text
    assert await role_of(db, member["id"]) == "viewer"
    assert await owner_count(db, tenant.id) == 1
    owner = tenant.member(tenant.owner_id, "owner")
    r = await api.call("PATCH", f"/v1/members/{member['id']}", owner, json={"role": "owner"})
    assert r.status_code == 200 and r.json()["role"] == "owner"
    invited_owner = await invite(api, tenant, new_email("owner"), "owner", scope=owner)
    assert invited_owner["role"] == "owner"
    assert await owner_count(db, tenant.id) == 3


async def test_only_an_owner_may_demote_or_remove_an_owner(api, db):
    tenant = await api.new_tenant()
    owner = tenant.member(tenant.owner_id, "owner")
    second = await invite(api, tenant, new_email("owner"), "owner", scope=owner)
    for target in (tenant.owner_id, second["id"]):
        r = await api.call(
            "PATCH", f"/v1/members/{target}", tenant.scope("admin"), json={"role": "admin"}
        )
        assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN", r.text
        r = await api.call("DELETE", f"/v1/members/{target}", tenant.scope("admin"))
        assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN", r.text
        assert await role_of(db, target) == "owner"
    r = await api.call("DELETE", f"/v1/members/{second['id']}", owner)
    assert r.status_code == 200, r.text
    assert await role_of(db, second["id"]) is None


async def test_the_last_owner_can_be_neither_demoted_nor_removed(api, db):
    tenant = await api.new_tenant()
    owner = tenant.member(tenant.owner_id, "owner")
    for role in ("admin", "viewer"):
        r = await api.call("PATCH", f"/v1/members/{tenant.owner_id}", owner, json={"role": role})
        assert r.status_code == 409 and r.json()["code"] == "LAST_OWNER", r.text
    r = await api.call("DELETE", f"/v1/members/{tenant.owner_id}", owner)
    assert r.status_code == 409 and r.json()["code"] == "LAST_OWNER", r.text
    r = await api.call("DELETE", f"/v1/members/{tenant.owner_id}", tenant.scope("owner"))
    assert r.status_code == 409 and r.json()["code"] == "LAST_OWNER", r.text
    assert await role_of(db, tenant.owner_id) == "owner"
    # Keeping the role it already has is no demotion.
    r = await api.call("PATCH", f"/v1/members/{tenant.owner_id}", owner, json={"role": "owner"})
    assert r.status_code == 200 and r.json()["role"] == "owner"


async def test_one_of_two_owners_may_step_down_but_then_the_other_is_the_last(api, db):
    tenant = await api.new_tenant()
    owner = tenant.member(tenant.owner_id, "owner")
    second = await invite(api, tenant, new_email("owner"), "owner", scope=owner)
    r = await api.call("PATCH", f"/v1/members/{tenant.owner_id}", owner, json={"role": "admin"})
    assert r.status_code == 200 and r.json()["role"] == "admin"
    successor = tenant.member(second["id"], "owner")
    r = await api.call("PATCH", f"/v1/members/{second['id']}", successor, json={"role": "admin"})
    assert r.status_code == 409 and r.json()["code"] == "LAST_OWNER"
    r = await api.call("DELETE", f"/v1/members/{second['id']}", successor)
    assert r.status_code == 409 and r.json()["code"] == "LAST_OWNER"
    assert await owner_count(db, tenant.id) == 1


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(api, db):
    tenant = await api.new_tenant()
    owner = tenant.member(tenant.owner_id, "owner")
    second = await invite(api, tenant, new_email("owner"), "owner", scope=owner)
    results = await asyncio.gather(
        api.call("PATCH", f"/v1/members/{tenant.owner_id}", owner, json={"role": "admin"}),
        api.call(
            "PATCH",
            f"/v1/members/{second['id']}",
            tenant.member(second["id"], "owner"),
            json={"role": "admin"},
        ),
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    assert await owner_count(db, tenant.id) == 1


async def test_two_owners_removing_each_other_at_once_leave_one_owner(api, db):
    tenant = await api.new_tenant()
    owner = tenant.member(tenant.owner_id, "owner")
    second = await invite(api, tenant, new_email("owner"), "owner", scope=owner)
    results = await asyncio.gather(
        api.call("DELETE", f"/v1/members/{second['id']}", owner),
        api.call("DELETE", f"/v1/members/{tenant.owner_id}", tenant.member(second["id"], "owner")),
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    assert await owner_count(db, tenant.id) == 1


async def test_removing_a_member_deletes_it_and_records_the_fact(api, db):
    tenant = await api.new_tenant()
    member = await invite(api, tenant, new_email())
    r = await api.call("DELETE", f"/v1/members/{member['id']}", tenant.scope())
    assert r.status_code == 200 and r.json()["id"] == member["id"]
    listed = await api.call("GET", "/v1/members?limit=100", tenant.scope())
    assert member["id"] not in [m["id"] for m in listed.json()["data"]]
    r = await api.call("GET", f"/v1/members/{member['id']}", tenant.scope())
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    assert await role_of(db, member["id"]) is None
    subjects = [s for s, _ in await events_mentioning(db, member["id"])]
    assert subjects[-1] == "stackbe.identity.member.removed.v1"


async def tenant_snapshot(db, tenant_id: str) -> dict:
    return {
        "members": [
            dict(r)
            for r in await db.fetch(
                "SELECT * FROM members WHERE tenant_id = $1 ORDER BY id", tenant_id
            )
        ],
        "apps": [
            dict(r)
            for r in await db.fetch(
                "SELECT * FROM apps WHERE tenant_id = $1 ORDER BY id", tenant_id
            )
        ],
        "keys": [
            dict(r)
            for r in await db.fetch(
                "SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY id", tenant_id
            )
        ],
        "events": await db.fetchval(
            "SELECT count(*) FROM outbox WHERE strpos(convert_from(payload, 'UTF8'), $1) > 0",
            tenant_id,
        ),
    }


@pytest.mark.parametrize("principal", ["tenant_key", "member"])
async def test_a_viewer_may_read_everything_and_write_nothing(api, db, principal):
    tenant = await api.new_tenant()
    viewer_row = await invite(api, tenant, new_email("viewer"), "viewer")
    other = await invite(api, tenant, new_email("other"), "admin")
    app = await create_app(api, tenant)
    app_key = (
        await api.call(
            "POST", f"/v1/apps/{app['id']}/api-keys", tenant.scope(), json={"name": "app key"}
        )
    ).json()
    viewer = (
        tenant.scope("viewer")
        if principal == "tenant_key"
        else tenant.member(viewer_row["id"], "viewer")
    )
    before = await tenant_snapshot(db, tenant.id)

    writes = [
        ("POST", "/v1/members", {"email": new_email(), "role": "viewer"}),
        ("PATCH", f"/v1/members/{other['id']}", {"role": "viewer"}),
        ("DELETE", f"/v1/members/{other['id']}", None),
        ("DELETE", f"/v1/members/{viewer_row['id']}", None),
        ("POST", "/v1/apps", {"name": "Nope"}),
        ("PATCH", f"/v1/apps/{app['id']}", {"name": "Renamed"}),
        ("DELETE", f"/v1/apps/{app['id']}", None),
        ("POST", "/v1/api-keys", {"name": "nope"}),
        ("DELETE", f"/v1/api-keys/{tenant.key_id}", None),
        ("POST", f"/v1/apps/{app['id']}/api-keys", {"name": "nope"}),
        ("DELETE", f"/v1/apps/{app['id']}/api-keys/{app_key['id']}", None),
    ]
    for method, path, body in writes:
        kwargs = {"json": body} if body is not None else {}
        r = await api.call(method, path, viewer, **kwargs)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["code"] == "FORBIDDEN", (method, path, r.text)
    assert await tenant_snapshot(db, tenant.id) == before

    reads = [
        "/v1/tenants/me",
        "/v1/members",
        f"/v1/members/{other['id']}",
        "/v1/apps",
        f"/v1/apps/{app['id']}",
        "/v1/api-keys",
        f"/v1/apps/{app['id']}/api-keys",
    ]
    for path in reads:
        r = await api.call("GET", path, viewer)
        assert r.status_code == 200, (path, r.text)
    assert await tenant_snapshot(db, tenant.id) == before


# Apps


async def test_a_new_app_runs_on_the_sandbox_gateway_with_a_7_day_grace_period(api, db):
    tenant = await api.new_tenant()
    r = await api.call("POST", "/v1/apps", tenant.scope(), json={"name": "  Shop  "})
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["id"].startswith("app_") and app["tenantId"] == tenant.id
    assert app["name"] == "Shop"
    assert app["gateway"] == "sandbox" and app["gracePeriodDays"] == 7
    assert app["archivedAt"] is None and app["createdAt"]
    row = await db.fetchrow("SELECT * FROM apps WHERE id = $1", app["id"])
    assert row["tenant_id"] == tenant.id and row["grace_period_days"] == 7
    [(subject, payload)] = await events_mentioning(db, app["id"])
    assert subject == "stackbe.identity.app.created.v1"
    assert payload["appId"] == app["id"] and payload["gateway"] == "sandbox"


async def test_an_app_may_choose_its_grace_period(api):
    tenant = await api.new_tenant()
    app = await create_app(api, tenant, gracePeriodDays=0)
    assert app["gracePeriodDays"] == 0
    app = await create_app(api, tenant, gracePeriodDays=30)
    got = await api.call("GET", f"/v1/apps/{app['id']}", tenant.scope())
    assert got.status_code == 200 and got.json() == app


async def test_apps_are_listed_in_pages_of_limit_with_has_more(api):
    tenant = await api.new_tenant()
    created = [(await create_app(api, tenant, f"App {i}"))["id"] for i in range(5)]
    seen, after, pages = [], None, []
    while True:
        query = "?limit=2" + (f"&startingAfter={after}" if after else "")
        r = await api.call("GET", f"/v1/apps{query}", tenant.scope())
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append((len(page["data"]), page["hasMore"]))
        seen += [a["id"] for a in page["data"]]
        if not page["hasMore"]:
            break
        after = page["data"][-1]["id"]
    assert pages == [(2, True), (2, True), (1, False)]
    assert seen == sorted(created)
    whole = (await api.call("GET", "/v1/apps", tenant.scope())).json()
    assert [a["id"] for a in whole["data"]] == sorted(created) and whole["hasMore"] is False
    exact = (await api.call("GET", "/v1/apps?limit=5", tenant.scope())).json()
    assert len(exact["data"]) == 5 and exact["hasMore"] is False
    short = (await api.call("GET", "/v1/apps?limit=4", tenant.scope())).json()
    assert len(short["data"]) == 4 and short["hasMore"] is True


async def test_the_default_page_holds_20_apps(api):
    tenant = await api.new_tenant()
    for i in range(21):
        await create_app(api, tenant, f"App {i}")
    page = (await api.call("GET", "/v1/apps", tenant.scope())).json()
    assert len(page["data"]) == 20 and page["hasMore"] is True


async def test_patching_an_app_changes_only_the_fields_given(api, db):
    tenant = await api.new_tenant()
    app = await create_app(api, tenant, "Before", gracePeriodDays=3)
    r = await api.call("PATCH", f"/v1/apps/{app['id']}", tenant.scope(), json={"name": "After"})
    assert r.status_code == 200, r.text
    renamed = r.json()
    assert renamed["name"] == "After" and renamed["gracePeriodDays"] == 3
    assert at(renamed["updatedAt"]) > at(app["updatedAt"])
    r = await api.call(
        "PATCH", f"/v1/apps/{app['id']}", tenant.scope(), json={"gracePeriodDays": 10}
    )
    assert r.status_code == 200
    assert r.json()["name"] == "After" and r.json()["gracePeriodDays"] == 10
    row = await db.fetchrow(
        "SELECT name, grace_period_days, gateway FROM apps WHERE id = $1", app["id"]
    )
    assert tuple(row) == ("After", 10, "sandbox")
    subjects = [s for s, _ in await events_mentioning(db, app["id"])]
    assert subjects.count("stackbe.identity.app.updated.v1") == 2


async def test_deleting_an_app_archives_it(api, db):
    tenant = await api.new_tenant()
    app = await create_app(api, tenant)
    r = await api.call("DELETE", f"/v1/apps/{app['id']}", tenant.scope())
    assert r.status_code == 200, r.text
    archived = r.json()
    assert archived["id"] == app["id"] and archived["archivedAt"] is not None
    row = await db.fetchrow("SELECT archived_at FROM apps WHERE id = $1", app["id"])
    assert row["archived_at"] is not None
    got = await api.call("GET", f"/v1/apps/{app['id']}", tenant.scope())
    assert got.status_code == 200 and got.json()["archivedAt"] == archived["archivedAt"]
    subjects = [s for s, _ in await events_mentioning(db, app["id"])]
    assert subjects == ["stackbe.identity.app.created.v1", "stackbe.identity.app.archived.v1"]


async def test_archived_apps_are_listed_only_with_include_archived(api):
    tenant = await api.new_tenant()
    live = await create_app(api, tenant, "Live")
    gone = await create_app(api, tenant, "Gone")
    await api.call("DELETE", f"/v1/apps/{gone['id']}", tenant.scope())
    for query in ("", "?includeArchived=false"):
        ids = [
            a["id"]
            for a in (await api.call("GET", f"/v1/apps{query}", tenant.scope())).json()["data"]
        ]
        assert ids == [live["id"]]
    listed = (await api.call("GET", "/v1/apps?includeArchived=true", tenant.scope())).json()
    assert [a["id"] for a in listed["data"]] == [live["id"], gone["id"]]
    assert listed["data"][1]["archivedAt"] is not None


async def test_an_archived_app_takes_no_new_key_and_no_change(api, db):
    tenant = await api.new_tenant()
    app = await create_app(api, tenant, "Old")
    await api.call("DELETE", f"/v1/apps/{app['id']}", tenant.scope())
    r = await api.call(
        "POST", f"/v1/apps/{app['id']}/api-keys", tenant.scope(), json={"name": "late"}
    )
    assert r.status_code == 409 and r.json()["code"] == "APP_ARCHIVED", r.text
    assert await db.fetchval("SELECT count(*) FROM api_keys WHERE app_id = $1", app["id"]) == 0
    r = await api.call("PATCH", f"/v1/apps/{app['id']}", tenant.scope(), json={"name": "New"})
    assert r.status_code == 409 and r.json()["code"] == "APP_ARCHIVED", r.text
    assert await db.fetchval("SELECT name FROM apps WHERE id = $1", app["id"]) == "Old"


# API keys


@pytest.mark.parametrize(("kind", "prefix"), [("tenant", "sbt_"), ("app", "sba_")])
async def test_a_new_key_is_shown_once_and_listed_only_by_its_hint(api, db, kind, prefix):
    tenant = await api.new_tenant()
    app_id = await key_owner(api, tenant, kind)
    r = await api.call("POST", keys_path(app_id), tenant.scope(), json={"name": "CI"})
    assert r.status_code == 201, r.text
    created = r.json()
    key = created["key"]
    assert key.startswith(prefix) and is_well_formed(key)
    assert created["id"].startswith("key_") and created["name"] == "CI"
    assert created["appId"] == app_id
    assert created["hint"] == f"{key[:4]}...{key[-4:]}"
    assert created["expiresAt"] is None and created["lastUsedAt"] is None
    row = await db.fetchrow(
        "SELECT tenant_id, app_id, key_hash, hint FROM api_keys WHERE id = $1", created["id"]
    )
    assert tuple(row) == (tenant.id, app_id, hash_key(key), created["hint"])

    listed = await api.call("GET", f"{keys_path(app_id)}?limit=100", tenant.scope())
    assert listed.status_code == 200
    assert key not in listed.text
    items = listed.json()["data"]
    assert created["id"] in [k["id"] for k in items]
    for item in items:
        assert "key" not in item and item["hint"]
    [mine] = [k for k in items if k["id"] == created["id"]]
    assert mine == {f: v for f, v in created.items() if f != "key"}


async def test_a_tenant_key_list_holds_only_tenant_keys_and_an_app_key_list_only_its_own(api):
    tenant = await api.new_tenant()
    first, second = await create_app(api, tenant, "One"), await create_app(api, tenant, "Two")
    ids = {}
    for owner in (None, first["id"], second["id"]):
        r = await api.call("POST", keys_path(owner), tenant.scope(), json={"name": "k"})
        ids[owner] = r.json()["id"]
    tenant_keys = [
        k["id"]
        for k in (await api.call("GET", "/v1/api-keys?limit=100", tenant.scope())).json()["data"]
    ]
    assert sorted(tenant_keys) == sorted([tenant.key_id, ids[None]])
    for owner in (first["id"], second["id"]):
        listed = (await api.call("GET", f"{keys_path(owner)}?limit=100", tenant.scope())).json()[
            "data"
        ]
        assert [k["id"] for k in listed] == [ids[owner]]


@pytest.mark.parametrize("kind", ["tenant", "app"])
async def test_revoking_a_key_stamps_revoked_at_and_drops_it_from_the_list(api, db, kind):
    tenant = await api.new_tenant()
    app_id = await key_owner(api, tenant, kind)
    created = (
        await api.call("POST", keys_path(app_id), tenant.scope(), json={"name": "doomed"})
    ).json()
    r = await api.call("DELETE", f"{keys_path(app_id)}/{created['id']}", tenant.scope())
    assert r.status_code == 200, r.text
    revoked = r.json()
    assert revoked["id"] == created["id"] and revoked["revokedAt"] is not None
    assert "key" not in revoked
    assert await db.fetchval("SELECT revoked_at FROM api_keys WHERE id = $1", created["id"])
    listed = (await api.call("GET", f"{keys_path(app_id)}?limit=100", tenant.scope())).json()
    assert created["id"] not in [k["id"] for k in listed["data"]]


@pytest.mark.parametrize("kind", ["tenant", "app"])
async def test_revoking_a_key_twice_is_404_and_changes_nothing(api, db, kind):
    tenant = await api.new_tenant()
    app_id = await key_owner(api, tenant, kind)
    created = (
        await api.call("POST", keys_path(app_id), tenant.scope(), json={"name": "once"})
    ).json()
    first = await api.call("DELETE", f"{keys_path(app_id)}/{created['id']}", tenant.scope())
    assert first.status_code == 200
    stamped = await db.fetchval("SELECT revoked_at FROM api_keys WHERE id = $1", created["id"])
    second = await api.call("DELETE", f"{keys_path(app_id)}/{created['id']}", tenant.scope())
    assert second.status_code == 404 and second.json()["code"] == "NOT_FOUND", second.text
    assert (
        await db.fetchval("SELECT revoked_at FROM api_keys WHERE id = $1", created["id"]) == stamped
    )
    revocations = [s for s, _ in await events_mentioning(db, created["id"]) if s == KEY_REVOKED]
    assert len(revocations) == 1


@pytest.mark.parametrize("kind", ["tenant", "app"])
async def test_a_key_that_would_expire_in_the_past_is_400_and_not_created(api, db, kind):
    tenant = await api.new_tenant()
    app_id = await key_owner(api, tenant, kind)
    before = await db.fetchval("SELECT count(*) FROM api_keys WHERE tenant_id = $1", tenant.id)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    r = await api.call(
        "POST", keys_path(app_id), tenant.scope(), json={"name": "stale", "expiresAt": past}
    )
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "VALIDATION_ERROR" and "expiresAt" in body["message"]
    assert (
        await db.fetchval("SELECT count(*) FROM api_keys WHERE tenant_id = $1", tenant.id) == before
    )


@pytest.mark.parametrize("kind", ["tenant", "app"])
async def test_a_key_may_expire_in_the_future(api, db, kind):
    tenant = await api.new_tenant()
    app_id = await key_owner(api, tenant, kind)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    r = await api.call(
        "POST",
        keys_path(app_id),
        tenant.scope(),
        json={"name": "temp", "expiresAt": expires.isoformat()},
    )
    assert r.status_code == 201, r.text
    assert at(r.json()["expiresAt"]) == expires
    assert (
        await db.fetchval("SELECT expires_at FROM api_keys WHERE id = $1", r.json()["id"])
        == expires
    )


async def test_an_app_key_may_not_call_tenant_endpoints(api, db):
    tenant = await api.new_tenant()
    app = await create_app(api, tenant)
    app_key = tenant.app_key(app["id"])
    before = await tenant_snapshot(db, tenant.id)
    calls = [
        ("GET", "/v1/tenants/me", None),
        ("GET", "/v1/members", None),
        ("POST", "/v1/members", {"email": new_email()}),
        ("GET", "/v1/apps", None),
        ("GET", f"/v1/apps/{app['id']}", None),
        ("POST", "/v1/apps", {"name": "Other"}),
        ("PATCH", f"/v1/apps/{app['id']}", {"name": "Mine now"}),
        ("DELETE", f"/v1/apps/{app['id']}", None),
        ("GET", "/v1/api-keys", None),
        ("POST", "/v1/api-keys", {"name": "escalate"}),
        ("DELETE", f"/v1/api-keys/{tenant.key_id}", None),
        ("GET", f"/v1/apps/{app['id']}/api-keys", None),
        ("POST", f"/v1/apps/{app['id']}/api-keys", {"name": "more"}),
    ]
    for method, path, body in calls:
        kwargs = {"json": body} if body is not None else {}
        r = await api.call(method, path, app_key, **kwargs)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["code"] == "FORBIDDEN", (method, path, r.text)
    assert await tenant_snapshot(db, tenant.id) == before


@pytest.mark.parametrize("kind", ["tenant", "app"])
async def test_creating_and_revoking_a_key_write_their_events_to_the_outbox(api, db, kind):
    tenant = await api.new_tenant()
    app_id = await key_owner(api, tenant, kind)
    created = (
        await api.call("POST", keys_path(app_id), tenant.scope(), json={"name": "evented"})
    ).json()
    events = await events_mentioning(db, created["id"])
    assert [s for s, _ in events] == [KEY_CREATED]
    payload = events[0][1]
    assert payload["id"].startswith("evt_")
    assert payload["tenantId"] == tenant.id and payload["appId"] == app_id
    assert payload["keyId"] == created["id"] and payload["kind"] == kind
    assert payload["name"] == "evented" and payload["hint"] == created["hint"]

    r = await api.call("DELETE", f"{keys_path(app_id)}/{created['id']}", tenant.scope())
    assert r.status_code == 200
    events = await events_mentioning(db, created["id"])
    assert [s for s, _ in events] == [KEY_CREATED, KEY_REVOKED]
    payload = events[1][1]
    assert payload["tenantId"] == tenant.id and payload["appId"] == app_id
    assert payload["keyId"] == created["id"] and payload["kind"] == kind
    assert payload["keyHash"] == hash_key(created["key"])
    # The secret itself never leaves the response that showed it.
    assert await events_mentioning(db, created["key"]) == []
