"""Building a service's Litestar app: errors, edge, dependencies, health and metrics."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeAlias, TypeVar

import asyncpg
import msgspec
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, ValidationException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.params import BodyKwarg, SkipValidationMarker
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import ControllerRouterHandler

from .crypto import Keyring
from .db import POSTGRES_UNAVAILABLE, database_unavailable
from .edge import EdgeContext, ServiceEdge
from .errors import (
    INTERNAL_MESSAGE,
    DatabaseUnavailable,
    InvalidInput,
    StackBEError,
    error_body,
    status_of,
)
from .logging import get_logger
from .scope import Scope
from .uow import UnitOfWork

__all__ = [
    "MAX_BODY_BYTES",
    "Caller",
    "Conn",
    "Json",
    "PublicConn",
    "Uow",
    "caller_of",
    "create_service_app",
    "parse",
    "provide_caller",
    "provide_conn",
    "provide_uow",
]

log = get_logger(__name__)

_FIELD_IN_MESSAGE = re.compile(r"field `([^`]+)`")

# What every route may ask for, by these parameter names: ``conn``, ``caller``, ``uow``.
Conn = NamedDependency[asyncpg.Connection]
# A route whose credential is in its body (a sign-in or refresh token, a sign-up): its
# connection is not narrowed to the tenant of whatever bearer came along.
PublicConn = NamedDependency[asyncpg.Connection]
Caller = NamedDependency[Scope]
Uow = NamedDependency[UnitOfWork]

T = TypeVar("T")

# A JSON request body documented as ``T`` in OpenAPI but handed over undecoded: routes
# call ``parse(data, T)``, which is strict (``"7"`` is not an integer), unlike Litestar's
# own conversion.
Json: TypeAlias = Annotated[
    T, BodyKwarg(media_type=RequestEncodingType.JSON), SkipValidationMarker()
]

_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_KEY_PATH = re.compile(r" - at `key` in `\$\.?([^`]*)`$")


_IN_OBJECT = re.compile(r"^([A-Za-z_][\w.]*)\[\.\.\.\]$")  # "metadata[...]": a value of an object


def _with_only(raw: Any, path: list[str], key: str) -> Any:
    """``raw`` with the object at ``path`` cut down to its ``key`` alone."""
    if not path:
        return {key: raw[key]}
    return {**raw, path[0]: _with_only(raw[path[0]], path[1:], key)}


def _offending_key(raw: Any, type_: type[Any], dotted: str) -> str | None:
    """Which key of the object at ``dotted`` holds the value msgspec refused (its message
    says only ``[...]``): the one that alone still fails the same way."""
    path = dotted.split(".")
    container = raw
    for part in path:
        if not isinstance(container, dict) or part not in container:
            return None
        container = container[part]
    if not isinstance(container, dict):
        return None
    for key in container:
        try:
            msgspec.convert(_with_only(raw, path, key), type_, strict=True)
        except msgspec.ValidationError as exc:
            if str(exc).endswith(f"`$.{dotted}[...]`"):
                return str(key)
    return None


def parse(raw: Any, type_: type[T]) -> T:
    """Decode a JSON body strictly into ``type_``; a mismatch is a 400 naming the field,
    down to the key for a value inside an object (``metadata.plan``)."""
    try:
        return msgspec.convert(raw, type_, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        key = _KEY_PATH.search(message)  # an object's key is wrong: "at `key` in `$.x`"
        at = key or _PATH.search(message)
        field = at.group(1) if at and at.group(1) else None
        inside = _IN_OBJECT.match(field or "") if not key else None
        if inside:
            offending = _offending_key(raw, type_, inside.group(1))
            field = f"{inside.group(1)}.{offending}" if offending is not None else inside.group(1)
        named = _FIELD_IN_MESSAGE.search(message)
        if named:
            field = f"{field}.{named.group(1)}" if field else named.group(1)
        where = f" at `{field}`" if field else ""
        pattern = _KEY_PATH if key else _PATH
        text = pattern.sub("", message) + (" (in a key)" if key else "") + where
        if text.startswith("Expected `object`") and not at:
            text = "Request body must be a JSON object"
        raise InvalidInput(text, field=field) from None


MAX_BODY_BYTES = 1024 * 1024

_CODE_BY_STATUS = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


def _request_id(request: Request[Any, Any, Any]) -> str | None:
    ctx = request.scope.get("stackbe")
    return ctx.request_id if isinstance(ctx, EdgeContext) else None


def _json(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=body, status_code=status, media_type="application/json", headers=headers
    )


def _on_stackbe_error(request: Request[Any, Any, Any], exc: StackBEError) -> Response[bytes]:
    status = status_of(exc)
    headers = {"Retry-After": str(exc.retry_after)} if hasattr(exc, "retry_after") else None
    return _json(
        status,
        error_body(
            status, exc.code, exc.message, _request_id(request), getattr(exc, "field", None)
        ),
        headers,
    )


def _camel(name: str) -> str:
    """A parameter's Python name as clients write it: ``event_type`` -> ``eventType``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _validation_message(exc: ValidationException) -> tuple[str, str | None]:
    """Litestar wraps msgspec's message; name the field the way a client wrote it."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict) and item.get("message"):
            message = str(item["message"])
            key = _camel(item["key"]) if isinstance(item.get("key"), str) else item.get("key")
            named = _FIELD_IN_MESSAGE.search(message)
            if named:
                field = named.group(1)
                prefix = "" if key in (None, "data") else f"{key}."
                return message, prefix + field
            if key and key != "data":
                return f"{message} at `{key}`", str(key)
            if message == "'data'":
                return "Request body is required (a JSON object)", None
            return message, None
    return (exc.detail or "Invalid request", None)


def _on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    message, field = _validation_message(exc)
    return _json(400, error_body(400, "VALIDATION_ERROR", message, _request_id(request), field))


def _on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    code = _CODE_BY_STATUS.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR")
    message = exc.detail or "Error"
    if status == 413:
        message = "Request body is larger than 1 MiB"
    return _json(
        status, error_body(status, code, message, _request_id(request)), dict(exc.headers or {})
    )


def _connection_lost(request: Request[Any, Any, Any]) -> bool:
    """Whether the request's database connection closed under it (see ``UnitOfWork.lost``)."""
    ctx = request.scope.get("stackbe")
    return isinstance(ctx, EdgeContext) and ctx.uow.lost


def _answer_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.warning("request.unavailable", path=request.url.path, error=repr(exc))
    return _on_stackbe_error(request, DatabaseUnavailable())


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if _connection_lost(request):  # whatever asyncpg said of it, the database went away
        return _answer_unavailable(request, exc)
    request_id = _request_id(request)
    log.exception("request.failed", path=request.url.path, request_id=request_id)
    return _json(
        500,
        error_body(
            500,
            "INTERNAL_ERROR",
            INTERNAL_MESSAGE,
            request_id,
        ),
    )


def _on_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if not database_unavailable(exc):
        return _on_unexpected(request, exc)
    return _answer_unavailable(request, exc)


def _on_too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[bytes]:
    """Only a hostile body nests deep enough to exhaust the decoder's recursion."""
    log.warning("request.too_deep", path=request.url.path, exc_info=exc)
    message = "Request body is nested too deeply"
    return _json(400, error_body(400, "VALIDATION_ERROR", message, _request_id(request)))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    StackBEError: _on_stackbe_error,
    RecursionError: _on_too_deep,
    **dict.fromkeys(POSTGRES_UNAVAILABLE, _on_unavailable),
    ValidationException: _on_validation,
    HTTPException: _on_http,
    Exception: _on_unexpected,
}


async def provide_conn(request: Request[Any, Any, Any]) -> asyncpg.Connection:
    """The request's connection, inside the transaction the edge owns."""
    ctx: EdgeContext = request.scope["stackbe"]  # type: ignore[typeddict-item]
    return await ctx.uow.connection()


async def provide_public_conn(request: Request[Any, Any, Any]) -> asyncpg.Connection:
    """The request's connection, reaching every tenant's rows (``public_conn``)."""
    ctx: EdgeContext = request.scope["stackbe"]  # type: ignore[typeddict-item]
    await ctx.uow.widen()
    return await ctx.uow.connection()


def caller_of(request: Request[Any, Any, Any]) -> Scope:
    ctx: EdgeContext = request.scope["stackbe"]  # type: ignore[typeddict-item]
    return ctx.caller


def provide_caller(request: Request[Any, Any, Any]) -> Scope:
    return caller_of(request)


def provide_uow(request: Request[Any, Any, Any]) -> UnitOfWork:
    ctx: EdgeContext = request.scope["stackbe"]  # type: ignore[typeddict-item]
    return ctx.uow


@get("/health", include_in_schema=False, sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", include_in_schema=False)
async def ready(state: State) -> Response[dict[str, Any]]:
    checks: dict[str, bool] = {}
    try:
        async with state.pool.acquire(timeout=1.0) as conn:
            await conn.fetchval("SELECT 1", timeout=1.0)
        checks["postgres"] = True
    except Exception:
        checks["postgres"] = False
    nc = state.get("nc")  # only services whose HTTP side talks to NATS hold a connection
    if nc is not None:
        checks["nats"] = bool(nc.is_connected)
    ok = all(checks.values())
    return Response({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


def create_service_app(
    *,
    name: str,
    secret: bytes,
    keyring: Keyring,
    route_handlers: Sequence[ControllerRouterHandler],
    lifespan: Callable[[Litestar], Any],
    dependencies: dict[str, Provide] | None = None,
    openapi_title: str | None = None,
    debug: bool = False,
) -> Litestar:
    """A service app whose routes all sit behind the edge; ``lifespan`` sets ``state.pool``."""
    holder: dict[str, Litestar] = {}
    prometheus = PrometheusConfig(
        app_name=f"stackbe_{name}", group_path=True, exclude=["/health", "/ready", "/metrics"]
    )
    app = Litestar(
        route_handlers=[*route_handlers, health, ready, PrometheusController],
        middleware=[
            prometheus.middleware,
            DefineMiddleware(
                ServiceEdge,
                pool_getter=lambda: holder["app"].state.pool,
                secret=secret,
                keyring=keyring,
                max_body=MAX_BODY_BYTES,
            ),
        ],
        dependencies={
            "conn": Provide(provide_conn),
            "public_conn": Provide(provide_public_conn),
            "caller": Provide(provide_caller, sync_to_thread=False),
            "uow": Provide(provide_uow, sync_to_thread=False),
            **(dependencies or {}),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title=openapi_title or f"StackBE {name}", version="1.0.0", path="/schema"
        ),
        debug=debug,
    )
    holder["app"] = app
    return app
