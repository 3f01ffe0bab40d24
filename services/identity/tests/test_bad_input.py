"""Bad input gets a clear 400 (or 401, 413) in the documented shape and changes nothing."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest

from stackbe_common.scope import sign_scope

from .conftest import anonymous

TRACEBACK_MARKERS = ("Traceback", 'File "', "asyncpg", "Error(", "site-packages")
FUTURE = (datetime.now(UTC) + timedelta(days=30)).isoformat()


def new_email(tag: str = "bad") -> str:
    return f"{tag}-{secrets.token_hex(4)}@example.com"


def assert_no_traceback(r) -> None:
    for marker in TRACEBACK_MARKERS:
        assert marker not in r.text, r.text


def assert_error(r, status: int, code: str, error: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["statusCode"] == status and body["error"] == error, body
    assert body["code"] == code and body["message"], body
    assert_no_traceback(r)
    return body


def assert_validation_error(r, field: str | None) -> dict:
    body = assert_error(r, 400, "VALIDATION_ERROR", "Bad Request")
    if field is not None:
        assert field in body["message"], body
        assert body.get("field", field) == field, body
    return body


async def snapshot(db, tenant_id: str) -> dict:
    """Every identity row of the tenant, its outbox events and its stored idempotent replies."""
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
        "replies": await db.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE scope_key LIKE $1 || ':%'", tenant_id
        ),
        "links": await db.fetchval(
            "SELECT count(*) FROM magic_links l JOIN members m ON m.id = l.member_id"
            " WHERE m.tenant_id = $1",
            tenant_id,
        ),
    }


async def tenants_named(db, name: str, email: str) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM tenants WHERE name = $1 OR owner_email = $2", name, email
    )


class Target:
    """A tenant with an app and an invited member, for paths that need real ids."""

    def __init__(self, tenant, app_id: str, member_id: str) -> None:
        self.tenant, self.app_id, self.member_id = tenant, app_id, member_id

    def path(self, template: str) -> str:
        return template.format(app=self.app_id, member=self.member_id)


@pytest.fixture
async def target(api) -> Target:
    tenant = await api.new_tenant()
    app = await api.call("POST", "/v1/apps", tenant.scope(), json={"name": "Shop"})
    member = await api.call(
        "POST", "/v1/members", tenant.scope(), json={"email": new_email("member"), "role": "admin"}
    )
    assert app.status_code == member.status_code == 201
    return Target(tenant, app.json()["id"], member.json()["id"])


def send_kwargs(body) -> dict:
    if isinstance(body, bytes):
        return {"content": body, "headers": {"content-type": "application/json"}}
    return {"json": body}


LONG = "x" * 201

BODY_CASES = [
    # (case, method, path, body, field the message must name)
    ("malformed JSON", "POST", "/v1/apps", b'{"name": "Shop",', None),
    ("JSON with single quotes", "POST", "/v1/members", b"{'email': 'a@example.com'}", None),
    ("a JSON array", "POST", "/v1/apps", ["Shop"], None),
    ("JSON null", "POST", "/v1/api-keys", b"null", None),
    ("unknown field on an app", "POST", "/v1/apps", {"name": "Shop", "colour": "red"}, "colour"),
    (
        "snake_case field",
        "POST",
        "/v1/apps",
        {"name": "Shop", "grace_period_days": 3},
        "grace_period_days",
    ),
    ("unknown field on an app patch", "PATCH", "/v1/apps/{app}", {"colour": "red"}, "colour"),
    (
        "unknown field on an invite",
        "POST",
        "/v1/members",
        {"email": "a@example.com", "team": "blue"},
        "team",
    ),
    (
        "unknown field on a role change",
        "PATCH",
        "/v1/members/{member}",
        {"role": "viewer", "email": "b@example.com"},
        "email",
    ),
    (
        "unknown field on a tenant key",
        "POST",
        "/v1/api-keys",
        {"name": "k", "scopes": ["*"]},
        "scopes",
    ),
    (
        "unknown field on an app key",
        "POST",
        "/v1/apps/{app}/api-keys",
        {"name": "k", "appId": "app_x"},
        "appId",
    ),
    ("name is a number", "POST", "/v1/apps", {"name": 5}, "name"),
    (
        "grace period is a word",
        "POST",
        "/v1/apps",
        {"name": "Shop", "gracePeriodDays": "seven"},
        "gracePeriodDays",
    ),
    (
        "grace period is a boolean",
        "PATCH",
        "/v1/apps/{app}",
        {"gracePeriodDays": True},
        "gracePeriodDays",
    ),
    (
        "grace period is negative",
        "PATCH",
        "/v1/apps/{app}",
        {"gracePeriodDays": -1},
        "gracePeriodDays",
    ),
    (
        "grace period over a year",
        "POST",
        "/v1/apps",
        {"name": "Shop", "gracePeriodDays": 366},
        "gracePeriodDays",
    ),
    ("name is null", "POST", "/v1/apps/{app}/api-keys", {"name": None}, "name"),
    ("email is a list", "POST", "/v1/members", {"email": ["a@example.com"]}, "email"),
    ("role is a number", "PATCH", "/v1/members/{member}", {"role": 1}, "role"),
    ("role is unknown", "POST", "/v1/members", {"email": "a@example.com", "role": "root"}, "role"),
    ("expiry is a word", "POST", "/v1/api-keys", {"name": "k", "expiresAt": "soon"}, "expiresAt"),
    ("no app name", "POST", "/v1/apps", {"gracePeriodDays": 3}, "name"),
    ("no email", "POST", "/v1/members", {"role": "admin"}, "email"),
    ("no role", "PATCH", "/v1/members/{member}", {}, "role"),
    ("no tenant key name", "POST", "/v1/api-keys", {"expiresAt": FUTURE}, "name"),
    ("no app key name", "POST", "/v1/apps/{app}/api-keys", {}, "name"),
    ("empty app name", "POST", "/v1/apps", {"name": ""}, "name"),
    ("201-char app name", "POST", "/v1/apps", {"name": LONG}, "name"),
    ("201-char app rename", "PATCH", "/v1/apps/{app}", {"name": LONG}, "name"),
    ("gateway id not gw_", "PATCH", "/v1/apps/{app}", {"gatewayId": "sk_test_1"}, "gatewayId"),
    ("brand colour by name", "PATCH", "/v1/apps/{app}", {"brandColor": "red"}, "brandColor"),
    (
        "brand colour with CSS",
        "POST",
        "/v1/apps",
        {"name": "A", "brandColor": "#fff;x"},
        "brandColor",
    ),
    ("logo over http", "PATCH", "/v1/apps/{app}", {"logoUrl": "http://a.example/l.png"}, "logoUrl"),
    (
        "logo with a quote",
        "PATCH",
        "/v1/apps/{app}",
        {"logoUrl": 'https://a.example/"x'},
        "logoUrl",
    ),
    ("gateway id not a string", "PATCH", "/v1/apps/{app}", {"gatewayId": 7}, "gatewayId"),
    ("201-char tenant key name", "POST", "/v1/api-keys", {"name": LONG}, "name"),
    ("201-char app key name", "POST", "/v1/apps/{app}/api-keys", {"name": LONG}, "name"),
    ("email without @", "POST", "/v1/members", {"email": "not-an-email"}, "email"),
    ("email without a dot", "POST", "/v1/members", {"email": "someone@localhost"}, "email"),
    ("email with two @", "POST", "/v1/members", {"email": "a@@example.com"}, "email"),
    ("email with a space", "POST", "/v1/members", {"email": "a b@example.com"}, "email"),
    ("empty email", "POST", "/v1/members", {"email": ""}, "email"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"), [c[1:] for c in BODY_CASES], ids=[c[0] for c in BODY_CASES]
)
async def test_a_bad_body_is_400_naming_the_field_and_changes_nothing(
    api, db, target, method, path, body, field
):
    before = await snapshot(db, target.tenant.id)
    r = await api.call(method, target.path(path), target.tenant.scope(), **send_kwargs(body))
    assert_validation_error(r, field)
    assert await snapshot(db, target.tenant.id) == before


@pytest.mark.parametrize("raw", [b'{"name" "Shop"}', b"{name: 'Shop'}", b'{"name": Shop}'])
async def test_malformed_json_is_reported_as_such(api, target, raw):
    r = await api.call("POST", "/v1/apps", target.tenant.scope(), **send_kwargs(raw))
    body = assert_validation_error(r, None)
    assert "JSON" in body["message"], body


TENANT_CASES = [
    ("201-char name", {"name": LONG}, "name"),
    ("invalid owner email", {"ownerEmail": "owner.example.com"}, "ownerEmail"),
    ("no owner email", {"ownerEmail": None}, "ownerEmail"),
    ("no name", {"name": None}, "name"),
    ("unknown field", {"plan": "free"}, "plan"),
]


@pytest.mark.parametrize(
    ("change", "field"), [c[1:] for c in TENANT_CASES], ids=[c[0] for c in TENANT_CASES]
)
async def test_a_bad_tenant_signup_is_400_and_creates_nothing(api, db, mailbox, change, field):
    name, email = f"Bad {secrets.token_hex(4)}", new_email("signup")
    body = {"name": name, "ownerEmail": email, **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = await api.call("POST", "/v1/tenants", anonymous(), json=body)
    assert_validation_error(r, field)
    assert await tenants_named(db, name, email) == 0
    assert await db.fetchval("SELECT count(*) FROM members WHERE email = $1", email) == 0
    await asyncio.sleep(0.05)
    assert mailbox.to(email) == []


LIST_PATHS = ["/v1/apps", "/v1/members", "/v1/api-keys", "/v1/apps/{app}/api-keys"]


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "1.5", ""])
@pytest.mark.parametrize("path", LIST_PATHS)
async def test_a_limit_outside_1_to_100_is_400_naming_limit(api, db, target, path, limit):
    before = await snapshot(db, target.tenant.id)
    r = await api.call("GET", f"{target.path(path)}?limit={limit}", target.tenant.scope())
    assert_validation_error(r, "limit")
    assert await snapshot(db, target.tenant.id) == before


@pytest.mark.parametrize("limit", ["1", "100"])
@pytest.mark.parametrize("path", LIST_PATHS)
async def test_limits_of_1_and_100_are_fine(api, target, path, limit):
    r = await api.call("GET", f"{target.path(path)}?limit={limit}", target.tenant.scope())
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) <= int(limit)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/apps", {"name": "Shop"}),
        ("/v1/api-keys", {"name": "k"}),
        ("/v1/apps/{app}/api-keys", {"name": "k"}),
        ("/v1/members", {"email": "idem@example.com"}),
    ],
)
async def test_an_idempotency_key_of_256_chars_is_400_and_changes_nothing(
    api, db, mailbox, target, path, body
):
    before = await snapshot(db, target.tenant.id)
    r = await api.call(
        "POST",
        target.path(path),
        target.tenant.scope(),
        json=body,
        headers={"Idempotency-Key": "k" * 256},
    )
    assert_validation_error(r, "Idempotency-Key")
    assert await snapshot(db, target.tenant.id) == before
    await asyncio.sleep(0.05)
    assert mailbox.to("idem@example.com") == []


async def test_an_idempotency_key_of_255_chars_is_fine(api, target):
    r = await api.call(
        "POST",
        "/v1/apps",
        target.tenant.scope(),
        json={"name": "Shop"},
        headers={"Idempotency-Key": "k" * 255},
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("idempotency_key", [None, "big-body"])
async def test_a_body_over_1_mib_is_413_payload_too_large(api, db, target, idempotency_key):
    before = await snapshot(db, target.tenant.id)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    r = await api.call(
        "POST",
        "/v1/apps",
        target.tenant.scope(),
        headers=headers,
        json={"name": "x" * (1024 * 1024)},
    )
    assert_error(r, 413, "PAYLOAD_TOO_LARGE", "Request Entity Too Large")
    assert await snapshot(db, target.tenant.id) == before


async def test_a_body_just_under_1_mib_is_read_and_validated(api, db, target):
    before = await snapshot(db, target.tenant.id)
    r = await api.call(
        "POST", "/v1/apps", target.tenant.scope(), json={"name": "x" * (1024 * 1024 - 100)}
    )
    assert_validation_error(r, "name")
    assert await snapshot(db, target.tenant.id) == before


def forged(scope) -> str:
    return sign_scope(scope, b"not-the-internal-secret")


def stale(scope, secret: bytes) -> str:
    return sign_scope(scope, secret, now=time.time() - 120)


SCOPE_HEADERS = {
    "missing": lambda scope, secret: None,
    "forged": lambda scope, secret: forged(scope),
    "stale": lambda scope, secret: stale(scope, secret),
    "malformed": lambda scope, secret: "not-a-scope",
    "tampered": lambda scope, secret: "x" + sign_scope(scope, secret)[1:],
}

CALLS = [
    ("POST", "/v1/apps", {"name": "Shop"}),
    ("PATCH", "/v1/apps/{app}", {"name": "Renamed"}),
    ("DELETE", "/v1/apps/{app}", None),
    ("POST", "/v1/members", {"email": "sneaky@example.com", "role": "owner"}),
    ("PATCH", "/v1/members/{member}", {"role": "viewer"}),
    ("DELETE", "/v1/members/{member}", None),
    ("POST", "/v1/api-keys", {"name": "k"}),
    ("DELETE", "/v1/api-keys/{key}", None),
    ("POST", "/v1/apps/{app}/api-keys", {"name": "k"}),
    ("GET", "/v1/apps", None),
    ("GET", "/v1/tenants/me", None),
]


@pytest.mark.parametrize("how", list(SCOPE_HEADERS))
async def test_a_request_without_a_valid_gateway_scope_is_401_and_changes_nothing(
    api, db, target, how
):
    tenant = target.tenant
    before = await snapshot(db, tenant.id)
    for method, template, body in CALLS:
        path = target.path(template.replace("{key}", tenant.key_id))
        header = SCOPE_HEADERS[how](tenant.scope("owner"), api.secret)
        headers = {"x-stackbe-scope": header} if header is not None else {}
        r = await api.client.request(
            method, path, headers=headers, **({"json": body} if body is not None else {})
        )
        assert_error(r, 401, "UNAUTHORIZED", "Unauthorized")
        # With an Idempotency-Key too: refused before anything is stored.
        if method == "POST":
            r = await api.client.request(
                method, path, json=body, headers={**headers, "Idempotency-Key": "k1"}
            )
            assert_error(r, 401, "UNAUTHORIZED", "Unauthorized")
    assert await snapshot(db, tenant.id) == before


HOSTILE = [
    ("POST", "/v1/apps", {"name": "a\u0000b"}),
    ("POST", "/v1/members", {"email": "nul\u0000@example.com"}),
    ("POST", "/v1/api-keys", {"name": "k", "expiresAt": "2031-01-01T00:00:00"}),
    ("GET", "/v1/apps/app_%00", None),
    ("GET", "/v1/apps?startingAfter=%00", None),
    ("POST", "/v1/apps", b"\xff\xfe\x00"),
    ("POST", "/v1/apps", b""),
    ("POST", "/v1/apps", b'{"name": "\\ud83d"}'),
    ("GET", "/v1/apps?limit=99999999999999999999999", None),
    ("PATCH", "/v1/apps/{app}", {"gracePeriodDays": 10**30}),
]


async def test_no_response_to_hostile_input_carries_a_traceback(api, target):
    for method, path, body in HOSTILE:
        kwargs = send_kwargs(body) if body is not None else {}
        r = await api.call(method, target.path(path), target.tenant.scope(), **kwargs)
        assert_no_traceback(r)
        body_out = r.json()
        assert body_out["statusCode"] == r.status_code and body_out["code"], r.text
        if r.status_code >= 500:
            # A 500 says nothing of its cause but carries the request id from the logs.
            assert body_out["code"] == "INTERNAL_ERROR"
            assert body_out["requestId"] == r.headers["x-request-id"]


# Source bugs: each test below states the expected behaviour and fails today.


@pytest.mark.parametrize("grace", ["7", 7.0])
async def test_a_number_of_the_wrong_json_type_is_400(api, db, target, grace):
    before = await snapshot(db, target.tenant.id)
    r = await api.call(
        "POST", "/v1/apps", target.tenant.scope(), json={"name": "Shop", "gracePeriodDays": grace}
    )
    assert_validation_error(r, "gracePeriodDays")
    assert await snapshot(db, target.tenant.id) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/apps", {"name": "   "}),
        ("PATCH", "/v1/apps/{app}", {"name": " \t "}),
        ("POST", "/v1/api-keys", {"name": "   "}),
        ("POST", "/v1/apps/{app}/api-keys", {"name": "   "}),
    ],
)
async def test_a_blank_name_is_400(api, db, target, method, path, body):
    before = await snapshot(db, target.tenant.id)
    r = await api.call(method, target.path(path), target.tenant.scope(), json=body)
    assert_validation_error(r, "name")
    assert await snapshot(db, target.tenant.id) == before


async def test_a_blank_tenant_name_is_400(api, db):
    email = new_email("blank")
    r = await api.call(
        "POST", "/v1/tenants", anonymous(), json={"name": "   ", "ownerEmail": email}
    )
    assert_validation_error(r, "name")
    assert await tenants_named(db, "", email) == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/apps", {"name": "a\u0000b"}, "name"),
        ("PATCH", "/v1/apps/{app}", {"name": "a\u0000b"}, "name"),
        ("POST", "/v1/members", {"email": "nul\u0000@example.com"}, "email"),
        ("POST", "/v1/api-keys", {"name": "a\u0000b"}, "name"),
    ],
)
async def test_a_nul_character_is_400_not_500(api, db, target, method, path, body, field):
    before = await snapshot(db, target.tenant.id)
    r = await api.call(method, target.path(path), target.tenant.scope(), json=body)
    assert_validation_error(r, field)
    assert await snapshot(db, target.tenant.id) == before


async def test_a_cursor_with_a_nul_character_is_not_a_500(api, target):
    r = await api.call("GET", "/v1/apps?startingAfter=app_%00", target.tenant.scope())
    assert_no_traceback(r)
    assert r.status_code in (200, 400), r.text


@pytest.mark.parametrize("path", ["/v1/api-keys", "/v1/apps/{app}/api-keys"])
async def test_an_expiry_without_a_timezone_is_400(api, db, target, path):
    before = await snapshot(db, target.tenant.id)
    r = await api.call(
        "POST",
        target.path(path),
        target.tenant.scope(),
        json={"name": "k", "expiresAt": "2031-01-01T00:00:00"},
    )
    assert_validation_error(r, "expiresAt")
    assert await snapshot(db, target.tenant.id) == before


async def test_an_empty_body_is_400_saying_the_body_is_missing(api, db, target):
    before = await snapshot(db, target.tenant.id)
    r = await api.call("POST", "/v1/apps", target.tenant.scope(), **send_kwargs(b""))
    body = assert_validation_error(r, None)
    assert "'data'" not in body["message"] and "body" in body["message"].lower(), body
    assert await snapshot(db, target.tenant.id) == before


async def test_a_bad_include_archived_is_400_naming_include_archived(api, target):
    r = await api.call("GET", "/v1/apps?includeArchived=maybe", target.tenant.scope())
    body = assert_validation_error(r, "includeArchived")
    assert "include_archived" not in r.text, body
