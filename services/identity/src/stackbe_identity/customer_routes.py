"""HTTP routes for an app's customers: the customer API, customer sign-in, sessions."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar import Response, get, patch, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery

from stackbe_common.errors import StackBEError
from stackbe_common.pagination import Page, page_params
from stackbe_common.web import Caller, Conn, Json, PublicConn, Uow, parse

from . import customer_auth, customers
from . import schemas as s
from .pages import confirm_page, customer_signed_in_page, failed_page
from .routes import After, DepsT, Limit

# Customers (app scope)


@post("/v1/customers", status_code=201, summary="Create a customer")
async def create_customer(
    conn: Conn, deps: DepsT, caller: Caller, data: Json[s.CreateCustomer]
) -> s.Customer:
    body = parse(data, s.CreateCustomer)
    return await customers.create_customer(conn, deps, caller, body)


@get("/v1/customers", summary="List customers, or look one up by email or externalId")
async def list_customers(
    conn: Conn,
    caller: Caller,
    limit: Limit = None,
    starting_after: After = None,
    email: FromQuery[str | None] = None,
    externalId: FromQuery[str | None] = None,
) -> Page[s.Customer]:
    return await customers.list_customers(
        conn, caller, page_params(limit, starting_after), email, externalId
    )


@get("/v1/customers/{customer_id:str}", summary="Get a customer")
async def get_customer(conn: Conn, caller: Caller, customer_id: FromPath[str]) -> s.Customer:
    return await customers.get_customer(conn, caller, customer_id)


@patch("/v1/customers/{customer_id:str}", summary="Update a customer")
async def update_customer(
    conn: Conn,
    deps: DepsT,
    caller: Caller,
    customer_id: FromPath[str],
    data: Json[s.UpdateCustomer],
) -> s.Customer:
    body = parse(data, s.UpdateCustomer)
    return await customers.update_customer(conn, deps, caller, customer_id, body)


# Customer sign-in (public, per app) and app-managed sessions


@post(
    "/v1/apps/{app_id:str}/auth/magic-link",
    status_code=202,
    summary="Email a customer a sign-in link (always 202)",
)
async def request_customer_link(
    public_conn: PublicConn,
    deps: DepsT,
    uow: Uow,
    caller: Caller,
    app_id: FromPath[str],
    data: Json[s.RequestCustomerLink],
) -> s.Accepted:
    body = parse(data, s.RequestCustomerLink)
    await customer_auth.request_link(public_conn, deps, uow, caller, app_id, body)
    return s.Accepted()


@get(
    "/v1/apps/{app_id:str}/auth/confirm",
    summary="Confirmation page of a customer link",
    media_type="text/html",
)
async def customer_confirm(
    public_conn: PublicConn, app_id: FromPath[str], token: FromQuery[str] = ""
) -> Response[str]:
    app = await customer_auth.live_app(public_conn, app_id)
    page = confirm_page(token, f"/v1/apps/{app_id}/auth/confirm", app["name"])
    return Response(
        page,
        media_type="text/html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@post(
    "/v1/apps/{app_id:str}/auth/confirm",
    status_code=200,
    include_in_schema=False,
    media_type="text/html",
)
async def customer_confirm_submit(
    public_conn: PublicConn,
    deps: DepsT,
    app_id: FromPath[str],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[str]:
    try:
        session, redirect = await customer_auth.verify_link(
            public_conn, deps, app_id, data.get("token", "")
        )
    except StackBEError as exc:
        return Response(failed_page(exc.message), status_code=400, media_type="text/html")
    if redirect:
        # The token travels in the fragment: never sent to servers or written to their logs.
        location = f"{redirect}#{urlencode({'sessionToken': session.session_token})}"
        return Response(
            "", status_code=303, headers={"Location": location, "Cache-Control": "no-store"}
        )
    app = await customer_auth.live_app(public_conn, app_id)
    page = customer_signed_in_page(app["name"], session.customer.email)
    return Response(page, media_type="text/html", headers={"Cache-Control": "no-store"})


@post(
    "/v1/apps/{app_id:str}/auth/verify",
    status_code=200,
    summary="Exchange a customer sign-in token for a session",
)
async def customer_verify(
    public_conn: PublicConn, deps: DepsT, app_id: FromPath[str], data: Json[s.VerifyToken]
) -> s.CustomerSession:
    body = parse(data, s.VerifyToken)
    session, _ = await customer_auth.verify_link(public_conn, deps, app_id, body.token)
    return session


@get("/v1/apps/{app_id:str}/auth/session", summary="The signed-in customer")
async def customer_session(
    conn: Conn, state: State, caller: Caller, app_id: FromPath[str]
) -> s.SessionView:
    return await customer_auth.current_session(conn, state.nc, caller, app_id)


@post(
    "/v1/customers/{customer_id:str}/sessions",
    status_code=201,
    summary="Mint a session for the app's own signed-in user (app-managed auth)",
)
async def mint_customer_session(
    conn: Conn, deps: DepsT, caller: Caller, customer_id: FromPath[str]
) -> s.CustomerSession:
    return await customer_auth.mint_session(conn, deps, caller, customer_id)


CUSTOMER_ROUTES = [
    create_customer,
    list_customers,
    get_customer,
    update_customer,
    request_customer_link,
    customer_confirm,
    customer_confirm_submit,
    customer_verify,
    customer_session,
    mint_customer_session,
]
