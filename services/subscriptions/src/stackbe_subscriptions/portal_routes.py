"""Routes of the customer portal: the app's API call that opens it, and the pages.

Pages are public on the gateway; the portal's own cookie says who is signed in. A form
post without its CSRF token is refused (403) before anything is read or changed.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

import asyncpg
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, FromQuery

from stackbe_common import bus
from stackbe_common.errors import StackBEError
from stackbe_common.ids import has_prefix
from stackbe_common.pages import Brand, csrf_token, csrf_valid
from stackbe_common.web import Caller, Conn, Json, Uow, parse

from . import portal, subscriptions
from . import repository as repo
from . import schemas as s
from .deps import Deps
from .errors import NoActiveSubscription
from .portal_pages import change_page, confirm_page, home_page, login_page, message_page
from .routes import DepsT

__all__ = ["PORTAL_ROUTES"]

LOGIN_PURPOSE, CONFIRM_PURPOSE = "portal-login", "portal-confirm"
NONCE_COOKIE = "stackbe_portal_form"
EMAIL = re.compile(r"[^@\s\x00]{1,64}@[^@\s\x00]+\.[^@\s\x00]+")
HTML_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _html(body: str, status: int = 200, cookies: list[Cookie] | None = None) -> Response[str]:
    return Response(
        body, status_code=status, media_type="text/html", headers=HTML_HEADERS, cookies=cookies
    )


def _back(app_id: str, done: str | None = None) -> Response[Any]:
    where = f"/portal/{app_id}" + (f"?done={done}" if done else "")
    return Response(None, status_code=303, headers={"Location": where, **HTML_HEADERS})


def _signed_in_to(app_id: str, signed_in: tuple[str, datetime], deps: Deps) -> Response[Any]:
    """Into the portal with a new sign-in's cookie."""
    value, expires = signed_in
    cookie = _cookie(app_id, portal.COOKIE, value, _seconds_until(deps, expires), deps)
    back = _back(app_id)
    back.cookies = [cookie]
    return back


SIGNED_OUT = "Your sign-in to the portal has expired. Open it again from the app you subscribed in."


@post("/v1/portal/sessions", status_code=201, summary="Open the customer portal for a customer")
async def create_portal_session(
    conn: Conn, deps: DepsT, caller: Caller, data: Json[s.CreatePortalSession]
) -> s.PortalSession:
    body = parse(data, s.CreatePortalSession)
    return await portal.create_link(conn, deps, caller, body)


@get("/portal/{app_id:str}/session/{token:str}", include_in_schema=False)
async def enter_portal(
    conn: Conn, deps: DepsT, app_id: FromPath[str], token: FromPath[str]
) -> Response[Any]:
    entered = await portal.enter(conn, deps, app_id, token)
    if entered is None:
        text = "This portal link has expired or was used already. Open the portal again."
        return _html(message_page("Link not valid", text), 400)
    return _signed_in_to(app_id, entered, deps)


async def _signed_in(
    conn: asyncpg.Connection, deps: Deps, request: Request[Any, Any, Any], app_id: str
) -> portal.Login | None:
    return await portal.login_of(conn, deps, app_id, request.cookies.get(portal.COOKIE))


def _cookie(app_id: str, name: str, value: str, seconds: int, deps: Deps) -> Cookie:
    return Cookie(
        key=name,
        value=value,
        path=f"/portal/{app_id}",
        httponly=True,
        samesite="lax",
        secure=not deps.settings.dev,
        max_age=seconds,
    )


def _seconds_until(deps: Deps, at: datetime) -> int:
    return max(1, int((at - deps.clock.now()).total_seconds()))


async def _app_brand(conn: asyncpg.Connection, deps: Deps, app_id: str) -> Brand | None:
    """The app's look, or None when there is no such app (or it is archived)."""
    row = await repo.app_by_id(conn, app_id) if has_prefix(app_id, "app") else None
    if row is None or row["archived"]:
        return None
    return Brand(row["name"], row["brand_color"], row["logo_url"])


@get("/portal/{app_id:str}/login", include_in_schema=False)
async def portal_login(conn: Conn, deps: DepsT, app_id: FromPath[str]) -> Response[str]:
    """The email form. Its CSRF token is bound to a fresh random value kept in a cookie."""
    brand = await _app_brand(conn, deps, app_id)
    if brand is None:
        return _html(message_page("Not found", "There is no such portal."), 404)
    nonce = secrets.token_urlsafe(16)
    token = csrf_token(deps.settings.secret, LOGIN_PURPOSE, f"{app_id}:{nonce}")
    cookie = _cookie(app_id, NONCE_COOKIE, nonce, 3600, deps)
    return _html(login_page(brand, f"/portal/{app_id}", token), cookies=[cookie])


@post("/portal/{app_id:str}/login", include_in_schema=False, status_code=200)
async def portal_login_submit(
    conn: Conn,
    deps: DepsT,
    caller: Caller,
    request: Request[Any, Any, Any],
    app_id: FromPath[str],
) -> Response[str]:
    """The same answer whether or not the email is a customer's."""
    brand = await _app_brand(conn, deps, app_id)
    if brand is None:
        return _html(message_page("Not found", "There is no such portal."), 404)
    form = await request.form()
    nonce = request.cookies.get(NONCE_COOKIE, "")
    given, email = form.get("csrf"), form.get("email")
    subject = f"{app_id}:{nonce}"
    if not nonce or not csrf_valid(
        deps.settings.secret, LOGIN_PURPOSE, subject, given if isinstance(given, str) else None
    ):
        refused = "The form has expired or did not come from this page. Reload it and try again."
        return _html(message_page("Nothing sent", refused, brand), 403)
    if not isinstance(email, str) or not EMAIL.fullmatch(email):
        token = csrf_token(deps.settings.secret, LOGIN_PURPOSE, subject)
        page = login_page(brand, f"/portal/{app_id}", token, "Enter a valid email address.")
        return _html(page, 400)
    assert deps.lookups is not None
    try:
        await deps.lookups.portal_link(app_id, email, caller.client_ip)
    except bus.RemoteError as exc:
        if exc.error.code != "RATE_LIMITED":
            raise
        text = "Too many sign-in links were asked for. Try again in an hour."
        return _html(message_page("Try again later", text, brand), 429)
    text = f"If {email} is a customer's address, a sign-in link is on its way. It works once."
    return _html(message_page("Check your email", text, brand))


@get("/portal/{app_id:str}/confirm", include_in_schema=False)
async def portal_confirm(
    conn: Conn, deps: DepsT, app_id: FromPath[str], token: FromQuery[str] = ""
) -> Response[str]:
    brand = await _app_brand(conn, deps, app_id)
    if brand is None:
        return _html(message_page("Not found", "There is no such portal."), 404)
    nonce = secrets.token_urlsafe(16)  # binds the form to this browser (login CSRF)
    csrf = csrf_token(deps.settings.secret, CONFIRM_PURPOSE, f"{token}:{nonce}")
    cookie = _cookie(app_id, NONCE_COOKIE, nonce, 3600, deps)
    return _html(confirm_page(brand, f"/portal/{app_id}", token, csrf), cookies=[cookie])


@post("/portal/{app_id:str}/confirm", include_in_schema=False, status_code=303)
async def portal_confirm_submit(
    conn: Conn, deps: DepsT, request: Request[Any, Any, Any], app_id: FromPath[str]
) -> Response[Any]:
    form = await request.form()
    token, given = form.get("token"), form.get("csrf")
    token = token if isinstance(token, str) else ""
    nonce = request.cookies.get(NONCE_COOKIE, "")
    subject = f"{token}:{nonce}"
    if not nonce or not csrf_valid(
        deps.settings.secret, CONFIRM_PURPOSE, subject, given if isinstance(given, str) else None
    ):
        refused = "The form has expired or did not come from this page. Open the link again."
        return _html(message_page("Not signed in", refused), 403)
    assert deps.lookups is not None
    try:
        found = await deps.lookups.redeem(app_id, token)
    except bus.RemoteError as exc:
        text = f"This sign-in link cannot be used: {exc.error.message}. Ask for a new one."
        return _html(message_page("Link not valid", text), 400)
    signed_in = await portal.sign_in(conn, deps, found.tenant_id, app_id, found.customer_id, None)
    return _signed_in_to(app_id, signed_in, deps)


@get("/portal/{app_id:str}", include_in_schema=False)
async def portal_home(
    conn: Conn,
    deps: DepsT,
    request: Request[Any, Any, Any],
    app_id: FromPath[str],
    done: FromQuery[str | None] = None,
) -> Response[Any]:
    login = await _signed_in(conn, deps, request, app_id)
    if login is None:
        where = {"Location": f"/portal/{app_id}/login", **HTML_HEADERS}
        return Response(None, status_code=303, headers=where)
    assert deps.lookups is not None
    brand = await portal.brand(conn, deps, login.tenant_id, app_id)
    app = await deps.lookups.app(conn, login.tenant_id, app_id)
    sub = await repo.live_subscription(conn, login.tenant_id, app_id, login.customer_id)
    plan = pending = None
    payments: list[asyncpg.Record] = []
    if sub is not None:
        plan = await deps.lookups.plan(conn, login.tenant_id, app_id, sub["plan_id"])
        if sub["pending_plan_id"]:
            pending = await deps.lookups.plan(conn, login.tenant_id, app_id, sub["pending_plan_id"])
        payments = await repo.recent_payments(conn, login.tenant_id, app_id, sub["id"], 12)
    return _html(
        home_page(
            brand=brand,
            base=f"/portal/{app_id}",
            email=await portal.customer_email(conn, login),
            csrf=login.csrf(deps),
            sub=sub,
            plan=plan,
            pending=pending,
            plans=await portal.active_plans(conn, deps, login),
            payments=payments,
            return_url=login.return_url,
            notice=done,
            pause_enabled=app.portal_pause_enabled,
        )
    )


@get("/portal/{app_id:str}/change", include_in_schema=False)
async def portal_change(
    conn: Conn,
    deps: DepsT,
    request: Request[Any, Any, Any],
    app_id: FromPath[str],
    plan: FromQuery[str] = "",
) -> Response[str]:
    login = await _signed_in(conn, deps, request, app_id)
    if login is None:
        return _html(message_page("Signed out", SIGNED_OUT), 401)
    brand = await portal.brand(conn, deps, login.tenant_id, app_id)
    sub = await repo.live_subscription(conn, login.tenant_id, app_id, login.customer_id)
    assert deps.lookups is not None
    try:
        if sub is None:
            raise NoActiveSubscription("You have no subscription to change")
        current = await deps.lookups.plan(conn, login.tenant_id, app_id, sub["plan_id"])
        new = await deps.lookups.plan(conn, login.tenant_id, app_id, plan)
        preview = await portal.preview_change(conn, deps, sub, new)
    except StackBEError as exc:
        return _html(message_page("Plan not changed", exc.message, brand), 409)
    when = f"{sub['current_period_end']:%d %B %Y}" if sub["current_period_end"] else "renewal"
    page = change_page(
        brand=brand,
        base=f"/portal/{app_id}",
        csrf=login.csrf(deps),
        current=current,
        new=new,
        preview=preview,
        when=when,
    )
    return _html(page)


async def _act(
    conn: asyncpg.Connection,
    deps: Deps,
    uow: Any,
    request: Request[Any, Any, Any],
    app_id: str,
    action: str,
) -> Response[Any]:
    """A form's action on the signed-in customer's live subscription."""
    login = await _signed_in(conn, deps, request, app_id)
    if login is None:
        return _html(message_page("Signed out", SIGNED_OUT), 401)
    form = await request.form()
    given = form.get("csrf")
    if not login.csrf_ok(deps, given if isinstance(given, str) else None):
        refused = "The form has expired or did not come from this page. Reload it and try again."
        return _html(message_page("Nothing changed", refused), 403)
    brand = await portal.brand(conn, deps, login.tenant_id, app_id)
    sub = await repo.live_subscription(conn, login.tenant_id, app_id, login.customer_id)
    scope = portal.acting_scope(login)
    try:
        if sub is None:
            raise NoActiveSubscription("You have no subscription to change")
        if action == "cancel":
            await subscriptions.cancel(conn, deps, scope, sub["id"], s.CancelSubscription())
            return _back(app_id, "canceled")
        if action == "reactivate":
            await subscriptions.reactivate(conn, deps, scope, sub["id"])
            return _back(app_id, "reactivated")
        if action in ("pause", "resume"):
            assert deps.lookups is not None
            if not (await deps.lookups.app(conn, login.tenant_id, app_id)).portal_pause_enabled:
                text = "Pausing is not offered here. Contact the app to pause your subscription."
                return _html(message_page("Nothing changed", text, brand), 403)
            if action == "pause":
                await subscriptions.pause(conn, deps, scope, sub["id"], s.PauseSubscription())
                return _back(app_id, "paused")
            await subscriptions.resume(conn, deps, scope, sub["id"])
            return _back(app_id, "resumed")
        plan = form.get("plan")
        change = s.ChangePlan(plan_id=plan if isinstance(plan, str) else "")
        after = await subscriptions.change_plan(conn, deps, uow, scope, sub["id"], change)
        return _back(app_id, "scheduled" if after.pending_plan_id else "changed")
    except StackBEError as exc:
        return _html(message_page("Nothing changed", exc.message, brand), 409)


ACTIONS = frozenset({"cancel", "reactivate", "change-plan", "pause", "resume"})


@post("/portal/{app_id:str}/{action:str}", include_in_schema=False, status_code=303)
async def portal_action(
    conn: Conn,
    deps: DepsT,
    uow: Uow,
    request: Request[Any, Any, Any],
    app_id: FromPath[str],
    action: FromPath[str],
) -> Response[Any]:
    """The portal's forms: cancel, reactivate, change-plan, pause and resume."""
    if action not in ACTIONS:
        return _html(message_page("Not found", "There is no such page."), 404)
    return await _act(conn, deps, uow, request, app_id, action)


PORTAL_ROUTES: list[Any] = [
    create_portal_session,
    enter_portal,
    portal_login,
    portal_login_submit,
    portal_confirm,
    portal_confirm_submit,
    portal_home,
    portal_change,
    portal_action,
]
