"""One OpenAPI document for the whole public API, merged from every upstream's own.

Each service serves ``/schema/openapi.json`` behind its edge, so the gateway fetches it
like any request: through the pooled session with a signed anonymous scope. Internal
paths are dropped, and so is any path the route table would not send to the service that
documents it. Component names that clash between services with different content are
prefixed with the service name (and every ``$ref`` to them rewritten). The merged
document is cached for a minute (a few seconds if an upstream did not answer).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import msgspec

from stackbe_common.ids import new_id
from stackbe_common.logging import get_logger
from stackbe_common.scope import HEADER as SCOPE_HEADER
from stackbe_common.scope import Principal, Scope, sign_scope

from .proxy import RouteTable

__all__ = ["INTERNAL_PREFIXES", "OpenAPIMerger", "merge_documents"]

log = get_logger(__name__)

INTERNAL_PREFIXES = ("/health", "/ready", "/metrics", "/schema")
SCHEMA_PATH = "/schema/openapi.json"
FRESH_SECONDS = 60.0
PARTIAL_FRESH_SECONDS = 5.0

BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "A tenant API key (sbt_...), an app API key (sba_...) or a dashboard "
    "access token (JWT). Public endpoints need none.",
}
DESCRIPTION = (
    "The StackBE public API. Authenticate with `Authorization: Bearer <credential>`. "
    "Tenant-level credentials reach app-level endpoints by naming the app in "
    "`X-StackBE-App: app_...`. Errors share one body: `{statusCode, error, message, code, "
    "requestId}`. Every response carries `X-Request-Id` and `X-RateLimit-Limit`, "
    "`X-RateLimit-Remaining`, `X-RateLimit-Reset`."
)


def _internal(path: str) -> bool:
    """Probes, metrics and the services' own schema endpoints are not public API."""
    return path.startswith("/schema") or any(
        path == p or path.startswith(p + "/") for p in INTERNAL_PREFIXES
    )


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                renames.get(value, value)
                if key == "$ref" and isinstance(value, str)
                else _rewrite_refs(value, renames)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


# Every error answer, whoever gives it (docs/api.md, "Errors"): libs/common's ErrorBody.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["statusCode", "error", "message", "code"],
    "properties": {
        "statusCode": {"type": "integer"},
        "error": {"type": "string", "description": "the HTTP status phrase"},
        "message": {"type": "string"},
        "code": {"type": "string", "description": "machine-readable, e.g. CUSTOMER_NOT_FOUND"},
        "requestId": {"type": "string"},
        "field": {"type": "string", "description": "the offending field, for a 400"},
    },
}
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _errors_as_documented(item: dict[str, Any]) -> dict[str, Any]:
    """A path item whose error responses (4xx, 5xx) name StackBE's error body, in place
    of the framework's own validation-error shape."""
    out = {}
    for method, operation in item.items():
        responses = operation.get("responses") if isinstance(operation, dict) else None
        if isinstance(responses, dict):
            operation = {
                **operation,
                "responses": {
                    status: (
                        {**answer, "content": _ERROR_CONTENT}
                        if str(status)[:1] in ("4", "5") and isinstance(answer, dict)
                        else answer
                    )
                    for status, answer in responses.items()
                },
            }
        out[method] = operation
    return out


def merge_documents(documents: dict[str, dict[str, Any]], table: RouteTable) -> dict[str, Any]:
    """Merge per-service documents (in the given order) into one public document."""
    components: dict[str, dict[str, Any]] = {"schemas": {}}
    paths: dict[str, Any] = {}
    tags: dict[str, Any] = {}
    for service, document in documents.items():
        own = document.get("components") or {}
        renames: dict[str, str] = {}
        for kind, items in own.items():
            if kind == "securitySchemes" or not isinstance(items, dict):
                continue
            existing = components.get(kind, {})
            for name, value in items.items():
                if name in existing and existing[name] != value:
                    renames[f"#/components/{kind}/{name}"] = (
                        f"#/components/{kind}/{service.capitalize()}{name}"
                    )
        if renames:
            document = _rewrite_refs(document, renames)
            own = document.get("components") or {}
        for kind, items in own.items():
            if kind == "securitySchemes" or not isinstance(items, dict):
                continue
            target = components.setdefault(kind, {})
            for name, value in items.items():
                ref = f"#/components/{kind}/{name}"
                target[renames.get(ref, ref).rsplit("/", 1)[1]] = value
        for path, item in (document.get("paths") or {}).items():
            routed = table.match(path)
            if _internal(path) or routed is None or routed[0] != service:
                continue
            paths[path] = _errors_as_documented(item)
        for tag in document.get("tags") or []:
            if isinstance(tag, dict) and "name" in tag:
                tags.setdefault(tag["name"], tag)
    components["schemas"]["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = {"bearerAuth": BEARER_SCHEME}
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "StackBE API", "version": "1.0.0", "description": DESCRIPTION},
        "paths": dict(sorted(paths.items())),
        "components": components,
        "security": [{"bearerAuth": []}],
    }
    if tags:
        merged["tags"] = list(tags.values())
    return merged


class OpenAPIMerger:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        table: RouteTable,
        secret: bytes,
        fresh_seconds: float = FRESH_SECONDS,
    ) -> None:
        self._session, self._table, self._secret = session, table, secret
        self._fresh = fresh_seconds
        self._document: dict[str, Any] | None = None
        self._encoded = b""
        self._fresh_until = 0.0
        self._lock = asyncio.Lock()

    async def document_bytes(self) -> bytes | None:
        """The merged document as JSON, or None when no upstream answered."""
        if self._document is None or self._fresh_until <= time.monotonic():
            async with self._lock:
                if self._document is None or self._fresh_until <= time.monotonic():
                    await self._rebuild()
        return self._encoded if self._document is not None else None

    async def document(self) -> dict[str, Any] | None:
        await self.document_bytes()
        return self._document

    async def _rebuild(self) -> None:
        services = list(self._table.services.items())
        fetched = await asyncio.gather(*(self._fetch(name, base) for name, base in services))
        documents = {
            name: doc for (name, _), doc in zip(services, fetched, strict=True) if doc is not None
        }
        if not documents:
            if self._document is None:
                return
            # keep serving the last good document, but try again soon
            self._fresh_until = time.monotonic() + PARTIAL_FRESH_SECONDS
            return
        self._document = merge_documents(documents, self._table)
        self._encoded = msgspec.json.encode(self._document)
        complete = len(documents) == len(services)
        self._fresh_until = time.monotonic() + (self._fresh if complete else PARTIAL_FRESH_SECONDS)

    async def _fetch(self, service: str, base: str) -> dict[str, Any] | None:
        rid = new_id("req")
        scope = Scope(principal=Principal(kind="anonymous"), request_id=rid)
        headers = {
            SCOPE_HEADER: sign_scope(scope, self._secret),
            "x-request-id": rid,
            "accept": "application/json",
        }
        try:
            async with self._session.get(
                base + SCHEMA_PATH, headers=headers, timeout=aiohttp.ClientTimeout(total=5)
            ) as response:
                if response.status != 200:
                    log.warning("openapi.fetch_failed", service=service, status=response.status)
                    return None
                document = msgspec.json.decode(await response.read())
        except (TimeoutError, aiohttp.ClientError, msgspec.DecodeError) as exc:
            log.warning("openapi.fetch_failed", service=service, error=repr(exc))
            return None
        return document if isinstance(document, dict) else None
