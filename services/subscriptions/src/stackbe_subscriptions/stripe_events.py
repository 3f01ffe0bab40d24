"""Stripe's events in, at ``POST /v1/gateways/stripe/{id}/webhook``.

The signature is checked with that connection's webhook secret before anything else; a
bad one is 400 and changes nothing. Each event id is recorded in the transaction of its
effect, so a redelivered event is answered 200 and does nothing. Subscription events are
never applied from their (possibly stale) payload: the subscription is read again from
Stripe and that is what is written, so events may come twice or in any order.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import stripe

from stackbe_common import outbox
from stackbe_common.ids import has_prefix, new_id
from stackbe_common.logging import get_logger
from stackbe_events.subscriptions import CheckoutCompleted, PaymentFailed, PaymentSucceeded

from . import gateway_repository as grepo
from . import repository as repo
from . import schemas as s
from .deps import Deps
from .errors import GatewayNotFound, SignatureInvalid, SubscriptionExists
from .gateways import open_account, webhook_secret
from .lifecycle import app_now, fact, payment_out
from .stripe_api import StripeAccount
from .stripe_sync import apply_latest

__all__ = ["take"]

log = get_logger(__name__)

# Stripe's reason for an invoice, as the kind of StackBE payment it becomes.
KINDS = {
    "subscription_create": "initial",
    "subscription_cycle": "renewal",
    "subscription_update": "proration",
}
SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
)


async def take(
    conn: asyncpg.Connection, deps: Deps, gateway_id: str, body: bytes, header: str | None
) -> s.StripeEventTaken:
    gateway = await grepo.gateway_by_id(conn, gateway_id) if has_prefix(gateway_id, "gw") else None
    if gateway is None or gateway["deleted_at"] is not None:
        raise GatewayNotFound()
    secret = webhook_secret(deps, gateway)
    if secret is None:
        raise SignatureInvalid(
            "The connection has no webhook secret to check Stripe's events with; connect "
            "the account again with webhookSecret",
            field="Stripe-Signature",
        )
    try:
        event = stripe.Webhook.construct_event(body.decode(), header or "", secret).to_dict()
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise SignatureInvalid(field="Stripe-Signature") from exc
    kind, event_id = str(event["type"]), str(event["id"])
    if not await grepo.first_take(conn, gateway_id, event_id, kind, deps.clock.now()):
        log.info("stripe.event_repeated", gateway_id=gateway_id, event_id=event_id, type=kind)
        return s.StripeEventTaken(id=event_id, type=kind, duplicate=True)
    obj: dict[str, Any] = event["data"]["object"]
    account = await open_account(conn, deps, gateway_id)
    try:
        if kind == "checkout.session.completed" and obj.get("mode") == "subscription":
            await _checkout_completed(conn, deps, gateway, account, obj)
        elif kind in SUBSCRIPTION_EVENTS:
            await apply_latest(conn, deps, gateway, account, obj["id"])
        elif kind in ("invoice.paid", "invoice.payment_failed"):
            await _invoice(conn, deps, gateway, account, obj, paid=kind == "invoice.paid")
    except SubscriptionExists as exc:
        # Taken, not retried: Stripe would send it for days and it would never fit. The
        # customer paid twice (two Checkout Sessions at once); StackBE keeps the first.
        log.error(
            "stripe.subscription_conflict",
            gateway_id=gateway_id,
            event_id=event_id,
            type=kind,
            error=exc.message,
        )
    log.info("stripe.event_taken", gateway_id=gateway_id, event_id=event_id, type=kind)
    return s.StripeEventTaken(id=event_id, type=kind, duplicate=False)


async def _checkout_completed(
    conn: asyncpg.Connection,
    deps: Deps,
    gateway: asyncpg.Record,
    account: StripeAccount,
    obj: dict[str, Any],
) -> None:
    """The customer paid on Stripe's page: the subscription (read from Stripe) is ours,
    and our checkout session completes with it, once."""
    session_id = obj.get("client_reference_id") or (obj.get("metadata") or {}).get(
        "stackbe_checkout_session_id"
    )
    if not obj.get("subscription") or not session_id:
        return
    row = await apply_latest(conn, deps, gateway, account, obj["subscription"])
    session = await repo.get_session(conn, session_id, lock=True)
    if row is None or session is None or session["gateway_id"] != gateway["id"]:
        return
    if session["status"] == "completed":
        return
    now = await app_now(conn, deps, row["app_id"])
    await repo.complete_session(conn, session_id, row["id"], now)
    await outbox.record(
        conn,
        fact(
            CheckoutCompleted,
            now,
            row["tenant_id"],
            row["app_id"],
            session_id=session_id,
            customer_id=row["customer_id"],
            plan_id=session["plan_id"],
            subscription_id=row["id"],
        ),
    )


def _subscription_of(invoice: dict[str, Any]) -> str | None:
    """The invoice's subscription: under ``parent`` in newer API versions."""
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    found = parent.get("subscription") or invoice.get("subscription")
    return None if found is None else str(found)


async def _invoice(
    conn: asyncpg.Connection,
    deps: Deps,
    gateway: asyncpg.Record,
    account: StripeAccount,
    invoice: dict[str, Any],
    *,
    paid: bool,
) -> None:
    """A payment of the subscription's invoice, succeeded or failed, recorded with its
    event; then the subscription as Stripe holds it (past_due after a failure)."""
    stripe_sub = _subscription_of(invoice)
    if stripe_sub is None:
        return
    row = await apply_latest(conn, deps, gateway, account, stripe_sub)
    amount = int(invoice["amount_paid"] if paid else invoice["amount_due"])
    if row is None or amount == 0 or (paid and await grepo.invoice_paid(conn, invoice["id"])):
        return
    now = await app_now(conn, deps, row["app_id"])
    kind = KINDS.get(str(invoice.get("billing_reason")))
    if kind is None:
        earlier = await repo.list_payments(
            conn, row["tenant_id"], row["app_id"], row["id"], None, 1
        )
        kind = "renewal" if earlier else "initial"
    payment = await repo.insert_payment(
        conn,
        new_id("pay"),
        row["tenant_id"],
        row["app_id"],
        row["id"],
        row["customer_id"],
        amount,
        str(invoice["currency"]).upper(),
        "succeeded" if paid else "failed",
        kind,
        None if paid else "Stripe could not collect the invoice",
        now,
    )
    await grepo.set_payment_invoice(conn, payment["id"], invoice["id"])
    cls = PaymentSucceeded if paid else PaymentFailed
    await outbox.record(
        conn, fact(cls, now, row["tenant_id"], row["app_id"], payment=payment_out(payment))
    )
