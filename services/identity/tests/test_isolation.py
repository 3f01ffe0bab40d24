"""Nothing leaks sideways: another tenant's ids answer exactly like ids that do not exist."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from stackbe_common.ids import new_id


@dataclass
class Estate:
    """A tenant with one of everything identity holds."""

    tenant: object
    app_id: str
    app_key_id: str
    tenant_key_id: str
    member_id: str

    def owner(self):
        return self.tenant.member(self.tenant.owner_id, "owner")


async def build_estate(api) -> Estate:
    tenant = await api.new_tenant()
    app = await api.call("POST", "/v1/apps", tenant.scope(), json={"name": "Shop"})
    assert app.status_code == 201, app.text
    app_id = app.json()["id"]
    app_key = await api.call(
        "POST", f"/v1/apps/{app_id}/api-keys", tenant.scope(), json={"name": "app key"}
    )
    tenant_key = await api.call("POST", "/v1/api-keys", tenant.scope(), json={"name": "ci"})
    member = await api.call(
        "POST",
        "/v1/members",
        tenant.scope(),
        json={"email": f"m-{secrets.token_hex(4)}@example.com", "role": "admin"},
    )
    assert app_key.status_code == tenant_key.status_code == member.status_code == 201
    return Estate(
        tenant, app_id, app_key.json()["id"], tenant_key.json()["id"], member.json()["id"]
    )


async def row(db, table: str, id_: str) -> dict:
    found = await db.fetchrow(f"SELECT * FROM {table} WHERE id = $1", id_)
    assert found is not None
    return dict(found)


async def outbox_mentions(db, id_: str) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM outbox WHERE strpos(convert_from(payload, 'UTF8'), $1) > 0", id_
    )


def kwargs_for(body: dict | None) -> dict:
    return {"json": body} if body is not None else {}


def comparable(r) -> tuple:
    """What a client sees of an error, less the request id."""
    body = r.json()
    body.pop("requestId", None)
    return r.status_code, body


@pytest.fixture
async def victim(api) -> Estate:
    return await build_estate(api)


@pytest.fixture
async def intruder(api) -> Estate:
    return await build_estate(api)


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("GET", None),
        ("PATCH", {"name": "Hijacked", "gracePeriodDays": 0}),
        ("DELETE", None),
    ],
)
async def test_another_tenant_gets_404_app_not_found_for_an_app(
    api, db, victim, intruder, method, body
):
    before = await row(db, "apps", victim.app_id)
    events = await outbox_mentions(db, victim.app_id)
    for scope in (intruder.tenant.scope(), intruder.owner()):
        r = await api.call(method, f"/v1/apps/{victim.app_id}", scope, **kwargs_for(body))
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "APP_NOT_FOUND"
        assert victim.app_id not in r.text
    assert await row(db, "apps", victim.app_id) == before
    assert await outbox_mentions(db, victim.app_id) == events


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("GET", None),
        ("POST", {"name": "planted"}),
    ],
)
async def test_another_tenant_can_neither_list_nor_add_keys_of_an_app(
    api, db, victim, intruder, method, body
):
    keys = await db.fetchval("SELECT count(*) FROM api_keys WHERE app_id = $1", victim.app_id)
    r = await api.call(
        method, f"/v1/apps/{victim.app_id}/api-keys", intruder.owner(), **kwargs_for(body)
    )
    assert r.status_code == 404 and r.json()["code"] == "APP_NOT_FOUND", r.text
    assert victim.app_key_id not in r.text
    assert (
        await db.fetchval("SELECT count(*) FROM api_keys WHERE app_id = $1", victim.app_id) == keys
    )


async def test_another_tenant_cannot_revoke_an_app_key(api, db, victim, intruder):
    before = await row(db, "api_keys", victim.app_key_id)
    through_their_app = await api.call(
        "DELETE", f"/v1/apps/{victim.app_id}/api-keys/{victim.app_key_id}", intruder.owner()
    )
    assert through_their_app.status_code == 404, through_their_app.text
    assert through_their_app.json()["code"] == "APP_NOT_FOUND"
    through_own_app = await api.call(
        "DELETE", f"/v1/apps/{intruder.app_id}/api-keys/{victim.app_key_id}", intruder.owner()
    )
    assert through_own_app.status_code == 404, through_own_app.text
    assert through_own_app.json()["code"] == "NOT_FOUND"
    as_tenant_key = await api.call("DELETE", f"/v1/api-keys/{victim.app_key_id}", intruder.owner())
    assert as_tenant_key.status_code == 404 and as_tenant_key.json()["code"] == "NOT_FOUND"
    assert await row(db, "api_keys", victim.app_key_id) == before
    assert await outbox_mentions(db, victim.app_key_id) == 1  # only its creation


async def test_another_tenant_cannot_revoke_a_tenant_key(api, db, victim, intruder):
    for key_id in (victim.tenant_key_id, victim.tenant.key_id):
        before = await row(db, "api_keys", key_id)
        for scope in (intruder.tenant.scope(), intruder.owner()):
            r = await api.call("DELETE", f"/v1/api-keys/{key_id}", scope)
            assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND", r.text
        through_app = await api.call(
            "DELETE", f"/v1/apps/{intruder.app_id}/api-keys/{key_id}", intruder.owner()
        )
        assert through_app.status_code == 404 and through_app.json()["code"] == "NOT_FOUND"
        assert await row(db, "api_keys", key_id) == before
        assert await outbox_mentions(db, key_id) == 1  # only its creation


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("GET", None),
        ("PATCH", {"role": "viewer"}),
        ("PATCH", {"role": "owner"}),
        ("DELETE", None),
    ],
)
async def test_another_tenant_gets_404_for_a_member(api, db, victim, intruder, method, body):
    for member_id in (victim.member_id, victim.tenant.owner_id):
        before = await row(db, "members", member_id)
        events = await outbox_mentions(db, member_id)
        for scope in (intruder.tenant.scope(), intruder.owner()):
            r = await api.call(method, f"/v1/members/{member_id}", scope, **kwargs_for(body))
            assert r.status_code == 404, r.text
            assert r.json()["code"] == "NOT_FOUND"
            assert member_id not in r.text
        assert await row(db, "members", member_id) == before
        assert await outbox_mentions(db, member_id) == events


async def every_id(api, scope, path: str, limit: int) -> list[str]:
    """Walk a list page by page and return the ids in the order served."""
    ids: list[str] = []
    after = None
    while True:
        sep = "&" if "?" in path else "?"
        query = f"{sep}limit={limit}" + (f"&startingAfter={after}" if after else "")
        r = await api.call("GET", path + query, scope)
        assert r.status_code == 200, r.text
        page = r.json()
        ids += [item["id"] for item in page["data"]]
        if not page["hasMore"]:
            return ids
        assert page["data"]
        after = page["data"][-1]["id"]


async def add_rows(api, estate: Estate, n: int) -> dict[str, set[str]]:
    """Give the estate n more of each resource; return every id each list should show."""
    scope = estate.tenant.scope()
    archived = await api.call("POST", "/v1/apps", scope, json={"name": "Archived"})
    await api.call("DELETE", f"/v1/apps/{archived.json()['id']}", scope)
    for i in range(n):
        await api.call("POST", "/v1/apps", scope, json={"name": f"App {i}"})
        await api.call("POST", "/v1/api-keys", scope, json={"name": f"key {i}"})
        await api.call(
            "POST", f"/v1/apps/{estate.app_id}/api-keys", scope, json={"name": f"app key {i}"}
        )
        await api.call(
            "POST",
            "/v1/members",
            scope,
            json={"email": f"extra-{i}-{secrets.token_hex(3)}@example.com"},
        )
    lists = {}
    for path in (
        "/v1/apps?includeArchived=true",
        "/v1/api-keys",
        f"/v1/apps/{estate.app_id}/api-keys",
        "/v1/members",
    ):
        lists[path.split("?")[0].replace(estate.app_id, "{app}")] = set(
            await every_id(api, scope, path, 100)
        )
    return lists


async def test_lists_never_hold_another_tenants_rows(api, victim, intruder):
    theirs = await add_rows(api, victim, 3)
    ours = await add_rows(api, intruder, 3)
    scope = intruder.tenant.scope()
    paths = {
        "/v1/apps": "/v1/apps?includeArchived=true",
        "/v1/api-keys": "/v1/api-keys",
        "/v1/apps/{app}/api-keys": f"/v1/apps/{intruder.app_id}/api-keys",
        "/v1/members": "/v1/members",
    }
    for name, path in paths.items():
        assert theirs[name] and ours[name]
        for limit in (100, 1, 2):
            seen = await every_id(api, scope, path, limit)
            assert len(seen) == len(set(seen)), (path, limit)
            assert set(seen) == ours[name], (path, limit)
            assert not set(seen) & theirs[name], (path, limit)
    # A foreign id as the cursor only says where to start; it shows nothing of its tenant.
    for name, path in paths.items():
        for foreign in sorted(theirs[name]):
            r = await api.call(
                "GET", f"{path.split('?')[0]}?limit=100&startingAfter={foreign}", scope
            )
            assert r.status_code == 200
            assert not {i["id"] for i in r.json()["data"]} & theirs[name]


async def test_an_app_key_list_of_one_app_never_shows_another_apps_keys(api, victim):
    other = await api.call("POST", "/v1/apps", victim.tenant.scope(), json={"name": "Other"})
    other_id = other.json()["id"]
    r = await api.call("GET", f"/v1/apps/{other_id}/api-keys?limit=100", victim.tenant.scope())
    assert r.status_code == 200 and r.json()["data"] == []


def probes(victim: Estate, intruder: Estate) -> list[tuple[str, str, str, dict | None]]:
    """(method, path with {id}, the foreign id, body) for every by-id endpoint."""
    return [
        ("GET", "/v1/apps/{id}", victim.app_id, None),
        ("PATCH", "/v1/apps/{id}", victim.app_id, {"name": "x"}),
        ("DELETE", "/v1/apps/{id}", victim.app_id, None),
        ("GET", "/v1/apps/{id}/api-keys", victim.app_id, None),
        ("POST", "/v1/apps/{id}/api-keys", victim.app_id, {"name": "x"}),
        ("DELETE", "/v1/apps/{id}/api-keys/" + victim.app_key_id, victim.app_id, None),
        ("DELETE", f"/v1/apps/{intruder.app_id}/api-keys/{{id}}", victim.app_key_id, None),
        ("DELETE", "/v1/api-keys/{id}", victim.tenant_key_id, None),
        ("GET", "/v1/members/{id}", victim.member_id, None),
        ("PATCH", "/v1/members/{id}", victim.member_id, {"role": "viewer"}),
        ("DELETE", "/v1/members/{id}", victim.member_id, None),
    ]


async def test_a_foreign_id_is_answered_exactly_like_an_unknown_one(api, victim, intruder):
    scope = intruder.owner()
    for method, template, foreign, body in probes(victim, intruder):
        prefix = foreign.split("_", 1)[0]
        foreign_r = await api.call(method, template.format(id=foreign), scope, **kwargs_for(body))
        for unknown in (new_id(prefix), f"{prefix}_doesnotexist"):
            unknown_r = await api.call(
                method, template.format(id=unknown), scope, **kwargs_for(body)
            )
            assert comparable(foreign_r) == comparable(unknown_r), (method, template)
        assert foreign_r.status_code == 404, (method, template, foreign_r.text)


async def test_an_unknown_id_with_a_nul_byte_is_answered_like_any_unknown_id(api, victim, intruder):
    scope = intruder.owner()
    for path in ("/v1/apps/{id}", "/v1/members/{id}", "/v1/api-keys/{id}"):
        method = "DELETE" if path.startswith("/v1/api-keys") else "GET"
        plain = await api.call(method, path.format(id="app_doesnotexist"), scope)
        nul = await api.call(method, path.format(id="app_%00"), scope)
        assert comparable(nul) == comparable(plain), (path, nul.text)
