"""HTTP routes of the identity service. Each maps a request to one service call."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, QueryParameter

from stackbe_common.errors import StackBEError
from stackbe_common.pagination import Page, page_params
from stackbe_common.web import Caller, Conn, Json, PublicConn, Uow, parse

from . import apps, auth, service
from . import schemas as s
from .deps import Deps
from .pages import confirm_page, failed_page, signed_in_page

Limit = Annotated[int | None, QueryParameter(name="limit")]
After = Annotated[str | None, QueryParameter(name="startingAfter")]
DepsT = NamedDependency[Deps]


# Tenants


@post("/v1/tenants", status_code=201, summary="Create a tenant and its first tenant key")
async def create_tenant(
    public_conn: PublicConn, deps: DepsT, uow: Uow, caller: Caller, data: Json[s.CreateTenant]
) -> s.CreatedTenant:
    body = parse(data, s.CreateTenant)
    created, owner = await service.create_tenant(public_conn, deps, caller, body)
    await auth.send_login_link(public_conn, deps, uow, owner)
    return created


@get("/v1/tenants/me", summary="The caller's tenant")
async def get_tenant(conn: Conn, caller: Caller) -> s.Tenant:
    return await service.get_tenant(conn, caller)


# Members


@post("/v1/members", status_code=201, summary="Invite a member")
async def invite_member(
    conn: Conn, deps: DepsT, uow: Uow, caller: Caller, data: Json[s.InviteMember]
) -> s.Member:
    body = parse(data, s.InviteMember)
    row = await service.invite_member(conn, deps, caller, body)
    await auth.send_login_link(conn, deps, uow, row, invited=True)
    return service.member_out(row)


@get("/v1/members", summary="List members")
async def list_members(
    conn: Conn, caller: Caller, limit: Limit = None, starting_after: After = None
) -> Page[s.Member]:
    return await service.list_members(conn, caller, page_params(limit, starting_after))


@get("/v1/members/{member_id:str}", summary="Get a member")
async def get_member(conn: Conn, caller: Caller, member_id: FromPath[str]) -> s.Member:
    return await service.get_member(conn, caller, member_id)


@patch("/v1/members/{member_id:str}", summary="Change a member's role")
async def update_member(
    conn: Conn, deps: DepsT, caller: Caller, member_id: FromPath[str], data: Json[s.UpdateMember]
) -> s.Member:
    body = parse(data, s.UpdateMember)
    return await service.change_member_role(conn, deps, caller, member_id, body)


@delete("/v1/members/{member_id:str}", status_code=200, summary="Remove a member")
async def remove_member(
    conn: Conn, deps: DepsT, caller: Caller, member_id: FromPath[str]
) -> s.Member:
    return await service.remove_member(conn, deps, caller, member_id)


# Dashboard auth


@post("/v1/auth/magic-link", status_code=202, summary="Email a sign-in link (always 202)")
async def request_magic_link(
    public_conn: PublicConn, deps: DepsT, uow: Uow, caller: Caller, data: Json[s.RequestMagicLink]
) -> s.Accepted:
    body = parse(data, s.RequestMagicLink)
    await auth.request_magic_link(public_conn, deps, uow, caller, body)
    return s.Accepted()


@get("/v1/auth/confirm", summary="Confirmation page of a sign-in link", media_type="text/html")
async def confirm(token: FromQuery[str] = "") -> Response[str]:
    return Response(
        confirm_page(token),
        media_type="text/html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@post("/v1/auth/confirm", status_code=200, include_in_schema=False, media_type="text/html")
async def confirm_submit(
    public_conn: PublicConn,
    deps: DepsT,
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[str]:
    try:
        pair = await auth.verify_magic_link(public_conn, deps, data.get("token", ""))
    except StackBEError as exc:
        return Response(failed_page(exc.message), status_code=400, media_type="text/html")
    page = signed_in_page(pair.member.email, pair.access_token, pair.refresh_token, pair.expires_in)
    return Response(page, media_type="text/html", headers={"Cache-Control": "no-store"})


@post("/v1/auth/verify", status_code=200, summary="Exchange a sign-in token for a session")
async def verify(public_conn: PublicConn, deps: DepsT, data: Json[s.VerifyToken]) -> s.TokenPair:
    body = parse(data, s.VerifyToken)
    return await auth.verify_magic_link(public_conn, deps, body.token)


@post("/v1/auth/refresh", status_code=200, summary="Rotate a refresh token")
async def refresh(
    public_conn: PublicConn, deps: DepsT, uow: Uow, data: Json[s.RefreshTokens]
) -> s.TokenPair:
    body = parse(data, s.RefreshTokens)
    return await auth.refresh_session(public_conn, deps, uow, body)


@post("/v1/auth/logout", status_code=204, summary="End this dashboard session")
async def logout(conn: Conn, deps: DepsT, caller: Caller) -> None:
    await auth.logout(conn, deps, caller)


@get("/v1/auth/me", summary="The signed-in member and tenant")
async def me(conn: Conn, caller: Caller) -> s.Me:
    return await auth.me(conn, caller)


@get("/.well-known/jwks.json", summary="Public keys of dashboard tokens")
async def jwks(deps: DepsT) -> dict[str, Any]:
    return {"keys": deps.keys.jwks()}


# Apps


@post("/v1/apps", status_code=201, summary="Create an app")
async def create_app(conn: Conn, deps: DepsT, caller: Caller, data: Json[s.CreateApp]) -> s.App:
    body = parse(data, s.CreateApp)
    return await apps.create_app(conn, deps, caller, body)


@get("/v1/apps", summary="List apps")
async def list_apps(
    conn: Conn,
    caller: Caller,
    limit: Limit = None,
    starting_after: After = None,
    includeArchived: FromQuery[bool] = False,
) -> Page[s.App]:
    return await apps.list_apps(conn, caller, page_params(limit, starting_after), includeArchived)


@get("/v1/apps/{app_id:str}", summary="Get an app")
async def get_app(conn: Conn, caller: Caller, app_id: FromPath[str]) -> s.App:
    return await apps.get_app(conn, caller, app_id)


@patch("/v1/apps/{app_id:str}", summary="Update an app")
async def update_app(
    conn: Conn, deps: DepsT, caller: Caller, app_id: FromPath[str], data: Json[s.UpdateApp]
) -> s.App:
    body = parse(data, s.UpdateApp)
    return await apps.update_app(conn, deps, caller, app_id, body)


@delete("/v1/apps/{app_id:str}", status_code=200, summary="Archive an app")
async def archive_app(conn: Conn, deps: DepsT, caller: Caller, app_id: FromPath[str]) -> s.App:
    return await apps.archive_app(conn, deps, caller, app_id)


# API keys


@post("/v1/api-keys", status_code=201, summary="Create a tenant API key")
async def create_tenant_key(
    conn: Conn, deps: DepsT, caller: Caller, data: Json[s.CreateApiKey]
) -> s.CreatedApiKey:
    body = parse(data, s.CreateApiKey)
    return await service.create_api_key(conn, deps, caller, None, body)


@get("/v1/api-keys", summary="List tenant API keys")
async def list_tenant_keys(
    conn: Conn, caller: Caller, limit: Limit = None, starting_after: After = None
) -> Page[s.ApiKey]:
    return await service.list_api_keys(conn, caller, None, page_params(limit, starting_after))


@delete("/v1/api-keys/{key_id:str}", status_code=200, summary="Revoke a tenant API key")
async def revoke_tenant_key(
    conn: Conn, deps: DepsT, caller: Caller, key_id: FromPath[str]
) -> s.ApiKey:
    return await service.revoke_api_key(conn, deps, caller, None, key_id)


@post("/v1/apps/{app_id:str}/api-keys", status_code=201, summary="Create an app API key")
async def create_app_key(
    conn: Conn, deps: DepsT, caller: Caller, app_id: FromPath[str], data: Json[s.CreateApiKey]
) -> s.CreatedApiKey:
    body = parse(data, s.CreateApiKey)
    return await service.create_api_key(conn, deps, caller, app_id, body)


@get("/v1/apps/{app_id:str}/api-keys", summary="List an app's API keys")
async def list_app_keys(
    conn: Conn,
    caller: Caller,
    app_id: FromPath[str],
    limit: Limit = None,
    starting_after: After = None,
) -> Page[s.ApiKey]:
    return await service.list_api_keys(conn, caller, app_id, page_params(limit, starting_after))


@delete(
    "/v1/apps/{app_id:str}/api-keys/{key_id:str}", status_code=200, summary="Revoke an app API key"
)
async def revoke_app_key(
    conn: Conn, deps: DepsT, caller: Caller, app_id: FromPath[str], key_id: FromPath[str]
) -> s.ApiKey:
    return await service.revoke_api_key(conn, deps, caller, app_id, key_id)


ROUTES = [
    create_tenant,
    get_tenant,
    invite_member,
    list_members,
    get_member,
    update_member,
    remove_member,
    request_magic_link,
    confirm,
    confirm_submit,
    verify,
    refresh,
    logout,
    me,
    jwks,
    create_app,
    list_apps,
    get_app,
    update_app,
    archive_app,
    create_tenant_key,
    list_tenant_keys,
    revoke_tenant_key,
    create_app_key,
    list_app_keys,
    revoke_app_key,
]
