"""The endpoint and message API over HTTP: the secret shown once and sealed at rest,
lists, changes, deletion, re-enabling, strict input that changes nothing on refusal,
isolation between apps and tenants, and the read-only viewer role."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import pytest

from stackbe_common.ids import new_id
from stackbe_common.scope import Principal, Scope
from stackbe_webhooks.delivery import SCHEDULE
from stackbe_webhooks.fanout import EVENT_TYPES
from stackbe_webhooks.sealing import unseal

from .conftest import App

EP = "/v1/webhooks/endpoints"
MSG = "/v1/webhooks/messages"
DEAD = "http://127.0.0.1:9/hook"  # loopback's discard port: refused at once if ever sent to
PAST = "2020-01-01T00:00:00Z"


@pytest.fixture
async def apps(pool, api):
    """Makes apps; their endpoints and deliveries go afterwards, left to no other worker."""
    made: list[App] = []

    def make(tenant_id: str | None = None) -> App:
        made.append(App(pool, api, tenant_id=tenant_id or new_id("ten")))
        return made[-1]

    yield make
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM endpoints WHERE app_id = ANY ($1)", [a.id for a in made])


@pytest.fixture
def app(apps) -> App:
    return apps()


def refused(r, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    """The documented error body; ``field`` (when given) named, an index at most added."""
    assert r.status_code == status, r.text
    body = r.json()
    assert (body["statusCode"], body["code"]) == (status, code), body
    assert body["error"] == HTTPStatus(status).phrase and body["message"], body
    if field is not None:
        assert body.get("field") in (field, *(f"{field}[{i}]" for i in range(3))), body
    return body


def answer(r) -> tuple[int, dict[str, Any]]:
    """Status and body, without the request id (which differs on every request)."""
    return r.status_code, {k: v for k, v in r.json().items() if k != "requestId"}


async def listed(app: App, scope: Scope | None = None) -> dict[str, Any]:
    return await app.api.ok("GET", f"{EP}?limit=100", scope or app.key())


async def row_of(pool, table: str, column: str, value: str) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT * FROM {table} WHERE {column} = $1", value)
    return sorted((dict(r) for r in rows), key=repr)


async def stored(pool, endpoint: dict[str, Any], message: dict[str, Any]) -> list[Any]:
    """The endpoint's row and the message's deliveries, as the database holds them."""
    return [
        await row_of(pool, "endpoints", "id", endpoint["id"]),
        await row_of(pool, "deliveries", "message_id", message["id"]),
    ]


async def test_create_answers_201_with_the_secret_and_every_event_type_by_default(app):
    made = await app.endpoint(DEAD, description="orders")
    assert (made["appId"], made["url"], made["description"]) == (app.id, DEAD, "orders")
    assert made["status"] == "enabled" and made["disabledReason"] is None
    assert sorted(made["events"]) == sorted(EVENT_TYPES)
    assert made["secret"].startswith("whsec_")
    assert len(base64.b64decode(made["secret"].removeprefix("whsec_"), validate=True)) >= 24
    chosen = await app.endpoint(DEAD, events=["payment.failed", "customer.created"])
    assert sorted(chosen["events"]) == ["customer.created", "payment.failed"]
    assert chosen["secret"] != made["secret"]


async def test_the_secret_is_sealed_at_rest(app, pool, settings):
    made = await app.endpoint(DEAD)
    secret = made["secret"]
    [row] = await row_of(pool, "endpoints", "id", made["id"])
    sealed = bytes(row["secret"])
    for plain in (secret, secret.removeprefix("whsec_")):
        assert plain.encode() not in sealed
    assert base64.b64decode(secret.removeprefix("whsec_")) not in sealed
    assert unseal(settings.keyring, made["id"], sealed) == secret  # sealed, not lost


async def test_lists_page_by_limit_and_starting_after(app):
    ids = [(await app.endpoint(DEAD, description=str(n)))["id"] for n in range(3)]
    first = await app.api.ok("GET", f"{EP}?limit=2", app.key())
    assert [e["id"] for e in first["data"]] == ids[:2] and first["hasMore"] is True
    rest = await app.api.ok("GET", f"{EP}?limit=2&startingAfter={ids[1]}", app.key())
    assert [e["id"] for e in rest["data"]] == ids[2:] and rest["hasMore"] is False
    assert all("secret" not in e for e in first["data"] + rest["data"])
    refused(await app.api.call("GET", f"{EP}?limit=0", app.key()), 400, "VALIDATION_ERROR", "limit")
    r = await app.api.call("GET", f"{EP}?startingAfter=nope", app.key())
    refused(r, 400, "VALIDATION_ERROR", "startingAfter")


async def test_patch_changes_url_events_and_description(app):
    made = await app.endpoint(DEAD, description="before")
    path, url = f"{EP}/{made['id']}", "http://127.0.0.1:9/other"
    body = {"url": url, "events": ["payment.failed", "customer.created"], "description": "after"}
    patched = await app.api.ok("PATCH", path, app.key(), json=body)
    assert (patched["url"], patched["description"]) == (url, "after")
    assert patched["events"] == ["customer.created", "payment.failed"]
    assert patched["updatedAt"] >= made["updatedAt"] and patched["createdAt"] == made["createdAt"]
    assert await app.api.ok("GET", path, app.key()) == patched and "secret" not in patched
    cleared = await app.api.ok("PATCH", path, app.key(), json={"events": None, "description": None})
    assert sorted(cleared["events"]) == sorted(EVENT_TYPES) and cleared["description"] is None
    assert cleared["url"] == url


async def test_delete_answers_200_with_the_final_state_and_then_the_endpoint_is_gone(app):
    made = await app.endpoint(DEAD)
    kept = await app.endpoint(DEAD)
    before = await app.api.ok("GET", f"{EP}/{made['id']}", app.key())
    assert await app.api.ok("DELETE", f"{EP}/{made['id']}", app.key()) == before
    for method in ("GET", "DELETE"):
        r = await app.api.call(method, f"{EP}/{made['id']}", app.key())
        refused(r, 404, "ENDPOINT_NOT_FOUND")
    assert [e["id"] for e in (await listed(app))["data"]] == [kept["id"]]


async def test_enable_brings_an_endpoint_disabled_by_a_410_back(app, worker, receivers, clock):
    receiver = await receivers(410)
    made = await app.endpoint(receiver.url)
    await app.customer(clock=clock)
    await worker.deliver_due()
    path = f"{EP}/{made['id']}"
    got = await app.api.ok("GET", path, app.key())
    assert (got["status"], got["disabledReason"]) == ("disabled", "gone")
    refused(await app.api.call("POST", f"{path}/test", app.key()), 409, "ENDPOINT_DISABLED")
    enabled = await app.api.ok("POST", f"{path}/enable", app.key())
    assert enabled["status"] == "enabled" and enabled["disabledReason"] is None
    assert enabled["failingSince"] is None
    assert await app.api.ok("GET", path, app.key()) == enabled and "secret" not in enabled
    sent = await app.api.ok("POST", f"{path}/test", app.key(), 202)
    assert await worker.deliver_due() == 1 and receiver.ids[-1] == sent["id"]


def bad(method: str, body: dict[str, Any], field: str, name: str) -> Any:
    action = "create" if method == "POST" else "patch"
    return pytest.param(method, body, field, id=f"{action}-{name}")


BAD_BODIES = [
    bad("POST", {"description": "no url"}, "url", "url-missing"),
    bad("POST", {"url": "ftp://example.com/hook"}, "url", "url-ftp"),
    bad("POST", {"url": "http://127.0.0.1\\@1.1.1.1/hook"}, "url", "url-backslash"),
    bad("POST", {"url": "example.com/hook"}, "url", "url-without-scheme"),
    bad("POST", {"url": 7}, "url", "url-a-number"),
    bad("POST", {"url": DEAD, "colour": "red"}, "colour", "unknown-field"),
    bad("POST", {"url": DEAD, "events": ["customer.deleted"]}, "events", "unknown-event"),
    bad("POST", {"url": DEAD, "events": []}, "events", "events-empty"),
    bad("POST", {"url": DEAD, "events": "customer.created"}, "events", "events-a-string"),
    bad("POST", {"url": DEAD, "description": 5}, "description", "description-a-number"),
    bad("PATCH", {"url": "ftp://example.com/hook"}, "url", "url-ftp"),
    bad("PATCH", {"url": "not a url"}, "url", "url-garbage"),
    bad("PATCH", {"url": None}, "url", "url-null"),
    bad("PATCH", {"events": []}, "events", "events-empty"),
    bad("PATCH", {"events": ["nope"]}, "events", "unknown-event"),
    bad("PATCH", {"description": ["x"]}, "description", "description-a-list"),
    bad("PATCH", {"description": "x", "status": "disabled"}, "status", "unknown-field"),
]


@pytest.mark.parametrize("raw", [b'{"url": ', b"[]", b'"http://example.com"'], ids=str)
async def test_a_body_that_is_not_a_json_object_is_a_400_and_creates_nothing(app, raw):
    before = await listed(app)
    headers = {"content-type": "application/json"}
    r = await app.api.call("POST", EP, app.key(), content=raw, headers=headers)
    refused(r, 400, "VALIDATION_ERROR")
    assert await listed(app) == before == {"data": [], "hasMore": False}


@pytest.mark.parametrize(("method", "body", "field"), BAD_BODIES)
async def test_a_bad_create_or_patch_is_a_400_naming_the_field_and_changes_nothing(
    app, pool, method, body, field
):
    made = await app.endpoint(DEAD, description="kept")
    before = await row_of(pool, "endpoints", "app_id", app.id)
    path = EP if method == "POST" else f"{EP}/{made['id']}"
    refused(await app.api.call(method, path, app.key(), json=body), 400, "VALIDATION_ERROR", field)
    assert await row_of(pool, "endpoints", "app_id", app.id) == before


async def test_bad_recover_and_retry_bodies_are_400s_that_resend_nothing(
    app, pool, worker, receivers, clock
):
    receiver = await receivers(default=500)
    made = await app.endpoint(receiver.url)
    path = f"{EP}/{made['id']}"
    sent = await app.api.ok("POST", f"{path}/test", app.key(), 202)
    await worker.deliver_due()
    for wait in SCHEDULE:  # every attempt fails: the delivery ends failed
        clock.advance(wait * 1.2 + timedelta(seconds=1))
        await worker.deliver_due()
    before = await row_of(pool, "deliveries", "message_id", sent["id"])
    assert [d["status"] for d in before] == ["failed"]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    cases = [
        ("recover", {"since": future}, "since"),
        ("recover", {"since": "yesterday"}, "since"),
        ("recover", {"since": "2024-01-01T00:00:00"}, "since"),  # no offset
        ("recover", {}, "since"),
        ("retry", {"endpointId": "we_nope"}, "endpointId"),
        ("retry", {"endpointId": 5}, "endpointId"),
        ("retry", {"endpoint": made["id"]}, "endpoint"),
    ]
    for kind, body, field in cases:
        target = f"{path}/recover" if kind == "recover" else f"{MSG}/{sent['id']}/retry"
        r = await app.api.call("POST", target, app.key(), json=body)
        refused(r, 400, "VALIDATION_ERROR", field)
        assert await row_of(pool, "deliveries", "message_id", sent["id"]) == before, body
    assert await worker.deliver_due() == 0 and len(receiver.received) == len(SCHEDULE) + 1
    recovered = await app.api.ok("POST", f"{path}/recover", app.key(), json={"since": PAST})
    assert recovered == {"endpointId": made["id"], "recovered": 1}  # a good one would


async def test_a_since_before_any_message_recovers_from_the_beginning(app):
    made = await app.endpoint(DEAD)
    since = {"since": "0001-01-01T00:00:00+01:00"}  # 0000-12-31T23:00Z: a valid time string
    got = await app.api.ok("POST", f"{EP}/{made['id']}/recover", app.key(), json=since)
    assert got == {"endpointId": made["id"], "recovered": 0}


FILTERS = [("status=lost", "status"), ("limit=101", "limit"), ("endpointId=&limit=x", "limit")]


@pytest.mark.parametrize(
    ("query", "field"),
    [*FILTERS, ("eventType=customer.deleted", "eventType")],
)
async def test_an_unknown_message_filter_is_a_400_naming_it(app, query, field):
    r = await app.api.call("GET", f"{MSG}?{query}", app.key())
    refused(r, 400, "VALIDATION_ERROR", field)


# Isolation: another app's ids are answered like ids that do not exist.


def op(method: str, path: str, body: Any = None) -> Any:
    return pytest.param(method, path, body, id=f"{method} {path.removeprefix('/v1/webhooks/')}")


OPS = [
    op("GET", EP + "/{e}"),
    op("PATCH", EP + "/{e}", {"description": "stolen"}),
    op("DELETE", EP + "/{e}"),
    op("POST", EP + "/{e}/rotate-secret"),
    op("POST", EP + "/{e}/enable"),
    op("POST", EP + "/{e}/test"),
    op("POST", EP + "/{e}/recover", {"since": PAST}),
    op("GET", MSG + "?endpointId={e}"),
    op("GET", MSG + "/{m}"),
    op("GET", MSG + "/{m}/attempts"),
    op("POST", MSG + "/{m}/retry", {}),
]


@pytest.mark.parametrize("other", ["same-tenant", "other-tenant"])
@pytest.mark.parametrize(("method", "path", "body"), OPS)
async def test_another_apps_endpoint_or_message_is_answered_like_an_unknown_id(
    apps, pool, other, method, path, body
):
    a = apps()
    b = apps(a.tenant_id if other == "same-tenant" else None)
    made = await a.endpoint(DEAD)
    sent = await a.api.ok("POST", f"{EP}/{made['id']}/test", a.key(), 202)
    before = await stored(pool, made, sent)
    kwargs = {} if body is None else {"json": body}
    foreign = await b.api.call(method, path.format(e=made["id"], m=sent["id"]), b.key(), **kwargs)
    unknown = path.format(e=new_id("we"), m=new_id("evt"))
    missing = await b.api.call(method, unknown, b.key(), **kwargs)
    assert foreign.status_code == 404, foreign.text
    assert answer(foreign) == answer(missing)
    assert await stored(pool, made, sent) == before


async def test_a_retry_cannot_target_another_apps_endpoint(apps, pool):
    a, b = apps(), apps()
    theirs = await a.endpoint(DEAD)
    mine = await b.endpoint(DEAD)
    sent = await b.api.ok("POST", f"{EP}/{mine['id']}/test", b.key(), 202)
    before = await row_of(pool, "deliveries", "message_id", sent["id"])
    path = f"{MSG}/{sent['id']}/retry"
    foreign = await b.api.call("POST", path, b.key(), json={"endpointId": theirs["id"]})
    missing = await b.api.call("POST", path, b.key(), json={"endpointId": new_id("we")})
    refused(foreign, 404, "ENDPOINT_NOT_FOUND")
    assert answer(foreign) == answer(missing)
    assert await row_of(pool, "deliveries", "message_id", sent["id"]) == before


async def test_lists_never_show_another_apps_rows(apps):
    a = apps()
    made = await a.endpoint(DEAD)
    sent = await a.api.ok("POST", f"{EP}/{made['id']}/test", a.key(), 202)
    empty = {"data": [], "hasMore": False}
    for other in (apps(a.tenant_id), apps()):
        assert await listed(other) == empty
        first = "we_" + "0" * 26  # sorts before every endpoint
        assert await other.api.ok("GET", f"{EP}?startingAfter={first}", other.key()) == empty
        for query in ("", "?eventType=webhook.test", "?status=pending"):
            assert await other.api.ok("GET", f"{MSG}{query}", other.key()) == empty, query
    mine = await a.api.ok("GET", f"{MSG}?endpointId={made['id']}", a.key())
    assert [m["id"] for m in mine["data"]] == [sent["id"]]


# The viewer role reads and does not write.


def member(app: App, role: str) -> Scope:
    return Scope(
        principal=Principal(kind="member", id=new_id("mem")),
        tenant_id=app.tenant_id,
        app_id=app.id,
        role=role,  # type: ignore[arg-type]
    )


async def test_a_viewer_reads_endpoints_and_messages(app):
    made = await app.endpoint(DEAD)
    sent = await app.api.ok("POST", f"{EP}/{made['id']}/test", app.key(), 202)
    viewer = member(app, "viewer")
    got = await app.api.ok("GET", f"{EP}/{made['id']}", viewer)
    assert got["id"] == made["id"] and "secret" not in got
    assert [e["id"] for e in (await listed(app, viewer))["data"]] == [made["id"]]
    page = await app.api.ok("GET", f"{MSG}?endpointId={made['id']}", viewer)
    assert [m["id"] for m in page["data"]] == [sent["id"]]
    assert (await app.api.ok("GET", f"{MSG}/{sent['id']}", viewer))["id"] == sent["id"]
    assert (await app.api.ok("GET", f"{MSG}/{sent['id']}/attempts", viewer))["data"] == []


WRITES = [op("POST", EP, {"url": DEAD}), *(w for w in OPS if w.values[0] != "GET")]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
async def test_a_viewer_gets_403_on_every_write_and_changes_nothing(app, pool, method, path, body):
    made = await app.endpoint(DEAD)
    sent = await app.api.ok("POST", f"{EP}/{made['id']}/test", app.key(), 202)
    before = [await listed(app), *await stored(pool, made, sent)]
    path = path.format(e=made["id"], m=sent["id"])
    r = await app.api.call(method, path, member(app, "viewer"), json=body)
    refused(r, 403, "FORBIDDEN")
    assert [await listed(app), *await stored(pool, made, sent)] == before
    admin = await app.api.call(method, path, member(app, "admin"), json=body)
    assert admin.status_code < 300, admin.text  # the same request from an admin is taken
