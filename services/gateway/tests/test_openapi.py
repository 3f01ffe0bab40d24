"""One OpenAPI document merged from every upstream, and the server-rendered docs page."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from stackbe_common.errors import ErrorBody
from stackbe_gateway.routes import ROUTES

from .support import FakeIdentity


def _document(prefix: str, thing_field: str) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Thing"}
    return {
        "openapi": "3.1.0",
        "info": {"title": prefix, "version": "1"},
        "paths": {
            f"/v1/{prefix}": {
                "get": {
                    "summary": f"List {prefix}",
                    "operationId": f"list{prefix}",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer"},
                            "description": "Page size",
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"application/json": {"schema": ref}},
                        },
                        "400": {  # the framework's own shape, as Litestar writes it
                            "description": "Bad request syntax or unsupported method",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["detail", "status_code"],
                                        "properties": {"detail": {"type": "string"}},
                                    }
                                }
                            },
                        },
                    },
                },
                "post": {
                    "summary": f"Create {prefix}",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref}},
                    },
                    "responses": {"201": {"description": "Created"}},
                },
            },
            f"/v1/{prefix}/{{id}}": {
                "get": {
                    "summary": f"Get one of {prefix}",
                    "responses": {"404": {"description": "Nope"}},
                }
            },
            "/health": {"get": {"summary": "health"}},
            "/schema/openapi.json": {"get": {"summary": "schema"}},
            "/v1/not-routed-here": {"get": {"summary": "hidden"}},
        },
        "components": {
            "schemas": {
                "Thing": {
                    "type": "object",
                    "required": [thing_field],
                    "properties": {
                        thing_field: {"type": "string", "description": f"The {thing_field}"}
                    },
                },
                f"{prefix.capitalize()}Only": {"type": "object"},
            }
        },
    }


async def test_openapi_json_merges_every_upstream_into_one_public_document(
    make_gateway: Any, make_upstream: Any, identity: FakeIdentity
) -> None:
    alpha, beta = await make_upstream(), await make_upstream()
    alpha.openapi, beta.openapi = _document("alpha", "name"), _document("beta", "size")

    async with make_gateway(
        routes={"/v1/alpha": "alpha", "/v1/beta": "beta"},
        upstreams={"alpha": alpha.url, "beta": beta.url},
    ) as gateway:
        response = await gateway.get("/openapi.json")

    assert response.status_code == 200, response.text
    doc = response.json()
    assert set(doc["paths"]) == {"/v1/alpha", "/v1/alpha/{id}", "/v1/beta", "/v1/beta/{id}"}
    schemas = doc["components"]["schemas"]
    assert schemas["Thing"]["required"] == ["name"]
    assert schemas["BetaThing"]["required"] == ["size"]
    assert {"AlphaOnly", "BetaOnly"} <= set(schemas)
    beta_ref = doc["paths"]["/v1/beta"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]["$ref"]
    assert beta_ref == "#/components/schemas/BetaThing"
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    assert doc["security"] == [{"bearerAuth": []}]
    assert "x-ratelimit-limit" in response.headers
    # Errors are documented as StackBE answers them, whatever the service's framework says.
    bad = doc["paths"]["/v1/alpha"]["get"]["responses"]["400"]["content"]["application/json"]
    assert bad["schema"] == {"$ref": "#/components/schemas/Error"}
    error = schemas["Error"]
    assert set(error["properties"]) == {f.encode_name for f in msgspec.structs.fields(ErrorBody)}
    assert set(error["required"]) == {
        f.encode_name for f in msgspec.structs.fields(ErrorBody) if f.required
    }


async def test_openapi_json_is_unavailable_when_no_upstream_answers(
    make_gateway: Any, identity: FakeIdentity
) -> None:
    async with make_gateway(
        upstreams=dict.fromkeys(ROUTES.values(), "http://127.0.0.1:9")
    ) as gateway:
        response = await gateway.get("/openapi.json")

    assert response.status_code == 503
    assert response.json()["code"] == "SERVICE_UNAVAILABLE"


async def test_docs_page_renders_every_operation_without_external_assets(
    make_gateway: Any, make_upstream: Any, identity: FakeIdentity
) -> None:
    alpha, beta = await make_upstream(), await make_upstream()
    alpha.openapi, beta.openapi = _document("alpha", "name"), _document("beta", "size")
    alpha.openapi["paths"]["/v1/alpha"]["get"]["description"] = "<script>alert(1)</script>"

    async with make_gateway(
        routes={"/v1/alpha": "alpha", "/v1/beta": "beta"},
        upstreams={"alpha": alpha.url, "beta": beta.url},
    ) as gateway:
        response = await gateway.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for text in (
        "/v1/alpha",
        "/v1/beta/{id}",
        "List alpha",
        "Create beta",
        "Get one of beta",
        "limit",
        "Page size",
        'id="schema-betathing"',
        "The size",
        "required",
        ">post<",
        ">get<",
    ):
        assert text in html, text
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert not re.search(r"https?://", html)
    assert not re.search(r"""(src|href)\s*=\s*["']?//""", html)
    assert "<style>" in html
