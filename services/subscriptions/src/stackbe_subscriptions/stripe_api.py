"""The Stripe calls StackBE makes, through the official SDK, for one connection.

Every call that creates or changes something carries an idempotency key derived from
StackBE's own ids, so a request retried after a timeout never makes a second customer,
price, Checkout Session or change. Stripe's errors become ``GATEWAY_ERROR`` (502) with
Stripe's message; nothing here logs or returns the secret key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import stripe

from stackbe_common.logging import get_logger

from .errors import StripeFailed

__all__ = ["StripeAccount", "StripeHttp", "is_live_key", "status_of_stripe"]

log = get_logger(__name__)
stripe.enable_telemetry = False  # no request timings sent to Stripe


class StripeHttp:
    """One pooled aiohttp client for every connection's SDK client (the SDK's own)."""

    def __init__(self, api_base: str, timeout: float) -> None:
        self.api_base = api_base.rstrip("/")
        self.http = stripe.AIOHTTPClient(timeout=timeout)

    def connect(self, secret_key: str, gateway_id: str) -> StripeAccount:
        client = stripe.StripeClient(
            secret_key, base_addresses={"api": self.api_base}, http_client=self.http
        )
        return StripeAccount(client, gateway_id)

    async def close(self) -> None:
        await self.http.close_async()  # type: ignore[no-untyped-call]


def _failed(exc: stripe.StripeError, doing: str) -> StripeFailed:
    """Stripe's own explanation (it never echoes a whole key), for the client and logs."""
    reason = exc.user_message or type(exc).__name__
    return StripeFailed(f"Stripe refused to {doing}: {reason}")


class StripeAccount:
    def __init__(self, client: stripe.StripeClient, gateway_id: str) -> None:
        self._v1 = client.v1
        self.gateway_id = gateway_id

    async def _call(self, doing: str, call: Any) -> Any:
        try:
            return await call
        except stripe.StripeError as exc:
            log.warning(
                "stripe.call_failed",
                gateway_id=self.gateway_id,
                doing=doing,
                error=type(exc).__name__,
                status=exc.http_status,
            )
            raise _failed(exc, doing) from exc

    async def account(self) -> str:
        """The account's id. An invalid key raises ``stripe.AuthenticationError`` to the
        caller, which reports it as bad input."""
        found = await self._v1.accounts.retrieve_current_async()
        return str(found.id)

    async def create_customer(self, customer_id: str, email: str, app_id: str) -> str:
        made = await self._call(
            "create a customer",
            self._v1.customers.create_async(
                params={
                    "email": email,
                    "metadata": {"stackbe_customer_id": customer_id, "stackbe_app_id": app_id},
                },
                options={"idempotency_key": f"stackbe-customer-{self.gateway_id}-{customer_id}"},
            ),
        )
        return str(made.id)

    async def create_product(self, product_id: str, name: str, app_id: str) -> str:
        made = await self._call(
            "create a product",
            self._v1.products.create_async(
                params={
                    "name": name,
                    "metadata": {"stackbe_product_id": product_id, "stackbe_app_id": app_id},
                },
                options={"idempotency_key": f"stackbe-product-{self.gateway_id}-{product_id}"},
            ),
        )
        return str(made.id)

    async def create_price(self, plan: Any, stripe_product_id: str) -> str:
        made = await self._call(
            "create a price",
            self._v1.prices.create_async(
                params={
                    "product": stripe_product_id,
                    "unit_amount": plan.price_cents,
                    "currency": plan.currency.lower(),
                    "recurring": {
                        "interval": plan.interval,
                        "interval_count": plan.interval_count,
                    },
                    "nickname": plan.name,
                    "metadata": {"stackbe_plan_id": plan.id, "stackbe_app_id": plan.app_id},
                },
                options={"idempotency_key": f"stackbe-price-{self.gateway_id}-{plan.id}"},
            ),
        )
        return str(made.id)

    async def create_checkout(
        self,
        session_id: str,
        *,
        customer: str,
        price: str,
        trial_days: int,
        success_url: str,
        cancel_url: str,
        metadata: dict[str, str],
    ) -> tuple[str, str]:
        """A Checkout Session in subscription mode: (its id, its url)."""
        subscription_data: dict[str, Any] = {"metadata": metadata}
        if trial_days:
            subscription_data["trial_period_days"] = trial_days
        made = await self._call(
            "create a Checkout Session",
            self._v1.checkout.sessions.create_async(
                params={  # type: ignore[arg-type]
                    "mode": "subscription",
                    "customer": customer,
                    "line_items": [{"price": price, "quantity": 1}],
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                    "client_reference_id": session_id,
                    "metadata": metadata,
                    "subscription_data": subscription_data,
                },
                options={"idempotency_key": f"stackbe-checkout-{session_id}"},
            ),
        )
        return str(made.id), str(made.url)

    async def subscription(self, stripe_id: str) -> dict[str, Any]:
        found = await self._call(
            "read a subscription", self._v1.subscriptions.retrieve_async(stripe_id)
        )
        return dict(found.to_dict())

    async def update_subscription(
        self, stripe_id: str, params: dict[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        done = await self._call(
            "change the subscription",
            self._v1.subscriptions.update_async(
                stripe_id,
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            ),
        )
        return dict(done.to_dict())

    async def resume_subscription(self, stripe_id: str, idempotency_key: str) -> dict[str, Any]:
        """Resume a subscription Stripe itself paused (a trial that ended without a
        payment method); one whose collection StackBE paused resumes by an update."""
        done = await self._call(
            "resume the subscription",
            self._v1.subscriptions.resume_async(
                stripe_id,
                params={"billing_cycle_anchor": "now"},  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            ),
        )
        return dict(done.to_dict())

    async def cancel_subscription(self, stripe_id: str, idempotency_key: str) -> dict[str, Any]:
        done = await self._call(
            "cancel the subscription",
            self._v1.subscriptions.cancel_async(
                stripe_id, options={"idempotency_key": idempotency_key}
            ),
        )
        return dict(done.to_dict())

    async def subscriptions(self) -> AsyncIterator[dict[str, Any]]:
        """Every subscription of the account, whatever its status, page by page."""
        page = await self._call(
            "list subscriptions",
            self._v1.subscriptions.list_async(params={"status": "all", "limit": 100}),
        )
        try:
            async for found in page.auto_paging_iter():
                yield dict(found.to_dict())
        except stripe.StripeError as exc:
            raise _failed(exc, "list subscriptions") from exc


def is_live_key(secret_key: str) -> bool:
    """Stripe's account object does not say; the key does (``sk_live_``, ``rk_live_``)."""
    return secret_key.startswith(("sk_live_", "rk_live_"))


def status_of_stripe(sub: dict[str, Any]) -> str:
    """Stripe's status in StackBE's words. A subscription whose collection is paused is
    paused; ``unpaid`` keeps its past_due standing (Stripe stopped retrying, the app's
    grace period still runs); ``incomplete_expired`` never started, so it is canceled."""
    status = str(sub["status"])
    if status in ("canceled", "incomplete_expired"):
        return "canceled"
    if sub.get("pause_collection") or status == "paused":
        return "paused"
    if status == "unpaid":
        return "past_due"
    return status
