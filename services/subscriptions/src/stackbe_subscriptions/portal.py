"""The customer portal: customers see and manage their own subscription, and the app
builds no UI.

An app opens it for a signed-in customer with ``POST /v1/portal/sessions`` (as Stripe's
billing portal sessions): a one-time URL, good for 15 minutes. Opening it signs the
browser in with a cookie (HttpOnly, SameSite=Lax, Secure outside dev) scoped to the
app's portal, for an hour. Every form carries a CSRF token bound to that sign-in. The
portal acts on the customer's own live subscription of that app only.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import msgspec

from stackbe_common.access import app_of
from stackbe_common.errors import AppNotFound, InvalidInput, Unavailable
from stackbe_common.ids import has_prefix, new_id
from stackbe_common.pages import Brand, csrf_token, csrf_valid
from stackbe_common.scope import Principal, Scope
from stackbe_events.catalog import Plan
from stackbe_events.subscriptions import PaymentKind

from . import machine
from . import repository as repo
from . import schemas as s
from .deps import Deps
from .errors import CustomerNotFound, PlanDeprecated
from .lifecycle import app_now, run_due_until, sub_of, terms_of
from .machine import Terms
from .subscriptions import billing_for

__all__ = [
    "COOKIE",
    "Login",
    "Preview",
    "acting_scope",
    "create_link",
    "enter",
    "login_of",
    "preview_change",
]

COOKIE = "stackbe_portal"
LINK_MINUTES = 15
LOGIN_HOURS = 1
CSRF_PURPOSE = "portal"


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_link(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, data: s.CreatePortalSession
) -> s.PortalSession:
    tenant_id, app_id = app_of(caller, write=True)
    assert deps.lookups is not None
    seen = await repo.get_app(conn, tenant_id, app_id)
    if seen is not None and seen["archived"]:
        raise AppNotFound()
    app = await deps.lookups.app(conn, tenant_id, app_id)
    if data.return_url is not None and data.return_url not in app.allowed_redirect_urls:
        with contextlib.suppress(Unavailable):  # allowed a moment ago? identity knows
            app = await deps.lookups.app(conn, tenant_id, app_id, fresh=True)
    if data.return_url is not None and data.return_url not in app.allowed_redirect_urls:
        raise InvalidInput(
            "returnUrl must be one of the app's allowedRedirectUrls", field="returnUrl"
        )
    customer_id = await deps.lookups.customer(conn, tenant_id, app_id, customer_id=data.customer_id)
    token = secrets.token_urlsafe(32)
    now = deps.clock.now()
    expires = now + timedelta(minutes=LINK_MINUTES)
    link_id = new_id("pts")
    await conn.execute(
        "INSERT INTO portal_links (id, tenant_id, app_id, customer_id, token_hash, return_url,"
        " expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        link_id,
        tenant_id,
        app_id,
        customer_id,
        _hash(token),
        data.return_url,
        expires,
        now,
    )
    base = deps.settings.public_url.rstrip("/")
    return s.PortalSession(
        id=link_id,
        customer_id=customer_id,
        url=f"{base}/portal/{app_id}/session/{token}",
        return_url=data.return_url,
        expires_at=expires,
        created_at=now,
    )


async def enter(
    conn: asyncpg.Connection, deps: Deps, app_id: str, token: str
) -> tuple[str, datetime] | None:
    """Spend a one-time link: a new sign-in's cookie value and its expiry, or None when
    the link is unknown, spent, expired or another app's."""
    now = deps.clock.now()
    link = await conn.fetchrow(
        "UPDATE portal_links SET used_at = $3 WHERE token_hash = $1 AND app_id = $2"
        " AND used_at IS NULL AND expires_at > $3"
        " AND NOT EXISTS (SELECT 1 FROM apps a WHERE a.id = $2 AND a.archived) RETURNING *",
        _hash(token),
        app_id,
        now,
    )
    if link is None:
        return None
    return await sign_in(
        conn, deps, link["tenant_id"], app_id, link["customer_id"], link["return_url"]
    )


async def sign_in(
    conn: asyncpg.Connection,
    deps: Deps,
    tenant_id: str,
    app_id: str,
    customer_id: str,
    return_url: str | None,
) -> tuple[str, datetime]:
    """A new sign-in to the app's portal: its cookie value and expiry."""
    now = deps.clock.now()
    cookie = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=LOGIN_HOURS)
    await conn.execute(
        "INSERT INTO portal_logins (id, tenant_id, app_id, customer_id, cookie_hash, return_url,"
        " expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        new_id("ptl"),
        tenant_id,
        app_id,
        customer_id,
        _hash(cookie),
        return_url,
        expires,
        now,
    )
    return cookie, expires


@dataclass(frozen=True)
class Login:
    id: str
    tenant_id: str
    app_id: str
    customer_id: str
    return_url: str | None

    def csrf(self, deps: Deps) -> str:
        return csrf_token(deps.settings.secret, CSRF_PURPOSE, self.id)

    def csrf_ok(self, deps: Deps, given: str | None) -> bool:
        return csrf_valid(deps.settings.secret, CSRF_PURPOSE, self.id, given)


async def login_of(
    conn: asyncpg.Connection, deps: Deps, app_id: str, cookie: str | None
) -> Login | None:
    """The browser's sign-in to this app's portal; a cookie of another app's portal, or
    an expired one, is no sign-in here."""
    if not cookie or not has_prefix(app_id, "app"):
        return None
    row = await conn.fetchrow(
        "SELECT * FROM portal_logins l WHERE cookie_hash = $1 AND app_id = $2 AND expires_at > $3"
        " AND NOT EXISTS (SELECT 1 FROM apps a WHERE a.id = l.app_id AND a.archived)",
        _hash(cookie),
        app_id,
        deps.clock.now(),
    )
    if row is None:
        return None
    return Login(row["id"], row["tenant_id"], app_id, row["customer_id"], row["return_url"])


def acting_scope(login: Login) -> Scope:
    """The app's own authority, used by its portal on the signed-in customer's behalf."""
    return Scope(
        principal=Principal(kind="app_key", id=f"portal:{login.id}"),
        tenant_id=login.tenant_id,
        app_id=login.app_id,
    )


async def brand(conn: asyncpg.Connection, deps: Deps, tenant_id: str, app_id: str) -> Brand:
    assert deps.lookups is not None
    app = await deps.lookups.app(conn, tenant_id, app_id)
    return Brand(app.name, app.brand_color, app.logo_url)


async def active_plans(conn: asyncpg.Connection, deps: Deps, login: Login) -> list[Plan]:
    """The plans a customer may move to, cheapest first: the catalog's word, or the read
    model's when the catalog does not answer."""
    assert deps.lookups is not None
    with contextlib.suppress(Unavailable):
        found = await deps.lookups.active_plans(login.tenant_id, login.app_id)
        return sorted(found, key=lambda p: (p.price_cents, p.id))
    rows = await conn.fetch(
        "SELECT plan FROM plans WHERE tenant_id = $1 AND app_id = $2 AND status = 'active'"
        " ORDER BY price_cents, id",
        login.tenant_id,
        login.app_id,
    )
    return [msgspec.convert(r["plan"], Plan) for r in rows]


@dataclass
class Preview:
    """What a change of plan would do now, found by running it without money."""

    amount_cents: int = 0
    at_period_end: bool = False
    grace_days: int = 0
    by_stripe: bool = False  # Stripe changes it at once and prorates on the next invoice

    async def charge(self, amount_cents: int, kind: PaymentKind, at: datetime) -> bool:
        self.amount_cents += amount_cents
        return True

    async def terms(self, plan_id: str) -> Terms:  # pragma: no cover - not asked here
        raise LookupError(plan_id)


async def preview_change(
    conn: asyncpg.Connection, deps: Deps, sub: asyncpg.Record, new: Plan
) -> Preview:
    """The amount charged (or refunded, when negative) if the subscription moved to
    ``new`` now, or that it would move at the period's end; the checks of a real change
    apply (409 when it cannot move)."""
    if new.status != "active":
        raise PlanDeprecated(f"The plan is {new.status} and takes no new subscriptions")
    assert deps.lookups is not None
    old = await deps.lookups.plan(conn, sub["tenant_id"], sub["app_id"], sub["plan_id"])
    if sub["stripe_subscription_id"] is not None:
        machine.refuse_change(sub_of(sub), terms_of(old), terms_of(new))
        return Preview(by_stripe=True)
    now = await app_now(conn, deps, sub["app_id"])
    preview = Preview()
    # As the change itself does: first what fell due (a renewal, a trial's end), in a
    # savepoint rolled back, so the preview writes nothing.
    trial = conn.transaction()
    await trial.start()
    try:
        locked = await repo.get_subscription(
            conn, sub["tenant_id"], sub["app_id"], sub["id"], lock=True
        )
        assert locked is not None
        current = await run_due_until(conn, locked, now, billing_for(conn, deps))
        after = await machine.change_plan(
            sub_of(current), terms_of(old), terms_of(new), now, preview, None, None
        )
    finally:
        await trial.rollback()
    preview.at_period_end = after.pending_plan_id == new.id
    return preview


async def customer_email(conn: asyncpg.Connection, login: Login) -> str:
    row = await repo.get_customer(conn, login.tenant_id, login.app_id, login.customer_id)
    if row is None:
        raise CustomerNotFound()
    return str(row["email"])


# Housekeeping: links and sign-ins a day past their expiry are of no use to anyone.
_PRUNE = """
WITH links AS (DELETE FROM portal_links WHERE expires_at < now() - interval '1 day')
DELETE FROM portal_logins WHERE expires_at < now() - interval '1 day'
"""


async def prune_expired(conn: asyncpg.Connection) -> None:
    await conn.execute(_PRUNE)
