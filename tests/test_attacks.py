"""Attacks through the gateway on the real platform: forged tokens, hostile text in every
string field, hostile bodies, sign-in token guessing. Each is refused with the documented
error, or stored and given back exactly, and changes nothing else.

(Also shown elsewhere: alg none, foreign keys, expired and revoked credentials and scope
headers in test_e2e_bad_credentials.py; webhook URLs aimed at internal addresses in
test_e2e_webhooks.py and the webhooks service's test_ssrf.py; sign-in link requests per
email and per address in identity's test_auth.py.)"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import httpx

from .conftest import assert_error, bearer, new_app, new_tenant

# SQL metacharacters, quoting, LIKE wildcards, escapes, and unicode that is easy to
# mangle: combining marks, astral-plane letters and emoji, right-to-left and zero-width
# characters, the replacement character, and NFC/NFD twins.
HOSTILE = [
    "Robert'); DROP TABLE customers;--",
    "' OR '1'='1' /* */ UNION SELECT * FROM api_keys --",
    '"double" \\back\\slash\\ %percent% _under_ $1 $$dollar$$ ;',
    "Zo\u00eb \U0001d518\U0001d52b\U0001d526 \u2603 \ufffd",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467 family, \U0001f1fa\U0001f1e6 flag",
    "\u202eevil\u202c \u200bzero\u200dwidth\u2060 \u05e2\u05d1\u05e8\u05d9\u05ea \u0627\u0644",
    "e\u0301 vs \u00e9, tab\tnew\nline\r",
]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_a_token_signed_hs256_with_the_platforms_public_key_is_refused(
    http: httpx.AsyncClient,
) -> None:
    """Key confusion: the public key of /.well-known/jwks.json used as an HMAC secret."""
    tenant = await new_tenant(http)
    [key] = (await http.get("/.well-known/jwks.json")).json()["keys"][:1]
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT", "kid": key["kid"]}
    claims = {
        "iss": "stackbe",
        "aud": "stackbe-dashboard",
        "sub": "mem_x",
        "tid": tenant["tenant"]["id"],
        "role": "owner",
        "sid": "sess_x",
        "iat": now,
        "exp": now + 600,
    }
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    for secret in (key["x"].encode(), base64.urlsafe_b64decode(key["x"] + "==")):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(mac)}"
        r = await http.post("/v1/apps", headers=bearer(token), json={"name": "Planted"})
        assert_error(r, 401, "UNAUTHORIZED")
    apps = await http.get("/v1/apps", headers=bearer(tenant["apiKey"]))
    assert apps.json()["data"] == []


async def test_a_customers_token_is_refused_where_a_dashboard_token_belongs(
    http: httpx.AsyncClient,
) -> None:
    """A genuinely signed token for another audience (an app's customer) gets nothing of
    the tenant's: the dashboard's endpoints refuse it, and it reaches no other app."""
    tenant = await new_tenant(http)
    app_id, key = await new_app(http, tenant["apiKey"])
    other_app, _ = await new_app(http, tenant["apiKey"])
    customer = await http.post(
        "/v1/customers", headers=bearer(key), json={"email": "c@example.com"}
    )
    session = await http.post(
        f"/v1/customers/{customer.json()['id']}/sessions", headers=bearer(key)
    )
    assert session.status_code == 201, session.text
    token = session.json()["sessionToken"]
    for method, path in (("GET", "/v1/members"), ("GET", "/v1/apps"), ("POST", "/v1/apps")):
        r = await http.request(method, path, headers=bearer(token), json={"name": "Planted"})
        assert r.status_code in (401, 403), (path, r.text)
    r = await http.get(f"/v1/apps/{other_app}/auth/session", headers=bearer(token))
    assert r.status_code in (401, 404), r.text
    mine = await http.get(f"/v1/apps/{app_id}/auth/session", headers=bearer(token))
    assert mine.status_code == 200, mine.text  # the token does work where it belongs
    names = [
        a["name"]
        for a in (await http.get("/v1/apps", headers=bearer(tenant["apiKey"]))).json()["data"]
    ]
    assert "Planted" not in names


async def test_hostile_text_in_every_string_field_is_stored_and_returned_verbatim(
    http: httpx.AsyncClient,
) -> None:
    for n, text in enumerate(HOSTILE):  # a tenant each: its plan may allow few apps
        tenant_key = (await new_tenant(http))["apiKey"]
        made: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        app = await http.post("/v1/apps", headers=bearer(tenant_key), json={"name": text})
        assert app.status_code == 201, app.text
        app_id = app.json()["id"]
        made.append((f"/v1/apps/{app_id}", {"name": text}, app.json()))
        key = (
            await http.post(
                f"/v1/apps/{app_id}/api-keys", headers=bearer(tenant_key), json={"name": text}
            )
        ).json()
        assert key["name"] == text.strip()  # a name loses the white space around it
        as_app = bearer(key["key"])
        metadata = {text[:40]: text, "plain": text}
        product_body = {"name": text, "description": text, "metadata": metadata}
        product = (await http.post("/v1/products", headers=as_app, json=product_body)).json()
        made.append((f"/v1/products/{product['id']}", product_body, product))
        plan_body = {
            "productId": product["id"],
            "name": text,
            "priceCents": 500,
            "currency": "USD",
            "interval": "month",
            "entitlements": {"tier": text},
            "metadata": metadata,
        }
        plan = (await http.post("/v1/plans", headers=as_app, json=plan_body)).json()
        made.append((f"/v1/plans/{plan['id']}", plan_body, plan))
        customer_body = {
            "email": f"hostile-{n}-{secrets.token_hex(3)}@example.com",
            "name": text,
            "externalId": text,
            "metadata": metadata,
        }
        customer = (await http.post("/v1/customers", headers=as_app, json=customer_body)).json()
        made.append((f"/v1/customers/{customer['id']}", customer_body, customer))
        endpoint_body = {"url": "http://127.0.0.1:9/hooks", "description": text}
        endpoint = (
            await http.post("/v1/webhooks/endpoints", headers=as_app, json=endpoint_body)
        ).json()
        made.append((f"/v1/webhooks/endpoints/{endpoint['id']}", endpoint_body, endpoint))
        for path, sent, answered in made:
            headers = bearer(tenant_key) if path.startswith("/v1/apps/") else as_app
            stored = (await http.get(path, headers=headers)).json()
            for field, value in sent.items():
                if field in ("url", "productId", "priceCents", "currency", "interval", "email"):
                    continue
                if field == "name":  # a name loses the white space around it (docs/api.md)
                    value = value.strip()
                assert answered[field] == value, (path, field)  # as answered at once
                assert stored[field] == value, (path, field)  # and as read back
        # The text as a filter finds that customer exactly, and only it.
        found = await http.get("/v1/customers", headers=as_app, params={"externalId": text})
        assert [c["id"] for c in found.json()["data"]] == [customer["id"]]
        like = await http.get("/v1/customers", headers=as_app, params={"externalId": "%"})
        assert like.json()["data"] == []  # a wildcard is a character, not a pattern


async def test_deeply_nested_and_oversized_bodies_are_refused_and_change_nothing(
    http: httpx.AsyncClient,
) -> None:
    tenant_key = (await new_tenant(http))["apiKey"]
    app_id, key = await new_app(http, tenant_key)
    as_app = {**bearer(key), "Content-Type": "application/json"}
    deep = b'{"email": "d@example.com", "metadata": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001
    lists = (
        b'{"email": "d@example.com", "metadata": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    )
    nested_metadata = {"email": "d@example.com", "metadata": {"a": {"b": {"c": 1}}}}
    for body in (deep, lists, json.dumps(nested_metadata).encode()):
        r = await http.post("/v1/customers", headers=as_app, content=body)
        assert_error(r, 400, "VALIDATION_ERROR")
    wide = {"email": "w@example.com", "metadata": {f"k{i}": i for i in range(51)}}
    r = await http.post("/v1/customers", headers=as_app, json=wide)
    assert_error(r, 400, "VALIDATION_ERROR")
    assert "metadata" in r.json()["message"]
    huge = b'{"email": "h@example.com", "name": "' + b"x" * (1024 * 1024) + b'"}'
    r = await http.post("/v1/customers", headers=as_app, content=huge)
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    listed = await http.get("/v1/customers", headers=bearer(key))
    assert listed.json()["data"] == []
    alive = await http.get(f"/v1/apps/{app_id}", headers=bearer(tenant_key))
    assert alive.status_code == 200  # and the services answer as before


async def test_guessing_sign_in_tokens_is_rate_limited_per_address(gateway_url: str) -> None:
    """A guesser from one address (its own loopback address here) is cut off after the
    anonymous budget of 300 a minute, with Retry-After; other addresses go on. (A token is
    256 random bits, so the budget is not what protects it, only what bounds the load.)"""
    guesser = httpx.AsyncHTTPTransport(local_address="127.0.0.77")
    async with httpx.AsyncClient(base_url=gateway_url, transport=guesser, timeout=10) as g:
        codes: list[int] = []
        for _ in range(310):
            r = await g.post("/v1/auth/verify", json={"token": secrets.token_urlsafe(32)})
            codes.append(r.status_code)
            if r.status_code == 429:
                break
        assert set(codes[:-1]) == {401} and codes[-1] == 429, codes[-3:]
        assert_error(r, 429, "RATE_LIMITED")
        assert int(r.headers["retry-after"]) > 0
        app_guess = await g.post(
            "/v1/apps/app_00000000000000000000000000/auth/verify", json={"token": "x"}
        )
        assert app_guess.status_code == 429  # the same budget covers every sign-in
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as other:
        r = await other.post("/v1/auth/verify", json={"token": secrets.token_urlsafe(32)})
        assert r.status_code == 401  # another address is not held up
    await asyncio.sleep(0)
