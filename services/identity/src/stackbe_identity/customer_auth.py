"""Customer sign-in for an app: magic links, session tokens, app-managed sessions.

A customer's session token is a JWT whose audience is its app, so no other app accepts
it. Links work once, expire, and are spent only by the confirmation page's POST. The
request path does the same work for known and unknown emails; finding (or, with the
app's ``autoCreateCustomers``, creating) the customer happens after the answer.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
from nats.aio.client import Client as NATS

from stackbe_common import bus
from stackbe_common.errors import AppNotFound, RateLimited, TokenExpired
from stackbe_common.ids import has_prefix, new_id
from stackbe_common.logging import get_logger
from stackbe_common.scope import Scope
from stackbe_common.uow import UnitOfWork
from stackbe_events import rpc
from stackbe_events.entitlements import CustomerEntitlements

from . import customer_repository as customers_repo
from . import customers
from . import repository as repo
from . import schemas as s
from . import signin_repository as signins
from .access import app_of
from .customers import customer_out
from .deps import Deps
from .errors import (
    CustomerNotFound,
    RedirectNotAllowed,
    SessionInvalid,
    TokenAlreadyUsed,
    TokenInvalid,
)
from .service import normalise_email
from .tokens import hash_secret, new_secret

log = get_logger(__name__)
_sending: set[asyncio.Task[None]] = set()  # portal links being sent after their answer


async def live_app(conn: asyncpg.Connection, app_id: str) -> asyncpg.Record:
    row = await repo.get_live_app(conn, app_id) if has_prefix(app_id, "app") else None
    if row is None:
        raise AppNotFound()
    return row


async def request_link(
    conn: asyncpg.Connection,
    deps: Deps,
    uow: UnitOfWork,
    caller: Scope,
    app_id: str,
    data: s.RequestCustomerLink,
) -> None:
    app = await live_app(conn, app_id)
    if data.redirect_url is not None and data.redirect_url not in app["allowed_redirect_urls"]:
        raise RedirectNotAllowed()
    email = normalise_email(data.email)
    if await _admit(conn, deps, email, caller.client_ip):
        pool = uow.pool
        uow.after_commit(lambda: _send_link(pool, deps, app, email, data.redirect_url))


async def _admit(conn: asyncpg.Connection, deps: Deps, email: str, client_ip: str | None) -> bool:
    """Count the request against the address and the email; whether to send (a refused
    address is 429, an email over its budget is silently not sent)."""
    since = deps.clock.now() - timedelta(hours=1)
    by_email, by_ip = await signins.count_recent_sends(conn, email, client_ip, since)
    if client_ip is not None and by_ip >= deps.settings.magic_links_per_ip_per_hour:
        raise RateLimited("Too many sign-in links requested from this address", retry_after=3600)
    await signins.insert_send(conn, email, client_ip)
    return bool(by_email < deps.settings.magic_links_per_email_per_hour)


async def request_portal_link(pool: asyncpg.Pool, deps: Deps, q: rpc.PortalLink) -> None:
    """A sign-in link to the app's customer portal, by email, under the same rules."""
    async with pool.acquire() as conn, conn.transaction():
        app = await live_app(conn, q.app_id)
        email = normalise_email(q.email)
        send = await _admit(conn, deps, email, q.client_ip)
    if send:  # after the answer, as for app links: a customer's email takes no longer
        task = asyncio.create_task(_send_link(pool, deps, app, email, None, portal=True))
        _sending.add(task)
        task.add_done_callback(_sending.discard)


async def redeem_portal_link(pool: asyncpg.Pool, deps: Deps, q: rpc.RedeemLink) -> rpc.Redeemed:
    async with pool.acquire() as conn, conn.transaction():
        session, _ = await verify_link(conn, deps, q.app_id, q.token, "portal")
        app = await live_app(conn, q.app_id)
    return rpc.Redeemed(tenant_id=app["tenant_id"], customer_id=session.customer.id)


async def _send_link(
    pool: asyncpg.Pool,
    deps: Deps,
    app: asyncpg.Record,
    email: str,
    redirect_url: str | None,
    *,
    portal: bool = False,
) -> None:
    try:
        async with pool.acquire() as conn, conn.transaction():
            if app["auto_create_customers"]:
                customer, _ = await customers.find_or_create_by_email(
                    conn, deps, app["tenant_id"], app["id"], email
                )
            else:
                customer = await customers_repo.find_customer_by_email(
                    conn, app["tenant_id"], app["id"], email
                )
            if customer is None:
                return
            token = new_secret()
            expires = deps.clock.now() + timedelta(seconds=deps.settings.magic_link_seconds)
            await signins.insert_customer_link(
                conn,
                hash_secret(token),
                app["tenant_id"],
                app["id"],
                customer["id"],
                redirect_url,
                expires,
                "portal" if portal else "app",
            )
        page = f"/portal/{app['id']}/confirm" if portal else f"/v1/apps/{app['id']}/auth/confirm"
        link = f"{deps.settings.public_url}{page}?{urlencode({'token': token})}"
        minutes = deps.settings.magic_link_seconds // 60
        what = f"manage your {app['name']} subscription" if portal else f"sign in to {app['name']}"
        text = (
            f"Open this link to {what}:\n\n{link}\n\n"
            f"It works once and expires in {minutes} minutes. "
            "If you did not ask for it, ignore this message.\n"
        )
        await deps.mailer.send(email, f"Your {app['name']} sign-in link", text, link=link)
    except (OSError, asyncpg.PostgresError) as exc:
        log.error("customer_link.not_sent", app_id=app["id"], error=repr(exc))


async def _session(deps: Deps, app: asyncpg.Record, customer: asyncpg.Record) -> s.CustomerSession:
    now = deps.clock.now()
    ttl = timedelta(days=app["customer_session_days"])
    token = deps.keys.issue_customer_token(
        customer_id=customer["id"],
        tenant_id=customer["tenant_id"],
        app_id=app["id"],
        session_id=new_id("sess"),
        now=now,
        ttl=ttl,
    )
    return s.CustomerSession(
        session_token=token, customer=customer_out(customer), expires_at=now + ttl
    )


async def verify_link(
    conn: asyncpg.Connection, deps: Deps, app_id: str, token: str, purpose: str = "app"
) -> tuple[s.CustomerSession, str | None]:
    """The session for a link's token, and where the customer asked to be sent back. A
    portal link is no app sign-in link, nor the other way round."""
    app = await live_app(conn, app_id)
    token_hash = hash_secret(token)
    link = await signins.lock_customer_link(conn, app_id, token_hash)
    now = deps.clock.now()
    if link is None or link["purpose"] != purpose:
        raise TokenInvalid()
    if link["used_at"] is not None:
        raise TokenAlreadyUsed()
    if link["expires_at"] <= now:
        raise TokenExpired()
    await signins.spend_customer_link(conn, token_hash, now)
    customer = await customers_repo.get_customer(
        conn, link["tenant_id"], app_id, link["customer_id"]
    )
    if customer is None:
        raise TokenInvalid()
    return await _session(deps, app, customer), link["redirect_url"]


async def mint_session(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, customer_id: str
) -> s.CustomerSession:
    """App-managed auth: the app vouches for its own signed-in user."""
    tenant_id, app_id = app_of(caller, write=True)
    app = await live_app(conn, app_id)
    customer = None
    if has_prefix(customer_id, "cust"):
        customer = await customers_repo.get_customer(conn, tenant_id, app_id, customer_id)
    if customer is None:
        raise CustomerNotFound()
    return await _session(deps, app, customer)


_ENTITLEMENTS_TYPE: Any = CustomerEntitlements | None


async def _entitlements(
    nc: NATS, tenant_id: str, app_id: str, customer_id: str
) -> CustomerEntitlements | None:
    """The customer's projection, asked of the entitlements service; None if it has none
    or does not answer (the session still shows the customer)."""
    q = rpc.GetEntitlements(tenant_id=tenant_id, app_id=app_id, customer_id=customer_id)
    try:
        found: CustomerEntitlements | None = await bus.request(
            nc, rpc.GET_ENTITLEMENTS, q, _ENTITLEMENTS_TYPE, timeout=1.0
        )
    except Exception as exc:
        log.warning("session.entitlements_unavailable", error=repr(exc))
        return None
    return found


async def current_session(
    conn: asyncpg.Connection, nc: NATS, caller: Scope, app_id: str
) -> s.SessionView:
    if (
        caller.principal.kind != "customer"
        or caller.app_id != app_id
        or caller.tenant_id is None
        or caller.principal.id is None
    ):
        raise SessionInvalid()
    customer = await customers_repo.get_customer(
        conn, caller.tenant_id, app_id, caller.principal.id
    )
    if customer is None:
        raise SessionInvalid()
    found = await _entitlements(nc, caller.tenant_id, app_id, customer["id"])
    if found is None or found.subscription_id is None:
        return s.SessionView(customer=customer_out(customer))
    subscription = s.SessionSubscription(
        id=found.subscription_id,
        plan_id=found.plan_id,
        plan_name=found.plan_name,
        status=found.status,
        current_period_end=found.current_period_end,
    )
    return s.SessionView(
        customer=customer_out(customer), subscription=subscription, entitlements=found.entitlements
    )
