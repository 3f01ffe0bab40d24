"""A tenant's payment gateway connections: connect a Stripe account (its key checked
against Stripe first), list, delete while no app uses it, and open a connection for the
calls StackBE makes. Secrets are sealed under the keyring, bound to the connection's
id, and never returned or logged."""

from __future__ import annotations

import asyncpg
import stripe

from stackbe_common.access import tenant_of
from stackbe_common.errors import InvalidInput, Unavailable
from stackbe_common.ids import has_prefix, new_id
from stackbe_common.logging import get_logger
from stackbe_common.pagination import Page, PageParams, page_of
from stackbe_common.scope import Scope
from stackbe_common.uow import UnitOfWork

from . import gateway_repository as repo
from . import schemas as s
from .deps import Deps
from .errors import GatewayInUse, GatewayNotFound, StripeFailed
from .stripe_api import StripeAccount, is_live_key

__all__ = ["connect_stripe", "delete", "list_gateways", "open_account", "webhook_secret"]

log = get_logger(__name__)


def _seal(deps: Deps, gateway_id: str, secret: str) -> bytes:
    return deps.settings.keyring.encrypt(secret.encode(), gateway_id.encode())


def _unseal(deps: Deps, gateway_id: str, sealed: bytes) -> str:
    return deps.settings.keyring.decrypt(sealed, gateway_id.encode()).decode()


def gateway_out(row: asyncpg.Record) -> s.Gateway:
    return s.Gateway(
        id=row["id"],
        type=row["type"],
        account_id=row["account_id"],
        livemode=row["livemode"],
        key_hint=row["key_hint"],
        has_webhook_secret=row["webhook_secret"] is not None,
        webhook_path=f"/v1/gateways/stripe/{row['id']}/webhook",
        created_at=row["created_at"],
    )


async def connect_stripe(
    uow: UnitOfWork, deps: Deps, caller: Scope, data: s.ConnectStripe
) -> s.Gateway:
    """Check the key with Stripe, then store the connection. Stripe is asked before the
    request takes a pooled connection, so a slow Stripe holds none (unless the request
    carries an Idempotency-Key, whose record opens the transaction first)."""
    tenant_id = tenant_of(caller, write=True)
    assert deps.stripe is not None
    gateway_id = new_id("gw")
    try:
        account_id = await deps.stripe.connect(data.secret_key, gateway_id).account()
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        raise InvalidInput("Stripe did not accept the secret key", field="secretKey") from exc
    except stripe.APIConnectionError as exc:
        raise Unavailable("Stripe could not be reached; try again") from exc
    except stripe.StripeError as exc:
        reason = exc.user_message or type(exc).__name__
        raise StripeFailed(f"Stripe refused to read the account: {reason}") from exc
    livemode = is_live_key(data.secret_key)
    row = await repo.insert_gateway(
        await uow.connection(),
        gateway_id,
        tenant_id,
        "stripe",
        account_id,
        livemode,
        _seal(deps, gateway_id, data.secret_key),
        None if data.webhook_secret is None else _seal(deps, gateway_id, data.webhook_secret),
        f"{data.secret_key[:8]}…{data.secret_key[-4:]}",
        deps.clock.now(),
    )
    log.info("gateway.connected", gateway_id=gateway_id, account_id=account_id, livemode=livemode)
    return gateway_out(row)


async def list_gateways(
    conn: asyncpg.Connection, caller: Scope, params: PageParams
) -> Page[s.Gateway]:
    tenant_id = tenant_of(caller)
    rows = await repo.list_gateways(conn, tenant_id, params.starting_after, params.limit + 1)
    return page_of(rows, params, gateway_out)


async def _live(conn: asyncpg.Connection, tenant_id: str, gateway_id: str) -> asyncpg.Record:
    row = None
    if has_prefix(gateway_id, "gw"):
        row = await repo.get_gateway(conn, tenant_id, gateway_id, lock=True)
    if row is None:
        raise GatewayNotFound()
    return row


async def delete(conn: asyncpg.Connection, deps: Deps, caller: Scope, gateway_id: str) -> s.Gateway:
    """Refused while an app uses the connection (by the apps identity has announced), or
    while a subscription billed through it is live."""
    tenant_id = tenant_of(caller, write=True)
    row = await _live(conn, tenant_id, gateway_id)
    users = await repo.apps_on_gateway(conn, gateway_id)
    if users:
        raise GatewayInUse(f"The connection is used by {', '.join(users)}; move them first")
    live = await repo.live_subscriptions_on(conn, gateway_id)
    if live:
        raise GatewayInUse(
            f"{live} live subscription(s) are billed through the connection; cancel them first"
        )
    row = await repo.delete_gateway(conn, gateway_id, deps.clock.now())
    log.info("gateway.deleted", gateway_id=gateway_id)
    return gateway_out(row)


async def open_account(conn: asyncpg.Connection, deps: Deps, gateway_id: str) -> StripeAccount:
    """The connection's Stripe account, for calls on behalf of its apps."""
    row = await repo.gateway_by_id(conn, gateway_id)
    if row is None or row["deleted_at"] is not None:
        raise StripeFailed("The app's Stripe connection was deleted; connect the app again")
    assert deps.stripe is not None
    return deps.stripe.connect(_unseal(deps, gateway_id, row["secret_key"]), gateway_id)


def webhook_secret(deps: Deps, row: asyncpg.Record) -> str | None:
    sealed = row["webhook_secret"]
    return None if sealed is None else _unseal(deps, row["id"], sealed)
