"""Every validation rule of the catalog: a 400 naming the field, and nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from stackbe_common.ids import new_id

from .conftest import EXAMPLE_ENTITLEMENTS, App, new_app, outbox_subjects

MISSING = object()  # a case that leaves the field out of the body
BIG = 2**53


async def written(db, app: App) -> tuple[int, int, list[str]]:
    """What the app has in the catalog: products, plans and outbox subjects."""
    products = await db.fetchval("SELECT count(*) FROM products WHERE app_id = $1", app.id)
    plans = await db.fetchval("SELECT count(*) FROM plans WHERE app_id = $1", app.id)
    return products, plans, await outbox_subjects(db, app.id)


def refused(r, field: str | None, word: str | None = None, code: str = "VALIDATION_ERROR"):
    """A 400 naming ``field`` exactly, with ``word`` (the field by default) in the message."""
    assert r.status_code == 400, r.text
    body = r.json()
    assert (body["statusCode"], body["error"], body["code"]) == (400, "Bad Request", code)
    assert body.get("field") == field, body
    assert (word or field or "").lower() in body["message"].lower(), body


def with_fields(body: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    merged = {**body, **fields}
    return {k: v for k, v in merged.items() if v is not MISSING}


# Products

PRODUCT_CASES = [
    pytest.param({"name": MISSING}, "name", None, id="name-missing"),
    pytest.param({"name": ""}, "name", None, id="name-empty"),
    pytest.param({"name": " \t\n "}, "name", None, id="name-whitespace-only"),
    pytest.param({"name": "a" * 201}, "name", None, id="name-201-chars"),
    pytest.param({"name": "Wid\x00gets"}, "name", None, id="name-with-nul"),
    pytest.param({"name": 7}, "name", None, id="name-not-a-string"),
    pytest.param({"description": "d" * 2001}, "description", None, id="description-2001-chars"),
    pytest.param({"description": "a\x00b"}, "description", None, id="description-with-nul"),
    pytest.param(
        {"metadata": {f"k{i}": i for i in range(51)}}, "metadata", None, id="metadata-51-keys"
    ),
    pytest.param({"metadata": {"k" * 41: "v"}}, "metadata", None, id="metadata-key-41-chars"),
    pytest.param({"metadata": {"": "v"}}, "metadata", None, id="metadata-key-empty"),
    pytest.param({"metadata": {"k": "v" * 501}}, "metadata.k", "metadata", id="metadata-value-501"),
    pytest.param({"metadata": {"k": {"a": 1}}}, "metadata.k", "metadata", id="metadata-nested"),
    pytest.param({"metadata": {"k": [1]}}, "metadata.k", "metadata", id="metadata-list-value"),
    pytest.param({"metadata": ["k"]}, "metadata", None, id="metadata-not-an-object"),
    pytest.param({"nmae": "Widgets"}, "nmae", None, id="unknown-field"),
]


@pytest.mark.parametrize(("fields", "field", "word"), PRODUCT_CASES)
async def test_a_bad_product_is_refused_naming_the_field(api, db, fields, field, word):
    app = new_app()
    body = with_fields({"name": "Widgets"}, fields)
    r = await api.call("POST", "/v1/products", app.key(), json=body)
    refused(r, field, word)
    assert await written(db, app) == (0, 0, [])


@pytest.mark.parametrize(
    "body", [pytest.param([{"name": "Widgets"}], id="array"), pytest.param("x", id="string")]
)
async def test_a_product_body_that_is_not_an_object_is_refused(api, db, body):
    app = new_app()
    r = await api.call("POST", "/v1/products", app.key(), json=body)
    refused(r, None, "JSON object")
    assert await written(db, app) == (0, 0, [])


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"name": ""}, "name", id="name-empty"),
        pytest.param({"name": None}, "name", id="name-null"),
        pytest.param({"description": "d" * 2001}, "description", id="description-2001"),
        pytest.param({"metadata": {"k" * 41: 1}}, "metadata", id="metadata-key-41"),
        pytest.param({"nmae": "x"}, "nmae", id="unknown-field"),
    ],
)
async def test_a_bad_product_update_changes_nothing(api, db, fields, field):
    app = new_app()
    product = await api.product(app, description="Hosted", metadata={"line": "core"})
    before = await written(db, app)
    r = await api.call("PATCH", f"/v1/products/{product['id']}", app.key(), json=fields)
    refused(r, field)
    assert (await api.call("GET", f"/v1/products/{product['id']}", app.key())).json() == product
    assert await written(db, app) == before


# Plans: creation

ENT = EXAMPLE_ENTITLEMENTS

PLAN_CASES = [
    pytest.param({"priceCents": -1}, "priceCents", None, id="price-negative"),
    pytest.param({"priceCents": 10.5}, "priceCents", None, id="price-float"),
    pytest.param({"priceCents": "2900"}, "priceCents", None, id="price-string"),
    pytest.param({"priceCents": MISSING}, "priceCents", None, id="price-missing"),
    pytest.param({"priceCents": BIG}, "priceCents", None, id="price-2**53"),
    pytest.param({"priceCents": True}, "priceCents", None, id="price-bool"),
    pytest.param({"currency": "XXX"}, "currency", None, id="currency-XXX"),
    pytest.param({"currency": "EUX"}, "currency", None, id="currency-EUX"),
    pytest.param({"currency": "US"}, "currency", None, id="currency-US"),
    pytest.param({"currency": "DOLLAR"}, "currency", None, id="currency-DOLLAR"),
    pytest.param({"currency": "XTS"}, "currency", None, id="currency-XTS-test-code"),
    pytest.param({"currency": "HRK"}, "currency", None, id="currency-HRK-withdrawn"),
    pytest.param({"currency": "US1"}, "currency", None, id="currency-digit"),
    pytest.param({"currency": MISSING}, "currency", None, id="currency-missing"),
    pytest.param({"interval": "fortnight"}, "interval", None, id="interval-fortnight"),
    pytest.param({"interval": "Month"}, "interval", None, id="interval-capitalised"),
    pytest.param({"intervalCount": 0}, "intervalCount", None, id="count-0"),
    pytest.param({"intervalCount": 366, "interval": "day"}, "intervalCount", None, id="count-366"),
    pytest.param({"intervalCount": "1"}, "intervalCount", None, id="count-string"),
    pytest.param({"intervalCount": 37}, "intervalCount", None, id="count-37-months"),
    pytest.param({"intervalCount": 157, "interval": "week"}, "intervalCount", None, id="157-weeks"),
    pytest.param({"intervalCount": 4, "interval": "year"}, "intervalCount", None, id="4-years"),
    pytest.param({"trialDays": -1}, "trialDays", None, id="trial-negative"),
    pytest.param({"trialDays": 731}, "trialDays", None, id="trial-731"),
    pytest.param({"productId": "prod_123"}, "productId", None, id="product-id-malformed"),
    pytest.param({"productId": "plan_" + "0" * 26}, "productId", None, id="product-id-plan"),
    pytest.param({"name": "  "}, "name", None, id="name-whitespace"),
    pytest.param({"metadata": {"k": {"a": 1}}}, "metadata.k", "metadata", id="metadata-nested"),
    pytest.param({"nmae": "Pro"}, "nmae", None, id="unknown-field"),
    pytest.param({"entitlements": MISSING}, "entitlements", None, id="ent-missing"),
    pytest.param({"entitlements": ["projects"]}, "entitlements", None, id="ent-array"),
    pytest.param({"entitlements": "projects"}, "entitlements", None, id="ent-string"),
    pytest.param(
        {"entitlements": {f"k{i}": 1 for i in range(101)}}, "entitlements", None, id="ent-101-keys"
    ),
    pytest.param({"entitlements": {"1abc": 1}}, "entitlements", "1abc", id="key-digit-first"),
    pytest.param({"entitlements": {"has-dash": 1}}, "entitlements", "has-dash", id="key-dash"),
    pytest.param({"entitlements": {"a" * 65: 1}}, "entitlements", "a" * 65, id="key-65-chars"),
    pytest.param({"entitlements": {"has space": 1}}, "entitlements", "has space", id="key-space"),
    pytest.param({"entitlements": {"": 1}}, "entitlements", "entitlement key", id="key-empty"),
    pytest.param({"entitlements": {**ENT, "projects": 1.5}}, "entitlements.projects", None,
                 id="value-float"),
    pytest.param({"entitlements": {"projects": None}}, "entitlements.projects", None,
                 id="value-null"),
    pytest.param({"entitlements": {"projects": {"max": 1}}}, "entitlements.projects", None,
                 id="value-object"),
    pytest.param({"entitlements": {"projects": -2}}, "entitlements.projects", None,
                 id="value-minus-2"),
    pytest.param({"entitlements": {"projects": BIG}}, "entitlements.projects", None,
                 id="value-2**53"),
    pytest.param({"entitlements": {"projects": 2**64}}, "entitlements.projects", None,
                 id="value-2**64"),
    pytest.param({"entitlements": {"features": "analytics"}}, "entitlements.features", None,
                 id="features-string"),
    pytest.param({"entitlements": {"features": True}}, "entitlements.features", None,
                 id="features-bool"),
    pytest.param({"entitlements": {"features": ["a", 1]}}, "entitlements.features", None,
                 id="features-non-string"),
    pytest.param({"entitlements": {"features": ["a", ""]}}, "entitlements.features", None,
                 id="features-empty-string"),
    pytest.param({"entitlements": {"features": ["a", "b", "a"]}}, "entitlements.features", "'a'",
                 id="features-duplicate"),
    pytest.param({"entitlements": {"features": ["f" * 201]}}, "entitlements.features", None,
                 id="features-item-201"),
    pytest.param({"entitlements": {"features": [f"f{i}" for i in range(101)]}},
                 "entitlements.features", None, id="features-101-items"),
    pytest.param({"entitlements": {"regions": ["eu", ["us"]]}}, "entitlements.regions", None,
                 id="list-nested-list"),
    pytest.param({"entitlements": {"tier": "t" * 501}}, "entitlements.tier", None,
                 id="string-501"),
    pytest.param({"entitlements": {"tier": "gold\x00"}}, "entitlements.tier", None,
                 id="string-with-nul"),
    pytest.param({"gatewayMappings": {"stripe": {"priceId": "prod_abc"}}},
                 "gatewayMappings.stripe.priceId", "priceId", id="stripe-price-id"),
    pytest.param({"gatewayMappings": {"stripe": {"priceId": "price_"}}},
                 "gatewayMappings.stripe.priceId", "priceId", id="stripe-price-id-empty"),
    pytest.param({"gatewayMappings": {"stripe": {}}},
                 "gatewayMappings.stripe.priceId", "priceId", id="stripe-price-id-missing"),
    pytest.param({"gatewayMappings": {"paypal": {"planId": "P-1"}}},
                 "gatewayMappings.paypal", "paypal", id="gateway-unknown"),
]  # fmt: skip


def plan_body(product_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    base = {
        "productId": product_id,
        "name": "Pro",
        "priceCents": 2900,
        "currency": "USD",
        "interval": "month",
        "entitlements": EXAMPLE_ENTITLEMENTS,
    }
    return with_fields(base, fields)


@pytest.mark.parametrize(("fields", "field", "word"), PLAN_CASES)
async def test_a_bad_plan_is_refused_naming_the_field(api, db, fields, field, word):
    app = new_app()
    product = await api.product(app)
    before = await written(db, app)
    assert before == (1, 0, ["stackbe.catalog.product.created.v1"])
    r = await api.call("POST", "/v1/plans", app.key(), json=plan_body(product["id"], fields))
    refused(r, field, word)
    assert await written(db, app) == before


async def test_a_plan_body_that_is_not_an_object_is_refused(api, db):
    app = new_app()
    await api.product(app)
    before = await written(db, app)
    refused(await api.call("POST", "/v1/plans", app.key(), json=[1]), None, "JSON object")
    assert await written(db, app) == before


@pytest.mark.parametrize(
    "product_id",
    [
        pytest.param(None, id="unknown"),
        pytest.param("other-app", id="of-another-app"),
    ],
)
async def test_a_plan_of_a_product_the_app_does_not_have_is_404(api, db, product_id):
    app = new_app()
    await api.product(app)
    if product_id == "other-app":
        product_id = (await api.product(new_app(app.tenant_id)))["id"]
    before = await written(db, app)
    body = plan_body(product_id or new_id("prod"), {})
    r = await api.call("POST", "/v1/plans", app.key(), json=body)
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "PRODUCT_NOT_FOUND"
    assert await written(db, app) == before


KEYS_100 = {f"k{i}": i for i in range(100)}
SETTINGS = {"tier": "t" * 500, "features": [], "beta": False}
STRIPE = {"stripe": {"priceId": "price_1AbC_2"}}

ACCEPTED = [
    pytest.param({"currency": "usd"}, "currency", "USD", id="currency-lower-case"),
    pytest.param({"currency": "JPY"}, "currency", "JPY", id="currency-JPY"),
    pytest.param({"priceCents": 0}, "priceCents", 0, id="price-0"),
    pytest.param({"priceCents": BIG - 1}, "priceCents", BIG - 1, id="price-2**53-1"),
    pytest.param({"intervalCount": 36}, "intervalCount", 36, id="36-months"),
    pytest.param({"interval": "day", "intervalCount": 365}, "intervalCount", 365, id="365-days"),
    pytest.param({"interval": "week", "intervalCount": 156}, "intervalCount", 156, id="156-weeks"),
    pytest.param({"interval": "year", "intervalCount": 3}, "intervalCount", 3, id="3-years"),
    pytest.param({"trialDays": 730}, "trialDays", 730, id="trial-730"),
    pytest.param({"trialDays": 0}, "trialDays", 0, id="trial-0"),
    pytest.param({"entitlements": {}}, "entitlements", {}, id="ent-empty"),
    pytest.param({"entitlements": KEYS_100}, "entitlements", KEYS_100, id="ent-100-keys"),
    pytest.param({"entitlements": {"a" * 64: 1}}, "entitlements", {"a" * 64: 1}, id="key-64"),
    pytest.param({"entitlements": {"p": -1}}, "entitlements", {"p": -1}, id="value-unlimited"),
    pytest.param({"entitlements": {"p": BIG - 1}}, "entitlements", {"p": BIG - 1}, id="2**53-1"),
    pytest.param({"entitlements": SETTINGS}, "entitlements", SETTINGS, id="string-500"),
    pytest.param({"gatewayMappings": STRIPE}, "gatewayMappings", STRIPE, id="stripe-price-id"),
]


@pytest.mark.parametrize(("fields", "key", "value"), ACCEPTED)
async def test_a_plan_at_the_limits_is_accepted_and_stored_exactly(api, db, fields, key, value):
    app = new_app()
    product = await api.product(app)
    r = await api.call("POST", "/v1/plans", app.key(), json=plan_body(product["id"], fields))
    assert r.status_code == 201, r.text
    assert r.json()[key] == value
    fetched = (await api.call("GET", f"/v1/plans/{r.json()['id']}", app.key())).json()
    assert fetched[key] == value
    if key == "currency":
        stored = await db.fetchval("SELECT currency FROM plans WHERE id = $1", fetched["id"])
        assert stored == value
    assert await written(db, app) == (
        1,
        1,
        ["stackbe.catalog.product.created.v1", "stackbe.catalog.plan.created.v1"],
    )


# Plans: updates

IMMUTABLE = [
    pytest.param("priceCents", 1, id="priceCents"),
    pytest.param("priceCents", 2900, id="priceCents-same-value"),
    pytest.param("currency", "EUR", id="currency"),
    pytest.param("interval", "year", id="interval"),
    pytest.param("intervalCount", 2, id="intervalCount"),
    pytest.param("trialDays", 7, id="trialDays"),
    pytest.param("productId", None, id="productId"),  # another product of the app
    pytest.param("gatewayMappings", {"stripe": {"priceId": "price_new"}}, id="gatewayMappings"),
    pytest.param("status", "archived", id="status"),
]


async def plan_and_snapshot(api, db, app: App) -> tuple[dict[str, Any], Any]:
    product = await api.product(app)
    plan = await api.plan(app, product["id"], metadata={"tier": "gold"}, trialDays=14)
    return plan, await written(db, app)


@pytest.mark.parametrize(("name", "value"), IMMUTABLE)
async def test_patching_an_immutable_plan_field_is_refused_and_changes_nothing(
    api, db, name, value
):
    app = new_app()
    plan, before = await plan_and_snapshot(api, db, app)
    if name == "productId":
        value = (await api.product(app, name="Other"))["id"]
        before = await written(db, app)
    # Sent with a change that alone would be allowed: none of the request applies.
    body = {"name": "Renamed", "entitlements": {"projects": 99}, name: value}
    r = await api.call("PATCH", f"/v1/plans/{plan['id']}", app.key(), json=body)
    refused(r, name, code="PLAN_IMMUTABLE_FIELD")
    after = (await api.call("GET", f"/v1/plans/{plan['id']}", app.key())).json()
    assert after == plan and after["version"] == 1
    assert await written(db, app) == before


@pytest.mark.parametrize(
    ("body", "field", "word"),
    [
        pytest.param({"entitlements": {"projects": 1.5}}, "entitlements.projects", None,
                     id="value-float"),
        pytest.param({"name": "Renamed", "entitlements": {"features": "analytics"}},
                     "entitlements.features", None, id="features-string-with-rename"),
        pytest.param({"entitlements": {"1abc": 1}}, "entitlements", "1abc", id="key-digit-first"),
        pytest.param({"entitlements": {"projects": BIG}}, "entitlements.projects", None,
                     id="value-2**53"),
        pytest.param({"entitlements": ["projects"]}, "entitlements", None, id="not-an-object"),
        pytest.param({"entitlements": None}, "entitlements", None, id="null"),
        pytest.param({"name": ""}, "name", None, id="name-empty"),
        pytest.param({"metadata": {"k": {"a": 1}}}, "metadata.k", "metadata", id="metadata-nested"),
        pytest.param({"nmae": "x"}, "nmae", None, id="unknown-field"),
    ],
)  # fmt: skip
async def test_a_bad_plan_update_is_refused_and_changes_nothing(api, db, body, field, word):
    app = new_app()
    plan, before = await plan_and_snapshot(api, db, app)
    r = await api.call("PATCH", f"/v1/plans/{plan['id']}", app.key(), json=body)
    refused(r, field, word)
    assert (await api.call("GET", f"/v1/plans/{plan['id']}", app.key())).json() == plan
    assert await written(db, app) == before
