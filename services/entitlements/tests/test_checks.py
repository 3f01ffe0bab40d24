"""Every check rule, through the HTTP API, on projections built from events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from .conftest import EXAMPLE, App, eventually

PLAN = {
    **EXAMPLE,
    "sso": True,
    "beta": False,
    "seats": 0,
    "storageGb": -1,
    "support": "priority",
    "tier": "",
    "regions": ["eu", "us"],
    "nothing": [],
}

# (feature, query, hasAccess, value, reason, remaining)
RULES = [
    ("analytics", "", True, True, None, None),  # listed in features
    ("exports", "", True, True, None, None),
    ("projects", "", True, 10, None, 10),  # the example's limit
    ("projects", "&quantity=10", True, 10, None, 10),
    ("projects", "&quantity=11", False, 10, "LIMIT_EXCEEDED", 10),
    ("apiCallsPerMonth", "&quantity=100000", True, 100000, None, 100000),
    ("unknownKey", "", False, None, "FEATURE_NOT_AVAILABLE", None),
    ("sso", "", True, True, None, None),  # boolean as is
    ("beta", "", False, False, "FEATURE_NOT_AVAILABLE", None),
    ("seats", "", False, 0, "FEATURE_NOT_AVAILABLE", 0),  # integer 0
    ("storageGb", "&quantity=1000000", True, -1, None, None),  # -1 unlimited
    ("support", "", True, "priority", None, None),  # non-empty string
    ("tier", "", False, "", "FEATURE_NOT_AVAILABLE", None),  # empty string
    ("regions", "", True, ["eu", "us"], None, None),  # non-empty list
    ("regions", "&value=eu", True, ["eu", "us"], None, None),  # contains value
    ("regions", "&value=ap", False, ["eu", "us"], "FEATURE_NOT_AVAILABLE", None),
    ("nothing", "", False, [], "FEATURE_NOT_AVAILABLE", None),  # empty list
    ("features", "&value=exports", True, ["analytics", "exports"], None, None),
]


@pytest.fixture
async def subscriber(api, app):
    plan = await app.plan(PLAN)
    customer = await app.customer(external_id="user-42")
    await app.subscribe(customer, plan)
    return customer


@pytest.mark.parametrize(("feature", "query", "access", "value", "reason", "remaining"), RULES)
async def test_each_rule_of_a_check(
    api, app, subscriber, feature, query, access, value, reason, remaining
):
    body = await api.ok(
        "GET", f"/v1/entitlements/check/{feature}?customerId={subscriber}{query}", app.key()
    )
    assert body["feature"] == feature
    assert body["hasAccess"] is access
    assert body.get("value") == value
    assert body.get("reason") == reason
    assert body.get("remaining") == remaining


async def test_the_customer_can_be_named_by_external_id(api, app, subscriber):
    body = await api.ok("GET", "/v1/entitlements/check/analytics?externalId=user-42", app.key())
    assert body["hasAccess"] is True
    whole = await api.ok("GET", "/v1/entitlements?externalId=user-42", app.key())
    assert whole["customerId"] == subscriber and whole["entitlements"] == PLAN
    assert (whole["planName"], whole["status"]) == ("Pro", "active")


@pytest.mark.parametrize("status", ["trialing", "active", "past_due"])
async def test_statuses_with_access(api, app, status):
    plan = await app.plan(EXAMPLE)
    customer = await app.customer()
    await app.subscribe(customer, plan, status=status)
    body = await api.ok("GET", f"/v1/entitlements/check/analytics?customerId={customer}", app.key())
    assert body["hasAccess"] is True


@pytest.mark.parametrize("status", ["incomplete", "paused", "canceled"])
async def test_statuses_without_access(api, app, status):
    plan = await app.plan(EXAMPLE)
    customer = await app.customer()
    await app.subscribe(customer, plan, status=status)
    body = await api.ok("GET", f"/v1/entitlements/check/analytics?customerId={customer}", app.key())
    assert (body["hasAccess"], body["reason"]) == (False, "NO_ACTIVE_SUBSCRIPTION")
    whole = await api.ok("GET", f"/v1/entitlements?customerId={customer}", app.key())
    assert (whole["status"], whole["entitlements"]) == (status, {})


async def test_past_due_after_its_grace_period_has_no_access(api, app):
    plan = await app.plan(EXAMPLE)
    customer = await app.customer()
    ended = datetime.now(UTC) - timedelta(seconds=1)
    await app.subscribe(customer, plan, status="past_due", grace_ends_at=ended)
    body = await api.ok("GET", f"/v1/entitlements/check/analytics?customerId={customer}", app.key())
    assert (body["hasAccess"], body["reason"]) == (False, "NO_ACTIVE_SUBSCRIPTION")


async def test_unknown_customers_and_other_apps_customers_have_no_subscription(api, app, pool):
    plan = await app.plan(EXAMPLE)
    customer = await app.customer(external_id="mine")
    await app.subscribe(customer, plan)
    other = App(pool, tenant_id=app.tenant_id)
    for query in (f"customerId={customer}", "externalId=mine", "customerId=cust_" + "0" * 26):
        body = await api.ok("GET", f"/v1/entitlements/check/analytics?{query}", other.key())
        assert (body["hasAccess"], body["reason"]) == (False, "NO_ACTIVE_SUBSCRIPTION"), query
        whole = await api.ok("GET", f"/v1/entitlements?{query}", other.key())
        assert whole["entitlements"] == {} and whole["planId"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "customerId"),
        ("customerId=cust_x", "customerId"),
        ("customerId=cust_" + "0" * 26 + "&externalId=a", "customerId"),
        ("customerId=cust_" + "0" * 26 + "&quantity=-1", "quantity"),
        ("customerId=cust_" + "0" * 26 + "&quantity=lots", "quantity"),
    ],
)
async def test_a_bad_check_is_a_400_naming_the_field(api, app, query, field):
    r = await api.call("GET", f"/v1/entitlements/check/projects?{query}", app.key())
    assert r.status_code == 400 and r.json()["field"] == field, r.text


async def test_a_new_subscription_reaches_a_cached_no_answer(api, app):
    plan = await app.plan(EXAMPLE)
    customer = await app.customer()

    async def access() -> bool:
        body = await api.ok(
            "GET", f"/v1/entitlements/check/analytics?customerId={customer}", app.key()
        )
        return body["hasAccess"]

    assert await access() is False  # cached: no projection yet
    await app.subscribe(customer, plan)
    assert await eventually(access, True) is True


def _fast_path_answers() -> float:
    return REGISTRY.get_sample_value("stackbe_entitlements_checks_total") or 0.0


def _answer(r):
    body = r.json()
    body.pop("requestId", None)  # each request has its own
    return r.status_code, body


async def test_the_fast_path_answers_checks_exactly_as_the_full_app(api, full_api, app, subscriber):
    before = _fast_path_answers()
    for feature, query, *_ in RULES:
        path = f"/v1/entitlements/check/{feature}?customerId={subscriber}{query}"
        served, reference = (
            await api.call("GET", path, app.key()),
            await full_api.call("GET", path, app.key()),
        )
        assert (served.status_code, served.json()) == (reference.status_code, reference.json())
        assert served.headers["content-type"] == "application/json"
        assert served.headers["x-request-id"].startswith("req_")
    assert _fast_path_answers() - before == len(RULES)


@pytest.mark.parametrize(
    "query",
    [
        "customerId={c}&quantity=%2B5",  # not plain digits
        "customerId={c}&quantity=5_0",
        "customerId={c}&quantity=",
        "customerId={c}&customerId={c}",  # repeated
        "customerId={c}&colour=red",  # unknown parameter
        "customerId=",
    ],
)
async def test_unusual_checks_get_the_full_apps_answer(api, full_api, app, subscriber, query):
    path = "/v1/entitlements/check/projects?" + query.format(c=subscriber)
    before = _fast_path_answers()
    served = await api.call("GET", path, app.key())
    reference = await full_api.call("GET", path, app.key())
    assert _answer(served) == _answer(reference)
    assert _fast_path_answers() == before


async def test_the_fast_path_verifies_the_gateways_signature(api, app, subscriber):
    path = f"/v1/entitlements/check/analytics?customerId={subscriber}"
    unsigned = await api.client.get(path)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "UNAUTHORIZED", unsigned.text
    forged = await api.client.get(path, headers={"x-stackbe-scope": "v1.e30.AAAA"})
    assert forged.status_code == 401, forged.text


def _loads() -> float:
    return sum(
        REGISTRY.get_sample_value("stackbe_entitlements_cache_loads_total", {"lookup": lookup})
        or 0.0
        for lookup in ("customerId", "externalId")
    )


async def test_a_warm_check_reads_nothing_from_postgres(api, app, subscriber):
    queries = [f"customerId={subscriber}", "externalId=user-42"]
    for query in queries:  # warm: the first of each may load
        await api.ok("GET", f"/v1/entitlements/check/projects?{query}", app.key())
    before = _loads()
    for n in range(20):
        body = await api.ok(
            "GET", f"/v1/entitlements/check/projects?{queries[n % 2]}&quantity={n}", app.key()
        )
        assert body["hasAccess"] is (n <= 10)
        whole = await api.ok("GET", f"/v1/entitlements?{queries[n % 2]}", app.key())
        assert whole["entitlements"] == PLAN
    assert _loads() == before
